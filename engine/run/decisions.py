"""Applying a decisions file (node id -> decision) to the gates of a parked job."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.compile.compiler import Plan
from engine.errors import DecisionError, Problem, ValidationError
from engine.run.instances import Instance

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
    loops, a clone prefix (`gate#1`). Raises ValidationError naming each entry that does not,
    with the closest gate id."""
    gates = [node_id for node_id, t in plan.nodes.items() if t.type in GATE_TYPES]
    problems = []
    for key in decisions:
        template, _, suffix = key.partition("#")
        node = plan.nodes.get(template)
        if node is None:
            close = difflib.get_close_matches(template, gates, n=1) or difflib.get_close_matches(
                template, list(plan.nodes), n=1
            )
            hint = f"; did you mean `{close[0]}`?" if close else ""
            listed = f" (its gates: {', '.join(gates)})" if gates and not close else ""
            message = f"names no node of the workflow{hint}{listed}"
        elif node.type not in GATE_TYPES:
            message = (
                f"`{template}` is a {node.type} node; decisions are for gates "
                f"(user-approval, user-selection){': ' + ', '.join(gates) if gates else ''}"
            )
        elif suffix and not all(part.isdigit() for part in suffix.split("#")):
            message = "a clone id is the gate's id and iteration indices: `gate#2`, `gate#1#0`"
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


def entry_for(gate: Instance, decisions: Mapping[str, Any]) -> str | None:
    """The most specific entry naming `gate`: its own id, then the longest clone-id prefix
    (`gate#1` for `gate#1#0`), then its template id."""
    if gate.id in decisions:
        return gate.id
    parts = gate.id.split("#")
    for length in range(len(parts) - 1, 0, -1):
        prefix = "#".join(parts[:length])
        if prefix in decisions:
            return prefix
    return gate.template.id if gate.template.id in decisions else None


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
    """Decide every waiting gate an entry (or `auto_approve`) covers; True if any was decided."""
    progressed = False
    for gate in list(scheduler.waiting.values()):
        if scheduler.finished or gate.id not in scheduler.waiting:
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
