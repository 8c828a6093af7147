"""Pictures of a compiled flow: mermaid, Graphviz dot, and a JSON node-link document."""

from __future__ import annotations

import json
import re
from typing import Any

from engine.compile.compiler import Plan

_EDGE_STYLE = {"data": "-->", "conditional": "-.->", "order": "==>", "branch": "-->", "loop": "-.-"}
_SHAPES = {
    "logic": ("{", "}"),
    "for-each": ("[[", "]]"),
    "user-approval": ("{{", "}}"),
    "user-selection": ("{{", "}}"),
    "transform": ("[/", "/]"),
    "list": ("[(", ")]"),
}


def _mermaid_id(node_id: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id)


# what mermaid would read as markup or syntax in a label, as its entity codes
_MERMAID_ENTITIES = str.maketrans(
    {"&": "#amp;", "<": "#lt;", ">": "#gt;", '"': "#quot;", "|": "#124;", "#": "#35;"}
)


def _text(value: str) -> str:
    """The user's text (an id, a title, a condition) shown as typed in a mermaid label."""
    return value.translate(_MERMAID_ENTITIES)


def _label(plan: Plan, node_id: str) -> str:
    template = plan.nodes[node_id]
    model = template.node.model_id
    extra = f"<br/>{_text(model)}" if model else ""
    title = f"<br/>{_text(template.title)}" if template.title else ""
    return f"{_text(node_id)}{title}<br/><small>{template.type}{extra}</small>"


def _edge_label(plan: Plan, source: str, target: str, kinds: frozenset[str]) -> str:
    if "branch" in kinds:
        logic = plan.nodes[source].node.logic
        for index, case in enumerate(logic.cases or [] if logic else []):
            if case.value == target:
                return f"case {index + 1}: {case.condition}"
        return "default"
    if kinds == {"order"}:
        return "dependsOn"
    if kinds == {"conditional"}:
        return "conditional"
    return ""


def to_mermaid(plan: Plan) -> str:
    """A mermaid flowchart, left to right; loop bodies drawn as subgraphs."""
    lines = ["flowchart LR"]

    def emit(node_id: str, indent: str) -> None:
        template = plan.nodes[node_id]
        if template.type == "for-each" and template.body:
            lines.append(f'{indent}{_mermaid_id(node_id)}[["{_label(plan, node_id)}"]]')
            body = f'{_mermaid_id(node_id)}_body ["for-each {_text(node_id)}"]'
            lines.append(f"{indent}subgraph {body}")
            for member in template.body:
                emit(member, indent + "  ")
            lines.append(f"{indent}end")
            return
        left, right = _SHAPES.get(template.type, ("[", "]"))
        lines.append(f'{indent}{_mermaid_id(node_id)}{left}"{_label(plan, node_id)}"{right}')

    for node_id in plan.top_level:
        emit(node_id, "  ")
    for source, target, kinds in plan.graph.edges(data="kinds"):
        if kinds == {"loop"}:
            continue
        arrow = _EDGE_STYLE[sorted(kinds - {"loop"})[0]]
        label = _edge_label(plan, source, target, kinds)
        middle = f'|"{_text(label)}"|' if label else ""
        lines.append(f"  {_mermaid_id(source)} {arrow}{middle} {_mermaid_id(target)}")
    return "\n".join(lines) + "\n"


def to_dot(plan: Plan) -> str:
    """Graphviz dot, left to right; loop bodies as clusters."""
    lines = ["digraph flow {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']

    def quoted(text: str) -> str:
        return json.dumps(text)

    def emit(node_id: str, indent: str) -> None:
        template = plan.nodes[node_id]
        shape = {
            "logic": "diamond",
            "for-each": "box3d",
            "user-approval": "hexagon",
            "user-selection": "hexagon",
            "transform": "parallelogram",
        }.get(template.type, "box")
        title = f"\\n{template.title}" if template.title else ""
        label = f"{node_id}{title}\\n{template.type}".replace('"', "'")
        lines.append(f'{indent}{quoted(node_id)} [label="{label}", shape={shape}];')
        if template.type == "for-each" and template.body:
            lines.append(f"{indent}subgraph {quoted('cluster_' + node_id)} {{")
            lines.append(f"{indent}  label={quoted('for-each ' + node_id)}; style=dashed;")
            for member in template.body:
                emit(member, indent + "  ")
            lines.append(f"{indent}}}")

    for node_id in plan.top_level:
        emit(node_id, "  ")
    for source, target, kinds in plan.graph.edges(data="kinds"):
        if kinds == {"loop"}:
            continue
        style = "dashed" if kinds & {"conditional"} else ("bold" if kinds == {"order"} else "solid")
        label = _edge_label(plan, source, target, kinds)
        attributes = f"style={style}" + (f", label={quoted(label)}" if label else "")
        lines.append(f"  {quoted(source)} -> {quoted(target)} [{attributes}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(plan: Plan) -> dict[str, Any]:
    """Nodes (with type, loop and branch facts) and edges (with their kinds)."""
    return {
        "nodes": [
            {
                "id": t.id,
                "type": t.type,
                "title": t.title,
                "modelId": t.node.model_id,
                "loops": list(t.loops),
                "body": list(t.body),
                "sinks": list(t.sinks),
                "outputCandidate": t.is_output_candidate,
            }
            for t in plan.nodes.values()
        ],
        "edges": [
            {
                "source": s,
                "target": t,
                "kinds": sorted(kinds),
                "label": _edge_label(plan, s, t, kinds) or None,
            }
            for s, t, kinds in plan.graph.edges(data="kinds")
        ],
    }
