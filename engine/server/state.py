"""What the server's routes share: the engine, its store, and the task group jobs run in."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from fastapi import HTTPException, Request, Response

from engine.api import Engine, JobRun
from engine.errors import Problem, ValidationError, first_cause, internal_message
from engine.gc_tuning import collect_promoted
from engine.protocols import TERMINAL_JOB, JobRecord, Store
from engine.run.events import event_logger
from engine.run.scheduler import utc_now
from engine.server.inference import (
    index_assets,
    inference_json,
    is_inference,
    is_inference_document,
)
from engine.stores.paging import MAX_TOKEN, shown_token
from engine.subworkflows import MAX_WORKFLOW_DEPTH

DEFAULT_MAX_BODY = 10 * 1024 * 1024
log = event_logger()
LEASE_SECONDS = 6.0  # a server that stops renewing loses its jobs to the others after this
MAX_ROOTS_KEPT = 10_000  # roots of jobs remembered (see `root_of`), then forgotten all at once


class ApiError(HTTPException):
    """An error answered with Scenario's envelope `{"statusCode", "error", "message"}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status_code=status, detail=message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def problems_message(error: ValidationError) -> str:
    """Every problem in one message (a client sees all of them at once)."""
    return f"{error.headline}: " + "; ".join(str(p) for p in error.problems)


def new_workflow_id() -> str:
    return "wflow_" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_offset(token: str | None) -> int:
    if not token:
        return 0
    invalid = bad_request(f"invalid paginationToken `{shown_token(token)}`")
    if len(token) > MAX_TOKEN:
        raise invalid
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise invalid from None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise invalid
    return offset


@dataclass
class ServerState:
    engine: Engine
    store: Store
    costs: Mapping[str, float] = field(default_factory=dict)
    api_key: str | None = None
    api_secret: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    group: TaskGroup | None = None
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    )
    running: set[str] = field(default_factory=set)  # jobs a task of this server carries on
    # one update of a workflow at a time: an update reads, publishes and checks in a worker
    # thread, then writes; a second one waits, so that it reads the first one's document
    editing: dict[str, anyio.Lock] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)  # job id -> its tree's root (root_of)
    changing: dict[str, anyio.Lock] = field(default_factory=dict)  # root -> one change at a time

    def editing_lock(self, workflow_id: str) -> anyio.Lock:
        return self.editing.setdefault(workflow_id, anyio.Lock())

    def root_of(self, job_id: str) -> str:
        """The job at the top of `job_id`'s tree of sub-workflow jobs (itself, for a job that
        is no sub-workflow's). A tree is leased as one: the parent's workflow nodes run its
        children, and a decision or cancel for a child carries the parent on. A job's root
        never changes: it is looked up in the store once."""
        known = self.roots.get(job_id)
        if known is not None:
            return known
        root = job_id
        for _ in range(MAX_WORKFLOW_DEPTH + 1):
            summary = self.store.job_summary(root)
            if summary is None:
                return root  # not created yet (or gone): not remembered
            if summary.parent_job_id is None:
                break
            root = summary.parent_job_id
        if len(self.roots) >= MAX_ROOTS_KEPT:
            self.roots.clear()
        self.roots[job_id] = root
        return root

    def reserve(self, job_id: str) -> None:
        """Hold the lease of a job this server is about to create, before its row exists. A
        server that starts takes over the unfinished jobs no server holds: without the lease
        first, it could take this one between its creation here and its start."""
        self._claim(job_id, job_id)

    def _claim(self, root: str, job_id: str) -> None:
        if not self.store.claim(root, self.owner, LEASE_SECONDS):
            above = f" (through job `{root}`, the job above it)" if root != job_id else ""
            raise bad_request(
                f"job `{job_id}` is being run by another server{above}; try again when it "
                "waits or ends"
            )

    @asynccontextmanager
    async def holding(self, job_id: str) -> AsyncIterator[JobRun]:
        """The job, to change it (a decision, a cancel), for one request of this server at a
        time per tree of jobs (a change awaits the store: another request rebuilding the job
        meanwhile would run a second copy of it). See `_held`."""
        root = self.root_of(job_id)
        lock = self.changing.setdefault(root, anyio.Lock())
        try:
            async with lock:
                with self._held(job_id, root) as job:
                    yield job
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self.changing.pop(root, None)

    @contextmanager
    def _held(self, job_id: str, root: str) -> Iterator[JobRun]:
        """The live job when this server runs it, else the job rebuilt from the store *now*,
        under the lease of its tree (see `root_of`), so that what another server did
        meanwhile is seen. Unless the change started the tree running here, the lease is
        given back and the copies dropped afterwards."""
        live = self._driven_here(job_id)
        if live is not None:
            yield live
            return
        self._claim(root, job_id)
        try:
            for stale in (root, job_id):  # copies read earlier may be stale
                self.engine.forget(stale)
            yield self.job(job_id)
        finally:
            if root not in self.running and job_id not in self.running:
                for copy in (job_id, root):
                    if self._driven_here(copy) is None:
                        self.engine.forget(copy)
                self.store.release(root, self.owner)

    def _driven_here(self, job_id: str) -> JobRun | None:
        """The live job when a task of this server runs it, or runs a job above it (a
        sub-workflow's job runs inside its parent's workflow node)."""
        live = self.engine.jobs.get(job_id)
        above = live
        while above is not None:
            if above.job_id in self.running:
                return live
            above = self.engine.jobs.get(above.parent_job_id or "")
        return None

    def start(self, job: JobRun) -> None:
        """Carry a job on in the background (unless a run of it is already going here).

        Only the holder of the lease of the job's tree (see `root_of`) runs it: servers
        sharing one store never run a job, and so a node, twice. Raises a 400 when another
        server is running the tree now. A sub-workflow's job that its parent waits on is
        carried on by starting the parent: its workflow node runs the child.
        """
        parent = self.engine.parent_to_carry(job)
        if parent is not None:
            self.start(parent)
            return
        if self._driven_here(job.job_id) is not None:
            if job.runner.active:
                job.runner.pump()
            return  # a task of this server carries it on, and sees what just changed
        root = self.root_of(job.job_id)
        try:
            self._claim(root, job.job_id)
        except ApiError:
            self.engine.forget(job.job_id)
            raise
        assert self.group is not None, "the server is not running"
        self.running.add(job.job_id)
        self.group.start_soon(self._advance, job, root)

    def end_unstarted(self, job: JobRun, message: str) -> None:
        """A job created whose run never started: failed with `message`, in the store too (a
        server starting later must not run it)."""
        job.runner.abort(message)
        self.engine.record_now(job)
        self.engine.forget(job.job_id)

    async def _advance(self, job: JobRun, root: str) -> None:
        """Run the job (its tree's lease, `root`'s, held); whatever goes wrong ends this job
        (the engine fails it), never the task group the other jobs run in."""
        try:
            await self.engine.advance(job)  # runs again for decisions that come meanwhile
            if job.scheduler.finished and is_inference(job.plan.workflow.id):
                index_assets(self.store, job)
        except Exception as error:  # the store could not record the failure, or worse
            job.runner.abort(internal_message(first_cause(error)))
            log.error(
                "job failed", jobId=job.job_id, error=type(error).__name__, message=str(error)[:300]
            )
        finally:
            if not job.runner.active:
                # parked or finished: give the job back, so that a decision sent to any server
                # rebuilds it from the store
                self.running.discard(job.job_id)
                self.engine.forget(job.job_id)
                try:
                    self.store.release(root, self.owner)
                except Exception as error:  # the lease runs out by itself
                    log.error("cannot release a job", jobId=job.job_id, message=str(error)[:300])

    def resume_unfinished(self) -> list[str]:
        """On start: unfinished jobs in the store that no server holds (this one stopped or
        crashed, or another did): carry them on."""
        resumed = []
        for status in ("queued", "in-progress"):
            cursor: str | None = None
            while True:
                records, cursor = self.store.list_jobs(status=status, limit=100, cursor=cursor)
                for record in records:
                    if record.parent_job_id is not None:
                        self._mend_child(record)  # else its parent carries it on
                    elif self.take_over(record.job_id):
                        resumed.append(record.job_id)
                if cursor is None:
                    break
        return resumed

    def _mend_child(self, record: JobRecord) -> None:
        """A sub-workflow's unfinished job whose parent has ended (a server stopped between
        the two) is canceled; others are left to their parent (see `SubWorkflows.mend`)."""
        assert record.parent_job_id is not None
        parent = self.store.job_summary(record.parent_job_id)
        if parent is not None and parent.status not in TERMINAL_JOB:
            return
        job_id = record.job_id
        root = self.root_of(job_id)
        if root in self.engine.jobs or not self.store.claim(root, self.owner, LEASE_SECONDS):
            return
        try:
            if self.engine.jobs.get(job_id) is None:
                self.engine.get(job_id)  # rebuilt from the store, mended on the way
                self.engine.forget(job_id)
        finally:
            self.store.release(root, self.owner)

    def take_over(self, job_id: str) -> bool:
        """Run a job no server holds, if it has anything to run; True when it does."""
        if job_id in self.engine.jobs or not self.store.claim(job_id, self.owner, LEASE_SECONDS):
            return False  # running here already, or another server runs it
        job = self.engine.get(job_id)
        parked = job.waiting and not job.runner.pending_start and not job.scheduler.is_active()
        if job.scheduler.finished or parked:
            # parked or ended: nothing to run. A server stopped inside its last checkpoint
            # leaves a document behind its log (`queued` for a finished job): write it again
            record = self.store.get_job(job_id)
            if record is not None and record.status != job.status.value:
                self.engine.record_now(job)
            self.store.release(job_id, self.owner)
            self.engine.forget(job_id)
            return False
        self.start(job)
        return True

    async def keep_leases(self) -> None:
        """Renew this server's leases, and take over jobs whose server stopped renewing; when
        nothing runs here, let the garbage collector catch up (see engine/gc_tuning.py)."""
        while True:
            await anyio.sleep(LEASE_SECONDS / 3)
            try:
                self.store.renew(self.owner, LEASE_SECONDS)
                for job_id in self.store.orphans():
                    self.take_over(job_id)
            except Exception as error:  # a store that fails now may work at the next turn
                log.error(
                    "cannot renew leases", error=type(error).__name__, message=str(error)[:300]
                )
            if not any(job.runner.active for job in self.engine.jobs.values()):
                collect_promoted()  # idle: collect what finished jobs left in the old generation

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        found = self.store.get_workflow(workflow_id)
        if found is None:
            raise not_found(f"workflow `{workflow_id}` not found")
        return found

    def job(self, job_id: str) -> JobRun:
        try:
            return self.engine.get(job_id)
        except LookupError:
            raise not_found(f"job `{job_id}` not found") from None

    def job_json(self, job_id: str) -> bytes:
        try:
            return self.engine.document_json(job_id, may_lag=True)
        except LookupError:
            raise not_found(f"job `{job_id}` not found") from None

    def answered_job_json(self, job_id: str) -> bytes:
        """The job as `/jobs` answers it: an inference job of the generate stand-in in
        Scenario's inference-job form, a workflow job as it is."""
        document = self.job_json(job_id)
        return inference_json(document) if is_inference_document(document) else document


def json_envelope(pieces: list[bytes]) -> Response:
    """A JSON response assembled from already encoded pieces (job documents can be tens of
    megabytes: encoding them again through FastAPI took seconds)."""
    return Response(content=b"".join(pieces), media_type="application/json")


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.flowgraph
    return state


def now() -> str:
    return utc_now()


__all__ = ["ApiError", "Problem", "ServerState", "bad_request", "not_found", "state_of"]
