"""Reading Scenario's editor graph (`editorInfo`): its nodes, its backwards edges, and what
each wire carries. The compiler that turns it into a flow is `engine/compile/publish.py`.

In a persisted edge, `source` is the downstream consumer and `sourceHandle` its input handle
(`<nodeId>-source-<name>`); `target` is the upstream producer and `targetHandle` its output
handle (`<nodeId>-target-<name>`). A `Wire` is an edge read the way data flows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

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
PRODUCERS_WITH_APPROVAL = frozenset(
    {"model", "llm", "transformText", "splitText", "groupItems", "sliceAssets", "ifElse"}
    | {"forEachEnd"}
)


def editor_label(node: dict[str, Any]) -> str:
    """model `model1` ("Image generator"): the id a flow names and the title the user sees."""
    data = node.get("data")
    title = data.get("title") if isinstance(data, dict) else None
    shown = ""
    if isinstance(title, str) and title.strip() and title != node.get("id"):
        shown = f" ({json.dumps(title, ensure_ascii=False)})"
    return f"{node.get('type')} `{node.get('id')}`{shown}"


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
        for handle in self.data.get("inputHandles") or []:
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
    for index, raw in enumerate(nodes):
        node = _read_node(raw, index, prefix, problems)
        if node is None:
            continue
        if node.id in graph.nodes:
            problems.append(node.problem("duplicate node id"))
            continue
        graph.nodes[node.id] = node
    for index, raw in enumerate(edges):
        wire = _read_edge(raw, index, graph.nodes, f"{where}.edges[{index}]", problems)
        if wire is not None:
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
    if node_type == "modelInput":
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
                f"node `{node_id}`: unknown type `{node_type}`"
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
            message = f"edge `{raw.get('id', index)}`: unknown node `{node_id}`"
            problems.append(Problem(message, path=f"{path}.{end}"))
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
    if "stickyNote" in (consumer.type, producer.type):
        problems.append(Problem("a sticky note is never connected", path=path))
        return None
    return Wire(producer, output, consumer, handle, index)


class Structure:
    """What the wiring means: an order (producers first), which forEachEnd closes which
    forEach, each loop's body, each producer's approval gates; every problem collected."""

    def __init__(self, graph: EditorGraph) -> None:
        self.graph = graph
        self.nodes = graph.nodes
        self.prefix = graph.prefix
        self.problems: list[Problem] = []
        self.loop_of_end: dict[str, str] = {}
        self.bodies: dict[str, list[str]] = {}
        self.gates: dict[str, list[str]] = {}  # producer id -> approval ids
        self.order = self._order()
        self._check_pins()
        self._pair_loops()
        self._find_bodies()
        self._find_gates()

    def _order(self) -> list[EditorNode]:
        """The nodes, producers before consumers (editor order among equals); a cycle is a
        problem."""
        graph: nx.DiGraph = nx.DiGraph()
        graph.add_nodes_from(self.nodes)
        for node in self.nodes.values():
            graph.add_edges_from((w.producer.id, node.id) for w in node.wires_in)
        try:
            ids = list(nx.lexicographical_topological_sort(graph, key=self.position))
        except nx.NetworkXUnfeasible:
            cycle = [edge[0] for edge in nx.find_cycle(graph)]
            self.problems.append(
                Problem(
                    f"cycle: {' -> '.join([*cycle, cycle[0]])}",
                    path=f"{self.prefix}editorInfo.edges",
                    node_id=cycle[0],
                )
            )
            ids = sorted(self.nodes, key=self.position)
        return [self.nodes[i] for i in ids]

    def position(self, node_id: str) -> str:
        return f"{self.nodes[node_id].index:09d}"

    def _check_pins(self) -> None:
        reaches_model = False
        for node in self.nodes.values():
            if node.pinned_input and node.type not in VALUE_NODES:
                self.problems.append(
                    node.problem("only text and asset nodes can be inputs", "isInput")
                )
            if node.pinned_output:
                if node.type not in ("model", "llm", "forEachEnd"):
                    self.problems.append(
                        node.problem(
                            "only model, llm and forEachEnd nodes can be outputs", "isOutput"
                        )
                    )
                elif node.type != "forEachEnd" or self._upstream_has_model(node):
                    reaches_model = True
        if self.nodes and not reaches_model:
            self.problems.append(
                Problem(
                    "no output pin reaches a model: pin a model or llm node, or the forEachEnd "
                    "of a loop with one, as an output (`data.isOutput: true`)",
                    path=f"{self.prefix}editorInfo.nodes",
                )
            )

    def _upstream_has_model(self, node: EditorNode) -> bool:
        seen, stack = {node.id}, [node]
        while stack:
            for wire in stack.pop().wires_in:
                if wire.producer.type in ("model", "llm"):
                    return True
                if wire.producer.id not in seen:
                    seen.add(wire.producer.id)
                    stack.append(wire.producer)
        return False

    # ----- loops and gates ----------------------------------------------------------------------

    def _pair_loops(self) -> None:
        for end in self.nodes.values():
            if end.type != "forEachEnd":
                continue
            parent = end.data.get("parentNodeId")
            loop = self.nodes.get(parent) if isinstance(parent, str) else None
            if loop is None or loop.type != "forEach":
                self.problems.append(
                    end.problem(f"`parentNodeId` `{parent}` names no forEach node", "parentNodeId")
                )
            elif loop.id in self.loop_of_end.values():
                self.problems.append(
                    end.problem(f"forEach `{loop.id}` already has an end", "parentNodeId")
                )
            else:
                self.loop_of_end[end.id] = loop.id
        ended = set(self.loop_of_end.values())
        for loop in self.nodes.values():
            if loop.type == "forEach" and loop.id not in ended:
                self.problems.append(
                    loop.problem("has no forEachEnd (a forEachEnd whose `parentNodeId` names it)")
                )

    def _find_bodies(self) -> None:
        """A loop's body: the nodes downstream of the forEach, its own end excluded, and
        nothing that also reads the end's collection."""
        for end_id, loop_id in self.loop_of_end.items():
            loop, end = self.nodes[loop_id], self.nodes[end_id]
            body = _downstream(loop, stop=end_id)
            after = _downstream(end)
            for node_id in sorted(body & after, key=self.position):
                self.problems.append(
                    self.nodes[node_id].problem(
                        f"reads both the items of forEach `{loop_id}` and its end `{end_id}`"
                    )
                )
            feeders = [w.producer for w in end.wires_in]
            if not feeders:
                self.problems.append(end.problem("collects nothing: wire the loop's last node in"))
            for feeder in feeders:
                if feeder.id not in body:
                    self.problems.append(
                        end.problem(f"is fed by `{feeder.id}`, which is not in its loop")
                    )
            members = [n for n in body if self.nodes[n].flow_type is not None]
            if not members:
                self.problems.append(loop.problem("has nothing between it and its end"))
            self.bodies[loop_id] = sorted(members, key=self.position)

    def _find_gates(self) -> None:
        for gate in self.nodes.values():
            if gate.type != "approval":
                continue
            for wire in gate.wires_out:
                self.problems.append(
                    wire.consumer.problem(
                        f"reads approval `{gate.id}`, which has no outputs: wire it to the "
                        "producer's own output (the approval only pauses its consumers)"
                    )
                )
            if len(gate.wires_in) != 1:
                self.problems.append(
                    gate.problem("needs one producer wired into it (its approval handle)")
                )
                continue
            producer = gate.wires_in[0].producer
            if producer.type not in PRODUCERS_WITH_APPROVAL:
                self.problems.append(gate.problem(f"a {producer.type} node has no approval handle"))
                continue
            self.gates.setdefault(producer.id, []).append(gate.id)

    def flow_id(self, node: EditorNode) -> str:
        """The flow node that stands for `node`: itself, or for a loop's end the loop."""
        return self.loop_of_end.get(node.id, node.id)


def _downstream(node: EditorNode, *, stop: str | None = None) -> set[str]:
    seen: set[str] = set()
    stack = [node]
    while stack:
        for wire in stack.pop().wires_out:
            consumer = wire.consumer
            if consumer.id == stop or consumer.id in seen or consumer.id == node.id:
                continue
            seen.add(consumer.id)
            stack.append(consumer)
    return seen
