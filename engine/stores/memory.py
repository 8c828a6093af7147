"""A store in memory: for tests and library use.

Records are kept as given (the engine builds them fresh and never changes them afterwards);
documents are kept as JSON text, like the SQLite store keeps them, so reads return copies.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from engine.protocols import (
    EncodedDocument,
    JobRecord,
    OutcomeRecord,
    Transition,
    WorkflowEntry,
    workflow_head,
)
from engine.stores.paging import page


class MemoryStore:
    shared = False  # read only by this process, which sees its live jobs
    deflates_documents = False  # keeps documents as they are given

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workflows: dict[str, dict[str, Any]] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._outcomes: dict[str, list[OutcomeRecord]] = {}
        self._events: dict[str, list[Transition]] = {}
        self._documents: dict[str, bytes] = {}
        self._leases: dict[str, tuple[str, float]] = {}  # job id -> (owner, monotonic expiry)
        self._keys: dict[str, str] = {}  # idempotency key -> job id

    def put_workflow(self, workflow_id: str, document: dict[str, Any]) -> None:
        with self._lock:
            self._workflows[workflow_id] = copy.deepcopy(document)

    def get_workflow(self, workflow_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._workflows.get(workflow_id)
            return copy.deepcopy(found) if found is not None else None

    def list_workflows(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(w) for w in self._workflows.values()]

    def workflow_entries(self) -> list[WorkflowEntry]:
        with self._lock:
            return [WorkflowEntry.of(i, w) for i, w in self._workflows.items()]

    def get_workflow_head(self, workflow_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._workflows.get(workflow_id)
            return copy.deepcopy(workflow_head(found)) if found is not None else None

    def delete_workflow(self, workflow_id: str) -> bool:
        with self._lock:
            return self._workflows.pop(workflow_id, None) is not None

    def create_job(self, record: JobRecord) -> None:
        with self._lock:
            if record.job_id in self._jobs:
                raise ValueError(f"job `{record.job_id}` already exists")
            stored = copy.copy(record)
            stored.document = None
            self._jobs[record.job_id] = stored
            self._documents[record.job_id] = json.dumps(record.document).encode()
            self._outcomes[record.job_id] = []
            self._events[record.job_id] = []

    def record(
        self, job_id: str, outcomes: Sequence[OutcomeRecord], transitions: Sequence[Transition]
    ) -> None:
        with self._lock:
            self._require(job_id)
            self._outcomes[job_id].extend(outcomes)
            self._events[job_id].extend(transitions)

    def checkpoint(
        self, job_id: str, *, status: str, updated_at: str, document_json: bytes | EncodedDocument
    ) -> None:
        if not isinstance(document_json, bytes):
            document_json = document_json.read()  # this store keeps documents in memory
        with self._lock:
            job = self._require(job_id)
            job.status, job.updated_at = status, updated_at
            self._documents[job_id] = document_json

    def get_job(self, job_id: str, *, document: bool = True) -> JobRecord | None:
        with self._lock:
            found = self._jobs.get(job_id)
            if found is None:
                return None
            job = copy.deepcopy(found)
            if document:
                job.document = json.loads(self._documents[job_id])
            return job

    def document_json(self, job_id: str) -> bytes | None:
        with self._lock:
            found = self._documents.get(job_id)
        return None if found is None or found == b"null" else found

    def outcomes(self, job_id: str) -> list[OutcomeRecord]:
        with self._lock:
            return list(self._outcomes.get(job_id, []))

    def events(self, job_id: str) -> list[Transition]:
        with self._lock:
            return list(self._events.get(job_id, []))

    def events_after(self, job_id: str, position: int) -> tuple[list[Transition], int]:
        with self._lock:
            found = self._events.get(job_id, [])
            return found[position:], max(position, len(found))

    def job_summary(self, job_id: str) -> JobRecord | None:
        with self._lock:
            found = self._jobs.get(job_id)
            return _summary(found) if found is not None else None

    def list_jobs(
        self,
        *,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        with self._lock:
            matching = [
                job
                for job in self._jobs.values()
                if (status is None or job.status == status)
                and (workflow_id is None or job.workflow_id == workflow_id)
            ]
            summaries = [_summary(j) for j in matching]
        return page(summaries, limit=limit, cursor=cursor)

    def remember_key(self, key: str, job_id: str) -> str:
        with self._lock:
            return self._keys.setdefault(key, job_id)

    def bound_job(self, key: str) -> str | None:
        with self._lock:
            return self._keys.get(key)

    def forget_key(self, key: str, job_id: str) -> None:
        with self._lock:
            if self._keys.get(key) == job_id:
                del self._keys[key]

    def claim(self, job_id: str, owner: str, ttl: float) -> bool:
        with self._lock:
            held = self._leases.get(job_id)
            now = time.monotonic()
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self._leases[job_id] = (owner, now + ttl)
            return True

    def renew(self, owner: str, ttl: float) -> None:
        with self._lock:
            until = time.monotonic() + ttl
            for job_id, (holder, _) in list(self._leases.items()):
                if holder == owner:
                    self._leases[job_id] = (owner, until)

    def release(self, job_id: str, owner: str) -> None:
        with self._lock:
            if self._leases.get(job_id, ("", 0.0))[0] == owner:
                del self._leases[job_id]

    def orphans(self) -> list[str]:
        with self._lock:
            now = time.monotonic()
            return [job_id for job_id, (_, until) in self._leases.items() if until < now]

    def close(self) -> None:
        return None

    def _require(self, job_id: str) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(f"no job `{job_id}` in the store")
        return job


def _summary(job: JobRecord) -> JobRecord:
    """The job without its workflow and document, as `list_jobs` gives it."""
    return JobRecord(
        job.job_id,
        job.workflow_id,
        {},
        copy.deepcopy(job.inputs),
        dict(job.options),
        job.status,
        job.created_at,
        job.updated_at,
        None,
        job.parent_job_id,
    )
