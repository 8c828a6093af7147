"""Model-like nodes (custom-model, model, remove-background, generate-prompt): run by executors."""

from __future__ import annotations

from collections.abc import Mapping

from engine.compile.models import FlowNode
from engine.protocols import CompiledExpression, Delegate, NodeCall, Outcome
from nodes._base import BaseKind


class ModelKind(BaseKind):
    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def check(self, node: FlowNode) -> list[tuple[str, str]]:
        if node.type in ("custom-model", "model") and not node.model_id:
            return [(f"a `{node.type}` node needs a `modelId`", "modelId")]
        return []

    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        return _DELEGATE


_DELEGATE = Delegate()  # it holds nothing: one for every call (a fan-out starts thousands)
