"""The inputs a published editor graph declares and reads: the run contract (one input per
pinned text or asset node) and the type of each flow input a wire becomes."""

from __future__ import annotations

from typing import Any

from engine.compile.editor_graph import VALUE_NODES, EditorGraph, EditorNode
from engine.compile.models import INPUT_TYPES
from engine.errors import Problem

ARRAY_OF = {"file": "file_array", "string": "string_array", "number": "number_array"}
ELEMENT_OF = {array: single for single, array in ARRAY_OF.items()}
TEXT_TYPES = ("string", "number", "integer", "boolean")  # what a pinned text may be declared as


def input_type(node: EditorNode, handle: str, shape: str) -> str:
    """The type of a consumer's input: what its `inputHandles` declare, else the shape of the
    value; a model takes the first asset of a list unless its input is plural (`images`)."""
    declared = node.handle_type(handle)
    if declared in INPUT_TYPES:
        return declared
    if node.type in ("model", "llm") and shape == "file_array" and not _plural(handle):
        return "file"
    return shape


def _plural(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith("s") or "array" in lowered or "list" in lowered


def run_contract(graph: EditorGraph, declared: Any) -> tuple[list[dict[str, Any]], list[Problem]]:
    """One workflow input per pinned text or asset node, named by its id, in `inputKeys` order.
    The document's entry of that name gives what the node does not (description, placeholder,
    rules, a label); the node gives the type and, when it has a value, the default. Entries
    that name no pinned node are dropped: they belong to an older graph."""
    problems: list[Problem] = []
    if declared is not None and not isinstance(declared, list):
        problems.append(Problem("`inputs` must be an array", path=f"{graph.prefix}inputs"))
    entries = {
        entry["name"]: entry
        for entry in (declared if isinstance(declared, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    }
    keys = {key: position for position, key in enumerate(graph.input_keys)}
    pinned = sorted(
        (n for n in graph.nodes.values() if n.type in VALUE_NODES and n.pinned_input),
        key=lambda n: (keys.get(n.id, len(keys)), n.index),
    )
    contract = []
    for node in pinned:
        entry = _entry(node, entries.get(node.id, {}))
        problem = _default_problem(node, entry)
        if problem is not None:
            problems.append(problem)
        contract.append(entry)
    return contract, problems


def _entry(node: EditorNode, declared: dict[str, Any]) -> dict[str, Any]:
    value = node.data.get("value")
    entry = {"label": node.title or node.id, **declared, "name": node.id}
    if node.type == "text":
        kept = declared.get("type")
        entry["type"] = kept if kept in TEXT_TYPES else "string"
        entry.setdefault("required", {"always": False})
        if isinstance(value, str) and value:
            entry["default"] = value
        return entry
    entry["type"] = "file_array" if node.data.get("isMultiple") else "file"
    entry["kind"] = node.data.get("type", "image")
    entry.setdefault("required", {"always": node.data.get("isRequired") is True})
    if value not in (None, "", []):
        entry["default"] = value
    return entry


def _default_problem(node: EditorNode, entry: dict[str, Any]) -> Problem | None:
    default = entry.get("default")
    if entry["type"] not in ("number", "integer") or default is None:
        return None
    try:
        float(default)
    except (TypeError, ValueError):
        return node.problem(
            f"is declared a `{entry['type']}` input but its default `{default}` is not a number"
        )
    return None
