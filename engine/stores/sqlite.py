"""The default store: one SQLite file in WAL mode, safe to call from worker threads.

Outcomes and transitions arrive in batches; each batch is one row in one transaction, so a
100,000-node run commits a few hundred times, not a few hundred thousand.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.deflated import LEVEL, deflate_to_file
from engine.errors import StoreError
from engine.protocols import (
    TERMINAL_JOB,
    EncodedDocument,
    JobRecord,
    OutcomeRecord,
    Transition,
    WorkflowEntry,
)
from engine.stores.sql import (
    JOB_COLUMNS,
    SUMMARY_COLUMNS,
    document_bytes,
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

# 3: log batches and documents may be deflated, and calls answered as they started logged as
# `answered` lists; flowgraph before it cannot read those (it checked no version), and a
# flowgraph that reads up to an older version refuses a file marked newer
SCHEMA_VERSION = 3
BLOB_PIECE = 1 << 20  # bytes of a job document written at a time
DEFLATE_DOCUMENT_FROM = 1 << 22  # bytes of a job document, from which it is stored deflated
# Bytes of a job's log (as JSON) written by this store object as text, readable with any SQLite
# tool; the job's later batches are deflated. A log that large (a fan-out of 150,000 nodes and
# more) is written faster than the system writes it back to disk, and then waits on the disk:
# deflated, it is about a sixth. Below it, deflating would only cost the run time.
LOG_TEXT_BYTES = 1 << 26
PAGE_SIZE = 16384  # bytes, for a new store file
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    entry TEXT,
    head TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
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
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (created_at DESC, job_id DESC);
CREATE TABLE IF NOT EXISTS leases (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    job_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_batches (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    outcomes TEXT NOT NULL,
    events TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""


class _Guard:
    """The store's lock; an SQLite error raised while it is held becomes a StoreError naming
    the file and SQLite's reason (`database or disk is full`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        self.lock.release()
        if isinstance(error, sqlite3.Error):
            raise StoreError(f"the store `{self.path}` failed: {error}") from None


def _size(document: bytes | EncodedDocument) -> int:
    return len(document) if isinstance(document, bytes) else document.size


def _pieces(document: bytes | EncodedDocument) -> Iterable[Any]:
    """A document a megabyte at a time (a view into one in memory: nothing copied)."""
    if not isinstance(document, bytes):
        return document.pieces()
    view = memoryview(document)
    return (view[start : start + BLOB_PIECE] for start in range(0, len(document), BLOB_PIECE))


class SQLiteStore:
    shared = True  # other processes open the same file
    deflates_documents = True  # past DEFLATE_DOCUMENT_FROM bytes

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30
            )
            # a new file gets 16 KiB pages (SQLite's default is 4 KiB): a large job's log
            # batches and document span a quarter of the pages, and of the WAL frames written
            # and copied back. Before `journal_mode=WAL`, which writes the file's header; an
            # existing file keeps its page size.
            self._connection.execute(f"PRAGMA page_size={PAGE_SIZE}")
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.executescript(SCHEMA)
            self._add_workflow_entries()
            found = self._mark_schema_version()
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"cannot open the store `{self.path}`: {error}") from None
        if found > SCHEMA_VERSION:
            self._connection.close()
            raise StoreError(
                f"cannot open the store `{self.path}`: a newer flowgraph wrote it (schema "
                f"version {found}; this one reads up to {SCHEMA_VERSION})"
            )
        self._lock = _Guard(self.path)
        self._known_jobs: set[str] = set()  # running jobs seen in the store (record checks once)
        self._logged: dict[str, int] = {}  # bytes of log written by job, up to LOG_TEXT_BYTES

    def _mark_schema_version(self) -> int:
        """The file's schema version as found, raised to this one's (never lowered)."""
        row = self._connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        found = int(row[0]) if row is not None else 0
        if found < SCHEMA_VERSION:
            self._connection.execute(
                "INSERT INTO meta VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
        return found

    # ----- workflows ------------------------------------------------------------------------

    def put_workflow(self, workflow_id: str, document: dict[str, Any]) -> None:
        with self._lock:
            self._connection.execute(
                "INSERT INTO workflows (id, document, entry, head) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET document = excluded.document, "
                "entry = excluded.entry, head = excluded.head",
                (workflow_id, json.dumps(document), *entry_columns(workflow_id, document)),
            )

    def workflow_entries(self) -> list[WorkflowEntry]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT id, entry FROM workflows ORDER BY rowid"
            ).fetchall()
        return [entry_of(row[0], row[1]) for row in rows]

    def get_workflow_head(self, workflow_id: str) -> dict[str, Any] | None:
        return self._workflow_column("head", workflow_id)

    def _add_workflow_entries(self) -> None:
        """Stores made before workflows had entries: add the columns and fill them once."""
        connection = self._connection
        columns = {row[1] for row in connection.execute("PRAGMA table_info(workflows)")}
        for column in ("entry", "head"):
            if column not in columns:
                try:
                    connection.execute(f"ALTER TABLE workflows ADD COLUMN {column} TEXT")
                except sqlite3.OperationalError as error:  # another process added it first
                    if "duplicate column" not in str(error):
                        raise
        missing = connection.execute(
            "SELECT id, document FROM workflows WHERE entry IS NULL OR head IS NULL"
        ).fetchall()
        for workflow_id, document in missing:
            connection.execute(
                "UPDATE workflows SET entry = ?, head = ? WHERE id = ?",
                (*entry_columns(workflow_id, json.loads(document)), workflow_id),
            )

    def get_workflow(self, workflow_id: str) -> dict[str, Any] | None:
        return self._workflow_column("document", workflow_id)

    def _workflow_column(self, column: str, workflow_id: str) -> dict[str, Any] | None:
        """The JSON in `column` (`document` or `head`) of a workflow's row, if it has one."""
        with self._lock:
            row = self._connection.execute(
                f"SELECT {column} FROM workflows WHERE id = ?", (workflow_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def list_workflows(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT document FROM workflows ORDER BY rowid"
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def delete_workflow(self, workflow_id: str) -> bool:
        with self._lock:
            cursor = self._connection.execute("DELETE FROM workflows WHERE id = ?", (workflow_id,))
        return cursor.rowcount > 0

    # ----- jobs -------------------------------------------------------------------------------

    def create_job(self, record: JobRecord) -> None:
        with self._lock:
            try:
                self._connection.execute(
                    f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    job_values(record),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"job `{record.job_id}` already exists") from None
            self._known_jobs.add(record.job_id)

    def record(
        self, job_id: str, outcomes: Sequence[OutcomeRecord], transitions: Sequence[Transition]
    ) -> None:
        """One row per batch: the outcomes and transitions of a flush, as compact JSON arrays
        (a 100,000-node run writes a few hundred rows, not half a million)."""
        if not outcomes and not transitions:
            return
        encoded = encode_batch(outcomes, transitions)
        logged = self._logged.get(job_id, 0)
        rows: list[str | bytes]
        if logged < LOG_TEXT_BYTES:
            rows = [column.decode() for column in encoded]
        else:  # deflated, outside the GIL: the run goes on beside it
            rows = [zlib.compress(column, LEVEL) for column in encoded]
        outcome_rows, event_rows = rows
        with self._lock:
            if job_id not in self._known_jobs:
                found = self._connection.execute(
                    "SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)
                ).fetchone()
                if found is None:
                    raise KeyError(f"no job `{job_id}` in the store")
                self._known_jobs.add(job_id)
            # the next number is read in the statement that takes it: another process (a second
            # server on this file) may have written batches of this job since
            self._connection.execute(
                "INSERT INTO log_batches (job_id, seq, outcomes, events) "
                "SELECT ?, COALESCE(MAX(seq) + 1, 0), ?, ? FROM log_batches WHERE job_id = ?",
                (job_id, outcome_rows, event_rows, job_id),
            )
        if logged < LOG_TEXT_BYTES:  # written: counted
            self._logged[job_id] = logged + len(encoded[0]) + len(encoded[1])

    def checkpoint(
        self, job_id: str, *, status: str, updated_at: str, document_json: bytes | EncodedDocument
    ) -> None:
        """One transaction: the status, and the document written into its row a piece at a time
        (SQLite's incremental blob I/O), so that a document of tens of megabytes is not copied
        whole into a statement (and one in a file is never read whole). A document of
        DEFLATE_DOCUMENT_FROM bytes or more is kept deflated: as it was deflated while it was
        encoded (a spooled one's `deflated`), or deflated now."""
        if status in TERMINAL_JOB:  # a long-lived server keeps nothing for jobs that are over
            self._logged.pop(job_id, None)
            self._known_jobs.discard(job_id)  # a later batch (a resumed job) looks it up again
        size = _size(document_json)
        if size < DEFLATE_DOCUMENT_FROM:
            self._write_document(job_id, status, updated_at, size, _pieces(document_json))
            return
        deflated = None if isinstance(document_json, bytes) else document_json.deflated
        made = None
        if deflated is None:  # not deflated as it was encoded: now
            with contextlib.suppress(OSError):  # no room for a temporary file: the JSON as is
                deflated = made = deflate_to_file(_pieces(document_json))
        try:
            if deflated is None:
                self._write_document(job_id, status, updated_at, size, _pieces(document_json))
            else:
                self._write_document(job_id, status, updated_at, deflated.size, deflated.pieces())
        finally:
            if made is not None:
                made.close()

    def _write_document(
        self, job_id: str, status: str, updated_at: str, size: int, pieces: Iterable[Any]
    ) -> None:
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute(
                    "UPDATE jobs SET status = ?, updated_at = ?, document = zeroblob(?) "
                    "WHERE job_id = ? RETURNING rowid",
                    (status, updated_at, size, job_id),
                ).fetchone()
                if row is not None and size:
                    with connection.blobopen("jobs", "document", row[0]) as blob:
                        for piece in pieces:
                            blob.write(piece)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:  # SQLite may have rolled back already (disk full)
                    connection.execute("ROLLBACK")
                raise
        if row is None:
            raise KeyError(f"no job `{job_id}` in the store")

    def get_job(self, job_id: str, *, document: bool = True) -> JobRecord | None:
        with self._lock:
            row = self._connection.execute(
                job_query("jobs", "?", document=document), (job_id,)
            ).fetchone()
        return job_from_row(row) if row is not None else None

    def job_summary(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._connection.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return summary_from_row(row) if row is not None else None

    def document_json(self, job_id: str) -> bytes | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT document FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return document_bytes(row[0])

    def outcomes(self, job_id: str) -> list[OutcomeRecord]:
        return outcomes_of(self._batches(job_id, "outcomes"))

    def events(self, job_id: str) -> list[Transition]:
        return events_of(job_id, self._batches(job_id, "events"))

    def events_after(self, job_id: str, position: int) -> tuple[list[Transition], int]:
        """A position is the number of the next batch (batches are numbered from 0 per job)."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT events, seq FROM log_batches WHERE job_id = ? AND seq >= ? ORDER BY seq",
                (job_id, position),
            ).fetchall()
        return events_of(job_id, rows), (rows[-1][1] + 1 if rows else position)

    def _batches(self, job_id: str, column: str) -> list[Any]:
        with self._lock:
            return self._connection.execute(
                f"SELECT {column} FROM log_batches WHERE job_id = ? ORDER BY seq", (job_id,)
            ).fetchall()

    def list_jobs(
        self,
        *,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        query, parameters = list_jobs_query(
            "jobs", "?", status=status, workflow_id=workflow_id, limit=limit, cursor=cursor
        )
        with self._lock:
            rows = self._connection.execute(query, parameters).fetchall()
        return page_of(rows, limit)

    def remember_key(self, key: str, job_id: str) -> str:
        with self._lock:
            self._connection.execute(
                "INSERT INTO idempotency_keys VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, job_id),
            )
            row = self._connection.execute(
                "SELECT job_id FROM idempotency_keys WHERE key = ?", (key,)
            ).fetchone()
        return str(row[0])

    def bound_job(self, key: str) -> str | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT job_id FROM idempotency_keys WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def forget_key(self, key: str, job_id: str) -> None:
        with self._lock:
            self._connection.execute(
                "DELETE FROM idempotency_keys WHERE key = ? AND job_id = ?", (key, job_id)
            )

    def claim(self, job_id: str, owner: str, ttl: float) -> bool:
        now = time.time()
        with self._lock:
            row = self._connection.execute(
                "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET "
                "owner = excluded.owner, expires_at = excluded.expires_at "
                "WHERE leases.owner = excluded.owner OR leases.expires_at < ? RETURNING owner",
                (job_id, owner, now + ttl, now),
            ).fetchone()
        return row is not None

    def renew(self, owner: str, ttl: float) -> None:
        with self._lock:
            self._connection.execute(
                "UPDATE leases SET expires_at = ? WHERE owner = ?", (time.time() + ttl, owner)
            )

    def release(self, job_id: str, owner: str) -> None:
        with self._lock:
            self._connection.execute(
                "DELETE FROM leases WHERE job_id = ? AND owner = ?", (job_id, owner)
            )

    def orphans(self) -> list[str]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT job_id FROM leases WHERE expires_at < ?", (time.time(),)
            ).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        with self._lock:
            self._connection.close()
