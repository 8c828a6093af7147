"""CLI commands that explain: `explain` (why every node ran, waited or was skipped) and `graph`
(mermaid, dot, json or a self-contained HTML page), for a workflow file or a stored job."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer

from engine.cli.common import (
    EXIT_INVALID,
    ConfigOption,
    CostsOption,
    DbOption,
    ExecutorOption,
    build_engine,
    chosen_executor,
    cost_table,
    describe_db,
    err,
    fail_invalid,
    open_db,
    out_console,
    read_workflow,
    write_file,
)
from engine.config import load_config
from engine.errors import FlowgraphError, Problem, ValidationError
from engine.executors import DryRunExecutor

if TYPE_CHECKING:
    from engine.api import JobRun
    from engine.costs import CostEstimate

# The engine (networkx, pydantic) and the views are imported by the commands that use them:
# `--help` and the other commands need none of it.


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    json = "json"
    html = "html"


TargetArgument = Annotated[
    str,
    typer.Argument(
        help="A workflow file or webapp export (a plan, run offline), or a job id from the store"
    ),
]


def stored_job(target: str, db: str | None) -> JobRun | None:
    """The job `target` names in the store, or None when `target` is a file."""
    if Path(target).exists():
        return None
    store = open_db(db)
    record = store.get_job(target)
    if record is None:
        err.print(
            f"error: `{target}` is neither a file nor a job in the store `{describe_db(db)}`",
        )
        raise typer.Exit(EXIT_INVALID)
    try:
        return build_engine(store, record.options).get(target)
    except FlowgraphError as error:
        raise fail_invalid(error) from None


def planned_job(file: str, inputs: dict[str, Any], *, auto_approve: bool) -> JobRun:
    """Run `file` offline (dry-run executor, nothing written anywhere) to see how it resolves."""
    from engine.api import Engine
    from engine.run.decisions import DecisionReport, apply_decisions

    engine = Engine(dry_run=DryRunExecutor(assets_dir=None))
    try:
        job = engine.prepare(read_workflow(file), inputs)
    except ValidationError as error:
        raise fail_invalid(error) from None

    def decide(node_id: str, decision: Any) -> object:
        return engine.decide_now(job, node_id, decision)

    async def go() -> None:
        await engine.advance(job)
        report = DecisionReport()
        while job.waiting and apply_decisions(
            job.scheduler, decide, {}, auto_approve=auto_approve, report=report
        ):
            await engine.advance(job)

    anyio.run(go)
    return job


def explain(
    target: TargetArgument,
    input_pairs: Annotated[
        list[str], typer.Option("--input", "-i", help="NAME=VALUE (plans)")
    ] = [],  # noqa: B006
    inputs_file: Annotated[
        Path | None, typer.Option("--inputs", help="A JSON object of inputs")
    ] = None,
    node: Annotated[
        str | None, typer.Option("--node", help="Only this node (a template: every clone)")
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Plans: approve every approval gate")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    db: DbOption = None,
    cost: Annotated[
        bool,
        typer.Option(
            "--cost",
            help="Price the run: each model call the inputs lead to, asked of its executor "
            "(`scenario`: Scenario's dryRun) or from the costs table",
        ),
    ] = False,
    executor: ExecutorOption = None,
    config: ConfigOption = None,
    costs: CostsOption = None,
) -> None:
    """Why each node ran, waited or was skipped, back to the decision that caused it; with
    --cost, what the run costs in creative units, per model node and in total."""
    from engine.cli.app import parse_inputs

    job = stored_job(target, db)
    if job is None:
        try:
            inputs = parse_inputs(input_pairs, inputs_file)
        except ValidationError as error:
            raise fail_invalid(error) from None
        job = planned_job(target, inputs, auto_approve=auto_approve)
    priced = price_job(job, executor=executor, config=config, costs=costs) if cost else None
    from engine.views.explain import Explainer, explain_text
    from engine.views.gates import describe_gate, waiting_gates

    explainer = Explainer(job.scheduler)
    try:
        explanations = [explainer.explain(node)] if node else explainer.explain_all()
    except KeyError as error:
        err.print(f"error: {error.args[0]}")
        raise typer.Exit(EXIT_INVALID) from None
    gates: dict[str, list[str]] = {}
    if node is not None and job.waiting:  # what the gate (or its waiting clones) asks
        document = job.document()
        for gate in waiting_gates(document):
            if gate == node or gate.startswith((node + "#", node + "/")):  # clones, children
                gates[gate] = describe_gate(document, gate)
    if as_json:
        payload = {
            "jobId": job.job_id,
            "status": job.status.value,
            "nodes": [e.to_json() for e in explanations],
            "gates": gates,
        }
        if priced is not None:
            payload["cost"] = priced.to_json()
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return
    out_console().print(f"job {job.job_id}: {job.status.value}")
    out_console().print(explain_text(explanations, drill_down=node is not None), soft_wrap=True)
    for lines in gates.values():
        out_console().print("\n".join(lines), soft_wrap=True)
    if priced is not None:
        out_console().print(cost_text(priced), soft_wrap=True)


def price_job(
    job: JobRun, *, executor: str | None, config: Path | None, costs: Path | None
) -> CostEstimate:
    """What running `job`'s workflow with its inputs costs (see engine/costs.py)."""
    from engine.api import Engine
    from engine.costs import estimate

    try:
        settings = load_config(config)
        table = cost_table(costs, settings)
        router = settings.router()
        if executor:
            router.default = chosen_executor(executor, settings)
    except ValidationError as error:
        raise fail_invalid(error) from None
    except ValueError as error:  # an executor of the file that cannot be built so
        raise fail_invalid(ValidationError([Problem(str(error))], what="configuration")) from None
    executors = {id(e): e for e in (router.default, *(r.executor for r in router.routes))}

    async def go() -> CostEstimate:
        try:
            return await estimate(
                job.plan.workflow, job.scheduler.inputs, table, workflows=Engine(), router=router
            )
        finally:
            for used in executors.values():
                close = getattr(used, "close", None)
                if close is not None:
                    await close()

    try:
        return anyio.run(go)
    except FlowgraphError as error:
        raise fail_invalid(error) from None
    except Exception as error:  # an executor that cannot price: say which and why
        err.print(f"error: cannot price the run: {error}")
        raise typer.Exit(EXIT_INVALID) from None


def cost_text(priced: CostEstimate) -> str:
    def units(value: float) -> str:
        return f"{value:g}"

    width = max((len(n) for n in priced.nodes), default=0)
    lines = [f"  {n.ljust(width)}  {units(c)}" for n, c in priced.nodes.items()]
    asked = f" ({priced.asked} distinct calls priced by their executor)" if priced.asked else ""
    return "\n".join(
        [
            f"cost: {units(priced.total)} creative units{asked}",
            "  (the run priced through its gates: approvals approved, selections taking their "
            "first items)",
            *lines,
        ]
    )


def graph(
    target: TargetArgument,
    output_format: Annotated[GraphFormat, typer.Option("--format", "-f")] = GraphFormat.mermaid,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file")
    ] = None,
    db: DbOption = None,
) -> None:
    """Draw a workflow's flow (mermaid, dot, json, html) or a stored job (html shows statuses)."""
    from engine.api import Engine

    job = stored_job(target, db)
    if job is not None:
        plan = job.plan
    else:
        try:
            plan = Engine().compile(read_workflow(target))
        except ValidationError as error:
            raise fail_invalid(error) from None
    from engine.views import graph as graph_export
    from engine.views.report import job_page, plan_page

    if output_format is GraphFormat.json:
        text = json.dumps(graph_export.to_json(plan), indent=2) + "\n"
    elif output_format is GraphFormat.dot:
        text = graph_export.to_dot(plan)
    elif output_format is GraphFormat.html:
        title = f"job {job.job_id}" if job is not None else f"plan of {target}"
        text = (
            job_page(job.scheduler, title=title, transitions=open_db(db).events(job.job_id))
            if job is not None
            else plan_page(plan, title=title)
        )
    else:
        text = graph_export.to_mermaid(plan)
    if output is not None:
        if not write_file(output, text):
            raise typer.Exit(EXIT_INVALID)
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)
