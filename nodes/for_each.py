"""for-each: decide the iterations; the engine clones the body templates once per iteration.

The iterated array is the node's first input whose value is a list. `count`, when set, fixes
the number of iterations (the item is the array element when there is one, else the index).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.compile.models import FlowNode
from engine.protocols import CompiledExpression, Expand, Failed, NodeCall, Outcome
from nodes._base import BaseKind


class ForEachKind(BaseKind):
    type_name = "for-each"

    def check(self, node: FlowNode) -> list[tuple[str, str]]:
        problems = []
        if not node.loop_body_node_ids:
            problems.append(
                ("for-each has no body; list its nodes in `loopBodyNodeIds`", "loopBodyNodeIds")
            )
        if node.count is not None and node.count < 0:
            problems.append((f"`count` must be 0 or more, got `{node.count}`", "count"))
        return problems

    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        node: FlowNode = call.node
        array: list[Any] | None = next(
            (value for value in call.inputs.values() if isinstance(value, list)), None
        )
        count = node.count
        if count is None:
            if array is None:
                return Failed("no input holds an array to iterate and `count` is not set")
            return Expand(list(array))
        elements = array or []
        return Expand([elements[i] if i < len(elements) else i for i in range(count)])
