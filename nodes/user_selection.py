"""user-selection: freezes its candidates into `items`, waits for chosen indices or a reject."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.compile.models import FlowNode
from engine.errors import DecisionError
from engine.protocols import (
    JSON,
    CompiledExpression,
    Completed,
    Failed,
    NodeCall,
    Outcome,
    Reject,
    Wait,
)
from nodes._base import BaseKind

DEFAULT_MIN = 1
DEFAULT_MAX = 100


def selection_bounds(node: FlowNode) -> tuple[int, int]:
    """The `min`/`max` of the node's array input (defaults 1 and 100)."""
    for node_input in node.inputs or []:
        if (
            node_input.type.endswith("_array")
            or node_input.min is not None
            or node_input.max is not None
        ):
            low = int(node_input.min) if node_input.min is not None else DEFAULT_MIN
            high = int(node_input.max) if node_input.max is not None else DEFAULT_MAX
            return low, high
    return DEFAULT_MIN, DEFAULT_MAX


class UserSelectionKind(BaseKind):
    type_name = "user-selection"

    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        candidates = next((v for v in call.inputs.values() if isinstance(v, list)), None)
        if candidates is None:
            return Failed("no input holds an array of candidates to select from")
        return Wait(items=list(candidates))

    def decide(self, node: Any, items: list[JSON] | None, decision: JSON) -> Completed | Reject:
        if decision == "reject":
            return Reject()
        indices = decision.get("select") if isinstance(decision, dict) else None
        if not isinstance(indices, list):
            raise DecisionError(
                f'user-selection `{node.id}` takes `reject` or `{{"select": [indices]}}`, '
                f"got `{json.dumps(decision)}`"
            )
        candidates = items or []
        low, high = selection_bounds(node)
        for index in indices:
            if not isinstance(index, int) or isinstance(index, bool):
                raise DecisionError(
                    f"user-selection `{node.id}`: index `{index}` is not an integer"
                )
            if not 0 <= index < len(candidates):
                raise DecisionError(
                    f"user-selection `{node.id}`: index `{index}` is out of range; "
                    f"{_count(len(candidates))} to choose from"
                )
        if len(set(indices)) != len(indices):
            raise DecisionError(
                f"user-selection `{node.id}`: indices must not repeat, got `{indices}`"
            )
        if not low <= len(indices) <= high:
            raise DecisionError(
                f"user-selection `{node.id}`: choose between {low} and {high} items, "
                f"got {len(indices)}"
            )
        chosen = [candidates[i] for i in indices]
        return Completed(
            {"output": chosen}, details={"decision": "select", "selectedIndices": indices}
        )


def _count(items: int) -> str:
    if items == 0:
        return "there are no items"
    if items == 1:
        return "there is 1 item (index 0)"
    return f"there are {items} items (0 to {items - 1})"
