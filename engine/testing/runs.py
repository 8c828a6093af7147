"""Running a workflow under test: offline (dry-run models, nothing stored), with the case's
inputs, decisions and injected failures, as far as the job goes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal

from engine.api import Engine, JobRun
from engine.compile.models import Workflow
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


def run_to_rest(
    engine: Engine,
    workflow: Workflow,
    inputs: Mapping[str, Any],
    decisions: Mapping[str, Any],
    *,
    auto_approve: bool = False,
    portal: BlockingPortal | None = None,
) -> tuple[JobRun, DecisionReport]:
    """Run `workflow` until it ends or waits at gates no decision covers. Raises
    ValidationError for bad inputs or decisions that name no gate.

    Runs in `portal`'s event loop when given: its worker processes (for expressions that
    can run long) then serve every run, instead of starting anew for each."""
    if decisions:
        check_decision_targets(decisions, engine.compile(workflow))
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
