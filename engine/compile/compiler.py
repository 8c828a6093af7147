"""Compile a workflow's flow into a plan: a networkx DAG plus per-node compiled templates.

Every problem is collected before anything is raised, each with the node id and JSON path.
The edges and their kinds are gathered in `engine/compile/edges.py`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from engine.compile.edges import REFERENCE_EDGES, Edges, check_cycles, resolve_loops
from engine.compile.editor_graph import editor_label
from engine.compile.expressions import (
    INLINE_ITEMS,
    Expression,
    compile_expression,
    inline_share,
)
from engine.compile.field_names import misspelt_fields
from engine.compile.models import (
    INPUT_TYPES,
    MODEL_NODE_TYPES,
    NODE_TYPES,
    FlowNode,
    NodeInput,
    Ref,
    Workflow,
)
from engine.errors import CycleError, ExpressionSyntaxError, Problem, ValidationError
from engine.gc_tuning import quiet_gc
from engine.limits import Limits
from engine.protocols import NodeKind

WORKFLOW_REF = "workflow"
GATE_TYPES = frozenset({"user-approval", "user-selection"})
ASSET_TYPES = (MODEL_NODE_TYPES - {"generate-prompt"}) | {"workflow"}  # a prompt is text


@dataclass(slots=True)
class CompiledInput:
    """One node input, flattened for the hot path."""

    name: str
    type: str
    position: int
    ref_node: str | None = None
    ref_name: str | None = None
    ref_equal: Any = None
    has_equal: bool = False
    conditional: tuple[str, ...] = ()
    has_ref: bool = False
    value: Any = None
    has_value: bool = False
    default: Any = None
    # inputs_array: its rows of sub-inputs, each resolved like an input (refs, then value)
    rows: tuple[tuple[CompiledInput, ...], ...] = ()
    # from `type`, read as every instance resolves the input: set once
    is_array: bool = field(init=False)
    is_single_asset: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_array = self.type.endswith("_array")
        self.is_single_asset = self.type in ("file", "model")


@dataclass(slots=True)
class TemplateNode:
    """A flow node as compiled: what every instance (the node itself, or a clone) shares."""

    id: str
    position: int
    type: str
    node: FlowNode
    wire: dict[str, Any]
    kind: NodeKind
    inputs: list[CompiledInput]
    depends_on: tuple[str, ...]
    expressions: dict[str, Expression]
    loops: tuple[str, ...] = ()  # enclosing for-each ids, outermost first
    body: tuple[str, ...] = ()  # for-each: templates whose innermost loop is this one
    descendants: tuple[str, ...] = ()  # for-each: every template nested below, flow order
    sinks: tuple[str, ...] = ()  # for-each: body nodes no other body node refers to
    branch_sources: tuple[str, ...] = ()  # logic nodes with a case value naming this node
    referenced: bool = False
    # the inputs' size up to which its expressions run inline (None: always apart)
    inline_share: int | None = INLINE_ITEMS
    input_names: tuple[str, ...] = ()  # of `inputs`, in order: an instance's values by name

    def __post_init__(self) -> None:
        if self.inputs:
            self.input_names = tuple([compiled.name for compiled in self.inputs])

    @property
    def owner(self) -> str | None:
        return self.loops[-1] if self.loops else None

    @property
    def title(self) -> str | None:
        """The editor's title of the node (kept by publish), if it has one."""
        found = (self.node.model_extra or {}).get("title")
        return found if isinstance(found, str) and found.strip() else None

    @property
    def is_gate(self) -> bool:
        return self.type in GATE_TYPES

    @property
    def produces_assets(self) -> bool:
        return self.type in ASSET_TYPES

    @property
    def is_output_candidate(self) -> bool:
        """Output node rule: nothing refers to it and it is no gate, or it opts in."""
        if self.node.include_outputs_in_workflow_job:
            return True
        return not self.referenced and not self.is_gate


@dataclass(slots=True)
class Plan:
    """A compiled workflow: templates by id (flow order), the DAG, the top-level ids."""

    workflow: Workflow
    nodes: dict[str, TemplateNode]
    graph: nx.DiGraph
    top_level: list[str]

    def warnings(self) -> list[Problem]:
        """What is valid but most likely a mistake: an empty flow; a declared workflow input no
        node reads; a workflow input with a `value` and no `default` (its fallback is
        `default`); a node outside a loop reading a body node into a single-value input (it
        gets the list); an unknown field within a typo of a known one (`rf` for `ref`)."""
        if not self.nodes:
            return [Problem("the flow has no nodes: a run of it does nothing", path="flow")]
        read = {
            cell.ref_name
            for template in self.nodes.values()
            for i in template.inputs
            for cell in (i, *(c for row in i.rows for c in row))
            if cell.ref_node == WORKFLOW_REF
        }
        found = [
            Problem(
                f"workflow input `{declared.name}` is declared but no node reads it "
                f'(no input has `"ref": {{"node": "workflow", "name": "{declared.name}"}}`)',
                path=f"inputs[{index}]",
            )
            for index, declared in enumerate(self.workflow.inputs)
            if declared.name not in read
        ]
        found += [
            Problem(
                f"workflow input `{declared.name}` has a `value` but no `default`: a run that "
                "does not give it leaves it unset (the fallback of a workflow input is "
                "`default`)",
                path=f"inputs[{index}].value",
            )
            for index, declared in enumerate(self.workflow.inputs)
            if declared.value is not None and declared.default is None
        ]
        for template in self.nodes.values():
            for compiled in template.inputs:
                source = self.nodes.get(compiled.ref_node or "")
                if source is None or compiled.is_array or compiled.type == "inputs_array":
                    continue
                outside = [loop for loop in source.loops if loop not in template.loops]
                if outside and source.type != "for-each":
                    found.append(
                        Problem(
                            f"`{template.id}` reads `{source.id}`, a node of for-each "
                            f"`{outside[-1]}`, from outside the loop: its `{compiled.name}` "
                            f"({compiled.type}) gets the list of every iteration's value; list "
                            f"`{template.id}` in `loopBodyNodeIds` to run it once an iteration",
                            path=f"flow[{template.position}].inputs[{compiled.position}].ref.node",
                            node_id=template.id,
                        )
                    )
        return found + misspelt_fields(self.workflow)

    def loop_output_is_assets(self, loop_id: str) -> bool:
        """Whether a for-each's collected output is asset ids (every sink produces assets)."""
        sinks = self.nodes[loop_id].sinks
        return bool(sinks) and all(
            self.nodes[s].produces_assets
            or (self.nodes[s].type == "for-each" and self.loop_output_is_assets(s))
            for s in sinks
        )


def in_editor_terms(problems: list[Problem], workflow: Workflow) -> list[Problem]:
    """`problems`, each naming the editor node it is about (type, id, title) when the workflow
    carries the editor graph its flow was published from: the user knows the editor's nodes."""
    editor = (workflow.model_extra or {}).get("editorInfo")
    found = editor.get("nodes") if isinstance(editor, dict) else None
    if not isinstance(found, list) or not found:
        return problems
    labels = {
        n["id"]: editor_label(n)
        for n in found
        if isinstance(n, dict) and isinstance(n.get("id"), str)
    }
    return [
        replace(p, message=f"{labels[p.node_id]}: {p.message}") if p.node_id in labels else p
        for p in problems
    ]


def compile_flow(
    workflow: Workflow, kinds: Mapping[str, NodeKind], limits: Limits | None = None
) -> Plan:
    """Compile and validate `workflow`; a flow whose own numbers exceed `limits` is refused.

    Raises ValidationError (CycleError for cycles) listing every problem found.
    """
    with quiet_gc():
        return _compile(workflow, kinds, limits or Limits())


def _compile(workflow: Workflow, kinds: Mapping[str, NodeKind], limits: Limits) -> Plan:
    problems: list[Problem] = []
    flow = workflow.flow
    positions = {node.id: position for position, node in enumerate(flow)}
    if len(positions) != len(flow):
        positions = _first_positions(flow, problems)
    declared_inputs = _check_workflow_inputs(workflow, problems)

    edges = Edges(positions)
    templates: dict[str, TemplateNode] = {}
    for position, node in enumerate(flow):
        if positions[node.id] != position:
            continue
        template = _compile_node(
            node, position, kinds, positions, declared_inputs, edges, problems, limits
        )
        if template is not None:
            templates[node.id] = template

    loops = resolve_loops(flow, positions, edges, problems)
    _check_clone_ids(flow, positions, loops, problems)
    _check_refs_to_approvals(templates, problems)
    _check_limits(flow, positions, loops, limits, problems)
    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(positions)
    graph.add_edges_from((s, t, {"kinds": kinds}) for (s, t), kinds in edges.kinds.items())
    if not edges.acyclic():
        check_cycles(graph, positions, problems)
    if problems:
        cycle = next((p.message for p in problems if p.message.startswith("cycle:")), None)
        problems = in_editor_terms(problems, workflow)
        if cycle is not None:
            raise CycleError(cycle.removeprefix("cycle: ").split(" -> "), problems)
        raise ValidationError(problems, what="flow")

    _link(templates, loops, edges)
    top_level = [t.id for t in templates.values() if not t.loops]
    return Plan(workflow=workflow, nodes=templates, graph=graph, top_level=top_level)


def _check_refs_to_approvals(
    templates: Mapping[str, TemplateNode], problems: list[Problem]
) -> None:
    """A user-approval has no outputs: a node waits for it with `dependsOn`, it cannot read it."""
    for template in templates.values():
        for compiled in template.inputs:
            source = templates.get(compiled.ref_node or "")
            if source is not None and source.type == "user-approval":
                problems.append(
                    Problem(
                        f"`{source.id}` is a user-approval node: it has no outputs to read; "
                        f'wait for it with `"dependsOn": ["{source.id}"]` and read the node '
                        "it approves",
                        path=f"flow[{template.position}].inputs[{compiled.position}].ref.node",
                        node_id=template.id,
                    )
                )


def _check_clone_ids(
    flow: list[FlowNode],
    positions: dict[str, int],
    loops: Mapping[str, tuple[str, ...]],
    problems: list[Problem],
) -> None:
    """A node id may not be the id of a clone (`gen#0` beside `gen` in a for-each)."""
    for node_id, position in positions.items():
        base = node_id.split("#", 1)[0]
        if base != node_id and loops.get(base):
            problems.append(
                Problem(
                    f"node id `{node_id}` is the id of a clone of `{base}` (in for-each "
                    f"`{loops[base][-1]}`, `{base}` runs as `{base}#0`, `{base}#1`, ...); "
                    "rename it",
                    path=f"flow[{position}].id",
                    node_id=node_id,
                )
            )


def _check_limits(
    flow: list[FlowNode],
    positions: dict[str, int],
    loops: Mapping[str, tuple[str, ...]],
    limits: Limits,
    problems: list[Problem],
) -> None:
    """Refuse, before anything runs, a for-each `count` above the iteration limit and a flow
    whose fixed counts alone make more nodes than the node limit."""
    counts: dict[str, int] = {}
    for node_id, position in positions.items():
        count = flow[position].count
        if flow[position].type != "for-each" or count is None:
            continue
        counts[node_id] = count
        if count > limits.max_iterations:
            problems.append(
                Problem(
                    limits.exceeded("max_iterations", count, f"for-each `{node_id}`"),
                    path=f"flow[{position}].count",
                    node_id=node_id,
                )
            )
    if any(count > limits.max_iterations for count in counts.values()):
        return  # said above; the total would only repeat it
    total = 0
    for node_id in positions:
        clones = 1
        for loop in loops.get(node_id, ()):
            clones *= counts.get(loop, 1)  # an array's length is known only when it runs
        total += clones + (1 if node_id in loops else 0)  # a loop body node has a template
    if total > limits.max_nodes:
        problems.append(
            Problem(limits.exceeded("max_nodes", total, "the flow (by its for-each counts)"))
        )


def _first_positions(flow: list[FlowNode], problems: list[Problem]) -> dict[str, int]:
    """Each id's first position in the flow; every later duplicate is a problem."""
    positions: dict[str, int] = {}
    for position, node in enumerate(flow):
        if node.id in positions:
            problems.append(
                Problem(
                    f"duplicate node id `{node.id}` (first at flow[{positions[node.id]}])",
                    path=f"flow[{position}].id",
                    node_id=node.id,
                )
            )
        else:
            positions[node.id] = position
    return positions


def _check_workflow_inputs(workflow: Workflow, problems: list[Problem]) -> set[str]:
    names: set[str] = set()
    for index, declared in enumerate(workflow.inputs):
        path = f"inputs[{index}]"
        if declared.name in names:
            problems.append(
                Problem(f"duplicate workflow input `{declared.name}`", path=f"{path}.name")
            )
        names.add(declared.name)
        if declared.type not in INPUT_TYPES:
            problems.append(Problem(_unknown_input_type(declared.type), path=f"{path}.type"))
    return names


def _unknown_input_type(name: str) -> str:
    return f"unknown input type `{name}`; expected one of: {', '.join(INPUT_TYPES)}"


def _report(
    problems: list[Problem], node: FlowNode, position: int, message: str, path: str
) -> None:
    """A problem of the node at flow[position]; `path` is below the node ("" for the node)."""
    base = f"flow[{position}]"
    problems.append(Problem(message, path=f"{base}.{path}" if path else base, node_id=node.id))


def _compile_node(
    node: FlowNode,
    position: int,
    kinds: Mapping[str, NodeKind],
    positions: dict[str, int],
    declared_inputs: set[str],
    edges: Edges,
    problems: list[Problem],
    limits: Limits,
) -> TemplateNode | None:
    node_id = node.id
    kind = kinds.get(node.type)
    if kind is None:
        expected = ", ".join(t for t in NODE_TYPES if t in kinds) or "none registered"
        _report(
            problems,
            node,
            position,
            f"unknown node type `{node.type}`; expected one of: {expected}",
            "type",
        )
    inputs: list[CompiledInput] = []
    for index, node_input in enumerate(node.inputs or ()):
        if node_input.type not in INPUT_TYPES:
            _report(
                problems,
                node,
                position,
                _unknown_input_type(node_input.type),
                f"inputs[{index}].type",
            )
        value = node_input.value  # an unset value is None
        ref = node_input.ref
        if ref is None:
            rows = (
                _compile_rows(
                    node_input, index, node, position, positions, declared_inputs, edges, problems
                )
                if node_input.type == "inputs_array" and node_input.items
                else ()
            )
            inputs.append(
                CompiledInput(
                    node_input.name,
                    node_input.type,
                    index,
                    value=value,
                    has_value=value is not None,
                    default=node_input.default,
                    rows=rows,
                )
            )
            continue
        ref_node, conditional = ref.node, ref.conditional
        inputs.append(
            CompiledInput(
                node_input.name,
                node_input.type,
                index,
                ref_node,
                ref.name,
                ref.equal,
                "equal" in ref.__pydantic_fields_set__,
                tuple(conditional) if conditional else (),
                True,
                value,
                value is not None,
                node_input.default,
            )
        )
        if ref_node is not None and ref_node != WORKFLOW_REF and ref_node in positions:
            edges.add(ref_node, node_id, "data")
        else:
            _check_ref(
                ref, f"inputs[{index}].ref", node, position, declared_inputs, problems, positions
            )
        for entry_index, entry in enumerate(conditional or ()):
            if entry in positions:
                edges.add(entry, node_id, "conditional")
            else:
                _report(
                    problems,
                    node,
                    position,
                    f"unknown node `{entry}` in `ref.conditional`",
                    f"inputs[{index}].ref.conditional[{entry_index}]",
                )
    for index, target in enumerate(node.depends_on or ()):
        if target in positions:
            edges.add(target, node_id, "order")
        else:
            _report(
                problems,
                node,
                position,
                f"unknown node `{target}` in `dependsOn`",
                f"dependsOn[{index}]",
            )
    for index, member in enumerate(node.loop_body_node_ids or ()):
        if member == node_id:
            message = f"for-each `{node_id}` lists itself in its body"
        elif member not in positions:
            message = f"unknown node `{member}` in `loopBodyNodeIds`"
        else:
            continue
        _report(problems, node, position, message, f"loopBodyNodeIds[{index}]")
    if node.logic is not None and node.type == "logic":
        for case in node.logic.cases or ():
            if isinstance(case.value, str) and case.value in positions and case.value != node_id:
                edges.add(node_id, case.value, "branch")
        default = node.logic.default
        if isinstance(default, str) and default in positions and default != node_id:
            edges.add(node_id, default, "branch")
    if kind is None:
        return None
    for message, path in kind.check(node):
        _report(problems, node, position, message, path)
    expressions: dict[str, Expression] = {}
    for key, (source, path) in kind.expressions(node).items():
        try:
            expression = compile_expression(source)
        except ExpressionSyntaxError as error:
            _report(problems, node, position, str(error), path)
            continue
        expression.max_value = limits.max_value
        expressions[key] = expression
        unknown = expression.variables().difference(i.name for i in inputs)
        for name in sorted(unknown):
            _report(problems, node, position, _unknown_variable(name, inputs), path)
    # positional, in field order: half the cost of keywords, 100,000 times
    return TemplateNode(
        node_id,
        position,
        node.type,
        node,
        node.wire(),
        kind,
        inputs,
        tuple(node.depends_on) if node.depends_on else (),
        expressions,
        inline_share=inline_share(tuple(expressions.values())),
    )


def _compile_rows(
    node_input: NodeInput,
    index: int,
    node: FlowNode,
    position: int,
    positions: dict[str, int],
    declared_inputs: set[str],
    edges: Edges,
    problems: list[Problem],
) -> tuple[tuple[CompiledInput, ...], ...]:
    """The rows of an inputs_array input: each sub-input resolved like an input (its `ref`,
    checked here and waited for, else its `value`, else its `default`)."""
    rows = []
    for row_index, row in enumerate(node_input.items or ()):
        cells = []
        for cell_index, cell in enumerate(row):
            path = f"inputs[{index}].items[{row_index}][{cell_index}]"
            ref = cell.ref
            if ref is not None and ref.node not in (None, WORKFLOW_REF) and ref.node in positions:
                edges.add(ref.node, node.id, "data")
            elif ref is not None:
                _check_ref(ref, f"{path}.ref", node, position, declared_inputs, problems, positions)
            cells.append(
                CompiledInput(
                    cell.name,
                    cell.type,
                    cell_index,
                    ref.node if ref is not None else None,
                    ref.name if ref is not None else None,
                    has_ref=ref is not None,
                    value=cell.value,
                    has_value=cell.value is not None,
                    default=cell.default,
                )
            )
        rows.append(tuple(cells))
    return tuple(rows)


def _unknown_variable(name: str, inputs: list[CompiledInput]) -> str:
    names = [i.name for i in inputs]
    message = f"`{name}` is not an input of this node"
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"{message}; did you mean `{close[0]}`?"
    if names:
        return f"{message} (its inputs: {', '.join(names)})"
    return f"{message}: it has no inputs (an expression reads the node's inputs by name)"


def _check_ref(
    ref: Ref,
    path: str,
    node: FlowNode,
    position: int,
    declared_inputs: set[str],
    problems: list[Problem],
    known_nodes: Iterable[str] = (),
) -> None:
    """The rarer refs: to a run input, to no node at all, to an unknown node."""
    if ref.node is None:
        if not ref.conditional:
            message = "`ref` has neither `node` nor `conditional`; set at least one"
            _report(problems, node, position, message, path)
    elif ref.node == WORKFLOW_REF:
        if not ref.name:
            message = "a ref to `workflow` needs `name`: the run input to read"
            _report(problems, node, position, message, f"{path}.name")
        elif ref.name not in declared_inputs:
            close = difflib.get_close_matches(ref.name, sorted(declared_inputs), n=1)
            message = f"ref to undeclared workflow input `{ref.name}`; " + (
                f"did you mean `{close[0]}`?" if close else "declare it in the workflow's `inputs`"
            )
            _report(problems, node, position, message, f"{path}.name")
    else:
        close = difflib.get_close_matches(ref.node, sorted(known_nodes), n=1)
        message = f"unknown node `{ref.node}` in `ref.node`" + (
            f"; did you mean `{close[0]}`?" if close else ""
        )
        _report(problems, node, position, message, f"{path}.node")


def _link(
    templates: dict[str, TemplateNode], loops: dict[str, tuple[str, ...]], edges: Edges
) -> None:
    """Fill in the derived fields: loop chains, bodies, sinks, branch sources, referenced."""
    bodies: dict[str, list[str]] = {}
    descendants: dict[str, list[str]] = {}
    for_eaches: list[TemplateNode] = []
    referencing, branch_sources = edges.referencing, edges.branch_sources
    for node_id, template in templates.items():
        chain = loops.get(node_id)
        if chain:
            template.loops = chain
            bodies.setdefault(chain[-1], []).append(node_id)
            for loop in chain:
                descendants.setdefault(loop, []).append(node_id)
        if node_id in referencing:
            template.referenced = True
        sources = branch_sources.get(node_id)
        if sources:
            # sorted by id, not flow position, so that reordering the flow changes nothing
            template.branch_sources = tuple(sorted(sources))
        if template.type == "for-each":
            for_eaches.append(template)
    for template in for_eaches:
        template.body = tuple(bodies.get(template.id, ()))
        template.descendants = tuple(descendants.get(template.id, ()))
        inside = set(template.descendants)
        # A ref from a node to a loop enclosing it reads the loop's item: it is no data flow
        # between body nodes, so it does not stop the loop from being a sink. An approval has
        # no outputs: it is no sink, and waiting on a node does not stop that node being one.
        template.sinks = tuple(
            member
            for member in template.body
            if templates[member].type != "user-approval"
            and not any(
                consumer in inside
                and kinds & REFERENCE_EDGES
                and member not in templates[consumer].loops
                and templates[consumer].type != "user-approval"
                for consumer, kinds in edges.out(member).items()
            )
        )
