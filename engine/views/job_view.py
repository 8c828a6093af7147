"""What the job page draws, as JSON: the console served by `flowgraph serve` and the static
page (`graph --format html`, `run --report`) both render it.

Nodes sit in containers: a loop is a box (`loop:ID`) holding one row per iteration
(`row:ID:INDEX`), so that each iteration's nodes stay on one row. Past `MAX_DRAWN` nodes, every
clone is drawn as its template (one row per loop, with counts by status). An edge is kept at
the lowest container holding both its ends: an edge from outside a loop into one of its clones
ends at the loop's box.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from engine.compile.compiler import Plan, TemplateNode
from engine.protocols import NodeStatus, Transition
from engine.run.instances import COLLECTION, INSTANCE, Instance, Link
from engine.run.scheduler import Scheduler
from engine.run.skips import matched
from engine.views.explain import Explainer, Explanation
from nodes.user_selection import selection_bounds

MAX_DRAWN = 400  # past this many nodes, clones are drawn as one node per template
# a collapsed template shows the worst of its clones' statuses
_SEVERITY = ("failure", "canceled", "processing", "pending", "success", "skipped")
# a status's place in _SEVERITY; one not there (rejected) counts as the last
_RANK = {status: rank for rank, status in enumerate(_SEVERITY)}
_LAST = len(_SEVERITY) - 1
_VALUE = {status: status.value for status in NodeStatus}  # faster than `.value`, per node
_NO_TIMES: list[str | None] = [None, None]
_STARTED = frozenset(("processing", "in-progress"))
_ENDED = frozenset(("success", "failure", "skipped", "canceled"))
AssetUrl = Callable[[str, str], str]  # (asset id, stored url) -> the url the page loads


def _plain(_asset_id: str, url: str) -> str:
    return url


@dataclass
class ViewBuilder:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    parent: dict[str, str | None] = field(default_factory=dict)  # drawn id or container -> parent
    edges: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def container(self, key: str, kind: str, parent: str | None, **extra: Any) -> str:
        if key not in self.containers:
            self.containers[key] = {"id": key, "kind": kind, "parent": parent, **extra}
            self.parent[key] = parent
        return key

    def chain(self, drawn: str) -> list[str | None]:
        out: list[str | None] = [drawn]
        while out[-1] is not None:
            out.append(self.parent.get(out[-1]))
        return out

    def edge(self, source: str, target: str, label: str = "", **extra: Any) -> None:
        """Kept at the lowest container holding both ends (an end inside a loop the other is
        outside of becomes the loop's box); an edge inside one node is dropped."""
        if source not in self.parent or target not in self.parent:
            return
        above_target = self.chain(target)
        above_source = self.chain(source)
        common = next(c for c in above_source[1:] if c in above_target[1:])
        start = above_source[above_source.index(common) - 1]
        end = above_target[above_target.index(common) - 1]
        if start == end or start is None or end is None:
            return
        key = (start, end)
        found = self.edges.get(key)
        if found is None:
            self.edges[key] = {"source": start, "target": end, "label": label, "parent": common}
            self.edges[key].update(extra)
        elif label and not found["label"]:
            found["label"] = label
            found.update(extra)

    def result(self) -> dict[str, Any]:
        return {
            "nodes": list(self.nodes.values()),
            "containers": list(self.containers.values()),
            "edges": sorted(self.edges.values(), key=lambda e: (e["source"], e["target"])),
        }


def branch_label(plan: Plan, source: str, target: str) -> str:
    """The case of logic node `source` that names `target` (`case 2: x > 1`, `default`)."""
    node = plan.nodes.get(source)
    if node is None or node.type != "logic" or node.node.logic is None:
        return ""
    for index, case in enumerate(node.node.logic.cases or []):
        if case.value == target:
            return f"case {index + 1}: {case.condition}"
    return "default" if node.node.logic.default == target else ""


def _worst(counts: Mapping[str, int]) -> str:
    return next((s for s in _SEVERITY if counts.get(s)), "skipped")


def node_times(transitions: Iterable[Transition]) -> dict[str | None, list[str | None]]:
    """Per node id (None: the job), when it started processing and when it ended."""
    times: dict[str | None, list[str | None]] = {}
    for transition in transitions:
        to_status = transition.to_status
        if to_status not in _STARTED and to_status not in _ENDED:
            continue
        entry = times.get(transition.node_id)
        if entry is None:
            entry = times[transition.node_id] = [None, None]
        if to_status in _STARTED:
            entry[0] = entry[0] or transition.at
        else:
            entry[1] = transition.at
            if to_status != "skipped":  # a node skipped never started
                entry[0] = entry[0] or transition.at
    return times


def job_view(
    scheduler: Scheduler,
    *,
    title: str,
    transitions: Iterable[Transition] = (),
    asset_url: AssetUrl = _plain,
    workflow_id: str | None = None,
) -> dict[str, Any]:
    """The job's page data: drawing, summary, timeline, and each drawn node's panel."""
    explainer = Explainer(scheduler)
    instances = scheduler.instances
    collapse = len(instances) > MAX_DRAWN
    times = node_times(transitions)
    builder = ViewBuilder()
    alias: dict[str, str] = {}  # instance id -> drawn id
    clones: dict[str, list[Instance]] = defaultdict(list)  # template id -> its clones
    statuses: dict[str, list[str]] = defaultdict(list)  # template id -> its clones' statuses
    summary: list[str] = []  # the status of each node that is not a template

    def place(instance: Instance) -> str | None:
        """The container of a drawn instance (created on the way)."""
        if collapse:
            owner = instance.template.owner
            if owner is None:
                return None
            above = place(instances[owner])
            box = builder.container(f"loop:{owner}", "loop", above, loop=owner)
            return builder.container(f"row:{owner}:*", "row", box, loop=owner, index=None)
        loop = instance.scope.loop
        if loop is None:
            return None
        box = builder.container(f"loop:{loop.id}", "loop", place(loop), loop=loop.id)
        return builder.container(
            f"row:{loop.id}:{instance.scope.index}",
            "row",
            box,
            loop=loop.id,
            index=instance.scope.index,
        )

    for instance in instances.values():
        if instance.is_template_copy:
            continue
        status = _VALUE[instance.status]
        summary.append(status)
        if instance.scope.loop is not None:
            clones[instance.template.id].append(instance)
            statuses[instance.template.id].append(status)
    for instance in instances.values():
        looped = instance.scope.loop is not None
        if collapse and looped:
            alias[instance.id] = instance.template.id
            continue
        if instance.is_template_copy and not collapse:
            continue
        if instance.is_template_copy:  # (listed even before its loop has any clone)
            clones.setdefault(instance.template.id, [])
            counts = Counter(statuses[instance.template.id])
            status = _worst(counts)
            extra: dict[str, Any] = {"counts": dict(counts), "collapsed": True}
        else:
            status, extra = instance.status.value, {}
        drawn = instance.template.id if instance.is_template_copy else instance.id
        builder.nodes[drawn] = {
            "id": drawn,
            "type": instance.template.type,
            "status": status,
            "title": instance.template.title,
            "gate": instance.template.is_gate,
            "parent": place(instance),
            **extra,
        }
        builder.parent[drawn] = builder.nodes[drawn]["parent"]
        alias[instance.id] = drawn
    _edges(scheduler, builder, alias, collapse)
    for instance in instances.values():  # each loop's box hangs off its for-each node
        box = f"loop:{instance.template.id if collapse else instance.id}"
        if instance.template.type == "for-each" and box in builder.containers:
            builder.containers[box]["iterations"] = (instance.outputs or {}).get("count")
            builder.edge(alias.get(instance.id, instance.id), box, "", kind="loop")
    _loop_counts(builder, instances, collapse)
    assets = _asset_index(scheduler)
    details = {  # the drawn nodes that are themselves (not a clone's template)
        drawn: node_details(
            instances[drawn], explainer, times=times, asset_url=asset_url, assets=assets
        )
        for drawn in builder.nodes
        if alias.get(drawn) == drawn
    }
    counted = Counter(summary)
    started, ended = times.get(None, (None, None))
    return {
        "title": title,
        "job": {
            "id": scheduler.job_id,
            "workflowId": workflow_id,
            "status": scheduler.status.value,
            "error": scheduler.error,
            "nodes": len(summary),
            "statuses": dict(counted),
            "started": started,
            "ended": ended,
        },
        "collapsed": collapse,
        **builder.result(),
        "clones": (
            {
                t: [[c.id, s] for c, s in zip(found, statuses[t], strict=True)]
                for t, found in clones.items()
            }
            if collapse
            else {}
        ),
        "details": details,
        "timeline": _timeline(instances, times, collapse),
    }


def _edges(
    scheduler: Scheduler, builder: ViewBuilder, alias: dict[str, str], collapse: bool
) -> None:
    instances = scheduler.instances
    below: dict[tuple[str, str], list[str]] = {}  # (template, prefix) -> clones; when needed
    indexed = False

    def collected(link: Link) -> list[str]:
        """The clones of that template below the loop, where a collection's data comes from."""
        nonlocal indexed
        if not indexed:
            indexed = True
            for instance in instances.values():
                if instance.scope.loop is not None and not instance.is_template_copy:
                    key = (instance.template.id, instance.scope.loop.scope.suffix)
                    below.setdefault(key, []).append(instance.id)
        found = [
            i
            for key, ids in below.items()
            if key[0] == link[2] and key[1].startswith(link[1].scope.suffix)
            for i in ids
        ]
        return found or [link[1].id]

    seen: set[tuple[str, str]] = set()
    for instance in instances.values():
        target = alias.get(instance.id)
        if instance.is_template_copy or target is None:
            continue
        for link in chain(instance.input_links, *instance.conditional_links, instance.order_links):
            if link is None or (link[0] != INSTANCE and link[0] != COLLECTION):
                continue
            sources = [link[1].id] if link[0] == INSTANCE else collected(link)
            for source_id in sources:
                drawn = alias.get(source_id)
                if drawn is None or (collapse and (drawn, target) in seen):
                    continue
                seen.add((drawn, target))
                # past MAX_DRAWN an edge stands for every clone's: their counts tell how
                taken = {} if collapse else _taken(instances[source_id], instance)
                builder.edge(drawn, target, "", kind="data", **taken)
        for branch in instance.branch_links:
            if branch.id not in alias or (collapse and (alias[branch.id], target) in seen):
                continue
            seen.add((alias[branch.id], target))
            label = branch_label(scheduler.plan, branch.template.id, instance.template.id)
            chosen = (branch.details or {}).get("chosen", branch.outputs.get("output"))
            branch_taken: bool | None = None
            if collapse:
                branch_taken = None  # the clones' branches differ: their counts say how
            elif branch.status is NodeStatus.SUCCESS:
                branch_taken = chosen == instance.template.id
            elif branch.status.terminal:
                branch_taken = False
            builder.edge(alias[branch.id], target, label, kind="branch", taken=branch_taken)


def _taken(source: Instance, target: Instance) -> dict[str, Any]:
    if target.status is NodeStatus.SKIPPED or source.status is NodeStatus.SKIPPED:
        return {"taken": False}
    done = (NodeStatus.SUCCESS, NodeStatus.PROCESSING)
    return {"taken": True} if source.status is NodeStatus.SUCCESS and target.status in done else {}


def _loop_counts(builder: ViewBuilder, instances: Mapping[str, Instance], collapse: bool) -> None:
    """Each loop box's iterations by outcome: an iteration failed when one of its nodes did."""
    worst: dict[tuple[str, int | None], int] = {}  # (loop instance, index) -> worst rank
    boxes: dict[str, str] = {}  # loop instance -> its box
    for instance in instances.values():
        loop = instance.scope.loop
        if loop is None or instance.is_template_copy:
            continue
        row = (loop.id, instance.scope.index)
        rank = _RANK.get(_VALUE[instance.status], _LAST)
        if rank < worst.get(row, len(_SEVERITY)):
            worst[row] = rank
        if loop.id not in boxes:
            boxes[loop.id] = f"loop:{loop.template.id if collapse else loop.id}"
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for (loop_id, _), rank in worst.items():
        totals[boxes[loop_id]][_SEVERITY[rank]] += 1
    for key, counts in totals.items():
        if key in builder.containers:
            builder.containers[key]["counts"] = dict(counts)


def _asset_index(scheduler: Scheduler) -> dict[str, str]:
    found: dict[str, str] = {}
    for instance in scheduler.instances.values():
        for asset in instance.assets:
            found[asset.asset_id] = asset.url
    return found


def node_details(
    instance: Instance,
    explainer: Explainer,
    *,
    times: Mapping[str | None, list[str | None]],
    asset_url: AssetUrl = _plain,
    assets: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A node's panel: status, the explanation `flowgraph explain` gives, values, assets,
    attempts, times, the branch a merge took, and what a waiting gate asks."""
    template = instance.template
    if instance.is_template_copy:  # its clones, counted (each clone is explained on request)
        counts = Counter([_VALUE[c.status] for c in explainer.clones_of(template.id)])
        iterations = {"count": sum(counts.values()), "statuses": dict(counts.most_common())}
        explanation = Explanation(
            template.id, "template", [], iterations=iterations, title=template.title
        ).line()
    else:
        explanation = explainer.explain_instance(instance).line()
    started, ended = times.get(instance.id, [None, None])
    outputs = {k: v for k, v in instance.outputs.items() if k != "items" or instance.items}
    details: dict[str, Any] = {
        "id": instance.id,
        "type": template.type,
        "title": template.title,
        "status": instance.status.value,
        "reason": instance.reason,
        "explanation": explanation,
        "inputs": instance.values,
        "outputs": outputs,
        "assets": [
            {"assetId": a.asset_id, "url": asset_url(a.asset_id, a.url)} for a in instance.assets
        ],
        "modelId": template.node.model_id,
        "attempts": instance.attempt,
        "started": started,
        "ended": ended,
    }
    merge = _merge(instance, template)
    if merge:
        details["merge"] = merge
    if template.is_gate and instance.status is NodeStatus.PROCESSING:
        details["gate"] = _gate(instance, template, assets or {}, asset_url)
    return details


def _merge(instance: Instance, template: TemplateNode) -> list[dict[str, str]]:
    """For each input with conditional entries, the node its value came from."""
    taken = []
    for compiled, entries in zip(template.inputs, instance.conditional_links, strict=False):
        if not entries or instance.status is not NodeStatus.SUCCESS:
            continue
        first = next((e for e in entries if matched(e, compiled)), None)
        if first is not None and first[0] in (INSTANCE, COLLECTION):
            taken.append({"input": compiled.name, "from": first[1].id})
    return taken


def _gate(
    instance: Instance, template: TemplateNode, assets: Mapping[str, str], asset_url: AssetUrl
) -> dict[str, Any]:
    gate: dict[str, Any] = {
        "type": template.type,
        "holdsBack": sorted({d.id for d in instance.dependents}),
    }
    if template.type == "user-selection":
        low, high = selection_bounds(template.node)
        items = []
        for item in instance.items or []:
            asset_id = item if isinstance(item, str) else None
            if isinstance(item, dict):
                asset_id = item.get("assetId")
            url = assets.get(asset_id) if isinstance(asset_id, str) else None
            items.append(
                {
                    "value": item,
                    "url": asset_url(asset_id, url) if url and asset_id else None,
                }
            )
        gate.update(items=items, min=low, max=min(high, len(items)))
    return gate


def _timeline(
    instances: Mapping[str, Instance],
    times: Mapping[str | None, list[str | None]],
    collapse: bool,
) -> list[dict[str, Any]]:
    """Bars of the Gantt: each node that started, grouped by loop (by template past
    MAX_DRAWN, with its clones' earliest start and latest end)."""
    bars: dict[str, dict[str, Any]] = {}
    ranks: dict[str, int] = {}  # bar -> the rank of its worst status
    for instance in instances.values():
        if instance.is_template_copy:
            continue
        started, ended = times.get(instance.id, _NO_TIMES)
        if started is None:
            continue
        loop = instance.scope.loop
        key = instance.template.id if collapse and loop is not None else instance.id
        status = _VALUE[instance.status]
        bar = bars.get(key)
        if bar is None:
            group = None
            if loop is not None:
                group = instance.template.owner if collapse else loop.id
            bars[key] = {
                "id": key,
                "group": group,
                "start": started,
                "end": ended,
                "status": status,
                "count": 1,
            }
            ranks[key] = _RANK.get(status, _LAST)
            continue
        bar["count"] += 1
        if started < bar["start"]:
            bar["start"] = started
        if ended is not None and (bar["end"] is None or ended > bar["end"]):
            bar["end"] = ended
        ranks[key] = min(ranks[key], _RANK.get(status, _LAST))
        bar["status"] = _SEVERITY[ranks[key]]
    return sorted(bars.values(), key=lambda b: (b["group"] or "", b["start"]))


def plan_view(plan: Plan, *, title: str) -> dict[str, Any]:
    """The page data of a workflow that has not run: its templates, all pending, each loop's
    body as one row of its box."""
    builder = ViewBuilder()

    def place(template: TemplateNode) -> str | None:
        owner = template.owner
        if owner is None:
            return None
        box = builder.container(f"loop:{owner}", "loop", place(plan.nodes[owner]), loop=owner)
        return builder.container(f"row:{owner}:*", "row", box, loop=owner, index=None)

    details = {}
    for template in plan.nodes.values():
        builder.nodes[template.id] = {
            "id": template.id,
            "type": template.type,
            "status": "pending",
            "title": template.title,
            "gate": template.is_gate,
            "parent": place(template),
        }
        builder.parent[template.id] = builder.nodes[template.id]["parent"]
        details[template.id] = {
            "id": template.id,
            "type": template.type,
            "title": template.title,
            "status": "pending",
            "modelId": template.node.model_id,
            "inputs": [i.to_wire() for i in template.node.inputs or []],
        }
    for source, target, kinds in plan.graph.edges(data="kinds"):
        if kinds == {"loop"}:
            builder.edge(source, f"loop:{source}", "", kind="loop")
            continue
        label = branch_label(plan, source, target) if "branch" in kinds else ""
        builder.edge(source, target, label, kind="branch" if label else "data")
    for template in plan.nodes.values():
        if template.type == "for-each" and f"loop:{template.id}" in builder.containers:
            builder.edge(template.id, f"loop:{template.id}", "", kind="loop")
    return {
        "title": title,
        "job": None,
        "collapsed": False,
        **builder.result(),
        "clones": {},
        "details": details,
        "timeline": [],
    }
