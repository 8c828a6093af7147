"""What the server's routes share: the engine, its store, and the task group jobs run in."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from anyio.abc import TaskGroup
from fastapi import HTTPException, Request

from ..api import Engine, JobRun
from ..errors import Problem, ValidationError
from ..protocols import Store
from ..scheduler import utc_now

DEFAULT_MAX_BODY = 10 * 1024 * 1024


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
    return f"{error.what} is invalid: " + "; ".join(str(p) for p in error.problems)


def new_workflow_id() -> str:
    return "wflow_" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise bad_request(f"invalid paginationToken `{token}`") from None
    if not isinstance(offset, int) or offset < 0:
        raise bad_request(f"invalid paginationToken `{token}`")
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
    idempotent_runs: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> job id

    def start(self, job: JobRun) -> None:
        """Carry a job on in the background (unless a run of it is already going)."""
        if job.runner.active:
            job.runner.pump()
            return
        assert self.group is not None, "the server is not running"
        self.group.start_soon(self._advance, job)

    async def _advance(self, job: JobRun) -> None:
        await self.engine.advance(job)
        if job.scheduler.finished:
            self.engine.forget(job.job_id)

    def resume_unfinished(self) -> list[str]:
        """Jobs the store holds as unfinished (the server stopped or crashed): carry them on."""
        resumed = []
        for status in ("queued", "in-progress"):
            cursor: str | None = None
            while True:
                records, cursor = self.store.list_jobs(status=status, limit=100, cursor=cursor)
                for record in records:
                    if record.parent_job_id is not None:
                        continue  # a child job is run again by its parent's workflow node
                    self.start(self.engine.get(record.job_id))
                    resumed.append(record.job_id)
                if cursor is None:
                    break
        return resumed

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

    def job_document(self, job_id: str) -> dict[str, Any]:
        try:
            return self.engine.document(job_id)
        except LookupError:
            raise not_found(f"job `{job_id}` not found") from None


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.flowgraph
    return state


def now() -> str:
    return utc_now()


__all__ = ["ApiError", "Problem", "ServerState", "bad_request", "not_found", "state_of"]
