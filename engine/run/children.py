"""Gates inside sub-workflows, as the jobs above them see them.

A `workflow` node whose child job stops at gates waits with it: the node stays `processing`,
parked (no call in flight), and its job lists the child's gates by path: the node's id, `/`,
then the gate's id in the child (`sub/approve`, `sub#1/approve` for a clone of the node,
`sub/inner/approve` two levels down). A decision for such a gate, by that path or by the child
job and the gate's own id, reaches the child; the parked node then starts again, carries the
child on and reports how it ended. Parking is not recorded: a restored job asks its children
again (see `Engine`), so a child decided while its parent was away is never missed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.compile.compiler import TemplateNode
from engine.run.instances import Instance, decision_keys

SEPARATOR = "/"  # between a workflow node's id and the path of a gate in its child job
REASONS_SHOWN = 3  # gates named in a parked node's statusReason before "and N more"


@dataclass(frozen=True, slots=True)
class ChildGate:
    """A gate waiting in a sub-workflow's job, named from a job above it.

    It answers what a waiting gate of the job itself answers (`id`, `template`, `items`), so
    surfaces list, describe and decide both alike.
    """

    holder: str  # the workflow node, in the job that lists the gate, waiting on it
    id: str  # the path from that job: `sub/approve`
    job_id: str  # the job the gate waits in
    node_id: str  # the gate's id in that job
    template: TemplateNode
    items: list[Any] | None
    keys: tuple[str, ...]  # the decision keys naming it, most specific first
    document: dict[str, Any]  # its node in its own job, `id` the path, with `jobId`, `nodeId`


def child_job_id(parent_job_id: str, node_id: str) -> str:
    """The id of the child job that workflow node `node_id` of job `parent_job_id` runs:
    derived from both, so that a parent resumed after a stop finds the child it created even
    when the node's own record of it had not reached the store."""
    digest = hashlib.sha256(f"{parent_job_id}{SEPARATOR}{node_id}".encode()).digest()[:18]
    return "job_" + base64.urlsafe_b64encode(digest).decode().replace("-", "x").replace("_", "y")


def child_gates(
    holder: Instance,
    job_id: str,
    own: Iterable[tuple[Instance, dict[str, Any]]],
    nested: Iterable[ChildGate],
) -> tuple[ChildGate, ...]:
    """The gates `holder`'s child job `job_id` waits at, as the holder's job names them: the
    child's own gates (each with its node in the child's document), then the gates the
    child's own workflow nodes wait at."""
    holder_keys = decision_keys(holder)

    def below(path: str, keys: Iterable[str]) -> tuple[str, tuple[str, ...]]:
        return (
            f"{holder.id}{SEPARATOR}{path}",
            tuple(f"{h}{SEPARATOR}{k}" for h in holder_keys for k in keys),
        )

    gates = []
    for gate, document in own:
        path, keys = below(gate.id, decision_keys(gate))
        entry = {**document, "id": path, "jobId": job_id, "nodeId": gate.id}
        gates.append(
            ChildGate(holder.id, path, job_id, gate.id, gate.template, gate.items, keys, entry)
        )
    for deeper in nested:
        path, keys = below(deeper.id, deeper.keys)
        entry = {**deeper.document, "id": path}
        gates.append(
            ChildGate(
                holder.id,
                path,
                deeper.job_id,
                deeper.node_id,
                deeper.template,
                deeper.items,
                keys,
                entry,
            )
        )
    return tuple(gates)


def waiting_reason(gates: tuple[ChildGate, ...]) -> str:
    """A parked workflow node's statusReason: the gates it waits for, where they are."""
    named = ", ".join(
        f"`{g.id}` (gate `{g.node_id}` of job `{g.job_id}`)" for g in gates[:REASONS_SHOWN]
    )
    more = f" and {len(gates) - REASONS_SHOWN} more" if len(gates) > REASONS_SHOWN else ""
    return f"waiting for {'a decision' if len(gates) == 1 else 'decisions'} at {named}{more}"
