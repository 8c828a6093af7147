"""A self-contained HTML page of a job (or of a plan): the DAG left to right, nodes coloured by
status, branch edges labelled with their case, loops drawn as groups of their clones, gates
highlighted, and every node's reason, inputs and outputs on hover or click. No network."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2

from engine.compile.compiler import Plan, TemplateNode
from engine.run.instances import COLLECTION, INSTANCE, Instance
from engine.run.scheduler import Scheduler
from engine.views.explain import Explainer

if TYPE_CHECKING:
    from engine.testing.coverage import WorkflowCoverage

NODE_WIDTH, NODE_HEIGHT, COLUMN, ROW = 190, 54, 250, 74
MAX_DRAWN = 400  # past this many nodes, clones are drawn as one node per template


@dataclass
class Box:
    id: str
    label: str
    type: str
    status: str
    classes: str
    x: float = 0
    y: float = 0
    level: int = 0
    order: tuple[Any, ...] = ()
    loop: str | None = None
    info: dict[str, Any] | None = None
    title: str | None = None  # the editor's title, for a published editor graph


def _template() -> jinja2.Template:
    text = resources.files("engine.views").joinpath("templates/report.html.j2").read_text("utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(text)


def _edge_label(plan: Plan, source: str, target: str) -> str:
    node = plan.nodes.get(source)
    if node is None or node.type != "logic" or node.node.logic is None:
        return ""
    for index, case in enumerate(node.node.logic.cases or []):
        if case.value == target:
            return f"case {index + 1}: {case.condition}"
    return "default" if node.node.logic.default == target else ""


def job_page(scheduler: Scheduler, *, title: str) -> str:
    """The page for a job."""
    explainer = Explainer(scheduler)
    collapse = len(scheduler.instances) > MAX_DRAWN
    boxes: dict[str, Box] = {}
    alias: dict[str, str] = {}  # instance id -> drawn box id
    for instance in scheduler.instances.values():
        template = instance.template
        if instance.is_template_copy and not collapse:
            continue
        if collapse and instance.scope.loop is not None:
            alias[instance.id] = template.id
            continue
        classes = _classes(template.type, instance.status.value, template.is_gate)
        info = _info(instance, explainer)
        if collapse and instance.is_template_copy:
            clones = explainer.clones_of(template.id)
            counts: dict[str, int] = defaultdict(int)
            for clone in clones:
                counts[clone.status.value] += 1
            status = max(counts, key=counts.__getitem__) if counts else "skipped"
            classes = _classes(template.type, status, template.is_gate) + " collapsed"
            info = {"id": template.id, "clones": len(clones), "statuses": dict(counts)}
            boxes[template.id] = Box(
                template.id,
                f"{template.id} ×{len(clones)}",
                template.type,
                status,
                classes,
                info=info,
                order=(template.position,),
                title=template.title,
            )
            alias[template.id] = template.id
            continue
        loop = instance.scope.loop.id if instance.scope.loop is not None else None
        boxes[instance.id] = Box(
            instance.id,
            instance.id,
            template.type,
            instance.status.value,
            classes,
            loop=loop,
            info=info,
            order=(template.position, _path(instance)),
            title=template.title,
        )
        alias[instance.id] = instance.id
    edges: set[tuple[str, str, str]] = set()
    for instance in scheduler.instances.values():
        target = alias.get(instance.id)
        if instance.is_template_copy or target is None:
            continue
        links = [link for link in instance.input_links if link is not None]
        links += [entry for entries in instance.conditional_links for entry in entries]
        links += list(instance.order_links)
        for link in links:
            sources: list[str] = []
            if link[0] == INSTANCE:
                sources = [link[1].id]
            elif link[0] == COLLECTION:
                # the data comes from the clones of that template below the loop
                prefix = f"{link[2]}{link[1].scope.suffix}#"
                sources = [
                    i.id
                    for i in scheduler.instances.values()
                    if i.template.id == link[2]
                    and i.id.startswith(prefix)
                    and not i.is_template_copy
                ] or [link[1].id]
            for source_id in sources:
                source = alias.get(source_id)
                if source is not None and source != target:
                    edges.add((source, target, ""))
        for branch in instance.branch_links:
            source = alias.get(branch.id)
            if source is not None and source != target:
                label = _edge_label(scheduler.plan, branch.template.id, instance.template.id)
                edges.add((source, target, label))
    if not collapse:
        fed = {(target, boxes[source].loop) for source, target, _ in edges if source in boxes}
        for instance in scheduler.instances.values():
            spawner = instance.scope.loop
            if spawner is None or instance.is_template_copy or instance.id not in boxes:
                continue
            if (instance.id, spawner.id) not in fed:
                edges.add((spawner.id, instance.id, f"#{instance.scope.index}"))
    return _render(list(boxes.values()), sorted(edges), title=title, summary=_summary(scheduler))


def plan_page(plan: Plan, *, title: str) -> str:
    """The page for a workflow that has not run: its templates, all pending."""
    boxes = [_plan_box(t, "pending", {}) for t in plan.nodes.values()]
    return _render(boxes, _plan_edges(plan), title=title, summary={"nodes": len(boxes)})


NEVER_TAKEN = " · never taken"


def coverage_page(plan: Plan, coverage: WorkflowCoverage, *, title: str) -> str:
    """The page of a workflow's branch coverage: each node with decision points coloured by
    how many of its branches the tests took (covered, partial, uncovered; `no-branch` for the
    others), each branch edge never taken dashed and labelled so, every branch listed on
    click."""
    points: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for branch in coverage.branches:
        runs = coverage.hits.get(branch.key, 0)
        points[branch.node].append({"outcome": branch.outcome, "label": branch.label, "runs": runs})
    boxes = []
    for template in plan.nodes.values():
        listed = points.get(template.id, [])
        taken = sum(1 for p in listed if p["runs"])
        status = (
            "no-branch"
            if not listed
            else "covered"
            if taken == len(listed)
            else "uncovered"
            if not taken
            else "partial"
        )
        never = [p["outcome"] for p in listed if not p["runs"]]
        extra = {
            "explanation": f"{taken} of {len(listed)} branches taken"
            + (f"; never taken: {', '.join(never)}" if never else ""),
            "coverage": listed,
        }
        boxes.append(_plan_box(template, status, extra if listed else {}))
    edges = []
    for source, target, label in _plan_edges(plan):
        case = label.partition(":")[0] if label else ""
        if label and f"{source}: {case}" in {b.key for b in coverage.missing()}:
            label += NEVER_TAKEN
        edges.append((source, target, label))
    summary = {
        "nodes": len(boxes),
        "statuses": {
            f"of {len(coverage.branches)} branches taken ({coverage.percent:.0f}%)": (
                coverage.covered
            ),
        },
    }
    return _render(boxes, edges, title=title, summary=summary)


def _plan_box(template: TemplateNode, status: str, extra: dict[str, Any]) -> Box:
    t = template
    return Box(
        t.id,
        t.id,
        t.type,
        status,
        _classes(t.type, status, t.is_gate),
        loop=t.owner,
        order=(t.position,),
        title=t.title,
        info={
            "id": t.id,
            "type": t.type,
            "title": t.title,
            "modelId": t.node.model_id,
            "inputs": [i.to_wire() for i in t.node.inputs or []],
            **extra,
        },
    )


def _plan_edges(plan: Plan) -> list[tuple[str, str, str]]:
    return sorted(
        (s, t, _edge_label(plan, s, t) if "branch" in kinds else "")
        for s, t, kinds in plan.graph.edges(data="kinds")
    )


def _classes(node_type: str, status: str, gate: bool) -> str:
    return f"node status-{status} type-{node_type}" + (" gate" if gate else "")


def _path(instance: Instance) -> tuple[int, ...]:
    path = []
    scope = instance.scope
    while scope.index is not None and scope.parent is not None:
        path.append(scope.index)
        scope = scope.parent
    return tuple(reversed(path))


def _info(instance: Instance, explainer: Explainer) -> dict[str, Any]:
    outputs = {k: v for k, v in instance.outputs.items() if k != "items" or instance.items}
    return {
        "id": instance.id,
        "type": instance.template.type,
        "title": instance.template.title,
        "status": instance.status.value,
        "reason": instance.reason,
        "explanation": explainer.explain_instance(instance).line(),
        "inputs": instance.values,
        "outputs": outputs,
        "assets": [a.to_json() for a in instance.assets],
        "modelId": instance.template.node.model_id,
    }


def _summary(scheduler: Scheduler) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    for instance in scheduler.instances.values():
        counts[instance.status.value] += 1
    return {
        "job": scheduler.job_id,
        "status": scheduler.status.value,
        "nodes": len(scheduler.instances),
        "statuses": dict(counts),
        "error": scheduler.error,
    }


def _layout(boxes: list[Box], edges: list[tuple[str, str, str]]) -> None:
    incoming: dict[str, list[str]] = defaultdict(list)
    for source, target, _ in edges:
        incoming[target].append(source)
    by_id = {box.id: box for box in boxes}
    memo: dict[str, int] = {}

    def level(node_id: str, seen: frozenset[str] = frozenset()) -> int:
        if node_id in memo:
            return memo[node_id]
        parents = [p for p in incoming.get(node_id, []) if p in by_id and p not in seen]
        value = 1 + max((level(p, seen | {node_id}) for p in parents), default=-1)
        memo[node_id] = value
        return value

    rows: dict[int, int] = defaultdict(int)
    for box in sorted(boxes, key=lambda b: b.order):
        box.level = level(box.id)
        box.x = 20 + box.level * COLUMN
        box.y = 60 + rows[box.level] * ROW
        rows[box.level] += 1


def _render(
    boxes: list[Box], edges: list[tuple[str, str, str]], *, title: str, summary: dict[str, Any]
) -> str:
    _layout(boxes, edges)
    by_id = {box.id: box for box in boxes}
    groups = []
    members: dict[str, list[Box]] = defaultdict(list)
    for box in boxes:
        if box.loop is not None and box.loop in by_id:
            members[box.loop].append(box)
    for loop_id, inside in members.items():
        left = min(b.x for b in inside) - 10
        top = min(b.y for b in inside) - 24
        right = max(b.x for b in inside) + NODE_WIDTH + 10
        bottom = max(b.y for b in inside) + NODE_HEIGHT + 10
        iterations = (by_id[loop_id].info or {}).get("outputs", {}).get("count")
        groups.append(
            {
                "loop": loop_id,
                "x": left,
                "y": top,
                "width": right - left,
                "height": bottom - top,
                "count": len(inside),
                "iterations": iterations,
            }
        )
    drawn_edges = []
    for source, target, label in edges:
        if source not in by_id or target not in by_id:
            continue
        a, b = by_id[source], by_id[target]
        x1, y1 = a.x + NODE_WIDTH, a.y + NODE_HEIGHT / 2
        x2, y2 = b.x, b.y + NODE_HEIGHT / 2
        middle = (x1 + x2) / 2
        drawn_edges.append(
            {
                "path": f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}",
                "label": label,
                "lx": x2 - 8,
                "ly": y2 - 6,
                "branch": bool(label) and not label.startswith("#"),
                "untaken": label.endswith(NEVER_TAKEN),
            }
        )
    width = max((b.x for b in boxes), default=0) + NODE_WIDTH + 40
    height = max((b.y for b in boxes), default=0) + NODE_HEIGHT + 40
    template = _template()
    details = {box.id: box.info for box in boxes}
    return template.render(
        title=title,
        boxes=boxes,
        edges=drawn_edges,
        groups=groups,
        width=width,
        height=height,
        node_width=NODE_WIDTH,
        node_height=NODE_HEIGHT,
        summary=summary,
        details_json=json.dumps(details, default=str).replace("</", "<\\/"),
    )
