"""Applying a decisions file (node id -> decision) to the gates of a parked job, its own and
those of the sub-workflows it waits on (keyed by path, `sub/approve`)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.compile.compiler import Plan
from engine.errors import DecisionError, Problem, ValidationError
from engine.run.children import SEPARATOR, ChildGate
from engine.run.instances import Instance, decision_keys

APPROVE, REJECT = "approve", "reject"


def check_decisions(raw: Any) -> dict[str, Any]:
    """Validate the shape of a decisions document; raises ValidationError naming each entry."""
    if not isinstance(raw, Mapping):
        raise ValidationError(
            [
                Problem(
                    'a decisions file maps node ids to `approve`, `reject` or {"select": [indices]}'
                )
            ],
            what="decisions",
        )
    problems = []
    for key, value in raw.items():
        if value in (APPROVE, REJECT):
            continue
        if (
            isinstance(value, Mapping)
            and set(value) == {"select"}
            and isinstance(value["select"], list)
        ):
            continue
        problems.append(
            Problem(
                f'decision `{value}` is not `approve`, `reject` or {{"select": [indices]}}',
                path=key,
            )
        )
    if problems:
        raise ValidationError(problems, what="decisions")
    return dict(raw)


GATE_TYPES = ("user-approval", "user-selection")


def check_decision_targets(decisions: Mapping[str, Any], plan: Plan) -> None:
    """Every entry names a gate of the plan: its id, a clone of it (`gate#2`) or, in nested
    loops, a clone prefix (`gate#1`); or, by path, a gate inside the sub-workflow of one of its
    workflow nodes (`sub/approve`; what follows the workflow node is checked when its child
    waits: an entry no gate used is reported then). Raises ValidationError naming each entry
    that does not, with the closest gate id."""
    gates = [node_id for node_id, t in plan.nodes.items() if t.type in GATE_TYPES]
    problems = []
    for key in decisions:
        target = key if key in plan.nodes else _path_head(key, plan)
        template, _, suffix = target.partition("#")
        node = plan.nodes.get(template)
        if node is None:
            close = difflib.get_close_matches(template, gates, n=1) or difflib.get_close_matches(
                template, list(plan.nodes), n=1
            )
            hint = f"; did you mean `{close[0]}`?" if close else ""
            listed = f" (its gates: {', '.join(gates)})" if gates and not close else ""
            message = f"names no node of the workflow{hint}{listed}"
        elif node.type not in GATE_TYPES and target == key:
            message = (
                f"`{template}` is a {node.type} node; decisions are for gates "
                f"(user-approval, user-selection){': ' + ', '.join(gates) if gates else ''}"
                + (
                    f", or name a gate of its sub-workflow: `{key}/GATE`"
                    if node.type == "workflow"
                    else ""
                )
            )
        elif suffix and not all(part.isdigit() for part in suffix.split("#")):
            message = (
                "a clone id is the gate's id and iteration indices: `gate#2`, `gate#1#0`"
                if target == key
                else "a clone id is the node's id and iteration indices: `sub#2/gate`"
            )
        elif suffix and len(suffix.split("#")) > len(node.loops):
            depth = len(node.loops)
            message = (
                f"`{template}` is in no for-each: it has no clones; name it `{template}`"
                if depth == 0
                else f"`{template}` is in {depth} for-each: its clones have {depth} index(es)"
            )
        else:
            continue
        problems.append(Problem(message, path=key))
    if problems:
        raise ValidationError(problems, what="decisions")


def _path_head(key: str, plan: Plan) -> str:
    """The workflow node (or clone) a path key starts with (`sub#1` of `sub#1/approve`), else
    the key as it is."""
    start = 0
    while (cut := key.find(SEPARATOR, start)) != -1:
        head = key[:cut]
        node = plan.nodes.get(head.partition("#")[0])
        if node is not None and node.type == "workflow":
            return head
        start = cut + 1
    return key


def entry_for(gate: Instance | ChildGate, decisions: Mapping[str, Any]) -> str | None:
    """The most specific entry naming `gate`: its own id, then the longest clone-id prefix
    (`gate#1` for `gate#1#0`), then its template id; for a gate inside a sub-workflow, the
    same for the workflow node, then for the gate below it (`sub#1/approve`, `sub/approve`)."""
    keys = gate.keys if isinstance(gate, ChildGate) else decision_keys(gate)
    return next((key for key in keys if key in decisions), None)


@dataclass
class DecisionReport:
    used: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)


def apply_decisions(
    scheduler: Any,
    decide: Callable[[str, Any], object],
    decisions: Mapping[str, Any],
    *,
    auto_approve: bool,
    report: DecisionReport,
) -> bool:
    """Decide every waiting gate an entry (or `auto_approve`) covers, gates inside
    sub-workflows included; True if any was decided."""
    progressed = False
    for gate in scheduler.waiting_at():
        if scheduler.finished or not scheduler.still_waits(gate):
            continue
        key = entry_for(gate, decisions)
        if key is not None:
            decision = decisions[key]
            report.used.add(key)
        elif auto_approve and gate.template.type == "user-approval":
            decision = APPROVE
        else:
            continue
        try:
            decide(gate.id, decision)
        except DecisionError as error:
            report.refused.append(str(error))
            continue
        progressed = True
    return progressed


def unused_entries(decisions: Mapping[str, Any], report: DecisionReport) -> list[str]:
    return [key for key in decisions if key not in report.used]
