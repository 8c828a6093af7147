"""Publish: compile Scenario's editor graph (`editorInfo`) into the executable `flow`.

What Scenario documents (SCENARIO-EDITOR.md in the docs' sources) is followed; where the compiled
form is not documented, the rules below are flowgraph's and docs/editor.md states them:

- Flow node ids are the editor's node ids; a flow node keeps the editor `title`.
- `text` and `asset` nodes run nothing: a pinned one (`isInput`) is a workflow input named by
  its node id, read as `ref: {node: "workflow", name: <id>}`; any other gives its value.
- `model` becomes `custom-model`, `llm` `generate-prompt` (text): inputs are the wired handles,
  then the `form` settings not wired. Several wires into one handle merge: `ref.conditional`.
- `transformText` and `groupItems` become `transform`s whose CEL sees one input per wire,
  named `${nodeId}_${handle}`; `splitText`, `sliceAssets` and `aspectRatio` become `transform`s
  whose expression does what the node does, over one input named `input`.
- `ifElse` becomes a `logic` node: block i is case `if<i+1>` (its output), `else` the default.
  A wire from a branch handle into a node's `conditional` handle gates that node: an input
  `conditional` with `ref: {node: <ifElse>, equal: <branch>}`. A branch handle wired into a data
  input passes the if/else's input on, on that branch only.
- `forEach` becomes a `for-each` whose body is every node downstream of it and upstream of (or
  beside) its `forEachEnd`; a consumer of the end reads the collected values of the node that
  feeds the end. `approval` becomes a `user-approval` that depends on its producer and that
  every consumer of the producer depends on.
"""

from __future__ import annotations

import re
from typing import Any

from engine.compile.editor_expressions import (
    block_expression,
    cel_string,
    slice_expression,
    split_expression,
)
from engine.compile.editor_graph import (
    VALUE_NODES,
    EditorGraph,
    EditorNode,
    Structure,
    Wire,
    read_graph,
)
from engine.compile.models import INPUT_TYPES
from engine.errors import Problem, ValidationError

ASPECT_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")
BRANCH = re.compile(r"if([1-9][0-9]*)|else")
GATING_HANDLE = "conditional"
_PLACE = re.compile(r"editorInfo\.(nodes|edges)\[(\d+)\]")
_ARRAY_OF = {"file": "file_array", "string": "string_array", "number": "number_array"}
_ELEMENT_OF = {array: single for single, array in _ARRAY_OF.items()}


def needs_publish(document: Any) -> bool:
    """A document whose flow is missing or empty and whose editor graph has nodes (a webapp
    export, or a draft saved by the editor): it runs once published."""
    if not isinstance(document, dict) or document.get("flow"):
        return False
    editor = document.get("editorInfo")
    return isinstance(editor, dict) and bool(editor.get("nodes"))


def publish(document: dict[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """`document` with the `flow` and `inputs` its `editorInfo` compiles to (the rest, the editor
    graph included, unchanged). Raises ValidationError naming every problem by node id, title
    and field."""
    graph = read_graph(document.get("editorInfo"), prefix)
    publisher = _Publisher(graph, document.get("inputs"), prefix)
    flow = publisher.flow()
    inputs = publisher.inputs()
    problems = graph.problems + publisher.structure.problems + publisher.problems
    if problems:
        raise ValidationError(sorted(problems, key=_where), what="editor graph")
    return {**document, "flow": flow, "inputs": inputs}


class _Publisher:
    def __init__(self, graph: EditorGraph, declared: Any, prefix: str) -> None:
        self.graph = graph
        self.nodes = graph.nodes
        self.prefix = prefix
        self.problems: list[Problem] = []
        self.declared = declared if isinstance(declared, list) else []
        if declared is not None and not isinstance(declared, list):
            self.problems.append(Problem("`inputs` must be an array", path=f"{prefix}inputs"))
        self.structure = Structure(graph)
        self._shapes: dict[str, str | None] = {}
        self._feeding: set[str] = set()  # producers whose feed is being worked out

    # ----- the whole graph ----------------------------------------------------------------------

    def flow(self) -> list[dict[str, Any]]:
        flow = []
        for node in self.structure.order:
            if node.flow_type is None:
                continue
            built = self._flow_node(node)
            if built is not None:
                flow.append(built)
        return flow

    def inputs(self) -> list[dict[str, Any]]:
        """The run contract: the pinned text and asset nodes, in `inputKeys` order; an entry of
        the document's `inputs` with the same name is kept as it is (label, rules, default)."""
        declared = {
            entry["name"]: entry
            for entry in self.declared
            if isinstance(entry, dict) and isinstance(entry.get("name"), str)
        }
        keys = {key: position for position, key in enumerate(self.graph.input_keys)}
        pinned = sorted(
            (n for n in self.nodes.values() if n.type in VALUE_NODES and n.pinned_input),
            key=lambda n: (keys.get(n.id, len(keys)), n.index),
        )
        inputs = [declared.pop(n.id) if n.id in declared else _input_entry(n) for n in pinned]
        return inputs + list(declared.values())

    # ----- one node -----------------------------------------------------------------------------

    def _flow_node(self, node: EditorNode) -> dict[str, Any] | None:
        built: dict[str, Any] = {"id": node.id, "type": node.flow_type}
        if node.title:
            built["title"] = node.title
        data_wires = [w for w in node.wires_in if w.handle != GATING_HANDLE]
        if node.type in ("model", "llm"):
            self._model(node, data_wires, built)
        elif node.type in ("transformText", "groupItems"):
            self._expression(node, data_wires, built)
        elif node.type in ("splitText", "sliceAssets", "aspectRatio"):
            self._preset(node, data_wires, built)
        elif node.type == "ifElse":
            self._if_else(node, data_wires, built)
        elif node.type == "forEach":
            built["inputs"] = self._inputs_by_handle(node, data_wires, array=True)
            built["loopBodyNodeIds"] = self.structure.bodies.get(node.id, [])
        elif node.type == "approval":
            if node.wires_in:
                built["dependsOn"] = [self.structure.flow_id(node.wires_in[0].producer)]
            message = node.data.get("message")
            built["message"] = message if isinstance(message, str) and message else "Continue ?"
            return built
        gate = self._gating_input(node)
        if gate is not None:
            built.setdefault("inputs", []).append(gate)
        waits = sorted(
            {g for w in node.wires_in for g in self.structure.gates.get(w.producer.id, [])},
            key=self.structure.position,
        )
        if waits:
            built["dependsOn"] = waits
        if node.pinned_output or self._feeds_pinned_end(node):
            built["includeOutputsInWorkflowJob"] = True
        return built

    def _model(self, node: EditorNode, wires: list[Wire], built: dict[str, Any]) -> None:
        model_id = node.data.get("modelId")
        if not isinstance(model_id, str) or not model_id.strip():
            self.problems.append(node.problem("needs a `modelId`", "modelId"))
        else:
            built["modelId"] = model_id
        inputs = self._inputs_by_handle(node, wires)
        form = node.data.get("form", {})
        if not isinstance(form, dict):
            self.problems.append(node.problem("`form` must be an object of settings", "form"))
            form = {}
        wired = {i["name"] for i in inputs}
        for name, value in form.items():
            if name in wired or value is None:
                continue  # a wired input wins over the form's setting
            value_type = _value_type(value)
            if value_type is None:
                self.problems.append(
                    node.problem(f"setting `{name}` is not a value", f"form.{name}")
                )
                continue
            inputs.append({"name": name, "type": value_type, "value": value})
        built["inputs"] = inputs

    def _expression(self, node: EditorNode, wires: list[Wire], built: dict[str, Any]) -> None:
        source = node.data.get("value")
        if not isinstance(source, str) or not source.strip():
            what = "a CEL expression" if node.type == "transformText" else "a CEL list expression"
            self.problems.append(node.problem(f"needs {what} in `value`", "value"))
        else:
            built["logic"] = {"transform": source}
        built["inputs"] = self._variables(wires)

    def _variables(self, wires: list[Wire]) -> list[dict[str, Any]]:
        """One input per wire, named as CEL sees it: `${nodeId}_${handle}`."""
        inputs, seen = [], set()
        for wire in wires:
            if wire.variable in seen:
                continue
            seen.add(wire.variable)
            fed = self._feed(wire)
            if fed is not None:
                fields, shape = fed
                inputs.append({"name": wire.variable, "type": shape, **fields})
        return inputs

    def _preset(self, node: EditorNode, wires: list[Wire], built: dict[str, Any]) -> None:
        if node.type == "aspectRatio":
            ratio = node.data.get("output")
            if ratio not in ASPECT_RATIOS:
                self.problems.append(
                    node.problem(
                        f"`output` `{ratio}` is not one of {', '.join(ASPECT_RATIOS)}", "output"
                    )
                )
            built["logic"] = {"transform": cel_string(str(ratio))}
            return
        if len(wires) != 1:
            self.problems.append(node.problem(f"reads one input; {len(wires)} are wired"))
            built["inputs"] = []
            return
        fed = self._feed(wires[0])
        if fed is not None:
            fields, shape = fed
            built["inputs"] = [{"name": "input", "type": shape, **fields}]
        if node.type == "splitText":
            built["logic"] = {"transform": split_expression(node.data)}
            return
        expression, problems = slice_expression(node.data)
        self._report(node, problems)
        built["logic"] = {"transform": expression}

    def _if_else(self, node: EditorNode, wires: list[Wire], built: dict[str, Any]) -> None:
        built["logicType"] = "if-else"
        inputs = self._variables(wires)
        built["inputs"] = inputs
        names = {i["name"] for i in inputs}
        blocks = node.data.get("conditionBlocks")
        if not isinstance(blocks, list) or not blocks:
            self.problems.append(node.problem("has no condition blocks", "conditionBlocks"))
            blocks = []
        cases = []
        for index, block in enumerate(blocks):
            condition, problems = block_expression(index, block, names)
            self._report(node, problems)
            cases.append({"condition": condition or "false", "value": f"if{index + 1}"})
        built["logic"] = {"cases": cases, "default": "else"}

    def _report(self, node: EditorNode, problems: list[tuple[str, str]]) -> None:
        self.problems += [node.problem(message, field) for message, field in problems]

    def _gating_input(self, node: EditorNode) -> dict[str, Any] | None:
        wires = [w for w in node.wires_in if w.handle == GATING_HANDLE]
        if not wires:
            return None
        if len(wires) > 1:
            self.problems.append(node.problem("has more than one branch wired into `conditional`"))
            return None
        wire = wires[0]
        if wire.producer.type != "ifElse" or not self._branch_of(wire):
            self.problems.append(
                node.problem(
                    f"its `conditional` input takes an if/else branch (`if1`...`else`), not "
                    f"`{wire.output}` of {wire.producer.label}"
                )
            )
            return None
        return {
            "name": GATING_HANDLE,
            "type": "string",
            "ref": {"node": wire.producer.id, "equal": wire.output},
        }

    def _branch_of(self, wire: Wire) -> bool:
        """Whether `wire` leaves an if/else through one of its branch handles."""
        found = BRANCH.fullmatch(wire.output)
        if found is None:
            return False
        blocks = wire.producer.data.get("conditionBlocks")
        count = len(blocks) if isinstance(blocks, list) else 0
        return found.group(1) is None or int(found.group(1)) <= count

    def _feeds_pinned_end(self, node: EditorNode) -> bool:
        return any(
            w.consumer.type == "forEachEnd" and w.consumer.pinned_output for w in node.wires_out
        )

    # ----- what a wire carries ------------------------------------------------------------------

    def _inputs_by_handle(
        self, node: EditorNode, wires: list[Wire], *, array: bool = False
    ) -> list[dict[str, Any]]:
        """One input per input handle; several wires into one handle merge the branches."""
        handles: dict[str, list[Wire]] = {}
        for wire in wires:
            handles.setdefault(wire.handle, []).append(wire)
        inputs = []
        for handle, group in handles.items():
            built = self._input(node, handle, group)
            if built is not None:
                if array:
                    built["type"] = _ARRAY_OF.get(built["type"], built["type"])
                inputs.append(built)
        return inputs

    def _input(self, node: EditorNode, handle: str, wires: list[Wire]) -> dict[str, Any] | None:
        fed = [self._feed(w) for w in wires]
        if any(f is None for f in fed):
            return None
        shape = fed[0][1] if fed[0] is not None else "string"
        if len(wires) == 1 and fed[0] is not None:
            fields = fed[0][0]
        else:
            merged = []
            for wire, found in zip(wires, fed, strict=True):
                ref = found[0].get("ref") if found is not None else None
                if ref is None or ref.get("node") == "workflow" or "equal" in ref or "name" in ref:
                    self.problems.append(
                        node.problem(
                            f"input `{handle}` merges {wire.producer.label}, which runs nothing "
                            "(or is a loop's item): merge the nodes that run on each branch"
                        )
                    )
                    return None
                merged.append(ref["node"])
            fields = {"ref": {"conditional": merged}}
        return {"name": handle, "type": _input_type(node, handle, shape), **fields}

    def _feed(self, wire: Wire) -> tuple[dict[str, Any], str] | None:
        """What `wire` gives its consumer (a ref or a value) and the shape of that value; None
        when it gives nothing usable (reported where it is found; a cycle, with the order)."""
        if wire.producer.id in self._feeding:
            return None
        self._feeding.add(wire.producer.id)
        try:
            return self._feed_from(wire)
        finally:
            self._feeding.discard(wire.producer.id)

    def _feed_from(self, wire: Wire) -> tuple[dict[str, Any], str] | None:
        producer = wire.producer
        if producer.type in VALUE_NODES:
            return self._value_of(producer)
        if producer.type == "forEach":
            if wire.output == "index":
                return {"ref": {"node": producer.id, "name": "index"}}, "number"
            shape = self._shape(producer)
            return {"ref": {"node": producer.id}}, _ELEMENT_OF.get(shape or "", "string")
        if producer.type == "forEachEnd":
            if len(producer.wires_in) != 1:
                return None  # reported with the loop
            inner = self._feed(producer.wires_in[0])
            if inner is None:
                return None
            return inner[0], _ARRAY_OF.get(inner[1], inner[1])
        if producer.type == "ifElse":
            return self._pass_through(wire)
        if producer.type == "aspectRatio" and wire.output == "quality":
            return {"value": producer.data.get("quality")}, "string"
        if producer.flow_type is None or producer.type == "approval":
            return None  # reported where the producer is checked
        return {"ref": {"node": producer.id}}, self._shape(producer) or "string"

    def _value_of(self, node: EditorNode) -> tuple[dict[str, Any], str] | None:
        shape = "string"
        if node.type == "asset":
            shape = "file_array" if node.data.get("isMultiple") else "file"
        if node.pinned_input:
            return {"ref": {"node": "workflow", "name": node.id}}, shape
        value = node.data.get("value")
        if node.type == "asset" and value in (None, "", []):
            self.problems.append(
                node.problem(
                    "has no asset (exports leave asset values out): choose one, or pin it as "
                    "an input (`isInput`)",
                    "value",
                )
            )
            return None
        return {"value": "" if value is None else value}, shape

    def _pass_through(self, wire: Wire) -> tuple[dict[str, Any], str] | None:
        """A branch handle of an if/else wired into data: the if/else's input, on that branch."""
        node = wire.producer
        data_wires = [w for w in node.wires_in if w.handle != GATING_HANDLE]
        if not self._branch_of(wire) or not data_wires:
            self.problems.append(
                wire.consumer.problem(
                    f"reads `{wire.output}` of {node.label}, which is no branch that carries a "
                    "value"
                )
            )
            return None
        fed = self._feed(data_wires[0])
        shape = fed[1] if fed is not None else "string"
        ref = {"node": node.id, "name": data_wires[0].variable, "equal": wire.output}
        return {"ref": ref}, shape

    def _shape(self, node: EditorNode) -> str | None:
        """The shape of what a node produces (an input type), for its consumers' inputs."""
        if node.id in self._shapes:
            return self._shapes[node.id]
        self._shapes[node.id] = None  # a cycle (reported) ends here
        shape: str | None
        if node.type == "model":
            shape = "file_array"
        elif node.type in ("llm", "transformText", "aspectRatio"):
            shape = "string"
        elif node.type in ("splitText", "groupItems"):
            shape = "string_array"
        else:  # sliceAssets, forEach: the shape of what they are given, as a list
            fed = self._feed(node.wires_in[0]) if node.wires_in else None
            shape = _ARRAY_OF.get(fed[1], fed[1]) if fed is not None else None
        self._shapes[node.id] = shape
        return shape


def _where(problem: Problem) -> tuple[int, int]:
    """Problems in the order of the document: nodes, then edges, then the rest."""
    found = _PLACE.search(problem.path)
    if found is None:
        return (2, 0)
    return (0 if found.group(1) == "nodes" else 1, int(found.group(2)))


def _input_type(node: EditorNode, handle: str, shape: str) -> str:
    """The type of a consumer's input: what its handle declares, else the shape of the value;
    a model takes the first asset of a list unless its input is plural (`images`)."""
    declared = node.handle_type(handle)
    if declared in INPUT_TYPES:
        return declared
    if node.type in ("model", "llm") and shape == "file_array" and not _plural(handle):
        return "file"
    return shape


def _plural(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith("s") or "array" in lowered or "list" in lowered


def _value_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        numbers = value and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        )
        return "number_array" if numbers else "string_array"
    return None


def _input_entry(node: EditorNode) -> dict[str, Any]:
    """The workflow input a pinned node stands for, as Scenario's export writes it."""
    entry: dict[str, Any] = {"name": node.id, "label": node.title or node.id}
    value = node.data.get("value")
    if node.type == "text":
        entry.update(type="string", required={"always": False})
        if isinstance(value, str) and value:
            entry["default"] = value
        return entry
    entry.update(
        type="file_array" if node.data.get("isMultiple") else "file",
        kind=node.data.get("type", "image"),
        required={"always": node.data.get("isRequired") is True},
    )
    return entry
