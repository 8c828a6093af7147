"""Reading Scenario's editor graph (`editorInfo`): its nodes and its backwards edges, as wires.
What the wiring means is `editor_structure.py`; the flow it publishes to, `publish.py`.

In a persisted edge, `source` is the downstream consumer and `sourceHandle` its input handle
(`<nodeId>-source-<name>`); `target` is the upstream producer and `targetHandle` its output
handle (`<nodeId>-target-<name>`). A `Wire` is an edge read the way data flows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Problem

# persisted type -> the flow node type it compiles to (None: it feeds values, runs nothing)
EDITOR_TYPES: dict[str, str | None] = {
    "text": None,
    "asset": None,
    "model": "custom-model",
    "llm": "generate-prompt",  # an LLM makes text, as a generate-prompt node does
    "transformText": "transform",
    "splitText": "transform",
    "groupItems": "transform",
    "sliceAssets": "transform",
    "aspectRatio": "transform",
    "ifElse": "logic",
    "forEach": "for-each",
    "forEachEnd": None,  # its consumers read the loop's collection
    "approval": "user-approval",
    "stickyNote": None,
}
# the editor's palette names, which are not persisted types
PALETTE_NAMES = {
    "image-generator": "model",
    "video-generator": "model",
    "3d-model": "model",
    "video-studio": "model",
    "upscale": "model",
    "remove-background": "model",
    "prompt-builder": "transformText",
    "if-else": "ifElse",
    "for-each": "forEach",
    "split-text": "splitText",
    "group-items": "groupItems",
    "slice-assets": "sliceAssets",
    "aspect-ratio": "aspectRatio",
    "sticky-note": "stickyNote",
}
VALUE_NODES = frozenset({"text", "asset"})
MAX_NODES = 5_000  # an editor graph far larger than any editor holds: refused before any work
PRODUCERS_WITH_APPROVAL = frozenset(
    {"model", "llm", "transformText", "splitText", "groupItems", "sliceAssets", "ifElse"}
    | {"forEachEnd"}
)


# ids a published flow gives another meaning: a run input, if/else branches, loop clones
RESERVED_ID = re.compile(r"workflow|else|if[0-9]+|.*#.*")


def editor_label(node: dict[str, Any]) -> str:
    """model `model1` ("Image generator"): the id a flow names and the title the user sees."""
    data = node.get("data")
    title = data.get("title") if isinstance(data, dict) else None
    shown = ""
    if isinstance(title, str) and title.strip() and title != node.get("id"):
        shown = f" ({json.dumps(title, ensure_ascii=False)})"
    kind = node.get("type")
    return f"{kind if isinstance(kind, str) and kind else 'node'} `{node.get('id')}`{shown}"


@dataclass(slots=True)
class EditorNode:
    """One node of the editor graph, where it sits in the document, and its wires."""

    id: str
    type: str
    data: dict[str, Any]
    index: int
    prefix: str
    wires_in: list[Wire] = field(default_factory=list)
    wires_out: list[Wire] = field(default_factory=list)

    @property
    def title(self) -> str | None:
        title = self.data.get("title")
        return title if isinstance(title, str) and title.strip() else None

    @property
    def label(self) -> str:
        return editor_label({"id": self.id, "type": self.type, "data": self.data})

    @property
    def pinned_input(self) -> bool:
        return self.data.get("isInput") is True

    @property
    def pinned_output(self) -> bool:
        return self.data.get("isOutput") is True

    @property
    def flow_type(self) -> str | None:
        return EDITOR_TYPES.get(self.type)

    def path(self, data_field: str = "") -> str:
        base = f"{self.prefix}editorInfo.nodes[{self.index}]"
        return f"{base}.data.{data_field}" if data_field else base

    def problem(self, message: str, data_field: str = "") -> Problem:
        return Problem(f"{self.label}: {message}", path=self.path(data_field), node_id=self.id)

    def handle_type(self, name: str) -> str | None:
        """The `type` the node's `inputHandles` give the input handle `name`, if any."""
        handles = self.data.get("inputHandles")
        for handle in handles if isinstance(handles, list) else []:
            if isinstance(handle, dict) and handle.get("name") == name:
                found = handle.get("type")
                return found if isinstance(found, str) else None
        return None


@dataclass(frozen=True, slots=True)
class Wire:
    """An edge the way data flows: `producer`'s output `output` into `consumer`'s `handle`."""

    producer: EditorNode
    output: str
    consumer: EditorNode
    handle: str
    index: int  # of the edge in editorInfo.edges

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.producer.id, self.output, self.consumer.id, self.handle)

    @property
    def variable(self) -> str:
        """The name CEL and if/else conditions give this value: `${nodeId}_${handle}`."""
        return f"{self.producer.id}_{self.output}"


@dataclass(slots=True)
class EditorGraph:
    nodes: dict[str, EditorNode]
    input_keys: list[str]
    problems: list[Problem]
    prefix: str  # where `editorInfo` sits in the document (`workflow.` in an envelope)


def read_graph(editor: Any, prefix: str) -> EditorGraph:
    """The editor graph of `editorInfo`, every problem of its shape collected."""
    problems: list[Problem] = []
    graph = EditorGraph({}, [], problems, prefix)
    where = f"{prefix}editorInfo"
    if not isinstance(editor, dict):
        problems.append(Problem("`editorInfo` must be an object", path=where))
        return graph
    nodes, edges = editor.get("nodes"), editor.get("edges", [])
    if not isinstance(nodes, list):
        problems.append(Problem("`editorInfo.nodes` must be an array", path=f"{where}.nodes"))
        return graph
    if not isinstance(edges, list):
        problems.append(Problem("`editorInfo.edges` must be an array", path=f"{where}.edges"))
        edges = []
    for name, found, most in (("nodes", nodes, MAX_NODES), ("edges", edges, MAX_NODES * 4)):
        if len(found) > most:
            problems.append(
                Problem(
                    f"an editor graph of {len(found):,} {name}: publish takes at most {most:,} "
                    "(Scenario's cloud runs 50 nodes a workflow)",
                    path=f"{where}.{name}",
                )
            )
            return graph
    for index, raw in enumerate(nodes):
        node = _read_node(raw, index, prefix, problems)
        if node is None:
            continue
        if node.id in graph.nodes:
            problems.append(node.problem("duplicate node id"))
            continue
        graph.nodes[node.id] = node
    seen: set[tuple[str, str, str, str]] = set()
    for index, raw in enumerate(edges):
        wire = _read_edge(raw, index, graph.nodes, f"{where}.edges[{index}]", problems)
        if wire is None or wire.key in seen:
            continue  # the editor may save one edge twice: it is one wire
        seen.add(wire.key)
        wire.producer.wires_out.append(wire)
        wire.consumer.wires_in.append(wire)
    keys = editor.get("inputKeys", [])
    if isinstance(keys, list):
        graph.input_keys = [k for k in keys if isinstance(k, str)]
    return graph


def _read_node(raw: Any, index: int, prefix: str, problems: list[Problem]) -> EditorNode | None:
    path = f"{prefix}editorInfo.nodes[{index}]"
    if not isinstance(raw, dict):
        problems.append(Problem("a node must be an object", path=path))
        return None
    node_id, node_type, data = raw.get("id"), raw.get("type"), raw.get("data", {})
    if not isinstance(node_id, str) or not node_id:
        problems.append(Problem("a node needs a string `id`", path=f"{path}.id"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(f"node `{node_id}`: `data` must be an object", path=f"{path}.data"))
        data = {}
    node = EditorNode(node_id, node_type if isinstance(node_type, str) else "", data, index, prefix)
    if RESERVED_ID.fullmatch(node_id):
        problems.append(
            node.problem(
                f"the id `{node_id}` means something else in a flow (a run input, an if/else "
                "branch or a loop clone): give the node another id",
            )
        )
    if not node.type:
        problems.append(node.problem("has no `type`", ""))
    elif node_type == "modelInput":
        problems.append(
            node.problem(
                "`modelInput` nodes (a model setting exposed as its own node) do not publish; "
                "put the setting in the model's `data.form`, or pin a text node and wire it"
            )
        )
    elif node.type not in EDITOR_TYPES:
        hint = PALETTE_NAMES.get(node.type)
        known = ", ".join(f"`{name}`" for name in EDITOR_TYPES)
        problems.append(
            Problem(
                f"{editor_label({'id': node_id, 'data': data})}: unknown type `{node_type}`"
                + (f" (an editor palette name): write `{hint}`" if hint else f"; expected {known}"),
                path=f"{path}.type",
                node_id=node_id,
            )
        )
    return node


def _read_edge(
    raw: Any, index: int, nodes: dict[str, EditorNode], path: str, problems: list[Problem]
) -> Wire | None:
    if not isinstance(raw, dict):
        problems.append(Problem("an edge must be an object", path=path))
        return None
    ends = []
    for end, side in (("source", "source"), ("target", "target")):
        handle_key = f"{end}Handle"
        node_id, handle = raw.get(end), raw.get(handle_key)
        node = nodes.get(node_id) if isinstance(node_id, str) else None
        if node is None:
            edge = f"edge `{raw.get('id', index)}`"
            message = f"unknown node `{node_id}`" if node_id is not None else f"has no `{end}`"
            problems.append(Problem(f"{edge}: {message}", path=f"{path}.{end}"))
            return None
        stem = f"{node.id}-{side}-"
        if not isinstance(handle, str) or not handle.startswith(stem) or handle == stem:
            problems.append(
                Problem(
                    f"edge `{raw.get('id', index)}`: `{handle_key}` `{handle}` is not "
                    f"`{stem}<name>` (edges point backwards: `source` is the consumer and its "
                    "input handle, `target` the producer and its output handle)",
                    path=f"{path}.{handle_key}",
                )
            )
            return None
        ends.append((node, handle.removeprefix(stem)))
    (consumer, handle), (producer, output) = ends
    for node in (consumer, producer):
        if node.type == "stickyNote":
            message = f"edge `{raw.get('id', index)}` connects {node.label}: a note is never wired"
            problems.append(Problem(message, path=path, node_id=node.id))
            return None
    return Wire(producer, output, consumer, handle, index)


def has_editor_graph(document: Any) -> bool:
    """Whether `document` holds an editor graph with nodes."""
    editor = document.get("editorInfo") if isinstance(document, dict) else None
    return isinstance(editor, dict) and bool(editor.get("nodes"))


def needs_publish(document: Any) -> bool:
    """A document whose flow is missing or empty and whose editor graph has nodes (a webapp
    export, or a draft saved by the editor): it runs once published."""
    return has_editor_graph(document) and not document.get("flow")
