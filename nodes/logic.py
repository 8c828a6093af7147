"""logic (if-else): pick the first matching case; its value is the output.

Two forms, as in Scenario: with an input named `condition`, a case matches when that value,
stringified as JSON scalars are, equals `case.condition`. Without it, every `case.condition` is
an expression (CEL, or a jinja2 template) over the node's inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.compile.models import FlowNode
from engine.errors import ExpressionEvaluationError
from engine.protocols import CompiledExpression, Completed, Failed, NodeCall, Outcome
from nodes._base import BaseKind, json_text


def uses_literal_condition(node: FlowNode) -> bool:
    return any(i.name == "condition" for i in node.inputs or [])


def truthy(value: Any) -> bool:
    """Whether a condition's value selects its case (a rendered template is text)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "none", "null", "no")
    return bool(value)


class LogicKind(BaseKind):
    type_name = "logic"

    def check(self, node: FlowNode) -> list[tuple[str, str]]:
        problems = []
        if node.logic_type not in (None, "if-else"):
            problems.append(
                (f"unknown logicType `{node.logic_type}`; expected `if-else`", "logicType")
            )
        if node.logic is None or not node.logic.cases:
            problems.append(("logic node has no cases; add `logic.cases`", "logic.cases"))
        for index, node_input in enumerate(node.inputs or []):
            if node_input.name == "output":
                problems.append(
                    (
                        "a logic input may not be named `output` (it is the chosen case)",
                        f"inputs[{index}].name",
                    )
                )
        return problems

    def expressions(self, node: FlowNode) -> dict[str, tuple[str, str]]:
        if uses_literal_condition(node) or node.logic is None:
            return {}
        return {
            f"case{index}": (case.condition, f"logic.cases[{index}].condition")
            for index, case in enumerate(node.logic.cases or [])
        }

    def start(self, call: NodeCall, expressions: Mapping[str, CompiledExpression]) -> Outcome:
        node: FlowNode = call.node
        logic = node.logic
        cases = logic.cases if logic is not None and logic.cases else []
        literal = uses_literal_condition(node)
        shown = json_text(call.inputs.get("condition")) if literal else None
        chosen: Any = None
        details: dict[str, Any] = {"form": "literal" if literal else "expression"}
        if literal:
            details["condition"] = call.inputs.get("condition")
        for index, case in enumerate(cases):
            if literal:
                matched = shown == case.condition
            else:
                try:
                    value = expressions[f"case{index}"].evaluate(call.inputs)
                except ExpressionEvaluationError as error:
                    return Failed(f"case {index + 1}: {error}")
                matched = truthy(value)
            if matched:
                chosen = case.value
                details.update(case=index + 1, caseCondition=case.condition, chosen=chosen)
                break
        else:
            chosen = logic.default if logic is not None else None
            details.update(case="default" if chosen is not None else None, chosen=chosen)
        return Completed({**call.inputs, "output": chosen}, details=details)
