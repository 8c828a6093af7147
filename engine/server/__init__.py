"""`flowgraph serve`: Scenario's Workflows HTTP API on a local engine."""

from __future__ import annotations

import os
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


def serve(state: ServerState, *, host: str, port: int, log_level: str = "info") -> None:
    """Run the server until interrupted."""
    import uvicorn

    app: Any = create_app(state)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__ = ["ServerConfigError", "ServerState", "build_state", "create_app", "serve"]
