"""transform: `logic.transform` is an expression over the node's inputs; its value is the output."""

from __future__ import annotations

from collections.abc import Mapping

from engine.compile.models import FlowNode
from engine.errors import ExpressionEvaluationError
from engine.protocols import CompiledExpression, Completed, Failed, NodeCall, Outcome
from nodes._base import BaseKind


class TransformKind(BaseKind):
    type_name = "transform"

    def check(self, node: FlowNode) -> list[tuple[str, str]]:
        if node.logic is None or not node.logic.transform:
            return [("transform node has no expression; set `logic.transform`", "logic.transform")]
        return []

    def expressions(self, node: FlowNode) -> dict[str, tuple[str, str]]:
        if node.logic is None or not node.logic.transform:
            return {}
        return {"transform": (node.logic.transform, "logic.transform")}

    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        try:
            value = expressions["transform"].evaluate(call.inputs)
        except ExpressionEvaluationError as error:
            return Failed(str(error))
        return Completed({"output": value})
