"""user-approval: waits in `processing` until a person approves (success) or rejects."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.errors import DecisionError
from engine.protocols import (
    JSON,
    CompiledExpression,
    Completed,
    NodeCall,
    Outcome,
    Reject,
    Wait,
)
from nodes._base import BaseKind


class UserApprovalKind(BaseKind):
    type_name = "user-approval"

    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        return Wait()

    def decide(self, node: Any, items: list[JSON] | None, decision: JSON) -> Completed | Reject:
        if decision == "approve":
            return Completed({}, details={"decision": "approve"})
        if decision == "reject":
            return Reject()
        raise DecisionError(
            f"user-approval `{node.id}` takes `approve` or `reject`, got `{json.dumps(decision)}`"
        )
