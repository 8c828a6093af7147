"""The store on PostgreSQL (psycopg 3), selected by a URL: `--db postgresql://...`.

The same contract as the SQLite store: workflows, jobs (the whole document), and each job's
log in batches (one row per flush). Several processes can share one database.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import orjson

from engine.errors import FlowgraphError, import_extra
from engine.protocols import EncodedDocument, JobRecord, OutcomeRecord, Transition, WorkflowEntry
from engine.stores.sql import (
    JOB_COLUMNS,
    SUMMARY_COLUMNS,
    dumps,
    encode_batch,
    entry_columns,
    entry_of,
    events_of,
    job_from_row,
    job_query,
    job_values,
    list_jobs_query,
    outcomes_of,
    page_of,
    summary_from_row,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS flowgraph_workflows (
    id TEXT PRIMARY KEY,
    position BIGSERIAL,
    document TEXT NOT NULL
);
ALTER TABLE flowgraph_workflows ADD COLUMN IF NOT EXISTS entry TEXT;
ALTER TABLE flowgraph_workflows ADD COLUMN IF NOT EXISTS head TEXT;
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
CREATE TABLE IF NOT EXISTS flowgraph_leases (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS flowgraph_idempotency_keys (
    key TEXT PRIMARY KEY,
    job_id TEXT NOT NULL
);
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


class PostgresStore:
    shared = True
    deflates_documents = False  # JSON text

    def __init__(self, url: str) -> None:
        psycopg = import_extra("psycopg", extra="postgres", purpose="a PostgreSQL store")

        self.url = url
        try:
            self._connection = psycopg.connect(url, autocommit=True)
            with self._connection.transaction():
                self._connection.execute("SELECT pg_advisory_xact_lock(424242)")
                self._connection.execute(SCHEMA)
                self._fill_entries()
        except psycopg.Error as error:
            raise PostgresStoreError(f"cannot use the database `{_safe(url)}`: {error}") from None
        self._lock = threading.Lock()

    def _execute(self, query: str, parameters: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._connection.execute(query, parameters)

    # ----- workflows ------------------------------------------------------------------------

    def put_workflow(self, workflow_id: str, document: dict[str, Any]) -> None:
        self._execute(
            "INSERT INTO flowgraph_workflows (id, document, entry, head) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET document = excluded.document, "
            "entry = excluded.entry, head = excluded.head",
            (workflow_id, dumps(document), *entry_columns(workflow_id, document)),
        )

    def workflow_entries(self) -> list[WorkflowEntry]:
        rows = self._execute(
            "SELECT id, entry FROM flowgraph_workflows ORDER BY position"
        ).fetchall()
        return [entry_of(row[0], row[1]) for row in rows]

    def get_workflow_head(self, workflow_id: str) -> dict[str, Any] | None:
        row = self._execute(
            "SELECT head FROM flowgraph_workflows WHERE id = %s", (workflow_id,)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def _fill_entries(self) -> None:
        """Workflows stored before they had entries: fill them, once, when the store opens."""
        missing = self._connection.execute(
            "SELECT id, document FROM flowgraph_workflows WHERE entry IS NULL OR head IS NULL"
        ).fetchall()
        for workflow_id, document in missing:
            self._connection.execute(
                "UPDATE flowgraph_workflows SET entry = %s, head = %s WHERE id = %s",
                (*entry_columns(workflow_id, orjson.loads(document)), workflow_id),
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
                f"INSERT INTO flowgraph_jobs ({JOB_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                job_values(record),
            )
        except psycopg.errors.UniqueViolation:
            raise ValueError(f"job `{record.job_id}` already exists") from None

    def record(
        self, job_id: str, outcomes: Sequence[OutcomeRecord], transitions: Sequence[Transition]
    ) -> None:
        import psycopg

        if not outcomes and not transitions:
            return
        outcome_rows, event_rows = (
            column.decode() for column in encode_batch(outcomes, transitions)
        )
        try:
            self._execute(
                "INSERT INTO flowgraph_log_batches (job_id, outcomes, events) VALUES (%s, %s, %s)",
                (job_id, outcome_rows, event_rows),
            )
        except psycopg.errors.ForeignKeyViolation:
            raise KeyError(f"no job `{job_id}` in the store") from None

    def checkpoint(
        self, job_id: str, *, status: str, updated_at: str, document_json: bytes | EncodedDocument
    ) -> None:
        if not isinstance(document_json, bytes):
            document_json = document_json.read()  # one parameter of the statement
        cursor = self._execute(
            "UPDATE flowgraph_jobs SET status = %s, updated_at = %s, document = %s "
            "WHERE job_id = %s",
            (status, updated_at, document_json.decode(), job_id),
        )
        if not cursor.rowcount:
            raise KeyError(f"no job `{job_id}` in the store")

    def get_job(self, job_id: str, *, document: bool = True) -> JobRecord | None:
        row = self._execute(
            job_query("flowgraph_jobs", "%s", document=document), (job_id,)
        ).fetchone()
        return job_from_row(row) if row is not None else None

    def job_summary(self, job_id: str) -> JobRecord | None:
        row = self._execute(
            f"SELECT {SUMMARY_COLUMNS} FROM flowgraph_jobs WHERE job_id = %s", (job_id,)
        ).fetchone()
        return summary_from_row(row) if row is not None else None

    def document_json(self, job_id: str) -> bytes | None:
        row = self._execute(
            "SELECT document FROM flowgraph_jobs WHERE job_id = %s", (job_id,)
        ).fetchone()
        return row[0].encode() if row is not None and row[0] is not None else None

    def outcomes(self, job_id: str) -> list[OutcomeRecord]:
        return outcomes_of(self._batches(job_id, "outcomes"))

    def events(self, job_id: str) -> list[Transition]:
        return events_of(job_id, self._batches(job_id, "events"))

    def events_after(self, job_id: str, position: int) -> tuple[list[Transition], int]:
        """A position is one past a batch's number (numbers grow, shared by every job; one
        server at a time writes a job's batches, one after the other)."""
        rows: list[Any] = self._execute(
            "SELECT events, seq FROM flowgraph_log_batches WHERE job_id = %s AND seq >= %s "
            "ORDER BY seq",
            (job_id, position),
        ).fetchall()
        return events_of(job_id, rows), (rows[-1][1] + 1 if rows else position)

    def _batches(self, job_id: str, column: str) -> list[Any]:
        rows: list[Any] = self._execute(
            f"SELECT {column} FROM flowgraph_log_batches WHERE job_id = %s ORDER BY seq",
            (job_id,),
        ).fetchall()
        return rows

    def list_jobs(
        self,
        *,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        query, parameters = list_jobs_query(
            "flowgraph_jobs",
            "%s",
            status=status,
            workflow_id=workflow_id,
            limit=limit,
            cursor=cursor,
        )
        return page_of(self._execute(query, parameters).fetchall(), limit)

    def remember_key(self, key: str, job_id: str) -> str:
        self._execute(
            "INSERT INTO flowgraph_idempotency_keys VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
            (key, job_id),
        )
        row = self._execute(
            "SELECT job_id FROM flowgraph_idempotency_keys WHERE key = %s", (key,)
        ).fetchone()
        return str(row[0])

    def bound_job(self, key: str) -> str | None:
        row = self._execute(
            "SELECT job_id FROM flowgraph_idempotency_keys WHERE key = %s", (key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def forget_key(self, key: str, job_id: str) -> None:
        self._execute(
            "DELETE FROM flowgraph_idempotency_keys WHERE key = %s AND job_id = %s",
            (key, job_id),
        )

    def claim(self, job_id: str, owner: str, ttl: float) -> bool:
        # one statement: the row lock taken by the upsert decides between competing servers
        row = self._execute(
            "INSERT INTO flowgraph_leases VALUES (%s, %s, now() + make_interval(secs => %s)) "
            "ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at WHERE flowgraph_leases.owner = excluded.owner "
            "OR flowgraph_leases.expires_at < now() RETURNING owner",
            (job_id, owner, ttl),
        ).fetchone()
        return row is not None

    def renew(self, owner: str, ttl: float) -> None:
        self._execute(
            "UPDATE flowgraph_leases SET expires_at = now() + make_interval(secs => %s) "
            "WHERE owner = %s",
            (ttl, owner),
        )

    def release(self, job_id: str, owner: str) -> None:
        self._execute(
            "DELETE FROM flowgraph_leases WHERE job_id = %s AND owner = %s", (job_id, owner)
        )

    def orphans(self) -> list[str]:
        rows = self._execute("SELECT job_id FROM flowgraph_leases WHERE expires_at < now()")
        return [row[0] for row in rows.fetchall()]

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
