"""What an editor graph's wiring means: the order of its nodes, its pins, which forEachEnd
closes which forEach and what lies between them, and what each approval holds back. Every
problem is collected, named by node id, title and field."""

from __future__ import annotations

import networkx as nx

from engine.compile.editor_graph import (
    EDITOR_TYPES,
    PRODUCERS_WITH_APPROVAL,
    VALUE_NODES,
    EditorGraph,
    EditorNode,
)
from engine.errors import Problem

GATING_HANDLE = "conditional"  # a node's input handle that takes an if/else branch
MERGING = frozenset({"model", "llm", "forEach", "forEachEnd"})  # several wires into a handle merge


class Structure:
    """The order (producers first), the loops (`loop_of_end`, `bodies`, and the ends fed by
    several nodes, which merge them), and each producer's approval gates."""

    def __init__(self, graph: EditorGraph) -> None:
        self.nodes = graph.nodes
        self.prefix = graph.prefix
        self.problems: list[Problem] = []
        self.loop_of_end: dict[str, str] = {}
        self.bodies: dict[str, list[str]] = {}
        self.merging_ends: set[str] = set()  # ends fed by several nodes: a merge in the body
        self.gates: dict[str, list[str]] = {}  # producer id -> approval ids
        self.order = self._order()
        self._check_pins(graph.input_keys)
        self._pair_loops()
        self._find_bodies()
        self._find_gates()
        # what a pinned loop end collects, through nested ends: marked as the job's outputs
        self.collected_for_output = {
            source.id
            for end in self.nodes.values()
            if end.type == "forEachEnd" and end.pinned_output
            for source in self.end_sources(end)
        }

    def position(self, node_id: str) -> str:
        return f"{self.nodes[node_id].index:09d}"

    def flow_id(self, node: EditorNode) -> str:
        """The flow node that stands for `node`: itself, or for a loop's end the loop."""
        if node.id in self.merging_ends:
            return node.id
        return self.loop_of_end.get(node.id, node.id)

    def end_sources(self, end: EditorNode) -> list[EditorNode]:
        """The nodes whose values a loop's end collects, through the ends of nested loops."""
        found: list[EditorNode] = []
        stack, seen = [end], {end.id}
        while stack:
            for wire in stack.pop().wires_in:
                producer = wire.producer
                if producer.id in seen:
                    continue
                seen.add(producer.id)
                if producer.type == "forEachEnd":
                    stack.append(producer)
                else:
                    found.append(producer)
        return found

    def _order(self) -> list[EditorNode]:
        graph: nx.DiGraph = nx.DiGraph()
        graph.add_nodes_from(self.nodes)
        for node in self.nodes.values():
            graph.add_edges_from((w.producer.id, node.id) for w in node.wires_in)
        try:
            ids = list(nx.lexicographical_topological_sort(graph, key=self.position))
        except nx.NetworkXUnfeasible:
            cycle = [edge[0] for edge in nx.find_cycle(graph)]
            shown = " -> ".join(self.nodes[i].label for i in [*cycle, cycle[0]])
            self.problems.append(
                Problem(f"cycle: {shown}", path=f"{self.prefix}editorInfo.edges", node_id=cycle[0])
            )
            ids = sorted(self.nodes, key=self.position)
        return [self.nodes[i] for i in ids]

    def _check_pins(self, input_keys: list[str]) -> None:
        reaches_model = False
        for node in self.nodes.values():
            if node.pinned_input and node.type not in VALUE_NODES:
                self.problems.append(
                    node.problem("only text and asset nodes are inputs", "isInput")
                )
            if not node.pinned_output or node.type not in EDITOR_TYPES:
                continue
            if node.type not in ("model", "llm", "forEachEnd"):
                message = "only model, llm and forEachEnd nodes are outputs"
                self.problems.append(node.problem(message, "isOutput"))
            elif node.type != "forEachEnd" or any(
                n.type in ("model", "llm") for n in self.end_sources(node)
            ):
                reaches_model = True
        if self.nodes and not reaches_model:
            self.problems.append(
                Problem(
                    "no output pin reaches a model: pin a model or llm node, or the forEachEnd "
                    "of a loop with one, as an output (`data.isOutput: true`)",
                    path=f"{self.prefix}editorInfo.nodes",
                )
            )
        for index, key in enumerate(input_keys):
            if key not in self.nodes:  # a key of an unpinned node is stale, and harmless
                self.problems.append(
                    Problem(
                        f"`inputKeys` names `{key}`, which is no node",
                        path=f"{self.prefix}editorInfo.inputKeys[{index}]",
                    )
                )

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
            if loop.type != "forEach":
                continue
            if loop.id not in ended:
                self.problems.append(
                    loop.problem("has no forEachEnd (a forEachEnd whose `parentNodeId` names it)")
                )
            if not [w for w in loop.wires_in if w.handle != GATING_HANDLE]:
                self.problems.append(loop.problem("iterates nothing: wire a list into it"))

    def _find_bodies(self) -> None:
        """A loop's body: the nodes downstream of the forEach, its own end excluded, and
        nothing that also reads the end's collection. An end fed by several nodes (the
        branches of an if/else) is a merge inside the body."""
        reach = self._reach() if self.loop_of_end else {}
        for end_id, loop_id in self.loop_of_end.items():
            loop, end = self.nodes[loop_id], self.nodes[end_id]
            body = _downstream(loop, stop=end_id)
            after = reach[end_id]
            reads_end = [n for n in body if after >> self.nodes[n].index & 1]
            for node_id in sorted(reads_end, key=self.position):
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
                    message = f"is fed by {feeder.label}, which is not in its loop"
                    self.problems.append(end.problem(message))
            members = [n for n in body if self.nodes[n].flow_type is not None]
            if len(feeders) > 1:
                self.merging_ends.add(end_id)
                members.append(end_id)
            if not members:
                self.problems.append(loop.problem("has nothing between it and its end"))
            self.bodies[loop_id] = sorted(members, key=self.position)
        # a loop lists its own body only: a nested loop's nodes belong to that loop, which the
        # outer one lists (so the flow grows with the graph, not with its depth squared)
        owner: dict[str, str] = {}
        for loop_id in sorted(self.bodies, key=lambda loop: len(self.bodies[loop])):
            for member in self.bodies[loop_id]:
                owner.setdefault(member, loop_id)  # the innermost loop holding it: the least
        for loop_id, members in self.bodies.items():
            self.bodies[loop_id] = [m for m in members if owner[m] == loop_id]

    def _reach(self) -> dict[str, int]:
        """For each node, the nodes downstream of it (itself excluded), as a bit set by node
        index: one pass in reverse order, so that many loops cost no walk of the graph each."""
        reach: dict[str, int] = {}
        for node in reversed(self.order):
            found = 0
            for wire in node.wires_out:
                found |= reach.get(wire.consumer.id, 0) | 1 << wire.consumer.index
            reach[node.id] = found
        return reach

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
            for wire in producer.wires_out:
                merged = [w for w in wire.consumer.wires_in if w.handle == wire.handle]
                if wire.consumer.type in MERGING and len(merged) > 1:
                    self.problems.append(
                        gate.problem(
                            f"holds back {producer.label}, one branch of the merge into "
                            f"`{wire.consumer.id}`'s `{wire.handle}`: when the other branch "
                            f"runs, `{wire.consumer.id}` would wait for nothing; attach the "
                            f"approval to `{wire.consumer.id}`, after the merge"
                        )
                    )
            self.gates.setdefault(producer.id, []).append(gate.id)


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
