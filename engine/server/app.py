"""The FastAPI application: Scenario's Workflows API under `/v1`."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

import anyio
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import FlowgraphError
from engine.server import jobs, workflows
from engine.server.schemas import ErrorEnvelope
from engine.server.state import ApiError, ServerState

log = structlog.get_logger("flowgraph.server")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def envelope(status: int, message: str) -> JSONResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return JSONResponse(
        {"statusCode": status, "error": phrase, "message": message}, status_code=status
    )


def check_credentials(request: Request) -> None:
    """Basic (key:secret) or Bearer. With credentials configured only those pass; without,
    anything passes (the server then listens on loopback only)."""
    state: ServerState = request.app.state.flowgraph
    if state.api_key is None and state.api_secret is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            key, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "malformed Basic credentials") from None
        if hmac.compare_digest(key, state.api_key or "") and hmac.compare_digest(
            secret, state.api_secret or ""
        ):
            return
    elif scheme.lower() == "bearer" and hmac.compare_digest(value, state.api_secret or ""):
        return
    raise ApiError(401, "invalid or missing credentials: use Basic base64(key:secret) or Bearer")


class BodyLimit:
    """Answers 413 to a body larger than `limit` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = envelope(413, f"request body larger than {self.limit} bytes")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(state: ServerState) -> FastAPI:
    """The application; jobs run in a task group that lives as long as the app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            state.group = group
            resumed = state.resume_unfinished()
            if resumed:
                log.info("resumed unfinished jobs", count=len(resumed))
            group.start_soon(state.keep_leases)
            yield
            group.cancel_scope.cancel()
        state.group = None

    app = FastAPI(
        title="flowgraph",
        version="0.1.0",
        description="Scenario's Workflows API, served by a local flowgraph engine.",
        lifespan=lifespan,
        responses={
            400: {"model": ErrorEnvelope},
            401: {"model": ErrorEnvelope},
            404: {"model": ErrorEnvelope},
            413: {"model": ErrorEnvelope},
        },
    )
    app.state.flowgraph = state
    api = APIRouter(prefix="/v1", dependencies=[Depends(check_credentials)])
    api.include_router(workflows.router)
    api.include_router(jobs.router)
    app.include_router(api)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        status = 400 if error.status_code in (405, 409, 422) else error.status_code
        return envelope(status, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()))
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return envelope(400, "invalid request: " + "; ".join(problems))

    @app.exception_handler(FlowgraphError)
    async def flowgraph_error(request: Request, error: FlowgraphError) -> JSONResponse:
        return envelope(400, str(error))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error", path=request.url.path)
        return envelope(500, f"internal error: {type(error).__name__}")

    app.add_middleware(BodyLimit, limit=state.max_body)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
