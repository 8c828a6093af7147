"""CLI commands on the jobs in the store: decide a gate, resume, cancel, list and show."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    DbOption,
    JsonOption,
    build_engine,
    describe_db,
    drive,
    err,
    fail_invalid,
    finish,
    open_db,
    out_console,
    write_envelope,
)
from engine.errors import DecisionError, FlowgraphError
from engine.protocols import JobRecord, JobStatus, Store

if TYPE_CHECKING:
    from engine.api import Engine, JobRun

# The engine (networkx, pydantic) is imported where a job is rebuilt or its gates described:
# listing the jobs of the store and `--help` need none of it.

JobArgument = Annotated[str, typer.Argument(help="The job id (`flowgraph jobs` lists them)")]
NodeArgument = Annotated[str, typer.Argument(help="The gate: a node id, a template id or a prefix")]


def load(db: str | None, job_id: str) -> tuple[Store, Engine, JobRun]:
    """The store, an engine configured as the job's run was, and the job rebuilt."""
    store = open_db(db)
    record = store.get_job(job_id)
    if record is None:
        err.print(f"error: no job `{job_id}` in the store `{describe_db(db)}`")
        raise typer.Exit(EXIT_INVALID)
    try:
        engine = build_engine(store, record.options)  # with the run's configuration file, if any
        return store, engine, engine.get(job_id)
    except FlowgraphError as error:
        raise fail_invalid(error) from None


def decide_and_continue(
    db: str | None, job_id: str, node_id: str, decision: Any, as_json: bool
) -> None:
    _, engine, job = load(db, job_id)
    try:
        engine.decide_now(job, node_id, decision)
    except DecisionError as error:
        err.print(f"refused: {error}")
        gates = [g for g in job.waiting if g.id == node_id] or job.scheduler.waiting_gates(node_id)
        if decision == "approve" and gates and gates[0].template.type == "user-selection":
            where = f" --db {db}" if db else ""
            err.print(
                f"a selection gate is decided with `flowgraph select {job_id} {node_id} "
                f"INDEX ...{where}`; `flowgraph jobs {job_id}{where}` lists its items"
            )
        raise typer.Exit(EXIT_INVALID) from None
    drive(engine, job, as_json=as_json)
    done = finish(job, as_json=as_json, db=db)
    report_parent(engine, job, db)
    raise done


def report_parent(engine: Engine, job: JobRun, db: str | None) -> None:
    """A sub-workflow's job carries its parent on when it moves: say where the parent is."""
    parent = engine.jobs.get(job.parent_job_id) if job.parent_job_id else None
    if parent is None:
        return
    line = f"its parent job {parent.job_id}: {parent.status.value}"
    if parent.waiting:
        where = f" --db {db}" if db else ""
        gates = ", ".join(g.id for g in parent.waiting[:5])
        line += f", waiting at {gates} (flowgraph jobs {parent.job_id}{where})"
    err.print(line)


def approve(
    job_id: JobArgument, node_id: NodeArgument, as_json: JsonOption = False, db: DbOption = None
) -> None:
    """Approve a waiting user-approval gate, then continue the job."""
    decide_and_continue(db, job_id, node_id, "approve", as_json)


def reject(
    job_id: JobArgument, node_id: NodeArgument, as_json: JsonOption = False, db: DbOption = None
) -> None:
    """Reject a waiting gate: it ends `rejected` and the job is canceled."""
    decide_and_continue(db, job_id, node_id, "reject", as_json)


def select(
    job_id: JobArgument,
    node_id: NodeArgument,
    indices: Annotated[list[int], typer.Argument(help="Indices of the chosen items, in order")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Choose items at a waiting user-selection gate, then continue the job."""
    decide_and_continue(db, job_id, node_id, {"select": list(indices)}, as_json)


def resume(job_id: JobArgument, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Continue a job after a stop or a crash.

    Finished nodes keep their results, interrupted model calls run again (with the same
    idempotency key), gates keep waiting.
    """
    _, engine, job = load(db, job_id)
    drive(engine, job, as_json=as_json)
    done = finish(job, as_json=as_json, db=db)
    report_parent(engine, job, db)
    raise done


def cancel(job_id: JobArgument, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Cancel a job that is parked or was interrupted: unfinished nodes are skipped."""
    import anyio

    _, engine, job = load(db, job_id)
    try:
        anyio.run(engine.cancel, job_id)
    except DecisionError as error:
        err.print(f"refused: {error}")
        raise typer.Exit(EXIT_INVALID) from None
    finish(job, as_json=as_json, db=db)
    raise typer.Exit(EXIT_OK)


class StatusFilter(StrEnum):
    """A job status, or `waiting`: in progress and parked at a gate."""

    pending = "pending"
    queued = "queued"
    warming_up = "warming-up"
    in_progress = "in-progress"
    finalizing = "finalizing"
    success = "success"
    failure = "failure"
    canceled = "canceled"
    waiting = "waiting"


def jobs(
    job_id: Annotated[str | None, typer.Argument(help="Show this job")] = None,
    status: Annotated[
        StatusFilter | None,
        typer.Option(help="Only jobs with this status; `waiting`: parked at a gate"),
    ] = None,
    workflow: Annotated[str | None, typer.Option(help="Only jobs of this workflow id")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    db: DbOption = None,
) -> None:
    """List the jobs in the store (newest first), or show one.

    A job in progress that is parked at a gate shows the gates it waits at.
    """
    store = open_db(db)
    if job_id is not None:
        if as_json:  # the stored bytes as they are: the same form as run --json
            stored = store.document_json(job_id)
            if stored is None:
                err.print(f"error: no job `{job_id}` in the store `{describe_db(db)}`")
                raise typer.Exit(EXIT_INVALID)
            write_envelope(stored)
            return
        record = store.get_job(job_id)
        if record is None or record.document is None:
            err.print(f"error: no job `{job_id}` in the store `{describe_db(db)}`")
            raise typer.Exit(EXIT_INVALID)
        show(record.document)
        return
    listed = list_with_gates(store, status, workflow, limit)
    if as_json:
        rows = [
            {
                "jobId": r.job_id,
                "workflowId": r.workflow_id,
                "status": r.status,
                "waitingAt": gates,
                "createdAt": r.created_at,
                "updatedAt": r.updated_at,
            }
            for r, gates in listed
        ]
        sys.stdout.write(json.dumps({"jobs": rows}, ensure_ascii=False) + "\n")
        return
    if not listed:
        which = f" with status `{status.value}`" if status else ""
        err.print(f"no jobs{which} in `{describe_db(db)}`")
        return
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for column in ("job", "workflow", "status", "waiting at", "created", "updated"):
        table.add_column(column)
    for r, gates in listed:
        table.add_row(
            r.job_id,
            r.workflow_id or "-",
            r.status,
            ", ".join(gates) or "-",
            r.created_at,
            r.updated_at,
        )
    out_console().print(table)


def list_with_gates(
    store: Store, status: StatusFilter | None, workflow: str | None, limit: int
) -> list[tuple[JobRecord, list[str]]]:
    """Up to `limit` jobs, newest first, each with the gates it waits at (read from the job's
    document: only for jobs in progress)."""
    from engine.views.gates import waiting_gates

    wanted = (
        JobStatus.IN_PROGRESS.value if status is StatusFilter.waiting else status and status.value
    )
    listed: list[tuple[JobRecord, list[str]]] = []
    cursor = None
    while len(listed) < limit:
        records, cursor = store.list_jobs(
            status=wanted, workflow_id=workflow, limit=limit, cursor=cursor
        )
        for record in records:
            gates: list[str] = []
            if record.status == JobStatus.IN_PROGRESS:
                full = store.get_job(record.job_id)
                if full is not None and full.document is not None:
                    gates = waiting_gates(full.document)
            if status is StatusFilter.waiting and not gates:
                continue
            listed.append((record, gates))
            if len(listed) == limit:
                break
        if cursor is None:
            break
    return listed


def show(document: dict[str, Any]) -> None:
    from engine.cli.terminal import count_nodes
    from engine.views.gates import describe_gate, waiting_gates

    console = out_console()
    console.print(
        f"job {document['jobId']}: {document['status']}  progress "
        f"{document['progress']:.0%}  {count_nodes(document['metadata']['flow'])}"
    )
    for gate in waiting_gates(document):
        console.print("\n".join(describe_gate(document, gate)))
    if document["metadata"].get("error"):
        console.print(f"error: {document['metadata']['error']}")
