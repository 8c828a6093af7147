"""The `flowgraph` command line: validate, run and draw Scenario workflows offline."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from rich.console import Console

from . import graph_export
from .api import Engine, JobRun
from .decisions import DecisionReport, apply_decisions, check_decisions, unused_entries
from .document import parse_json
from .errors import DecisionError, FlowgraphError, Problem, ValidationError
from .executors import CallPolicy, DryRunExecutor
from .protocols import JobStatus
from .terminal import ProgressDisplay, ask_decision, print_summary

EXIT_OK, EXIT_JOB_FAILED, EXIT_INVALID, EXIT_WAITING = 0, 1, 2, 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="flowgraph: run Scenario workflows locally.",
)
err = Console(stderr=True, highlight=False)


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    json = "json"


def default_assets_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("flowgraph")) / "assets"


def fail_invalid(error: ValidationError | FlowgraphError) -> typer.Exit:
    problems = error.problems if isinstance(error, ValidationError) else [Problem(str(error))]
    if isinstance(error, ValidationError):
        err.print(f"[bold red]error:[/] {error.what} is invalid", markup=True)
    for problem in problems:
        err.print(str(problem), markup=False)
    return typer.Exit(EXIT_INVALID)


def parse_inputs(pairs: list[str], inputs_file: Path | None) -> dict[str, Any]:
    """`--inputs FILE.json` first, then every `--input NAME=VALUE` (JSON when it parses)."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    if inputs_file is not None:
        try:
            loaded = parse_json(inputs_file.read_text(encoding="utf-8"), source=str(inputs_file))
        except OSError as error:
            raise ValidationError(
                [Problem(f"cannot read `{inputs_file}`: {error.strerror}")], what="run inputs"
            ) from None
        if not isinstance(loaded, dict):
            problems.append(
                Problem(
                    "an inputs file holds a JSON object of input names to values",
                    path=str(inputs_file),
                )
            )
        else:
            values.update(loaded)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            problems.append(Problem(f"`--input {pair}` is not NAME=VALUE"))
            continue
        try:
            values[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[name.strip()] = raw
    if problems:
        raise ValidationError(problems, what="run inputs")
    return values


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help='A workflow, {"workflow"} or {"job"} JSON file')],
) -> None:
    """Check a workflow document and its flow; every problem is listed, one a line."""
    engine = Engine()
    try:
        plan = engine.compile(file)
    except ValidationError as error:
        raise fail_invalid(error) from None
    loops = sum(1 for t in plan.nodes.values() if t.type == "for-each")
    err.print(f"valid: {file} ({len(plan.nodes)} nodes, {loops} loops)")


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help='A workflow, {"workflow"} or {"job"} JSON file')],
    input_pairs: Annotated[
        list[str],
        typer.Option(
            "--input", "-i", help="NAME=VALUE; VALUE is JSON when it parses, else a string"
        ),
    ] = [],  # noqa: B006
    inputs_file: Annotated[
        Path | None, typer.Option("--inputs", help="A JSON object of inputs")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print only the {"job": ...} envelope on stdout')
    ] = False,
    fail: Annotated[
        list[str],
        typer.Option("--fail", help="Make this node (or every clone of this template) fail"),
    ] = [],  # noqa: B006
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Let independent branches finish after a failure")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for dry-run asset ids")] = 0,
    max_concurrency: Annotated[
        int, typer.Option("--max-concurrency", min=1, help="Executor calls at once")
    ] = 8,
    latency: Annotated[
        float, typer.Option(min=0.0, help="Simulated seconds per dry-run model call")
    ] = 0.0,
    failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Simulated transient failure rate")
    ] = 0.0,
    retries: Annotated[int, typer.Option(min=0, help="Retries for transient executor errors")] = 2,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds before a model call times out")
    ] = None,
    assets_dir: Annotated[
        Path | None, typer.Option(help="Where dry-run assets are written")
    ] = None,
    decisions_file: Annotated[
        Path | None,
        typer.Option("--decisions", help='JSON: node id -> approve | reject | {"select": [i]}'),
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Approve every user-approval gate")
    ] = False,
) -> None:
    """Run a workflow offline; model nodes go to the dry-run executor."""
    try:
        inputs = parse_inputs(input_pairs, inputs_file)
        decisions: dict[str, Any] = {}
        if decisions_file is not None:
            try:
                text = decisions_file.read_text(encoding="utf-8")
            except OSError as error:
                raise ValidationError(
                    [Problem(f"cannot read `{decisions_file}`: {error.strerror}")], what="decisions"
                ) from None
            decisions = check_decisions(parse_json(text, source=str(decisions_file)))
        dry_run = DryRunExecutor(
            seed=seed,
            latency=latency,
            failure_rate=failure_rate,
            fail_nodes=fail,
            assets_dir=assets_dir or default_assets_dir(),
        )
        engine = Engine(
            dry_run=dry_run,
            seed=seed,
            keep_going=keep_going,
            policy=CallPolicy(
                concurrency=max_concurrency, retries=retries, timeout=timeout, backoff=0.05
            ),
        )
        job = engine.prepare(file, inputs)
    except ValidationError as error:
        raise fail_invalid(error) from None
    unknown = [node for node in fail if node not in job.plan.nodes and "#" not in node]
    for node in unknown:
        err.print(f"warning: `--fail {node}` names no node of this flow", markup=False)
    interactive = sys.stdin.isatty() and sys.stderr.isatty() and not as_json
    display = ProgressDisplay(err, job) if err.is_terminal else None
    if display is not None:
        engine.subscribe(display)
    report = DecisionReport()

    async def drive() -> None:
        await job.runner.run()
        while job.waiting and not job.scheduler.finished:
            progressed = apply_decisions(
                job.scheduler, decisions, auto_approve=auto_approve, report=report
            )
            if not progressed and interactive:
                progressed = ask_decisions(job)
            if not progressed:
                break
            job.runner.announce()
            await job.runner.run()

    if display is not None:
        with display:
            anyio.run(drive)
    else:
        anyio.run(drive)
    for message in report.refused:
        err.print(f"refused: {message}", markup=False)
    for key in unused_entries(decisions, report):
        err.print(f"warning: decision for `{key}` was not used (no such gate waited)", markup=False)
    document = job.document()
    if as_json:
        sys.stdout.write(json.dumps({"job": document}, ensure_ascii=False) + "\n")
    else:
        print_summary(Console(highlight=False), job, document)
    raise typer.Exit(exit_code(job))


def ask_decisions(job: JobRun) -> bool:
    decided = False
    for gate in list(job.waiting):
        if job.scheduler.finished:
            break
        while True:
            decision = ask_decision(err, gate)
            if decision is None:
                return decided
            try:
                job.scheduler.decide(gate.id, decision)
            except DecisionError as error:
                err.print(f"refused: {error}", markup=False)
                continue
            decided = True
            break
    return decided


def exit_code(job: JobRun) -> int:
    if job.status is JobStatus.SUCCESS:
        return EXIT_OK
    if job.status in (JobStatus.FAILURE, JobStatus.CANCELED):
        return EXIT_JOB_FAILED
    gates = ", ".join(f"`{g.id}`" for g in job.waiting)
    err.print(
        f"job {job.job_id} is waiting at {gates}. Decide with --decisions FILE "
        '(node id -> approve | reject | {"select": [i, ...]}) or --auto-approve.',
        markup=False,
    )
    return EXIT_WAITING


@app.command()
def graph(
    file: Annotated[Path, typer.Argument(help='A workflow, {"workflow"} or {"job"} JSON file')],
    output_format: Annotated[GraphFormat, typer.Option("--format", "-f")] = GraphFormat.mermaid,
) -> None:
    """Draw the compiled flow: mermaid, Graphviz dot or JSON."""
    try:
        plan = Engine().compile(file)
    except ValidationError as error:
        raise fail_invalid(error) from None
    if output_format is GraphFormat.json:
        sys.stdout.write(json.dumps(graph_export.to_json(plan), indent=2) + "\n")
    elif output_format is GraphFormat.dot:
        sys.stdout.write(graph_export.to_dot(plan))
    else:
        sys.stdout.write(graph_export.to_mermaid(plan))


def main() -> None:
    """Console entry point; bad input never shows a traceback."""
    try:
        app()
    except FlowgraphError as error:
        err.print(f"error: {error}", markup=False)
        sys.exit(EXIT_INVALID)
