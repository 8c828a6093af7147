"""Replay of a recorded job: run its workflow again locally with the recorded inputs, gate
decisions and model assets, and list where the two runs part ways.

A difference is reported once, where it starts: a node whose status, branch, iteration count
or resolved input differs, unless a node upstream of it differs already (then it is counted
as a consequence, not listed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from engine.api import JobRun
from engine.compile.document import load_workflow
from engine.errors import DocumentError, Problem
from engine.executors import DryRunExecutor, ExecutorRouter
from engine.protocols import Asset, ExecutorResult, NodeCall
from engine.run.instances import is_loop_template
from engine.testing.expect import diff_lines, same
from engine.testing.runs import offline_engine, run_to_rest
from engine.views.explain import Explainer

GATES = ("user-approval", "user-selection")


@dataclass
class Difference:
    node: str
    aspect: str  # status, branch, iterations, input `name`, node
    recorded: Any
    local: Any
    why: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        body = diff_lines(self.recorded, self.local, labels=("recorded", "local"))
        return [f"{self.node}: {self.aspect}", *body, *(f"  why: {w}" for w in self.why)]

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "aspect": self.aspect,
            "recorded": self.recorded,
            "local": self.local,
            "why": self.why,
        }


@dataclass
class Replay:
    recorded: dict[str, Any]  # the recorded job (no envelope)
    job: JobRun  # the local run
    differences: list[Difference]
    consequences: int  # differences downstream of a listed one, not listed

    @property
    def agree(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {
            "jobId": self.recorded.get("jobId"),
            "localJobId": self.job.job_id,
            "recordedStatus": self.recorded.get("status"),
            "localStatus": self.job.status.value,
            "agree": self.agree,
            "differences": [d.to_json() for d in self.differences],
            "consequences": self.consequences,
        }


def recorded_job(document: Any, *, source: str) -> dict[str, Any]:
    """The job of a `{"job": ...}` envelope, as `GET /jobs/{id}` answers; raises
    DocumentError naming what is missing."""
    job = document.get("job") if isinstance(document, Mapping) else None
    if not isinstance(job, Mapping):
        raise DocumentError(
            [Problem('a recorded job is the `{"job": ...}` envelope of GET /jobs/{id}', source)]
        )
    metadata = job.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("flow"), list):
        raise DocumentError([Problem("the job has no `metadata.flow`", f"{source}: job")])
    return dict(job)


def recorded_decisions(flow: list[dict[str, Any]]) -> dict[str, Any]:
    """The decisions taken at the recorded gates: approved, rejected, the indices selected."""
    decisions: dict[str, Any] = {}
    for node in flow:
        if node.get("type") not in GATES or is_loop_template(node):
            continue
        status = node.get("status")
        if status == "rejected":
            decisions[node["id"]] = "reject"
        elif status == "success" and node.get("type") == "user-approval":
            decisions[node["id"]] = "approve"
        elif status == "success":
            items, chosen = node.get("items") or [], node.get("output") or []
            indices = [items.index(c) for c in chosen if c in items]
            decisions[node["id"]] = {"select": indices}
    return decisions


class RecordedAssets:
    """Answers a model call with what the recording holds for that node (no model is called);
    a node the recording never ran gets a dry-run placeholder."""

    name = "replay"

    def __init__(self, flow: list[dict[str, Any]]) -> None:
        self.nodes = {n["id"]: n for n in flow if isinstance(n, Mapping) and "id" in n}
        self.placeholder = DryRunExecutor(assets_dir=None)

    async def run(self, call: NodeCall) -> ExecutorResult:
        node = self.nodes.get(call.node_id)
        if node is None or node.get("status") != "success":
            return self.placeholder.compute(call)
        assets = [
            Asset(str(a.get("assetId")), str(a.get("url", "")), str(a.get("kind", "image")))
            for a in node.get("assets") or []
            if isinstance(a, Mapping)
        ]
        extra = node.get("output")
        outputs = dict(extra) if isinstance(extra, Mapping) else {}
        if call.node_type == "generate-prompt" and extra is not None:
            outputs = {"prompt": extra} if not isinstance(extra, Mapping) else outputs
        return ExecutorResult(assets=assets, outputs=outputs)


def replay(document: Any, *, source: str) -> Replay:
    """Run a recorded job again locally and compare; raises ValidationError for a document
    that is no recorded job, or whose workflow, inputs or decisions do not hold."""
    recorded = recorded_job(document, source=source)
    flow = recorded["metadata"]["flow"]
    workflow = load_workflow({"job": recorded})
    router = ExecutorRouter(default=RecordedAssets(flow))
    engine = offline_engine(executors=router)
    inputs = recorded["metadata"].get("input") or {}
    job, _ = run_to_rest(engine, workflow, inputs, recorded_decisions(flow))
    differences, consequences = compare(flow, job)
    return Replay(recorded, job, differences, consequences)


def compare(recorded_flow: list[dict[str, Any]], job: JobRun) -> tuple[list[Difference], int]:
    """The differences between the recorded nodes and the local run's, where each starts."""
    plan = job.plan
    local = {n["id"]: n for n in job.document()["metadata"]["flow"]}
    recorded = {n["id"]: n for n in recorded_flow if isinstance(n, Mapping) and "id" in n}
    explainer = Explainer(job.scheduler)
    # templates with a difference, or downstream of one
    tainted: set[str] = set()
    listed: list[Difference] = []
    consequences = 0

    def why(node_id: str) -> list[str]:
        instance = job.scheduler.instances.get(node_id)
        if instance is None:
            return []
        explanation = explainer.explain_instance(instance)
        return [explanation.line()] if explanation.chain else []

    by_template: dict[str, list[str]] = {}
    for node_id in {**recorded, **local}:
        by_template.setdefault(node_id.partition("#")[0], []).append(node_id)
    for template_id in nx.topological_sort(plan.graph):
        template = plan.nodes[template_id]
        upstream = any(p in tainted for p in plan.graph.predecessors(template_id))
        if upstream:
            tainted.add(template_id)
        found: list[Difference] = []
        for node_id in sorted(by_template.get(template_id, []), key=_clone_order):
            mine, theirs = local.get(node_id), recorded.get(node_id)
            if mine is None or theirs is None:
                if "#" not in node_id:  # a clone on one side: its loop's count says so
                    side = "the recording" if mine is None else "the local run"
                    found.append(Difference(node_id, "node", theirs is not None, mine is not None))
                    found[-1].why = [f"only in {side}"]
                continue
            found += _node_differences(template.type, node_id, theirs, mine, why)
        if not found:
            continue
        tainted.add(template_id)
        if upstream:
            consequences += len(found)
        else:
            listed += found
    return listed, consequences


def _clone_order(node_id: str) -> tuple[Any, ...]:
    head, *indices = node_id.split("#")
    return (head, *(int(i) if i.isdigit() else i for i in indices))


def _node_differences(
    node_type: str,
    node_id: str,
    theirs: dict[str, Any],
    mine: dict[str, Any],
    why: Callable[[str], list[str]],
) -> list[Difference]:
    if theirs.get("status") != mine.get("status"):
        return [
            Difference(node_id, "status", theirs.get("status"), mine.get("status"), why(node_id))
        ]
    if is_loop_template(mine):
        return []
    if node_type == "logic" and not same(theirs.get("output"), mine.get("output")):
        return [
            Difference(node_id, "branch", theirs.get("output"), mine.get("output"), why(node_id))
        ]
    if node_type == "for-each":
        counts = (_iterations(theirs), _iterations(mine))
        if counts[0] != counts[1]:
            return [Difference(node_id, "iterations", *counts, why(node_id))]
    found = []
    values = {i.get("name"): i for i in mine.get("inputs") or [] if isinstance(i, Mapping)}
    for entry in theirs.get("inputs") or []:
        if not isinstance(entry, Mapping) or "value" not in entry:
            continue
        other = values.get(entry.get("name"))
        if other is not None and "value" in other and not same(entry["value"], other["value"]):
            found.append(
                Difference(node_id, f"input `{entry.get('name')}`", entry["value"], other["value"])
            )
    if found:
        found[0].why = why(node_id)
    return found


def _iterations(node: Mapping[str, Any]) -> int | None:
    output = node.get("output")
    return len(output) if isinstance(output, list) else None


def replay_lines(result: Replay) -> list[str]:
    recorded = result.recorded
    count = len(result.differences)
    head = (
        f"replay of job {recorded.get('jobId')}: recorded {recorded.get('status')}, "
        f"local {result.job.status.value} (job {result.job.job_id})"
    )
    if result.agree:
        return [head, "the local run agrees with the recording"]
    lines = [head, f"{count} difference{'s' if count != 1 else ''}:"]
    for difference in result.differences:
        lines += difference.lines()
    if result.consequences:
        lines.append(
            f"and {result.consequences} more downstream of these (not listed: they follow)"
        )
    return lines
