"""Branch coverage of workflows: every decision point of a plan, and which of its outcomes the
runs of a test session took.

The decision points: each if/else case and default; each `ref.equal` matched and not matched;
each `ref.conditional` entry that supplied the value; each for-each run with zero, one and
many iterations (only the possible ones: a fixed `count` has one, a run input's `min`/`max`
rule some out); each gate approved, rejected and selected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.compile.compiler import CompiledInput, Plan, TemplateNode
from engine.protocols import NodeStatus
from engine.run.instances import INSTANCE, Instance, Link, json_text
from engine.run.scheduler import Scheduler
from engine.run.skips import matched


@dataclass(frozen=True)
class Branch:
    """One outcome of one decision point: `check: case 1` (the node, then the outcome)."""

    node: str
    outcome: str
    label: str  # what it means, for a person: "condition `fast` -> gen_fast"

    @property
    def key(self) -> str:
        return f"{self.node}: {self.outcome}"


def iterations_bucket(count: int) -> str:
    return "zero iterations" if count == 0 else "one iteration" if count == 1 else "many iterations"


def branches(plan: Plan) -> list[Branch]:
    """Every outcome of every decision point of `plan`, in flow order."""
    found: list[Branch] = []
    for template in plan.nodes.values():
        found += _node_branches(plan, template)
    return found


def _node_branches(plan: Plan, template: TemplateNode) -> list[Branch]:
    node = template.node
    found: list[Branch] = []
    if template.type == "logic" and node.logic is not None:
        for index, case in enumerate(node.logic.cases or []):
            found.append(
                Branch(
                    template.id,
                    f"case {index + 1}",
                    f"`{case.condition}` -> {json_text(case.value)}",
                )
            )
        if node.logic.default is not None:
            found.append(Branch(template.id, "default", f"-> {json_text(node.logic.default)}"))
    elif template.type == "for-each":
        for bucket in _possible_buckets(plan, template):
            found.append(Branch(template.id, bucket, "for-each"))
    elif template.type == "user-approval":
        found += [Branch(template.id, o, "gate") for o in ("approved", "rejected")]
    elif template.type == "user-selection":
        found += [Branch(template.id, o, "gate") for o in ("selected", "rejected")]
    for compiled in template.inputs:
        if compiled.conditional:
            for entry in compiled.conditional:
                found.append(
                    Branch(
                        template.id,
                        f"input `{compiled.name}` from `{entry}`",
                        "ref.conditional entry",
                    )
                )
        elif compiled.has_equal:
            equal = json_text(compiled.ref_equal)
            for outcome in ("matched", "not matched"):
                found.append(
                    Branch(
                        template.id,
                        f"input `{compiled.name}` equal `{equal}` {outcome}",
                        f"ref.equal on `{compiled.ref_node}`",
                    )
                )
    return found


def _possible_buckets(plan: Plan, loop: TemplateNode) -> list[str]:
    """The iteration counts a for-each can run with: a fixed `count` has one; an array from a
    run input cannot be shorter than its `min` nor longer than its `max`."""
    if loop.node.count is not None:
        return [iterations_bucket(loop.node.count)]
    low, high = 0, None
    for compiled in loop.inputs:
        if compiled.ref_node == "workflow" and compiled.is_array:
            rule = next((i for i in plan.workflow.inputs if i.name == compiled.ref_name), None)
            if rule is not None:
                low = int(rule.min) if rule.min is not None else 0
                high = int(rule.max) if rule.max is not None else None
            break
    possible = ["zero iterations"] if low <= 0 else []
    if low <= 1 and (high is None or high >= 1):
        possible.append("one iteration")
    if high is None or high >= 2:
        possible.append("many iterations")
    return possible


def taken(scheduler: Scheduler) -> set[str]:
    """The keys of the branches a job took (its clones count for their template)."""
    keys: set[str] = set()
    for instance in scheduler.instances.values():
        if not instance.is_template_copy:
            keys.update(instance_taken(instance))
    return keys


def instance_taken(instance: Instance) -> Iterable[str]:
    template = instance.template
    node_id = template.id
    status = instance.status
    if template.type == "logic" and status is NodeStatus.SUCCESS:
        case = (instance.details or {}).get("case")
        if case == "default":
            yield f"{node_id}: default"
        elif isinstance(case, int):
            yield f"{node_id}: case {case}"
    elif template.type == "for-each" and status is NodeStatus.SUCCESS:
        count = instance.outputs.get("count")
        if isinstance(count, int):
            yield f"{node_id}: {iterations_bucket(count)}"
    elif template.is_gate and status is NodeStatus.REJECTED:
        yield f"{node_id}: rejected"
    elif template.is_gate and status is NodeStatus.SUCCESS and instance.details:
        yield f"{node_id}: {'selected' if template.type == 'user-selection' else 'approved'}"
    for compiled, link, conditional in zip(
        template.inputs, instance.input_links, instance.conditional_links, strict=True
    ):
        if conditional and instance.resolved is not None:
            index = next(
                (k for k, entry in enumerate(conditional) if matched(entry, compiled)), None
            )
            if index is not None:
                yield f"{node_id}: input `{compiled.name}` from `{compiled.conditional[index]}`"
        elif compiled.has_equal and link is not None and not conditional:
            outcome = _equal_outcome(instance, compiled, link)
            if outcome is not None:
                equal = json_text(compiled.ref_equal)
                yield f"{node_id}: input `{compiled.name}` equal `{equal}` {outcome}"


def _equal_outcome(instance: Instance, compiled: CompiledInput, link: Link) -> str | None:
    if instance.resolved is not None:
        return "matched"
    cause = instance.cause or {}
    if cause.get("cause") == "equal" and cause.get("input") == compiled.name:
        return "not matched"
    # a node that is a branch of the if/else its `ref.equal` reads is skipped as a branch not
    # taken before its input is looked at: the if/else's choice says whether it matched
    source = link[1] if link[0] == INSTANCE else None
    if (
        cause.get("cause") == "branch"
        and source is not None
        and cause.get("node") == source.id
        and cause.get("chose") != compiled.ref_equal
    ):
        return "not matched"
    return None


@dataclass
class WorkflowCoverage:
    """The branches of one workflow and those the session's runs took."""

    workflow: str  # as shown: the path of the workflow file
    branches: list[Branch]
    hits: dict[str, int] = field(default_factory=dict)

    def add(self, keys: set[str]) -> None:
        for branch in self.branches:
            if branch.key in keys:
                self.hits[branch.key] = self.hits.get(branch.key, 0) + 1

    @property
    def covered(self) -> int:
        return sum(1 for b in self.branches if b.key in self.hits)

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / len(self.branches) if self.branches else 100.0

    def missing(self) -> list[Branch]:
        return [b for b in self.branches if b.key not in self.hits]

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "branches": len(self.branches),
            "covered": self.covered,
            "percent": round(self.percent, 1),
            "points": [
                {
                    "node": b.node,
                    "outcome": b.outcome,
                    "label": b.label,
                    "key": b.key,
                    "runs": self.hits.get(b.key, 0),
                }
                for b in self.branches
            ],
        }


def total_percent(coverages: Iterable[WorkflowCoverage]) -> float:
    listed = list(coverages)
    total = sum(len(c.branches) for c in listed)
    return 100.0 * sum(c.covered for c in listed) / total if total else 100.0


def coverage_lines(coverages: list[WorkflowCoverage]) -> list[str]:
    """The terminal report: a line per workflow, then its branches never taken."""
    if not coverages:
        return []
    width = max(len(c.workflow) for c in coverages)
    lines = [f"{'workflow':<{width}}  branches  covered  cover"]
    for coverage in coverages:
        lines.append(
            f"{coverage.workflow:<{width}}  {len(coverage.branches):>8}  {coverage.covered:>7}  "
            f"{coverage.percent:>4.0f}%"
        )
        for branch in coverage.missing():
            lines.append(f"  never taken: {branch.key} ({branch.label})")
    total = sum(len(c.branches) for c in coverages)
    covered = sum(c.covered for c in coverages)
    lines.append(f"{'TOTAL':<{width}}  {total:>8}  {covered:>7}  {total_percent(coverages):>4.0f}%")
    return lines
