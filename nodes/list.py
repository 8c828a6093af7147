"""list: outputs its statically configured `items`, as given."""

from __future__ import annotations

from collections.abc import Mapping

from engine.compile.models import FlowNode
from engine.protocols import CompiledExpression, Completed, NodeCall, Outcome
from nodes._base import BaseKind


class ListKind(BaseKind):
    type_name = "list"

    def check(self, node: FlowNode) -> list[tuple[str, str]]:
        if node.items is None:
            return [("list node has no `items`; give it an array (it may be empty)", "items")]
        return []

    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        node: FlowNode = call.node
        return Completed({"output": list(node.items or [])})
