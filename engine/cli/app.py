"""The `flowgraph` command line: validate, run and draw Scenario workflows offline, and
decide, resume, cancel and list the jobs kept in the store."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.main import get_command_name

from engine.cli import debug as cli_debug
from engine.cli import jobs as cli_jobs
from engine.cli import testing as cli_testing
from engine.cli.common import (
    EXIT_CANNOT_SERVE,
    EXIT_INTERNAL,
    EXIT_INVALID,
    ConfigOption,
    CostsOption,
    DbOption,
    ExecutorOption,
    ExpressionSecondsOption,
    JsonOption,
    MaxIterationsOption,
    MaxNodesOption,
    MaxValueOption,
    as_log_events,
    build_engine,
    cost_table,
    default_assets_dir,
    describe_db,
    drive,
    err,
    fail_invalid,
    finish,
    open_db,
    out_console,
    read_workflow,
    write_file,
)
from engine.config import CONFIG_VARIABLE, load_config
from engine.errors import FlowgraphError, Problem, ValidationError
from engine.gc_tuning import quiet_gc
from engine.malloc_arenas import share_one_arena
from engine.protocols import Store, Transition
from engine.run.events import event_logger, logging_sink

# The engine's compiler and models (networkx, pydantic) are imported by the commands that use
# them: `--help`, `--version` and a mistyped command need none of it.

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="flowgraph: run Scenario workflows locally.",
)


def show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("flowgraph")
        except PackageNotFoundError:  # run from a checkout that was never installed
            number = "unknown (not installed)"
        sys.stdout.write(f"flowgraph {number}\n")
        raise typer.Exit()


# the commands whose jobs write a store from a thread of its own (and deflate large documents)
JOB_COMMANDS = frozenset({"run", "resume", "approve", "reject", "select", "cancel", "test"})
# The longest the store's writer thread waits for the interpreter's lock while the run holds
# it, in these commands (5 ms by default). A batch of the job's log needs the lock a few times
# (to encode it, to hand it to SQLite, to return); at 5 ms a wait, a batch took about 35 ms
# under a busy run where it took 6 ms alone, and the run, which lets one batch be written while
# it goes on, waited for it. The process is the command's own: the server and the library
# leave the interval as they find it (a document's deflating sets its own, see run/spooled).
JOB_SWITCH_INTERVAL = 0.0005


@app.callback()
def options(
    context: typer.Context,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=show_version,
            is_eager=True,
            help="Print flowgraph's version and exit.",
        ),
    ] = False,
) -> None:
    """flowgraph: run Scenario workflows locally."""
    # the collector paused for the command's imports and its work (see gc_tuning); a server
    # collects on its own schedule when idle, and keeps glibc's malloc arenas
    if context.invoked_subcommand != "serve":
        context.with_resource(quiet_gc())
    if context.invoked_subcommand in JOB_COMMANDS:
        share_one_arena()  # see malloc_arenas: before any thread of the command starts
        sys.setswitchinterval(JOB_SWITCH_INTERVAL)


class LogFormat(StrEnum):
    json = "json"
    text = "text"


def parse_inputs(pairs: list[str], inputs_file: Path | None) -> dict[str, Any]:
    """`--inputs FILE.json` first, then every `--input NAME=VALUE` (JSON when it parses)."""
    from engine.compile.document import HUGE_NUMBER, read_json_file

    values: dict[str, Any] = {}
    problems: list[Problem] = []
    if inputs_file is not None:
        loaded = read_json_file(inputs_file, what="run inputs")
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
        except ValueError:  # an integer of more than 4,300 digits
            problems.append(Problem(f"`--input {name.strip()}`: {HUGE_NUMBER}"))
    if problems:
        raise ValidationError(problems, what="run inputs")
    return values


@app.command()
def validate(
    file: Annotated[
        Path,
        typer.Argument(help='A workflow, {"workflow"} or {"job"} JSON file, or a webapp export'),
    ],
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"valid": ..., "problems": [...], "warnings": [...]}'),
    ] = False,
) -> None:
    """Check a workflow document and its flow; every problem is listed, one a line.

    The verdict goes to stdout; problems and warnings to stderr. Exit 0 when valid, 2 when not.
    """
    from engine.api import Engine
    from engine.compile.document import published_from_editor

    try:
        workflow = read_workflow(file, quiet=as_json)
        plan = Engine().compile(workflow)
    except ValidationError as error:
        if as_json:
            problems = [problem_json(p) for p in error.problems]
            write_json({"valid": False, "problems": problems, "warnings": []})
            raise typer.Exit(EXIT_INVALID) from None
        raise fail_invalid(error) from None
    warnings = plan.warnings()
    loops = sum(1 for t in plan.nodes.values() if t.type == "for-each")
    if as_json:
        published = {"publishedFromEditor": True} if published_from_editor(workflow) else {}
        write_json(
            {
                "valid": True,
                **published,
                "nodes": len(plan.nodes),
                "loops": loops,
                "problems": [],
                "warnings": [problem_json(w) for w in warnings],
            }
        )
        return
    print_warnings(warnings)
    out_console().print(
        f"valid: {file} ({len(plan.nodes)} node{'s' if len(plan.nodes) != 1 else ''}, "
        f"{loops} loop{'s' if loops != 1 else ''})"
    )


@app.command("publish")
def publish_command(
    file: Annotated[Path, typer.Argument(help="A webapp export, or a workflow with `editorInfo`")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout")
    ] = None,
) -> None:
    """Compile the editor graph (`editorInfo`) into the executable flow, as Scenario's publish
    does, and write the published workflow (`status: "ready"`).

    Every problem is named by node id, title and field; the flow must compile too. Exit 0 when
    published, 2 when not.
    """
    from engine.api import Engine
    from engine.compile.document import publish_document, read_json_file

    try:
        published = publish_document(read_json_file(file))
        plan = Engine().compile(published)
    except ValidationError as error:
        raise fail_invalid(error) from None
    print_warnings(plan.warnings())
    text = json.dumps(published, indent=2, ensure_ascii=False) + "\n"
    count, inputs = len(published["flow"]), len(published["inputs"])
    summary = (
        f"published {file}: {count} flow node{'s' if count != 1 else ''}, "
        f"{inputs} input{'s' if inputs != 1 else ''}"
    )
    if output is None:
        sys.stdout.write(text)
        err.print(summary)
    elif write_file(output, text):
        err.print(f"{summary} -> {output}")
    else:
        raise typer.Exit(EXIT_INVALID)


def problem_json(problem: Problem) -> dict[str, Any]:
    return {"path": problem.path, "nodeId": problem.node_id, "message": problem.message}


def write_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def print_warnings(warnings: list[Problem]) -> None:
    for warning in warnings:
        err.print(f"warning: {warning}")


@app.command()
def run(
    file: Annotated[
        Path,
        typer.Argument(help='A workflow, {"workflow"} or {"job"} JSON file, or a webapp export'),
    ],
    input_pairs: Annotated[
        list[str],
        typer.Option(
            "--input", "-i", help="NAME=VALUE; VALUE is JSON when it parses, else a string"
        ),
    ] = [],  # noqa: B006
    inputs_file: Annotated[
        Path | None, typer.Option("--inputs", help="A JSON object of inputs")
    ] = None,
    as_json: JsonOption = False,
    fail: Annotated[
        list[str],
        typer.Option("--fail", help="Make this node (or every clone of this template) fail"),
    ] = [],  # noqa: B006
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Let independent branches finish after a failure")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for dry-run asset ids [0]")] = None,
    max_concurrency: Annotated[
        int | None, typer.Option("--max-concurrency", min=1, help="Executor calls at once [8]")
    ] = None,
    latency: Annotated[
        float, typer.Option(min=0.0, help="Simulated seconds per dry-run model call")
    ] = 0.0,
    failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Simulated transient failure rate")
    ] = 0.0,
    retries: Annotated[
        int | None, typer.Option(min=0, help="Retries for transient executor errors [2]")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds before a model call times out")
    ] = None,
    assets_dir: Annotated[
        Path | None, typer.Option(help="Where dry-run assets are written")
    ] = None,
    decisions_file: Annotated[
        Path | None,
        typer.Option("--decisions", help='JSON: node id -> approve | reject | {"select": [0, 2]}'),
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Approve every user-approval gate")
    ] = False,
    db: DbOption = None,
    report: Annotated[
        Path | None, typer.Option(help="Write an HTML page of the job here at the end")
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option("--log-format", help="Stream every transition to stderr as json or text"),
    ] = None,
    workflows_dir: Annotated[
        Path | None,
        typer.Option(
            "--workflows",
            help="A folder of workflows for `workflow` nodes, "
            "each file named by its workflow id (wflow_x.json)",
        ),
    ] = None,
    max_nodes: MaxNodesOption = None,
    max_iterations: MaxIterationsOption = None,
    expression_seconds: ExpressionSecondsOption = None,
    max_value: MaxValueOption = None,
    config: ConfigOption = None,
    executor: ExecutorOption = None,
) -> None:
    """Run a workflow offline: model nodes go to the dry-run executor or configured executors.

    The job is kept in the store, so a run that stops at a gate can be continued later (with
    the same configuration file: its path is kept with the job). Options given here win over
    the file.
    """
    from engine.compile.document import load_workflow_folder, read_json_file
    from engine.run.decisions import check_decision_targets, check_decisions

    logger = None
    if log_format is not None:
        logger = event_logger(log_format=log_format.value)
        if log_format is LogFormat.json:  # stderr is read by a machine: every line is JSON
            as_log_events(logger)
    options: dict[str, Any] = {
        "seed": seed,
        "keepGoing": keep_going,
        "fail": list(fail),
        "latency": latency,
        "failureRate": failure_rate,
        "retries": retries,
        "timeout": timeout,
        "maxConcurrency": max_concurrency,
        "assetsDir": str((assets_dir or default_assets_dir()).resolve()),
        "maxNodes": max_nodes,
        "maxIterations": max_iterations,
        "expressionSeconds": expression_seconds,
        "maxValue": max_value,
        "executor": executor,
    }
    try:
        config_path = config or os.environ.get(CONFIG_VARIABLE)
        settings = load_config(config_path)
        if config_path is not None:
            options["config"] = str(Path(config_path).resolve())
            dry_run_only = [
                flag
                for flag, given in (
                    ("--latency", latency),
                    ("--failure-rate", failure_rate),
                    ("--fail", fail),
                )
                if given
            ]
            if settings.executors and dry_run_only:
                err.print(
                    f"warning: {', '.join(dry_run_only)} shape the built-in dry-run executor; "
                    "the configuration file's executors serve this run",
                )
        inputs = parse_inputs(input_pairs, inputs_file)
        decisions: dict[str, Any] = {}
        if decisions_file is not None:
            decisions = check_decisions(read_json_file(decisions_file, what="decisions"))
        db = db or settings.store_location
        # `:memory:` keeps nothing once the process ends: the run records nothing at all
        engine = build_engine(None if db == ":memory:" else open_db(db), options, settings)
        if workflows_dir is not None:
            engine.workflows.update(load_workflow_folder(workflows_dir))
        workflow = read_workflow(file)
        if decisions:
            check_decision_targets(decisions, engine.compile(workflow))
        job = engine.prepare(workflow, inputs)
    except ValidationError as error:
        raise fail_invalid(error) from None
    print_warnings(job.plan.warnings())
    unknown = [node for node in fail if node not in job.plan.nodes and "#" not in node]
    for node in unknown:
        err.print(f"warning: `--fail {node}` names no node of this flow")
    transitions: list[Transition] = []
    if report is not None:  # the page's times and timeline

        def keep(transition: Transition) -> None:
            transitions.append(transition)

        engine.subscribe(keep)
    if logger is not None:
        engine.subscribe(logging_sink(logger=logger))
    drive(engine, job, as_json=as_json, decisions=decisions, auto_approve=auto_approve)
    page = ""
    if report is not None:
        from engine.views.report import job_page

        page = job_page(job.scheduler, title=f"job {job.job_id}", transitions=transitions)
    # a report that cannot be written is said on stderr: the job ran, its result still shows
    if report is not None and write_file(report, page):
        if logger is not None:  # one event a line on stderr: the report is one more event
            logger.info("report", job_id=job.job_id, path=str(report))
        else:
            err.print(f"report: {report}")
    raise finish(job, as_json=as_json, db=db)


def load_into_store(folder: Path, store: Store) -> None:
    """Every workflow of `folder` into the store, by its `id` (else its file name), with the
    fields the API answers with; a file that is no workflow is skipped with a warning."""
    from engine.compile.document import file_workflow_id, folder_workflows
    from engine.server.workflows import complete_workflow

    loaded: dict[str, str] = {}
    for path, workflow in folder_workflows(folder):
        if isinstance(workflow, ValidationError):
            err.print(f"warning: skipped: {workflow.headline}: {workflow.problems[0]}")
            continue
        workflow_id = workflow.id or file_workflow_id(path)
        if workflow_id in loaded:
            err.print(f"warning: {path.name} skipped: {loaded[workflow_id]} has id `{workflow_id}`")
            continue
        loaded[workflow_id] = path.name
        store.put_workflow(workflow_id, complete_workflow(workflow.to_wire(), workflow_id))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1]")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to listen on [8787]")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    costs: CostsOption = None,
    workflows_dir: Annotated[
        Path | None,
        typer.Option("--workflows", help="Load these workflow files into the store on start"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for dry-run asset ids [0]")] = None,
    latency: Annotated[
        float, typer.Option(min=0.0, help="Simulated seconds per dry-run model call")
    ] = 0.0,
    failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Simulated transient failure rate")
    ] = 0.0,
    fail: Annotated[
        list[str],
        typer.Option(
            "--fail",
            help="Make this node fail (every clone of a template), or every generation of "
            "this modelId on /v1/generate",
        ),
    ] = [],  # noqa: B006
    max_concurrency: Annotated[
        int | None, typer.Option("--max-concurrency", min=1, help="Executor calls at once [8]")
    ] = None,
    max_body: Annotated[
        int | None, typer.Option(min=1024, help="Largest request body, in bytes [10 MiB]")
    ] = None,
    max_nodes: MaxNodesOption = None,
    max_iterations: MaxIterationsOption = None,
    expression_seconds: ExpressionSecondsOption = None,
    max_value: MaxValueOption = None,
) -> None:
    """Serve Scenario's Workflows API under /v1 for the official SDK.

    Point the SDK at http://HOST:PORT/v1; jobs run on this machine and live in the store.
    Options given here win over the configuration file.
    """
    from engine.server import ListenError, build_state, listen
    from engine.server import serve as run_server

    try:
        settings = load_config(config)
        server = settings.server
        host = host or server.get("host", "127.0.0.1")
        port = port or int(server.get("port", 8787))
        location = db or settings.store_location
        store = open_db(location)
        table = cost_table(costs, settings)
        if workflows_dir is not None:
            load_into_store(workflows_dir, store)
        options = {
            "seed": seed,
            "latency": latency,
            "failureRate": failure_rate,
            "fail": list(fail),
            "maxConcurrency": max_concurrency,
            "maxNodes": max_nodes,
            "maxIterations": max_iterations,
            "expressionSeconds": expression_seconds,
            "maxValue": max_value,
        }
        engine = build_engine(store, options, settings)
        state = build_state(
            engine,
            store,
            host=host,
            costs=table,
            max_body=max_body or int(server.get("max_body", 10 * 1024 * 1024)),
        )
    except (ValidationError, OSError) as error:
        raise fail_invalid(
            error
            if isinstance(error, ValidationError)
            else ValidationError([Problem(str(error))], what="options")
        ) from None
    except FlowgraphError as error:
        raise fail_invalid(error) from None
    try:
        sock = listen(host, port)
    except ListenError as error:
        err.print(f"error: {error}")
        raise typer.Exit(EXIT_CANNOT_SERVE) from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    err.print(
        f"flowgraph serving Scenario's Workflows API at http://{shown}:{bound}/v1 "
        f"(store: {describe_db(location)})",
    )
    run_server(state, sock=sock)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(context: typer.Context) -> None:
    """Run the benchmarks of a flowgraph checkout (`python -m benchmarks` there).

    Takes the options of `python -m benchmarks`, e.g. --iterations, --json, --plot FILE.png.
    The benchmarks are not part of the installed package: they run from the repository.
    """
    import subprocess

    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "benchmarks" / "__main__.py").is_file():
        err.print(
            "error: the benchmarks run from a flowgraph checkout (`make bench` there); "
            f"this flowgraph is installed from a package ({checkout})",
        )
        raise typer.Exit(EXIT_INVALID)
    command = [sys.executable, "-m", "benchmarks", *context.args]
    raise typer.Exit(subprocess.call(command, cwd=checkout))


for command in (
    cli_debug.explain,
    cli_debug.graph,
    cli_jobs.approve,
    cli_jobs.reject,
    cli_jobs.select,
    cli_jobs.resume,
    cli_jobs.cancel,
    cli_jobs.jobs,
    cli_testing.test,
    cli_testing.replay,
):
    app.command()(command)


def invoked_alone(argv: list[str]) -> list[Any]:
    """The app's commands to build for `argv`: the one it invokes, when its first argument
    names a command, else all of them (`--help`, a mistyped name: the list and suggestions
    need every one). Typer makes the click parameters of every registered command on each
    call, reading their signatures and declarations: about 30 ms of a 3-node `flowgraph run`
    for the fifteen others."""
    name = next((arg for arg in argv[1:] if not arg.startswith("-")), None)
    chosen = [
        info
        for info in app.registered_commands
        if name is not None
        and (info.name or (info.callback and get_command_name(info.callback.__name__))) == name
    ]
    return chosen or app.registered_commands


def main() -> None:
    """Console entry point; bad input never shows a traceback."""
    every = app.registered_commands
    app.registered_commands = invoked_alone(sys.argv)
    try:
        run_app()
    finally:
        app.registered_commands = every


def run_app() -> None:
    try:
        app()
    except SystemExit as done:
        leave(done.code)
        raise
    except FlowgraphError as error:
        err.print(f"error: {error}")
        leave(EXIT_INVALID)
        sys.exit(EXIT_INVALID)
    except Exception as error:  # a bug of ours: say so plainly; the traceback on request
        if os.environ.get("FLOWGRAPH_DEBUG"):
            raise
        err.print(
            f"internal error: {type(error).__name__}: {error}. This is a flowgraph bug; "
            "run again with FLOWGRAPH_DEBUG=1 to see the traceback.",
        )
        sys.exit(EXIT_INTERNAL)


def leave(code: object) -> None:
    """End the process at once when all that is left to do is free memory: the output is
    flushed, and no thread or child process is still working. Freeing a large job's objects
    one by one at interpreter exit took about a second for 100,000 nodes; the operating
    system takes the memory back at once. Otherwise returns (a normal exit follows)."""
    import threading

    if not (code is None or isinstance(code, int)):
        return  # a message to print: the normal exit prints it
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    if "multiprocessing" in sys.modules and sys.modules["multiprocessing"].active_children():
        return
    import logging

    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the normal exit reports it
        return
    os._exit(code or 0)
