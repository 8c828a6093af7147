"""`flowgraph serve`: Scenario's Workflows HTTP API on a local engine."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping
from typing import Any

from engine.api import Engine
from engine.errors import FlowgraphError
from engine.protocols import Store
from engine.server.app import create_app, is_loopback
from engine.server.state import DEFAULT_MAX_BODY, ServerState

KEY_VARIABLE, SECRET_VARIABLE = "FLOWGRAPH_API_KEY", "FLOWGRAPH_API_SECRET"


class ServerConfigError(FlowgraphError, ValueError):
    """The server cannot start with this configuration."""


def build_state(
    engine: Engine,
    store: Store,
    *,
    host: str,
    costs: Mapping[str, float] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> ServerState:
    """The server's state; refuses a non-loopback host without configured credentials."""
    key, secret = os.environ.get(KEY_VARIABLE), os.environ.get(SECRET_VARIABLE)
    given = ((KEY_VARIABLE, key), (SECRET_VARIABLE, secret))
    empty = [name for name, value in given if value == ""]
    if empty:
        raise ServerConfigError(
            f"{' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} set but empty: give "
            "credentials, or unset both to serve on loopback without them"
        )
    if (key is None) != (secret is None):
        raise ServerConfigError(f"set both {KEY_VARIABLE} and {SECRET_VARIABLE}, or neither")
    if key is None and not is_loopback(host):
        raise ServerConfigError(
            f"refusing to listen on `{host}` without credentials: anyone who can reach it "
            f"could run and decide jobs. Set {KEY_VARIABLE} and {SECRET_VARIABLE}, or listen "
            "on 127.0.0.1"
        )
    return ServerState(
        engine=engine,
        store=store,
        costs=dict(costs or {}),
        api_key=key,
        api_secret=secret,
        max_body=max_body,
    )


class ListenError(FlowgraphError, OSError):
    """The server cannot listen on the address it was given."""


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` and listening (port 0: any free port); raises
    ListenError saying why not (the address is in use, or not this machine's)."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        sock = socket.socket(family, kind, protocol)
    except OSError as error:
        raise ListenError(f"cannot listen on `{host}`: {error.strerror or error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        why = error.strerror or str(error)
        hint = (
            "; is another `flowgraph serve` running? Choose another port with --port"
            if error.errno == errno.EADDRINUSE
            else ""
        )
        raise ListenError(f"cannot listen on {host}:{port}: {why.lower()}{hint}") from None
    return sock


def serve(state: ServerState, *, sock: socket.socket, log_level: str = "info") -> None:
    """Run the server on a listening socket (see `listen`) until interrupted."""
    import uvicorn

    app: Any = create_app(state)
    config = uvicorn.Config(app, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])


__all__ = [
    "ListenError",
    "ServerConfigError",
    "ServerState",
    "build_state",
    "create_app",
    "listen",
    "serve",
]
