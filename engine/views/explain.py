"""Why every node ran, waited or was skipped: a chain of causes back to the root decision.

    gen_fast skipped ← branch `gen_fast` of `check` not taken ← check chose `gen_quality`
    because condition=`quality` matched case 2

Loop templates are summarised per template (3 iterations: 2 success, 1 skipped), with every
clone explained on request.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine.protocols import NodeStatus
from engine.run.instances import COLLECTION, INSTANCE, Instance, json_text
from engine.run.scheduler import Scheduler

ARROW = " ← "
MAX_DEPTH = 12


@dataclass
class Explanation:
    node_id: str
    status: str
    chain: list[str]
    iterations: dict[str, Any] | None = None
    clones: list[Explanation] = field(default_factory=list)
    title: str | None = None  # the editor's title of a published node

    def line(self) -> str:
        title = f" {json.dumps(self.title, ensure_ascii=False)}" if self.title else ""
        text = f"{self.node_id}{title} {self.status}"
        if self.iterations is not None:
            counts = ", ".join(f"{n} {s}" for s, n in self.iterations["statuses"].items())
            total = self.iterations["count"]
            text += f" ({total} iteration{'s' if total != 1 else ''}: {counts or 'none'})"
        return ARROW.join([text, *self.chain]) if self.chain else text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.node_id,
            "status": self.status,
            **({"title": self.title} if self.title else {}),
            "chain": self.chain,
            "text": self.line(),
        }
        if self.iterations is not None:
            out["iterations"] = self.iterations
        if self.clones:
            out["clones"] = [c.to_json() for c in self.clones]
        return out


class Explainer:
    """Builds explanations from a scheduler's instances (live, or rebuilt from a store)."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.instances = scheduler.instances

    def explain(self, node_id: str) -> Explanation:
        """One node; a template id gives every clone, a top-level node itself."""
        instance = self.instances.get(node_id)
        if instance is None:
            raise KeyError(self._not_found(node_id))
        clones = self.clones_of(node_id)
        if instance.is_template_copy and clones:
            statuses = Counter(c.status.value for c in clones)
            return Explanation(
                node_id,
                "template",
                [],
                iterations={"count": len(clones), "statuses": dict(statuses.most_common())},
                clones=[self.explain_instance(c) for c in clones],
                title=instance.template.title,
            )
        return self.explain_instance(instance)

    def explain_all(self) -> list[Explanation]:
        """Every node that is not a clone: top-level nodes and loop templates (summarised)."""
        return [self.explain(i.id) for i in self.instances.values() if i.scope.loop is None]

    def clones_of(self, template_id: str) -> list[Instance]:
        return [
            i
            for i in self.instances.values()
            if i.template.id == template_id and i.scope.loop is not None and not i.is_template_copy
        ]

    def explain_instance(self, instance: Instance) -> Explanation:
        return Explanation(
            instance.id,
            instance.status.value,
            self.chain(instance, 0),
            title=instance.template.title,
        )

    def _not_found(self, node_id: str) -> str:
        """Why `node_id` is not in the job: no such node, or an editor node that publishes to
        no flow node of its own."""
        message = f"no node `{node_id}` in job `{self.scheduler.job_id}`"
        editor = (self.scheduler.plan.workflow.model_extra or {}).get("editorInfo")
        nodes = editor.get("nodes") if isinstance(editor, dict) else None
        for node in nodes if isinstance(nodes, list) else ():
            if isinstance(node, dict) and node.get("id") == node_id:
                return (
                    f"{message}: it is a `{node.get('type')}` node of the editor graph, which "
                    "publishes to no flow node (a text or an asset becomes a run input or a "
                    "value; a loop's end, the node that feeds it)"
                )
        return message

    # ----- chains -----------------------------------------------------------------------------

    def chain(self, instance: Instance, depth: int) -> list[str]:
        if depth > MAX_DEPTH:
            return ["…"]
        status = instance.status
        if status is NodeStatus.SUCCESS:
            return self.success(instance, depth)
        if status is NodeStatus.PROCESSING:
            if instance.template.is_gate:
                return ["waiting for a decision"]
            if instance.reason is not None:  # a workflow node waiting at its child's gates
                return [instance.reason]
            return ["running" if instance.template.type != "for-each" else "iterating"]
        if status is NodeStatus.PENDING:
            return self.pending(instance)
        return self.cause_chain(instance, instance.cause or {}, depth)

    def success(self, instance: Instance, depth: int) -> list[str]:
        template = instance.template
        if template.type == "logic":
            return [self.decision(instance)]
        steps: list[str] = []
        for source in instance.branch_links:
            steps.append(f"branch `{template.id}` of `{source.id}` taken")
            steps.append(self.decision(source))
            break
        for compiled, link in zip(template.inputs, instance.input_links, strict=True):
            if compiled.has_equal and link is not None and link[0] == INSTANCE:
                step = f"branch `{json_text(compiled.ref_equal)}` of `{link[1].id}` taken"
                if step not in steps:  # a branch of that if/else named by its `equal` too
                    steps += [step, self.decision(link[1])]
                break
        if template.type == "for-each":
            count = (instance.outputs or {}).get("count", 0)
            steps.insert(
                0,
                f"{count} iteration{'s' if count != 1 else ''}"
                + ("" if count else ": the array was empty"),
            )
        if template.is_gate and instance.details:
            decided = f"decided: {instance.details.get('decision')}"
            indices = instance.details.get("selectedIndices")
            if indices is not None:
                decided += f" {', '.join(str(i) for i in indices)}"
            steps.insert(0, decided)
        return steps

    def decision(self, logic: Instance) -> str:
        details = logic.details or {}
        chosen = json_text(details.get("chosen", logic.outputs.get("output")))
        case = details.get("case")
        if logic.status is not NodeStatus.SUCCESS:
            return f"`{logic.id}` was {logic.status.value}"
        if case == "default":
            return f"{logic.id} chose `{chosen}`: no case matched, so the default"
        if case is None:
            return f"{logic.id} chose nothing: no case matched and there is no default"
        if details.get("form") == "literal":
            shown = json_text(details.get("condition"))
            return f"{logic.id} chose `{chosen}` because condition=`{shown}` matched case {case}"
        return (
            f"{logic.id} chose `{chosen}` because case {case} "
            f"`{details.get('caseCondition')}` was true"
        )

    def pending(self, instance: Instance) -> list[str]:
        waiting = [
            link[1].id
            for link in [*instance.order_links, *instance.input_links]
            if link is not None
            and link[0] in (INSTANCE, COLLECTION)
            and not link[1].status.terminal
        ]
        waiting += [b.id for b in instance.branch_links if not b.status.terminal]
        if waiting:
            return ["waiting for " + ", ".join(f"`{w}`" for w in dict.fromkeys(waiting))]
        return ["not started"]

    def follow(self, node_id: str, depth: int) -> list[str]:
        other = self.instances.get(node_id)
        if other is None:
            return []
        if other.template.type == "logic" and other.status is NodeStatus.SUCCESS:
            return [self.decision(other)]
        return [f"{other.id} {other.status.value}", *self.chain(other, depth + 1)]

    def cause_chain(self, instance: Instance, cause: dict[str, Any], depth: int) -> list[str]:
        kind = cause.get("cause")
        reason = instance.reason or instance.status.value
        if kind in ("dependsOn", "input", "branch-source"):
            return [reason, *self.follow(cause["node"], depth)]
        if kind in ("branch", "equal"):
            logic = self.instances.get(cause["node"])
            return [reason, self.decision(logic)] if logic is not None else [reason]
        if kind == "conditional":
            parts = []
            for entry in cause.get("entries", {}):
                followed = self.follow(entry, depth)
                parts.append(ARROW.join(followed) if followed else entry)
            return [reason, "[" + "; ".join(parts) + "]"]
        if kind in ("job-failed", "iteration"):
            return [reason, *self.follow(cause["node"], depth)]
        if kind == "rejected":
            return [reason, f"{cause['gate']} rejected by decision"]
        if kind == "error":
            return [f"error: {cause.get('message', reason)}"]
        return [reason]


def explain_text(explanations: list[Explanation], *, drill_down: bool = False) -> str:
    lines = []
    for explanation in explanations:
        lines.append(explanation.line())
        if drill_down:
            lines.extend("  " + clone.line() for clone in explanation.clones)
    return "\n".join(lines)
