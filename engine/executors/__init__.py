"""Executors run model nodes. `calls` routes a call and applies the call policy; each other
module is one executor: `dry_run` (the offline default), `python` (registered functions),
`http` (another Scenario-compatible API) and `dask` (a Dask cluster). The last two need
their extras and are imported only where used."""

from __future__ import annotations

from engine.executors.calls import (
    CallPolicy,
    ExecutorRouter,
    Route,
    call_executor,
    normalize_result,
)
from engine.executors.dry_run import DryRunExecutor
from engine.executors.python import PythonExecutor

__all__ = [
    "CallPolicy",
    "DryRunExecutor",
    "ExecutorRouter",
    "PythonExecutor",
    "Route",
    "call_executor",
    "normalize_result",
]
