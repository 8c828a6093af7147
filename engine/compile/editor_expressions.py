"""The CEL a published editor node runs: if/else condition blocks, split and slice.

Pure functions: each returns the expression and the problems found, as (message, data field).
"""

from __future__ import annotations

import json
import math
from typing import Any

OPERATORS = ("isEmpty", "isNotEmpty", "contains", "notContains", "equals", "notEquals")
Problems = list[tuple[str, str]]


def cel_string(text: str) -> str:
    """`text` as a single-quoted CEL literal."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + escaped.replace("\n", "\\n").replace("\r", "\\r") + "'"


def split_expression(data: dict[str, Any]) -> str:
    """splitText: the text split at `splitDelimiter` (default `,`), items trimmed, empty ones
    left out."""
    delimiter = data.get("splitDelimiter")
    delimiter = delimiter if isinstance(delimiter, str) and delimiter else ","
    return f"input.split({cel_string(delimiter)}).map(s, trim(s)).filter(s, s != '')"


def slice_expression(data: dict[str, Any]) -> tuple[str, Problems]:
    """sliceAssets: `count` items from `from` (a negative `from` counts from the end; no
    `count` takes the rest). Both are strings in the editor."""
    problems: Problems = []
    bounds: list[int | None] = []
    for name, default in (("from", "0"), ("count", "")):
        raw = data.get(name, default)
        text = str(raw).strip() if raw is not None else ""
        if text == "" and name == "count":
            bounds.append(None)
            continue
        try:
            bounds.append(int(text))
        except ValueError:
            problems.append((f"`{name}` `{raw}` is not a whole number", name))
            bounds.append(0)
    start, count = bounds[0] or 0, bounds[1]
    if count is not None and count < 0:
        problems.append((f"`count` `{count}` is negative", "count"))
    if count is None or start < 0 <= start + count:
        return f"slice(input, {start}, size(input))", problems
    return f"slice(input, {start}, {start + max(count, 0)})", problems


def block_expression(index: int, block: Any, names: set[str]) -> tuple[str | None, Problems]:
    """Condition block `index` of an if/else as one CEL condition over `names` (the wired
    inputs, `${nodeId}_${handle}`): its conditions joined by its `logic` (and, or)."""
    where = f"conditionBlocks[{index}]"
    if not isinstance(block, dict):
        return None, [("a condition block is an object", where)]
    problems: Problems = []
    logic = block.get("logic", "and")
    conditions = block.get("conditions")
    if logic not in ("and", "or"):
        problems.append((f"`logic` `{logic}` is not `and` or `or`", f"{where}.logic"))
    if not isinstance(conditions, list) or not conditions:
        return None, [*problems, ("a block needs conditions", f"{where}.conditions")]
    parts = []
    for position, condition in enumerate(conditions):
        part = _condition(f"{where}.conditions[{position}]", condition, names, problems)
        if part is not None:
            parts.append(part)
    if problems:
        return None, problems
    return (" || " if logic == "or" else " && ").join(parts), problems


def _condition(where: str, condition: Any, names: set[str], problems: Problems) -> str | None:
    if not isinstance(condition, dict):
        problems.append(("a condition is an object", where))
        return None
    field, operator, value = (condition.get(k) for k in ("field", "operator", "value"))
    if not isinstance(field, str) or field not in names:
        wired = ", ".join(f"`{n}`" for n in sorted(names)) or "none"
        problems.append(
            (
                f"condition field `{field}` names no wired input (wired: {wired}); a field is "
                "`<nodeId>_<handle>` of a node wired into the if/else",
                f"{where}.field",
            )
        )
        return None
    if operator not in OPERATORS:
        expected = ", ".join(OPERATORS)
        problems.append(
            (f"unknown operator `{operator}`; expected {expected}", f"{where}.operator")
        )
        return None
    # a number or a boolean is never empty and contains nothing: `size` and `contains` are
    # asked of texts and lists only
    sized = f"(type({field}) == string || type({field}) == list)"
    empty = f"({field} == null || ({sized} && size({field}) == 0))"
    if operator in ("isEmpty", "isNotEmpty"):
        return empty if operator == "isEmpty" else f"!{empty}"
    if value is None or value == "":
        problems.append((f"`{operator}` needs a `value`", f"{where}.value"))
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    if operator in ("contains", "notContains"):
        found = f"({sized} && {field}.contains({cel_string(text)}))"
        return found if operator == "contains" else f"!{found}"
    equal = f"{field} == {cel_string(text)}"
    try:  # `3` also equals the number 3, `true` the boolean
        scalar = json.loads(text)
    except ValueError:
        scalar = None
    if isinstance(scalar, bool) or (isinstance(scalar, int | float) and math.isfinite(scalar)):
        equal = f"({equal} || {field} == {json.dumps(scalar)})"
    return equal if operator == "equals" else f"!({equal})"
