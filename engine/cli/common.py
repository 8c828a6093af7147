"""What the CLI commands share: the engine they build, how they drive a job, how they end."""

from __future__ import annotations

import sys
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import anyio
import typer

from engine.config import Config, build_executor, load_config, scenario_executor
from engine.errors import DecisionError, FlowgraphError, Problem, StoreError, ValidationError
from engine.executors import CallPolicy, DryRunExecutor
from engine.protocols import Executor, JobStatus, Store
from engine.stores import default_db_path, open_store

if TYPE_CHECKING:
    from rich.console import Console

    from engine.api import Engine, JobRun
    from engine.compile.models import Workflow
    from engine.run.spooled import SpooledDocument

# The engine's compiler and models (networkx, pydantic) are imported by the functions that use
# them: `--help`, `--version` and a mistyped command need none of it.

# 0 success; 1 the job failed or was canceled; 2 invalid input or usage; 3 the job waits at a
# gate; 4 `serve` cannot listen; 70 a flowgraph bug (main); 130 interrupted (the job is kept)
EXIT_OK, EXIT_JOB_FAILED, EXIT_INVALID, EXIT_WAITING, EXIT_CANNOT_SERVE = 0, 1, 2, 3, 4
EXIT_INTERNAL, EXIT_INTERRUPTED = 70, 130

# Nothing printed is read as rich markup: ids, prompts, reasons and outputs are the user's
# text, shown as typed. Styles are given as Text spans (see terminal.py).
# rich is imported when something is first printed: a run whose output is JSON on a pipe never
# needs it.


@cache
def stderr_console() -> Console:
    """The stderr Console (what `err` stands for), made on first use."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


# `note: ...` is said at level info, `warning: ...` at warning, and so on
_LEVELS = {
    "note": "info",
    "report": "info",
    "warning": "warning",
    "error": "error",
    "refused": "error",
}


class _StderrConsole:
    """Stands for `stderr_console()` wherever an attribute is read (`err.print`); give the
    Console itself to what uses it as an object (a progress display, a prompt).

    With `--log-format json` (`as_log_events`), what is printed becomes one JSON event a line
    like the transitions around it: `{"message": ..., "event": "message", "level": ...}`, the
    level read from the message's `note:`, `warning:` or `error:`."""

    logger: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(stderr_console(), name)

    def print(self, *objects: Any, **options: Any) -> None:
        if self.logger is None:
            stderr_console().print(*objects, **options)
            return
        message = " ".join(getattr(o, "plain", None) or str(o) for o in objects)
        level = _LEVELS.get(message.partition(":")[0], "info")
        getattr(self.logger, level)("message", message=message)


def as_log_events(logger: Any) -> None:
    """Say every later stderr message through `logger` (a structlog logger), one event each."""
    _StderrConsole.logger = logger


err = cast("Console", _StderrConsole())


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (progress and prompts show there), without importing rich
    for a pipe."""
    return sys.stderr.isatty() and err.is_terminal


def out_console() -> Console:
    """Stdout; when it is no terminal, tables wide enough that ids are never cut, and lines of
    text never broken (a pipe or a log file reads one message a line)."""
    from rich.console import Console

    console = Console(highlight=False, markup=False, emoji=False)
    if not console.is_terminal:
        console = Console(highlight=False, markup=False, emoji=False, width=160, soft_wrap=True)
    return console


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The job store: a SQLite file (default: $FLOWGRAPH_DB, else flowgraph.db in the "
        "user data directory); `:memory:` keeps nothing.",
    ),
]
MaxNodesOption = Annotated[
    int | None,
    typer.Option("--max-nodes", min=1, help="Nodes per job, loop clones included [1000000]"),
]
MaxIterationsOption = Annotated[
    int | None,
    typer.Option("--max-iterations", min=1, help="Iterations per for-each [1000000]"),
]
ExecutorOption = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="Where model nodes run: `scenario` (Scenario's API through scenario-sdk, "
        "configured by SCENARIO_SDK_API_KEY/_SECRET or _JWT and SCENARIO_BASE_URL), `dry-run`, "
        "or an executor of the configuration file",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        help="A TOML file: executors, routing, store, limits (see docs/configuration.md); "
        "default $FLOWGRAPH_CONFIG"
    ),
]
CostsOption = Annotated[
    Path | None,
    typer.Option(
        help="JSON: creative units per model call, by modelId or node type "
        '(and "default"), for dry-run estimates [the configuration\'s [server] costs]'
    ),
]
ExpressionSecondsOption = Annotated[
    float | None,
    typer.Option(
        "--expression-seconds",
        min=0.001,
        help="Seconds an expression that can run long may take, in its own process [5]",
    ),
]
MaxValueOption = Annotated[
    int | None,
    typer.Option(
        "--max-value", min=1, help="Characters or items an expression may produce [10000000]"
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help='Print only the {"job": ...} envelope on stdout')
]


def default_assets_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("flowgraph")) / "assets"


def read_workflow(file: str | Path, *, quiet: bool = False) -> Workflow:
    """The workflow of `file`; when it had to be published first (a webapp export), says so on
    stderr unless `quiet`."""
    from engine.compile.document import published_from_editor, read_document

    workflow = read_document(file)
    if published_from_editor(workflow) and not quiet:
        count = len(workflow.flow)
        err.print(
            f"note: {file} has no flow: its editor graph (editorInfo) was compiled into "
            f"{count} flow node{'s' if count != 1 else ''}, as Scenario's publish does "
            f"(`flowgraph publish {file}` writes it)"
        )
    return workflow


def write_file(path: Path, text: str) -> bool:
    """Write `text` to `path`; when that cannot be done, say why on stderr and return False."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        err.print(f"error: cannot write {path}: {error.strerror or error}")
        return False
    return True


def fail_invalid(error: FlowgraphError) -> typer.Exit:
    """Print every problem (one a line, on stderr) and exit 2."""
    if isinstance(error, ValidationError):
        from rich.text import Text

        problems = "".join(f"\n{problem}" for problem in error.problems)
        err.print(Text.assemble(("error:", "bold red"), f" {error.headline}{problems}"))
    else:
        err.print(f"error: {error}")
    return typer.Exit(EXIT_INVALID)


def open_db(db: str | None) -> Store:
    try:
        return open_store(db)
    except FlowgraphError as error:
        raise fail_invalid(error) from None


def build_engine(
    store: Store | None, options: dict[str, Any], settings: Config | None = None
) -> Engine:
    """An engine whose executors and policy follow the run's options (stored with the job, so
    that approving or resuming later runs the rest the same way).

    With a configuration file (`settings`, or the file named by `options["config"]`) that has
    executors or an `[engine]` section, its executors, routing and limits are used; options
    given on the command line (concurrency, retries, timeout, seed, keep-going) win over it.
    Otherwise the built-in dry-run executor serves every model node, shaped by the options.
    """
    from engine.api import Engine

    if settings is None and options.get("config"):
        settings = load_config(options["config"])
    try:
        limits = (settings or Config()).limits_with(
            max_nodes=options.get("maxNodes"),
            max_iterations=options.get("maxIterations"),
            expression_seconds=options.get("expressionSeconds"),
            max_value=options.get("maxValue"),
        )
    except ValueError as error:
        raise ValidationError([Problem(str(error))], what="options") from None
    run_options = {k: v for k, v in options.items() if k not in ("seed", "keepGoing", "lineage")}
    chosen = options.get("executor")
    if chosen and settings is None:
        settings = Config()
    if settings is not None and (settings.executors or settings.engine or chosen):
        section = settings.engine
        given = {
            "concurrency": options.get("maxConcurrency"),
            "retries": options.get("retries"),
            "timeout": options.get("timeout"),
        }
        policy = replace(settings.policy(), **{k: v for k, v in given.items() if v is not None})
        router = settings.router()
        if chosen:
            router.default = chosen_executor(chosen, settings)
            if chosen == "scenario" and options.get("maxConcurrency") is None:
                policy = replace(policy, concurrency=max(policy.concurrency, SCENARIO_WORKERS))
        seed = options.get("seed")
        return Engine(
            executors=router,
            seed=int(seed if seed is not None else section.get("seed", 0)),
            keep_going=bool(options.get("keepGoing") or section.get("keep_going", False)),
            policy=policy,
            store=store,
            run_options=run_options,
            limits=limits,
        )
    dry_run = DryRunExecutor(
        seed=int(options.get("seed") or 0),
        latency=float(options.get("latency") or 0.0),
        failure_rate=float(options.get("failureRate") or 0.0),
        fail_nodes=options.get("fail", ()),
        assets_dir=options.get("assetsDir") or default_assets_dir(),
    )
    policy = CallPolicy(
        concurrency=int(options.get("maxConcurrency") or 8),
        retries=int(2 if options.get("retries") is None else options["retries"]),
        timeout=options.get("timeout"),
        backoff=0.05,
    )
    return Engine(
        dry_run=dry_run,
        seed=int(options.get("seed") or 0),
        keep_going=bool(options.get("keepGoing", False)),
        policy=policy,
        store=store,
        run_options=run_options,
        limits=limits,
    )


def cost_table(path: Path | None, settings: Config) -> dict[str, float]:
    """Creative units per call by modelId or node type: the file `path`, else the
    configuration's `[server] costs`."""
    from engine.compile.document import read_json_file

    if path is None:
        return {str(k): float(v) for k, v in settings.server.get("costs", {}).items()}
    loaded = read_json_file(path, what="costs")
    if not isinstance(loaded, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in loaded.values()
    ):
        raise ValidationError(
            [Problem("a costs file maps modelIds or node types to numbers", path=str(path))],
            what="costs",
        )
    return {str(k): float(v) for k, v in loaded.items()}


SCENARIO_WORKERS = 10  # calls at once by default with `--executor scenario` (the cloud's limit)


def chosen_executor(name: str, settings: Config) -> Executor:
    """`--executor NAME`: an executor of the configuration file, or the built-in `scenario`
    (configured by the SDK's environment variables) or `dry-run`."""
    if name in settings.executors:
        return build_executor(name, settings.executors[name])
    if name == "scenario":
        return scenario_executor({})
    if name == "dry-run":
        return DryRunExecutor(seed=int(settings.engine.get("seed", 0)))
    known = ", ".join(sorted({"dry-run", "scenario", *settings.executors}))
    raise ValidationError(
        [Problem(f"`--executor {name}` is no executor; expected one of: {known}")],
        what="options",
    )


def drive(
    engine: Engine,
    job: JobRun,
    *,
    as_json: bool,
    decisions: dict[str, Any] | None = None,
    auto_approve: bool = False,
    first_step: str = "advance",
) -> None:
    """Run the job as far as it goes, deciding gates from `decisions`, `auto_approve` or, at
    an interactive terminal, by asking. Progress shows on a terminal."""
    from engine.run.decisions import DecisionReport, apply_decisions, unused_entries

    decisions = decisions or {}
    interactive = sys.stdin.isatty() and sys.stderr.isatty() and not as_json
    display = None
    if stderr_is_terminal():
        from engine.cli.progress import ProgressDisplay

        display = ProgressDisplay(stderr_console(), job)
    if display is not None:
        engine.subscribe(display)
    report = DecisionReport()

    def decide(node_id: str, decision: Any) -> object:
        return engine.decide_now(job, node_id, decision)

    async def go() -> None:
        await engine.advance(job)
        while job.waiting and not job.scheduler.finished:
            progressed = apply_decisions(
                job.scheduler, decide, decisions, auto_approve=auto_approve, report=report
            )
            if not progressed and interactive:
                if display is not None:
                    display.update()
                    display.progress.stop()  # the live bar would scribble over the prompt
                progressed = ask_decisions(engine, job)
                if display is not None:
                    display.progress.start()
            if not progressed:
                break
            await engine.advance(job)

    try:
        if display is not None:
            with display:
                anyio.run(go)
        else:
            anyio.run(go)
    except StoreError as error:  # the job failed: the store could not record its progress
        err.print(f"error: {error}")
        raise typer.Exit(EXIT_JOB_FAILED) from None
    except KeyboardInterrupt:
        err.print(
            f"interrupted: job {job.job_id} is kept in the store; continue it with "
            f"`flowgraph resume {job.job_id}`",
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    for message in report.refused:
        err.print(f"refused: {message}")
    for key in unused_entries(decisions, report):
        err.print(f"warning: decision for `{key}` was not used (no such gate waited)")


def ask_decisions(engine: Engine, job: JobRun) -> bool:
    from engine.views.gates import describe_gate

    decided = False
    for gate in list(job.waiting):
        if job.scheduler.finished:
            break
        description = describe_gate(job.document(), gate.id)
        while True:
            from engine.cli.terminal import ask_decision

            decision = ask_decision(stderr_console(), gate, description)
            if decision is None:
                return decided
            try:
                engine.decide_now(job, gate.id, decision)
            except DecisionError as error:
                err.print(f"refused: {error}")
                continue
            decided = True
            break
    return decided


def finish(job: JobRun, *, as_json: bool, db: str | None) -> typer.Exit:
    """Print the job (envelope or summary), say how to continue a parked job, pick the exit."""
    if as_json:
        write_envelope(job.stored_form())
    else:
        from engine.cli.terminal import print_summary

        print_summary(out_console(), job, job.document())
    if job.status is JobStatus.SUCCESS:
        return typer.Exit(EXIT_OK)
    if job.status in (JobStatus.FAILURE, JobStatus.CANCELED):
        return typer.Exit(EXIT_JOB_FAILED)
    print_continue_hints(job, db)
    return typer.Exit(EXIT_WAITING)


def write_envelope(document_json: bytes | SpooledDocument) -> None:
    """`{"job": ...}` on stdout. The encoded document (tens of megabytes for a large job) goes
    to the binary stream as it is, a piece at a time from a spooled one: no concatenated copy
    and no decoded text of it."""
    pieces = [document_json] if isinstance(document_json, bytes) else document_json.pieces()
    binary = getattr(sys.stdout, "buffer", None)
    if binary is None:  # a text-only stream (captured output)
        sys.stdout.write('{"job": ')
        sys.stdout.write(b"".join(pieces).decode())
        sys.stdout.write("}\n")
        return
    sys.stdout.flush()
    binary.write(b'{"job": ')
    for piece in pieces:
        binary.write(piece)
    binary.write(b"}\n")
    binary.flush()


def print_continue_hints(job: JobRun, db: str | None) -> None:
    from engine.views.gates import describe_gate, example_selection

    if db == ":memory:":
        err.print(
            f"job {job.job_id} is waiting at a gate; with `--db :memory:` it is not kept, "
            "so run again with --decisions FILE.json or --auto-approve",
        )
        return
    where = f" --db {db}" if db else ""
    document = job.document()
    count = len(job.waiting)
    lines = [f"job {job.job_id} is waiting at {'a gate' if count == 1 else f'{count} gates'}:"]
    for gate in job.waiting[:5]:
        lines += describe_gate(document, gate.id)
    lines.append("continue with one of:")
    for gate in job.waiting[:5]:
        if gate.template.type == "user-selection":
            indices = " ".join(str(i) for i in example_selection(document, gate.id))
            lines.append(f"  flowgraph select {job.job_id} {gate.id} {indices}{where}")
        else:
            lines.append(f"  flowgraph approve {job.job_id} {gate.id}{where}")
        lines.append(f"  flowgraph reject {job.job_id} {gate.id}{where}")
    if count > 5:
        lines.append(
            f"  (and {len(job.waiting) - 5} more gates: flowgraph jobs {job.job_id}{where})"
        )
    lines += [
        "or see the job, resume it after a stop, or cancel it:",
        f"  flowgraph jobs {job.job_id}{where}",
        f"  flowgraph resume {job.job_id}{where}",
        f"  flowgraph cancel {job.job_id}{where}",
        "or run again with --decisions FILE.json (node id -> approve | reject | "
        '{"select": [i, ...]}) or --auto-approve',
    ]
    err.print("\n".join(lines))


def describe_db(db: str | None) -> str:
    return db if db else str(default_db_path())


__all__ = [
    "EXIT_INVALID",
    "DbOption",
    "JsonOption",
    "Problem",
    "build_engine",
    "describe_db",
    "drive",
    "err",
    "fail_invalid",
    "finish",
    "open_db",
    "out_console",
]
