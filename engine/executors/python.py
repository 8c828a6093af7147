"""The python executor: a registered Python function per `modelId`, for embedding."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from engine.executors.calls import normalize_result
from engine.protocols import ExecutorResult, NodeCall, PythonModelFunction


class PythonExecutor:
    """Calls a registered Python function (sync or async) per `modelId`: for embedding.

    A function receives the NodeCall and returns an ExecutorResult, a mapping (`assets` plus
    other named outputs) or a list of assets; an asset is an Asset, a dict with `assetId`/`url`
    /`kind`, or an asset id string.
    """

    name = "python"

    def __init__(self, functions: Mapping[str, PythonModelFunction] | None = None) -> None:
        self.functions: dict[str, PythonModelFunction] = dict(functions or {})

    def register(self, model_id: str, function: PythonModelFunction) -> None:
        self.functions[model_id] = function

    async def run(self, call: NodeCall) -> ExecutorResult:
        function = self.functions.get(call.model_id or "")
        if function is None:
            raise LookupError(f"no Python function registered for modelId `{call.model_id}`")
        result = function(call)
        if inspect.isawaitable(result):
            result = await result
        return normalize_result(result)
