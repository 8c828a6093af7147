"""Run inputs checked against the workflow's `inputs` contract, every problem at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.compile.document import value_problem
from engine.compile.models import NodeInput, RequiredRules, Workflow
from engine.errors import InputError, Problem

_SCALAR_CHECKS = {
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "string": lambda v: isinstance(v, str),
    "file": lambda v: isinstance(v, str),
    "model": lambda v: isinstance(v, str),
}
_ARRAY_ELEMENT = {
    "string_array": "string",
    "number_array": "number",
    "file_array": "file",
    "model_array": "model",
}
_TYPE_WORDS = {
    "boolean": "a boolean",
    "number": "a number",
    "integer": "a whole number",
    "string": "a string",
    "file": "an asset id or url (string)",
    "model": "a model id (string)",
}


def is_defined(value: Any) -> bool:
    """An input is defined when given and not null, `""` or `[]`."""
    return value is not None and value != "" and value != []


def validate_run_inputs(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """Return the inputs with defaults applied, or raise InputError listing every problem."""
    problems: list[Problem] = []
    declared = {item.name: item for item in workflow.inputs}
    for name, value in given.items():
        found = value_problem(value, f"inputs.{name}")
        if found is not None:
            problems.append(found)
        if name not in declared:
            known = ", ".join(f"`{n}`" for n in declared) or "none"
            problems.append(
                Problem(
                    f"unknown input `{name}`; the workflow declares: {known}", path=f"inputs.{name}"
                )
            )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        value = given.get(name)
        if value is None and spec.default is not None:
            value = spec.default
        if value is not None:
            values[name] = value
    for name, spec in declared.items():
        value = values.get(name)
        required = _required_message(spec.required, values) if spec.required else None
        if required is not None and not is_defined(value):
            problems.append(Problem(f"input `{name}` is required{required}", path=f"inputs.{name}"))
            continue
        if value is not None:
            problems.extend(Problem(m, path=f"inputs.{name}") for m in _check_value(spec, value))
    if problems:
        raise InputError(problems)
    return values


def _required_message(rules: RequiredRules, values: Mapping[str, Any]) -> str | None:
    """Why the input is required now (a suffix for the message), or None when it is not."""
    if rules.always:
        return ""
    for other, message in (rules.if_defined or {}).items():
        if is_defined(values.get(other)):
            return f" when `{other}` is given" + (
                f" ({message})" if isinstance(message, str) and message else ""
            )
    for other, message in (rules.if_not_defined or {}).items():
        if not is_defined(values.get(other)):
            return f" when `{other}` is not given" + (
                f" ({message})" if isinstance(message, str) and message else ""
            )
    if rules.conditional is not None and rules.conditional.values:
        hits = [values.get(other) in allowed for other, allowed in rules.conditional.values.items()]
        met = all(hits) if rules.conditional.operator == "and" else any(hits)
        if met:
            shown = f" {rules.conditional.operator} ".join(
                f"`{other}` is one of {allowed}"
                for other, allowed in rules.conditional.values.items()
            )
            return f" when {shown}"
    for other, allowed in (rules.conditional_values or {}).items():
        options = (
            allowed
            if isinstance(allowed, list)
            else [part.strip() for part in str(allowed).split(",") if part.strip()]
        )
        current = values.get(other)
        if current is not None and (current in options or str(current) in options):
            return f" when `{other}` is `{current}`"
    return None


def _check_value(spec: NodeInput, value: Any) -> list[str]:
    kind = spec.type
    name = spec.name
    if kind in _SCALAR_CHECKS:
        if not _SCALAR_CHECKS[kind](value):
            return [f"input `{name}` must be {_TYPE_WORDS[kind]}, got `{_shown(value)}`"]
        return _check_bounds(spec, value)
    if kind in _ARRAY_ELEMENT:
        if not isinstance(value, list):
            return [f"input `{name}` must be an array, got `{_shown(value)}`"]
        element = _ARRAY_ELEMENT[kind]
        problems = [
            f"input `{name}`[{index}] must be {_TYPE_WORDS[element]}, got `{_shown(item)}`"
            for index, item in enumerate(value)
            if not _SCALAR_CHECKS[element](item)
        ]
        return problems or _check_bounds(spec, value)
    if kind == "inputs_array" and not isinstance(value, list):
        return [f"input `{name}` must be an array of objects, got `{_shown(value)}`"]
    return []


def _check_bounds(spec: NodeInput, value: Any) -> list[str]:
    problems = []
    name = spec.name
    if spec.allowed_values is not None:
        outside = [
            v
            for v in (value if isinstance(value, list) else [value])
            if v not in spec.allowed_values
        ]
        if outside:
            problems.append(
                f"input `{name}` must be one of {_shown(spec.allowed_values)}, "
                f"got `{_shown(outside[0])}`"
            )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if spec.min is not None and value < spec.min:
            problems.append(f"input `{name}` must be at least {_number(spec.min)}, got {value}")
        if spec.max is not None and value > spec.max:
            problems.append(f"input `{name}` must be at most {_number(spec.max)}, got {value}")
    if isinstance(value, str):
        if spec.min_length is not None and len(value) < spec.min_length:
            problems.append(f"input `{name}` must be at least {spec.min_length} characters long")
        if spec.max_length is not None and len(value) > spec.max_length:
            problems.append(f"input `{name}` must be at most {spec.max_length} characters long")
    if isinstance(value, list):
        if spec.min is not None and len(value) < spec.min:
            problems.append(
                f"input `{name}` needs at least {_number(spec.min)} items, got {len(value)}"
            )
        if spec.max is not None and len(value) > spec.max:
            problems.append(
                f"input `{name}` takes at most {_number(spec.max)} items, got {len(value)}"
            )
        if spec.min_length is not None and len(value) < spec.min_length:  # items, on an array
            problems.append(
                f"input `{name}` needs at least {spec.min_length} items, got {len(value)}"
            )
        if spec.max_length is not None and len(value) > spec.max_length:
            problems.append(
                f"input `{name}` takes at most {spec.max_length} items, got {len(value)}"
            )
    return problems


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _shown(value: Any) -> str:
    import json

    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."
