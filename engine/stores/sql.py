"""What the SQL stores (SQLite, PostgreSQL) share: rows to records, log batches, job pages.

They differ in the driver and the parameter mark (`?` or `%s`), not in the queries.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from engine.deflated import ZLIB_HEADER
from engine.protocols import JobRecord, OutcomeRecord, Transition, WorkflowEntry, workflow_head
from engine.stores.paging import decode_cursor, encode_cursor

RECORD_COLUMNS = (
    "job_id, workflow_id, parent_job_id, status, created_at, updated_at, workflow, inputs, options"
)
JOB_COLUMNS = f"{RECORD_COLUMNS}, document"
SUMMARY_COLUMNS = (
    "job_id, workflow_id, parent_job_id, status, created_at, updated_at, inputs, options"
)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def job_query(table: str, mark: str, *, document: bool) -> str:
    """The query for one job by id, its columns in JOB_COLUMNS order (without `document`,
    the document is not read: NULL in its place)."""
    columns = JOB_COLUMNS if document else f"{RECORD_COLUMNS}, NULL"
    return f"SELECT {columns} FROM {table} WHERE job_id = {mark}"


def job_values(record: JobRecord) -> tuple[Any, ...]:
    """The values of a job row, in JOB_COLUMNS order."""
    return (
        record.job_id,
        record.workflow_id,
        record.parent_job_id,
        record.status,
        record.created_at,
        record.updated_at,
        dumps(record.workflow),
        dumps(record.inputs),
        dumps(record.options),
        dumps(record.document) if record.document is not None else None,
    )


def job_from_row(row: Sequence[Any]) -> JobRecord:
    """A job from a row in JOB_COLUMNS order."""
    return JobRecord(
        job_id=row[0],
        workflow_id=row[1],
        parent_job_id=row[2],
        status=row[3],
        created_at=row[4],
        updated_at=row[5],
        workflow=orjson.loads(row[6]),
        inputs=orjson.loads(row[7]),
        options=orjson.loads(row[8]),
        document=orjson.loads(inflated(row[9])) if row[9] is not None else None,
    )


def summary_from_row(row: Sequence[Any]) -> JobRecord:
    """A job without its workflow and document, from a row in SUMMARY_COLUMNS order."""
    return JobRecord(
        job_id=row[0],
        workflow_id=row[1],
        parent_job_id=row[2],
        status=row[3],
        created_at=row[4],
        updated_at=row[5],
        workflow={},
        inputs=orjson.loads(row[6]),
        options=orjson.loads(row[7]),
    )


def encode_batch(
    outcomes: Sequence[OutcomeRecord], transitions: Sequence[Transition]
) -> tuple[bytes, bytes]:
    """One log batch as two compact JSON arrays, UTF-8: outcomes (node id, kind, payload),
    then transitions (every field but the job id). Both are named tuples: a slice of one is a
    plain tuple, which orjson writes as an array without a Python list built per record."""
    return (
        orjson.dumps([o[0:3] for o in outcomes]),
        orjson.dumps([t[1:] for t in transitions]),
    )


def inflated(value: str | bytes) -> str | bytes:
    """A column as stored (JSON text or UTF-8 bytes, or deflated JSON: see
    engine/deflated.py), as JSON for orjson: deflated JSON starts with zlib's header, JSON
    with `{` or `[`."""
    if isinstance(value, bytes) and value[:1] == ZLIB_HEADER:
        return zlib.decompress(value)
    return value


def decode_column(value: str | bytes) -> Any:
    """A log batch's column as stored: JSON text, or deflated JSON (a BLOB)."""
    return orjson.loads(inflated(value))


def document_bytes(value: str | bytes) -> bytes:
    """A job document as stored, as UTF-8 JSON."""
    value = inflated(value)
    return value.encode() if isinstance(value, str) else value


def decode_batches(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [item for row in rows for item in decode_column(row[0])]


def outcomes_of(rows: Sequence[Sequence[Any]]) -> list[OutcomeRecord]:
    return [OutcomeRecord(item[0], item[1], item[2]) for item in decode_batches(rows)]


def events_of(job_id: str, rows: Sequence[Sequence[Any]]) -> list[Transition]:
    return [Transition(job_id, *item) for item in decode_batches(rows)]


def list_jobs_query(
    table: str,
    mark: str,
    *,
    status: str | None,
    workflow_id: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[str, list[Any]]:
    """The query for one page of jobs, newest first (one row more than `limit`, to tell
    whether another page follows)."""
    clauses, parameters = [], []
    if status is not None:
        clauses.append(f"status = {mark}")
        parameters.append(status)
    if workflow_id is not None:
        clauses.append(f"workflow_id = {mark}")
        parameters.append(workflow_id)
    if cursor is not None:
        created_at, job_id = decode_cursor(cursor)
        clauses.append(f"(created_at, job_id) < ({mark}, {mark})")
        parameters += [created_at, job_id]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    query = (
        f"SELECT {SUMMARY_COLUMNS} FROM {table} {where} "
        f"ORDER BY created_at DESC, job_id DESC LIMIT {mark}"
    )
    return query, [*parameters, limit + 1]


def page_of(rows: Sequence[Sequence[Any]], limit: int) -> tuple[list[JobRecord], str | None]:
    jobs = [summary_from_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    return jobs, encode_cursor(jobs[-1].created_at, jobs[-1].job_id) if more and jobs else None


def entry_columns(workflow_id: str, document: dict[str, Any]) -> tuple[str, str]:
    """A workflow's entry and head, as the text columns stored beside its document."""
    entry = WorkflowEntry.of(workflow_id, document)
    columns = [entry.status, entry.privacy, list(entry.tags), entry.updated_at]
    return orjson.dumps(columns).decode(), orjson.dumps(workflow_head(document)).decode()


def entry_of(workflow_id: str, column: str) -> WorkflowEntry:
    status, privacy, tags, updated_at = orjson.loads(column)
    return WorkflowEntry(workflow_id, status, privacy, tuple(tags), updated_at)
