"""Running a workflow under test: offline (dry-run models, nothing stored), with the case's
inputs, decisions and injected failures, as far as the job goes."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal

from engine.api import Engine, JobRun
from engine.compile.compiler import Plan
from engine.compile.models import MODEL_NODE_TYPES, Workflow
from engine.errors import Problem, ValidationError
from engine.executors import CallPolicy, DryRunExecutor, ExecutorRouter
from engine.run.decisions import DecisionReport, apply_decisions, check_decision_targets


def offline_engine(
    *, fail: Sequence[str] = (), seed: int = 0, executors: ExecutorRouter | None = None
) -> Engine:
    """An engine for one test run: no store, dry-run assets written nowhere, no retries (an
    injected failure fails at once)."""
    dry_run = DryRunExecutor(seed=seed, fail_nodes=fail, assets_dir=None)
    return Engine(
        dry_run=dry_run,
        executors=executors,
        seed=seed,
        policy=CallPolicy(retries=0),
        checkpoint_every=None,
    )


def check_fail_targets(fail: Sequence[str], plan: Plan) -> None:
    """Every entry names a model node of the plan, or a clone of one (`gen#2`)."""
    problems = []
    for entry in fail:
        template = plan.nodes.get(entry.partition("#")[0])
        if template is None:
            close = difflib.get_close_matches(entry, list(plan.nodes), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            problems.append(Problem(f"names no node of the workflow{hint}", path=entry))
        elif template.type not in MODEL_NODE_TYPES:
            problems.append(
                Problem(
                    f"`{template.id}` is a {template.type} node; only model nodes call the "
                    "executor, so only they can be made to fail",
                    path=entry,
                )
            )
    if problems:
        raise ValidationError(problems, what="fail")


def run_to_rest(
    engine: Engine,
    workflow: Workflow,
    inputs: Mapping[str, Any],
    decisions: Mapping[str, Any],
    *,
    auto_approve: bool = False,
    fail: Sequence[str] = (),
    portal: BlockingPortal | None = None,
) -> tuple[JobRun, DecisionReport]:
    """Run `workflow` until it ends or waits at gates no decision covers. Raises
    ValidationError for bad inputs, decisions that name no gate, or `fail` entries (the
    nodes the engine's dry-run executor fails) that name no node.

    Runs in `portal`'s event loop when given: its worker processes (for expressions that
    can run long) then serve every run, instead of starting anew for each."""
    if decisions or fail:
        plan = engine.compile(workflow)
        check_decision_targets(decisions, plan)
        check_fail_targets(fail, plan)
    job = engine.prepare(workflow, inputs)
    report = DecisionReport()

    def decide(node_id: str, decision: Any) -> object:
        return engine.decide_now(job, node_id, decision)

    async def go() -> None:
        await engine.advance(job)
        while (
            job.waiting
            and not job.scheduler.finished
            and apply_decisions(
                job.scheduler, decide, decisions, auto_approve=auto_approve, report=report
            )
        ):
            await engine.advance(job)

    if portal is not None:
        portal.call(go)
    else:
        anyio.run(go)
    return job, report
