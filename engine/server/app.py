"""The FastAPI application: Scenario's Workflows API under `/v1`."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine.errors import FlowgraphError
from engine.run.events import event_logger
from engine.server import console, generate, jobs, workflows
from engine.server.schemas import ErrorEnvelope
from engine.server.state import ApiError, ServerState

log = event_logger()  # one JSON line an event, on stderr
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def envelope(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return JSONResponse(
        {"statusCode": status, "error": phrase, "message": message},
        status_code=status,
        headers=headers,
    )


def api_path_hint(app: FastAPI, request: Request) -> str | None:
    """For a request no route serves that the API serves below `/v1`, method included (a
    client given the server's address without `/v1` as its base URL): where the API is. The
    request's own host is not echoed back (behind a proxy it names the upstream)."""
    path = request.url.path
    if path == "/v1" or path.startswith("/v1/"):
        return None
    scope = {**request.scope, "path": "/v1" + path, "root_path": ""}
    if not any(route.matches(scope)[0] is Match.FULL for route in app.routes):
        return None
    return (
        f"the Workflows API is served under /v1 ({request.method} /v1{path}): "
        "end the client's base URL with /v1"
    )


def check_credentials(request: Request) -> None:
    """Basic (key:secret) or Bearer. With credentials configured only those pass; without,
    anything passes (the server then listens on loopback only)."""
    state: ServerState = request.app.state.flowgraph
    if state.api_key is None and state.api_secret is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    # compared as bytes: compare_digest refuses str with characters beyond ASCII
    expected_key = (state.api_key or "").encode()
    expected_secret = (state.api_secret or "").encode()
    if scheme.lower() == "basic":
        try:
            key, _, secret = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            raise ApiError(401, "malformed Basic credentials") from None
        key_ok = hmac.compare_digest(key, expected_key)
        if hmac.compare_digest(secret, expected_secret) and key_ok:
            return
    elif scheme.lower() == "bearer" and hmac.compare_digest(
        value.encode("latin-1"),
        expected_secret,  # header bytes, as the client sent them
    ):
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
        if declared is None and scope.get("method") in ("POST", "PUT", "PATCH"):
            # chunked: read it all first (at most the limit), so the app never sees a part
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.limit:
                    await self._too_large(scope, receive, send)
                    return
                more = message.get("more_body", False)
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
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
    api.include_router(generate.router)
    api.include_router(generate.assets_router)
    app.include_router(api)
    console.install(app, state)
    app.include_router(generate.files_router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        status = 400 if error.status_code in (405, 409, 422) else error.status_code
        message = str(error.detail)
        if status == 404 and (hint := api_path_hint(app, request)):
            message = f"{message}: {hint}"
        return envelope(status, message, error.headers)

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

    app.add_middleware(CatchAll)
    app.add_middleware(BodyLimit, limit=state.max_body)
    return app


class CatchAll:
    """An error no route handled: answer 500 with the envelope and log one line (the error's
    type and message, never a traceback with local values: they hold credentials and bodies)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as error:
            log.error(
                "unexpected error",
                method=scope.get("method"),
                path=scope.get("path"),
                error=type(error).__name__,
                message=str(error)[:300],
            )
            if not started:
                await envelope(500, f"internal error: {type(error).__name__}")(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
