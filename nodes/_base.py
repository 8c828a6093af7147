"""What most node kinds share: no static checks and no expressions unless they say so."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from engine.protocols import JSON, CompiledExpression, NodeCall, Outcome


class BaseKind(ABC):
    type_name: str = ""

    def check(self, node: Any) -> list[tuple[str, str]]:
        return []

    def expressions(self, node: Any) -> dict[str, tuple[str, str]]:
        return {}

    @abstractmethod
    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        """Decide what happens now that the node's inputs are resolved."""


def json_text(value: JSON) -> str:
    """A value as Scenario compares it: JSON scalars stringified (`true`, `4`, `2.5`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
