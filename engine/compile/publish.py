"""Publish: compile Scenario's editor graph (`editorInfo`) into the executable `flow`.

What Scenario documents about its editor is followed; where the compiled form is not
documented, docs/editor.md states the rule flowgraph follows. In short: flow node ids are the
editor's; `text` and `asset` nodes become run inputs (pinned) or literal values; `model` and
`llm` become model nodes, the prompt builders and list tools `transform`s, `ifElse` a `logic`
node whose output is the branch (`if1`, ..., `else`), `forEach` a `for-each` over what lies
before its `forEachEnd`, `approval` a `user-approval` that its producer's consumers wait for.
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
    EditorNode,
    Wire,
    read_graph,
)
from engine.compile.editor_inputs import ARRAY_OF, ELEMENT_OF, input_type, run_contract
from engine.compile.editor_structure import GATING_HANDLE, Structure
from engine.compile.models import input_type_of
from engine.errors import Problem, ValidationError

ASPECT_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")
BRANCH = re.compile(r"if([1-9][0-9]*)|else")
_PLACE = re.compile(r"editorInfo\.(nodes|edges|inputKeys)\[(\d+)\]")
Feed = tuple[dict[str, Any], str]  # what a wire gives (a `ref` or a `value`), and its shape


def publish(document: dict[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """`document` with the `flow` and `inputs` its `editorInfo` compiles to (the rest, the editor
    graph included, unchanged). Raises ValidationError naming every problem by node id, title
    and field, in the order of the document."""
    graph = read_graph(document.get("editorInfo"), prefix)
    publisher = _Publisher(Structure(graph))
    flow = publisher.flow()
    inputs, contract_problems = run_contract(graph, document.get("inputs"))
    problems = [*graph.problems, *publisher.structure.problems, *publisher.problems]
    problems += contract_problems
    if problems:
        unique = list(dict.fromkeys(problems))  # a node read by three consumers: one problem
        raise ValidationError(sorted(unique, key=_where), what="editor graph")
    return {**document, "flow": flow, "inputs": inputs}


class _Publisher:
    """Builds each flow node from its editor node and the wires into it."""

    def __init__(self, structure: Structure) -> None:
        self.structure = structure
        self.problems: list[Problem] = []
        self._feeds: dict[int, Feed | None] = {}  # by edge index: each wire worked out once
        self._feeding: set[int] = set()  # wires being worked out (a cycle stops there)

    def flow(self) -> list[dict[str, Any]]:
        merging = self.structure.merging_ends
        return [
            self._flow_node(node)
            for node in self.structure.order
            if node.flow_type is not None or node.id in merging
        ]

    def _flow_node(self, node: EditorNode) -> dict[str, Any]:
        flow_type = node.flow_type if node.id not in self.structure.merging_ends else "transform"
        built: dict[str, Any] = {"id": node.id, "type": flow_type}
        if node.title:
            built["title"] = node.title
        wires = [w for w in node.wires_in if w.handle != GATING_HANDLE]
        if node.type == "approval":
            if node.wires_in:
                built["dependsOn"] = [self.structure.flow_id(node.wires_in[0].producer)]
            message = node.data.get("message")
            built["message"] = message if isinstance(message, str) and message else "Continue ?"
            return built
        if node.type in ("model", "llm"):
            self._model(node, wires, built)
        elif node.type in ("transformText", "groupItems"):
            self._expression(node, wires, built)
        elif node.type in ("splitText", "sliceAssets", "aspectRatio"):
            self._list_tool(node, wires, built)
        elif node.type == "ifElse":
            self._if_else(node, wires, built)
        elif node.type == "forEach":
            built["inputs"] = self._inputs_by_handle(node, wires, array=True)
            built["loopBodyNodeIds"] = self.structure.bodies.get(node.id, [])
        elif node.type == "forEachEnd":  # fed by several branches: the one that ran
            built["inputs"] = self._inputs_by_handle(node, wires, name="input")
            built["logic"] = {"transform": "input"}
        self._gate(node, built)
        waits = sorted(
            {g for w in node.wires_in for g in self.structure.gates.get(w.producer.id, [])},
            key=self.structure.position,
        )
        if waits:
            built["dependsOn"] = waits
        if node.pinned_output or node.id in self.structure.collected_for_output:
            built["includeOutputsInWorkflowJob"] = True
        return built

    # ----- node types ---------------------------------------------------------------------------

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
            value_type = input_type_of(value)
            if value_type is None:
                self.problems.append(node.problem(f"`{name}` is not a value", f"form.{name}"))
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
        built["inputs"] = self._variables(node, wires)

    def _list_tool(self, node: EditorNode, wires: list[Wire], built: dict[str, Any]) -> None:
        if node.type == "aspectRatio":
            ratio = node.data.get("output")
            if ratio not in ASPECT_RATIOS:
                message = f"`output` `{ratio}` is not one of {', '.join(ASPECT_RATIOS)}"
                self.problems.append(node.problem(message, "output"))
            built["logic"] = {"transform": cel_string(str(ratio))}
            return
        if node.type == "splitText":
            built["logic"] = {"transform": split_expression(node.data)}
        else:
            expression, problems = slice_expression(node.data)
            self._report(node, problems)
            built["logic"] = {"transform": expression}
        built["inputs"] = []
        if len(wires) != 1:
            handles = ", ".join(f"`{w.handle}` from `{w.producer.id}`" for w in wires)
            self.problems.append(
                node.problem(f"reads one list; wire one node into it (wired: {handles or 'none'})")
            )
            return
        fed = self._feed(wires[0])
        if fed is not None:
            built["inputs"] = [{"name": "input", "type": fed[1], **fed[0]}]

    def _if_else(self, node: EditorNode, wires: list[Wire], built: dict[str, Any]) -> None:
        built["logicType"] = "if-else"
        inputs = self._variables(node, wires)
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

    def _gate(self, node: EditorNode, built: dict[str, Any]) -> None:
        """A branch wired into the node's `conditional` handle gates it: each input read from a
        node also waits for the branch (`ref.conditional` + `equal`), so its value is unchanged;
        a node that reads nothing gets an input `conditional` (the chosen branch)."""
        wires = [w for w in node.wires_in if w.handle == GATING_HANDLE]
        if not wires:
            return
        if len(wires) > 1:
            self.problems.append(node.problem("has more than one branch wired into `conditional`"))
            return
        wire = wires[0]
        if wire.producer.type != "ifElse" or not _is_branch(wire):
            self.problems.append(
                node.problem(
                    f"its `conditional` input takes an if/else branch (`if1`...`else`), not "
                    f"`{wire.output}` of {wire.producer.label}"
                )
            )
            return
        gated = False
        for each in built.get("inputs", []):
            ref = each.get("ref")
            if ref and ref.get("node") and not {"conditional", "equal"} & ref.keys():
                ref.update(conditional=[wire.producer.id], equal=wire.output)
                gated = True
        if not gated:
            gate = {"node": wire.producer.id, "equal": wire.output}
            built.setdefault("inputs", []).append(
                {"name": GATING_HANDLE, "type": "string", "ref": gate}
            )

    def _report(self, node: EditorNode, problems: list[tuple[str, str]]) -> None:
        self.problems += [node.problem(message, field) for message, field in problems]

    # ----- inputs -------------------------------------------------------------------------------

    def _variables(self, node: EditorNode, wires: list[Wire]) -> list[dict[str, Any]]:
        """One input per wire, named as CEL sees it: `${nodeId}_${handle}`. Two of them gated on
        different branches of one if/else would never both run: refused."""
        inputs, seen = [], set()
        branches: dict[str, dict[str, str]] = {}  # if/else -> branch -> the producer it gates
        for wire in wires:
            for gate in wire.producer.wires_in:
                if gate.handle == GATING_HANDLE and gate.producer.type == "ifElse":
                    branches.setdefault(gate.producer.id, {})[gate.output] = wire.producer.id
            if wire.variable in seen:
                continue
            seen.add(wire.variable)
            fed = self._feed(wire)
            if fed is not None:
                inputs.append({"name": wire.variable, "type": fed[1], **fed[0]})
        for check, taken in branches.items():
            if len(taken) > 1:
                readers = ", ".join(f"`{p}` ({b})" for b, p in sorted(taken.items()))
                self.problems.append(
                    node.problem(
                        f"reads {readers}, on different branches of `{check}`: only one runs, "
                        "so this node would always be skipped; merge them first (wire both "
                        "into one model input) or build one on each branch"
                    )
                )
        return inputs

    def _inputs_by_handle(
        self, node: EditorNode, wires: list[Wire], *, array: bool = False, name: str = ""
    ) -> list[dict[str, Any]]:
        """One input per input handle; several wires into one handle merge the branches."""
        handles: dict[str, list[Wire]] = {}
        for wire in wires:
            handles.setdefault(name or wire.handle, []).append(wire)
        inputs = []
        for handle, group in handles.items():
            built = self._input(node, handle, group)
            if built is not None:
                if array:
                    built["type"] = ARRAY_OF.get(built["type"], built["type"])
                inputs.append(built)
        return inputs

    def _input(self, node: EditorNode, handle: str, wires: list[Wire]) -> dict[str, Any] | None:
        fed = [self._feed(w) for w in wires]
        found = [f for f in fed if f is not None]
        if len(found) != len(fed):
            return None
        fields, shape = found[0]
        if len(found) > 1:
            merged = []
            for wire, (each, _) in zip(wires, found, strict=True):
                ref = each.get("ref")
                if ref is None or ref.get("node") == "workflow" or {"equal", "name"} & ref.keys():
                    what = "a value" if ref is None or ref.get("node") == "workflow" else "a branch"
                    self.problems.append(
                        node.problem(
                            f"input `{handle}` merges {wire.producer.label}, which is {what} "
                            "that does not run: a merge takes the nodes that run on each branch"
                        )
                    )
                    return None
                merged.append(ref["node"])
            fields = {"ref": {"conditional": merged}}
        return {"name": handle, "type": input_type(node, handle, shape), **fields}

    # ----- what a wire carries ------------------------------------------------------------------

    def _feed(self, wire: Wire) -> Feed | None:
        """What `wire` gives its consumer and the shape of that value; None when it gives
        nothing usable (reported where found). Each wire is worked out once, and in the order
        of the graph, so that a long chain costs no deep recursion."""
        if wire.index in self._feeds:
            return self._feeds[wire.index]
        if wire.index in self._feeding:
            return None  # a cycle: reported with the order
        self._feeding.add(wire.index)
        try:
            fed = self._feeds[wire.index] = self._feed_from(wire)
        finally:
            self._feeding.discard(wire.index)
        return fed

    def _feed_from(self, wire: Wire) -> Feed | None:
        producer = wire.producer
        if producer.type in VALUE_NODES:
            return self._value_of(producer)
        if producer.type == "forEach":
            if wire.output == "index":
                return {"ref": {"node": producer.id, "name": "index"}}, "number"
            shape = self._shape(producer)
            return {"ref": {"node": producer.id}}, ELEMENT_OF.get(shape or "", "string")
        if producer.type == "forEachEnd":
            return self._collected(producer)
        if producer.type == "ifElse":
            return self._pass_through(wire)
        if producer.type == "approval":
            return None  # reported with the approval
        if wire.output == "approval":
            self.problems.append(
                wire.consumer.problem(
                    f"reads the approval handle of {producer.label}: wire its output instead "
                    "(an approval only pauses)"
                )
            )
            return None
        if producer.type == "aspectRatio" and wire.output not in ("output", "quality"):
            message = (
                f"reads `{wire.output}` of {producer.label}, which gives `output` and `quality`"
            )
            self.problems.append(wire.consumer.problem(message))
            return None
        if producer.type == "aspectRatio" and wire.output == "quality":
            return {"value": producer.data.get("quality")}, "string"
        if producer.flow_type is None:
            return None  # an unknown type, reported where it is read
        return {"ref": {"node": producer.id}}, self._shape(producer) or "string"

    def _value_of(self, node: EditorNode) -> Feed | None:
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

    def _collected(self, end: EditorNode) -> Feed | None:
        """A loop end's consumer reads the values its feeder made in every iteration."""
        if end.id in self.structure.merging_ends:
            shapes = [self._feed(w) for w in end.wires_in]
            shape = next((f[1] for f in shapes if f is not None), "string")
            return {"ref": {"node": end.id}}, ARRAY_OF.get(shape, shape)
        if len(end.wires_in) != 1:
            return None  # an end fed by nothing: reported with the loop
        inner = self._feed(end.wires_in[0])
        if inner is None:
            return None
        return inner[0], ARRAY_OF.get(inner[1], inner[1])

    def _pass_through(self, wire: Wire) -> Feed | None:
        """A branch handle of an if/else wired into data: the if/else's input, on that branch."""
        node = wire.producer
        data_wires = [w for w in node.wires_in if w.handle != GATING_HANDLE]
        if not _is_branch(wire) or len({w.variable for w in data_wires}) != 1:
            why = "no branch" if not _is_branch(wire) else "a branch of an if/else that reads "
            why += "" if not _is_branch(wire) else f"{len(data_wires)} inputs, not one"
            self.problems.append(
                wire.consumer.problem(
                    f"its `{wire.handle}` reads `{wire.output}` of {node.label}, {why}: a "
                    "branch passes on the if/else's one input"
                )
            )
            return None
        fed = self._feed(data_wires[0])
        shape = fed[1] if fed is not None else "string"
        ref = {"node": node.id, "name": data_wires[0].variable, "equal": wire.output}
        return {"ref": ref}, shape

    def _shape(self, node: EditorNode) -> str | None:
        """The shape of what a node produces (an input type), for its consumers' inputs."""
        if node.type == "model":
            return "file_array"
        if node.type in ("llm", "transformText", "aspectRatio"):
            return "string"
        if node.type in ("splitText", "groupItems"):
            return "string_array"
        # sliceAssets, forEach: the shape of the list they are given
        data = [w for w in node.wires_in if w.handle != GATING_HANDLE]
        fed = self._feed(data[0]) if data else None
        return ARRAY_OF.get(fed[1], fed[1]) if fed is not None else None


def _is_branch(wire: Wire) -> bool:
    """Whether `wire` leaves an if/else through one of its branch handles."""
    found = BRANCH.fullmatch(wire.output)
    if found is None:
        return False
    blocks = wire.producer.data.get("conditionBlocks")
    count = len(blocks) if isinstance(blocks, list) else 0
    return found.group(1) is None or int(found.group(1)) <= count


def _where(problem: Problem) -> tuple[int, int]:
    """Problems in the order of the document: nodes, edges, input keys, then the rest."""
    found = _PLACE.search(problem.path)
    if found is None:
        return (3, 0)
    return (("nodes", "edges", "inputKeys").index(found.group(1)), int(found.group(2)))
