"""The flow's edges while compiling: their kinds, adjacency, whether they order the nodes, and
which for-each each node belongs to.

Edge kinds: `data` (ref.node), `conditional` (ref.conditional), `order` (dependsOn), `branch`
(a logic case value naming a node) and `loop` (a for-each to each node of its body).
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from engine.compile.models import FlowNode
from engine.errors import Problem

REFERENCE_EDGES = frozenset({"data", "conditional", "order"})

_KIND_SETS: dict[tuple[frozenset[str], str], frozenset[str]] = {}


def _kinds(kinds: frozenset[str], kind: str) -> frozenset[str]:
    """`kinds` plus `kind`, one shared frozenset per combination (a flow has a handful)."""
    found = _KIND_SETS.get((kinds, kind))
    if found is None:
        found = _KIND_SETS[(kinds, kind)] = kinds | {kind}
    return found


class Edges:
    """The flow's edges while compiling: kinds per (source, target), and what the plan derives
    from them (referenced nodes, branch sources) gathered as they come. Adjacency lists are
    built only when something asks for them (a cycle search, loop sinks)."""

    def __init__(self, positions: Mapping[str, int]) -> None:
        self.positions = positions
        self.kinds: dict[tuple[str, str], frozenset[str]] = {}
        self.referencing: set[str] = set()  # sources of a data, conditional or order edge
        self.branch_sources: dict[str, set[str]] = {}  # target -> logic nodes naming it
        self.backward = 0  # edges that do not point forward in flow order
        self._successors: dict[str, dict[str, frozenset[str]]] | None = None
        self._predecessors: dict[str, dict[str, frozenset[str]]] | None = None

    def add(self, source: str, target: str, kind: str) -> None:
        key = (source, target)
        kinds = self.kinds.get(key)
        if kinds is None:
            self.kinds[key] = _kinds(frozenset(), kind)
            if self._successors is not None:
                self._successors = self._predecessors = None
            if self.positions[source] >= self.positions[target]:
                self.backward += 1
        elif kind not in kinds:
            self.kinds[key] = _kinds(kinds, kind)
            self._successors = self._predecessors = None
        if kind in REFERENCE_EDGES:
            self.referencing.add(source)
        elif kind == "branch":
            self.branch_sources.setdefault(target, set()).add(source)

    def _adjacency(
        self,
    ) -> tuple[dict[str, dict[str, frozenset[str]]], dict[str, dict[str, frozenset[str]]]]:
        if self._successors is None or self._predecessors is None:
            successors: dict[str, dict[str, frozenset[str]]] = {}
            predecessors: dict[str, dict[str, frozenset[str]]] = {}
            for (source, target), kinds in self.kinds.items():
                successors.setdefault(source, {})[target] = kinds
                predecessors.setdefault(target, {})[source] = kinds
            self._successors, self._predecessors = successors, predecessors
        return self._successors, self._predecessors

    def out(self, node_id: str) -> dict[str, frozenset[str]]:
        return self._adjacency()[0].get(node_id, {})

    def into(self, node_id: str) -> dict[str, frozenset[str]]:
        return self._adjacency()[1].get(node_id, {})

    def acyclic(self) -> bool:
        """True when the nodes can be ordered: at once when every edge points forward in the
        flow (the flow order is then a topological order), else by Kahn's algorithm."""
        if not self.backward:
            return True
        waiting = {node: len(self.into(node)) for node in self.positions}
        ready = [node for node, count in waiting.items() if count == 0]
        ordered = 0
        while ready:
            node = ready.pop()
            ordered += 1
            for target in self.out(node):
                waiting[target] -= 1
                if waiting[target] == 0:
                    ready.append(target)
        return ordered == len(waiting)


def resolve_loops(
    flow: list[FlowNode], positions: dict[str, int], edges: Edges, problems: list[Problem]
) -> dict[str, tuple[str, ...]]:
    """The enclosing loops (outermost first) of each node in a loop; a node belongs to the
    innermost for-each that lists it."""
    listed: dict[str, set[str]] = {}
    for node in flow:
        if node.type == "for-each" and positions.get(node.id) is not None:
            listed[node.id] = {
                m for m in node.loop_body_node_ids or [] if m in positions and m != node.id
            }

    within: dict[str, set[str]] = {}  # loop -> every node listed by it or by a loop it lists

    def nested(loop: str) -> set[str]:
        """What `loop` holds, through the loops it lists; each loop worked out once (a flow
        that lists every descendant in every enclosing loop must not cost a walk per pair)."""
        found = within.get(loop)
        if found is None:
            within[loop] = found = set()  # a loop listing itself, through others, stops here
            stack = [loop]
            while stack:
                for member in listed.get(stack.pop(), ()):
                    if member not in found:
                        found.add(member)
                        if member in listed:
                            found |= within.get(member) or set()
                            stack.append(member)
        return found

    listed_by: dict[str, list[str]] = {}
    for loop, body in listed.items():
        for member in body:
            listed_by.setdefault(member, []).append(loop)
    owner: dict[str, str] = {}
    for member, listers in listed_by.items():
        # the innermost lister holds the least, and every other lister holds it
        least = min(listers, key=lambda loop: len(nested(loop)))
        innermost = [least] if all(b == least or least in nested(b) for b in listers) else []
        if len(innermost) != 1:
            first, second = sorted(listers, key=positions.__getitem__)[:2]
            problems.append(
                Problem(
                    f"node `{member}` is claimed by two sibling loops `{first}` and `{second}`; "
                    "a node belongs to one loop",
                    path=f"flow[{positions[member]}]",
                    node_id=member,
                )
            )
            continue
        owner[member] = innermost[0]
        edges.add(innermost[0], member, "loop")

    chains: dict[str, tuple[str, ...]] = {}

    def chain(node_id: str, seen: tuple[str, ...] = ()) -> tuple[str, ...]:
        if node_id in chains:
            return chains[node_id]
        parent = owner.get(node_id)
        if parent is None or parent in seen:
            result: tuple[str, ...] = ()
        else:
            result = (*chain(parent, (*seen, node_id)), parent)
        chains[node_id] = result
        return result

    return {node_id: chain(node_id) for node_id in owner}


def check_cycles(graph: nx.DiGraph, positions: dict[str, int], problems: list[Problem]) -> None:
    for component in nx.strongly_connected_components(graph):
        first = min(component, key=positions.__getitem__)
        if len(component) == 1 and not graph.has_edge(first, first):
            continue
        cycle_edges = nx.find_cycle(graph.subgraph(component), source=first)
        names = [edge[0] for edge in cycle_edges] + [first]
        problems.append(
            Problem(f"cycle: {' -> '.join(names)}", path=f"flow[{positions[first]}]", node_id=first)
        )
