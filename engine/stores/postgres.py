"""The store on PostgreSQL (psycopg 3), selected by a URL: `--db postgresql://...`.

The same contract as the SQLite store: workflows, jobs (the whole document), and each job's
log in batches (one row per flush). Several processes can share one database.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import orjson

from ..errors import FlowgraphError
from ..protocols import JobRecord, OutcomeRecord, Transition
from .paging import decode_cursor, encode_cursor

SCHEMA = """
CREATE TABLE IF NOT EXISTS flowgraph_workflows (
    id TEXT PRIMARY KEY,
    position BIGSERIAL,
    document TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flowgraph_jobs (
    job_id TEXT PRIMARY KEY,
    workflow_id TEXT,
    parent_job_id TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    workflow TEXT NOT NULL,
    inputs TEXT NOT NULL,
    options TEXT NOT NULL,
    document TEXT
);
CREATE INDEX IF NOT EXISTS flowgraph_jobs_by_time ON flowgraph_jobs (created_at DESC, job_id DESC);
CREATE TABLE IF NOT EXISTS flowgraph_log_batches (
    job_id TEXT NOT NULL REFERENCES flowgraph_jobs (job_id) ON DELETE CASCADE,
    seq BIGSERIAL,
    outcomes TEXT NOT NULL,
    events TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""


class PostgresStoreError(FlowgraphError, RuntimeError):
    """The database cannot be reached or used."""


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class PostgresStore:
    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        try:
            self._connection = psycopg.connect(url, autocommit=True)
            with self._connection.transaction():
                self._connection.execute("SELECT pg_advisory_xact_lock(424242)")
                self._connection.execute(SCHEMA)
        except psycopg.Error as error:
            raise PostgresStoreError(f"cannot use the database `{_safe(url)}`: {error}") from None
        self._lock = threading.Lock()

    def _execute(self, query: str, parameters: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._connection.execute(query, parameters)

    # ----- workflows ------------------------------------------------------------------------

    def put_workflow(self, workflow_id: str, document: dict[str, Any]) -> None:
        self._execute(
            "INSERT INTO flowgraph_workflows (id, document) VALUES (%s, %s) "
            "ON CONFLICT (id) DO UPDATE SET document = excluded.document",
            (workflow_id, _dumps(document)),
        )

    def get_workflow(self, workflow_id: str) -> dict[str, Any] | None:
        row = self._execute(
            "SELECT document FROM flowgraph_workflows WHERE id = %s", (workflow_id,)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def list_workflows(self) -> list[dict[str, Any]]:
        rows = self._execute(
            "SELECT document FROM flowgraph_workflows ORDER BY position"
        ).fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def delete_workflow(self, workflow_id: str) -> bool:
        cursor = self._execute("DELETE FROM flowgraph_workflows WHERE id = %s", (workflow_id,))
        return bool(cursor.rowcount)

    # ----- jobs -------------------------------------------------------------------------------

    def create_job(self, record: JobRecord) -> None:
        import psycopg

        try:
            self._execute(
                "INSERT INTO flowgraph_jobs VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    record.job_id,
                    record.workflow_id,
                    record.parent_job_id,
                    record.status,
                    record.created_at,
                    record.updated_at,
                    _dumps(record.workflow),
                    _dumps(record.inputs),
                    _dumps(record.options),
                    _dumps(record.document) if record.document is not None else None,
                ),
            )
        except psycopg.errors.UniqueViolation:
            raise ValueError(f"job `{record.job_id}` already exists") from None

    def record(
        self, job_id: str, outcomes: Sequence[OutcomeRecord], transitions: Sequence[Transition]
    ) -> None:
        import psycopg

        if not outcomes and not transitions:
            return
        outcome_rows = _dumps([[o.node_id, o.kind, o.payload] for o in outcomes])
        event_rows = _dumps(
            [
                [
                    t.node_id,
                    t.template_id,
                    t.iteration_index,
                    t.from_status,
                    t.to_status,
                    t.reason,
                    t.at,
                    t.details,
                ]
                for t in transitions
            ]
        )
        try:
            self._execute(
                "INSERT INTO flowgraph_log_batches (job_id, outcomes, events) VALUES (%s, %s, %s)",
                (job_id, outcome_rows, event_rows),
            )
        except psycopg.errors.ForeignKeyViolation:
            raise KeyError(f"no job `{job_id}` in the store") from None

    def checkpoint(self, job_id: str, *, status: str, updated_at: str, document_json: str) -> None:
        cursor = self._execute(
            "UPDATE flowgraph_jobs SET status = %s, updated_at = %s, document = %s "
            "WHERE job_id = %s",
            (status, updated_at, document_json, job_id),
        )
        if not cursor.rowcount:
            raise KeyError(f"no job `{job_id}` in the store")

    def get_job(self, job_id: str) -> JobRecord | None:
        row = self._execute(
            "SELECT job_id, workflow_id, parent_job_id, status, created_at, updated_at, "
            "workflow, inputs, options, document FROM flowgraph_jobs WHERE job_id = %s",
            (job_id,),
        ).fetchone()
        if row is None:
            return None
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
            document=orjson.loads(row[9]) if row[9] is not None else None,
        )

    def outcomes(self, job_id: str) -> list[OutcomeRecord]:
        return [OutcomeRecord(row[0], row[1], row[2]) for row in self._batches(job_id, "outcomes")]

    def events(self, job_id: str) -> list[Transition]:
        return [Transition(job_id, *row) for row in self._batches(job_id, "events")]

    def _batches(self, job_id: str, column: str) -> list[list[Any]]:
        rows = self._execute(
            f"SELECT {column} FROM flowgraph_log_batches WHERE job_id = %s ORDER BY seq",
            (job_id,),
        ).fetchall()
        return [item for row in rows for item in orjson.loads(row[0])]

    def list_jobs(
        self,
        *,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        clauses, parameters = [], []
        if status is not None:
            clauses.append("status = %s")
            parameters.append(status)
        if workflow_id is not None:
            clauses.append("workflow_id = %s")
            parameters.append(workflow_id)
        if cursor is not None:
            created_at, job_id = decode_cursor(cursor)
            clauses.append("(created_at, job_id) < (%s, %s)")
            parameters += [created_at, job_id]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._execute(
            "SELECT job_id, workflow_id, parent_job_id, status, created_at, updated_at, "
            f"inputs, options FROM flowgraph_jobs {where} "
            "ORDER BY created_at DESC, job_id DESC LIMIT %s",
            (*parameters, limit + 1),
        ).fetchall()
        jobs = [
            JobRecord(
                job_id=r[0],
                workflow_id=r[1],
                parent_job_id=r[2],
                status=r[3],
                created_at=r[4],
                updated_at=r[5],
                workflow={},
                inputs=orjson.loads(r[6]),
                options=orjson.loads(r[7]),
            )
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        return jobs, encode_cursor(jobs[-1].created_at, jobs[-1].job_id) if more and jobs else None

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _safe(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url
