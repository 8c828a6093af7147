"""Cost estimates before running: simulate the run offline (the branches and loop counts the
given inputs resolve to), then price each model call it would make.

A call routed to an executor that can price it (`estimate(call)`: the scenario executor asks
Scenario's `dryRun`) is priced by that executor, once per distinct call (node type, modelId and
inputs); the others from a table of creative units per modelId or node type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.api import Engine
from engine.compile.models import Workflow
from engine.executors import DryRunExecutor, ExecutorRouter
from engine.protocols import ExecutorResult, NodeCall, PricingExecutor

DEFAULT_COST_PER_CALL = 1.0


class RecordingDryRun(DryRunExecutor):
    """A dry-run executor that keeps every call it is given."""

    def __init__(self) -> None:
        super().__init__(assets_dir=None)
        self.calls: list[NodeCall] = []

    def compute(self, call: NodeCall) -> ExecutorResult:
        self.calls.append(call)  # what `run` and `run_batch` both answer through
        return super().compute(call)


@dataclass
class CostEstimate:
    """Creative units in total and per model node (clones by their own ids), and how many
    calls were priced by asking an executor."""

    total: float = 0.0
    nodes: dict[str, float] = field(default_factory=dict)
    asked: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "nodes": self.nodes, "asked": self.asked}


def price(
    node_type: str, model_id: str | None, table: Mapping[str, float], count: int = 1
) -> float:
    """A call costs `table[modelId]`, else `table[node type]`, else `table["default"]`."""
    default = float(table.get("default", DEFAULT_COST_PER_CALL))
    return float(table.get(model_id or "", table.get(node_type, default))) * count


async def estimate(
    workflow: Workflow,
    inputs: Mapping[str, Any],
    table: Mapping[str, float],
    *,
    workflows: Engine,
    router: ExecutorRouter | None = None,
) -> CostEstimate:
    """Simulate the run (approval gates approved, selections take their first items, in
    sub-workflows too) and price the model calls it makes: by the executor `router` sends each
    to when that executor prices calls, else from `table`. Raises ValidationError for invalid
    inputs, like a real run."""
    recorder = RecordingDryRun()
    await simulate(workflow, inputs, recorder, workflows=workflows)
    result = CostEstimate()
    asked: dict[tuple[Any, ...], float] = {}
    for call in recorder.calls:
        executor = router.route(call.node_type, call.model_id) if router is not None else None
        if isinstance(executor, PricingExecutor):
            key = (id(executor), call.node_type, call.model_id, _inputs_key(call))
            if key not in asked:
                asked[key] = await executor.estimate(call)
            cost = asked[key]
        else:
            cost = price(call.node_type, call.model_id, table)
        result.nodes[call.node_id] = result.nodes.get(call.node_id, 0.0) + cost
        result.total += cost
    result.asked = len(asked)
    return result


async def simulate(
    workflow: Workflow, inputs: Mapping[str, Any], executor: DryRunExecutor, *, workflows: Engine
) -> None:
    engine = Engine(dry_run=executor, workflow_source=workflows.workflow)
    job = engine.prepare(workflow, inputs)
    await engine.advance(job)
    while job.waiting and not job.scheduler.finished:
        for gate in job.waiting:
            if job.scheduler.finished or not job.scheduler.still_waits(gate):
                continue
            if gate.template.type == "user-selection":
                low = 1
                for node_input in gate.template.node.inputs or []:
                    if node_input.min is not None:
                        low = int(node_input.min)
                decision: Any = {"select": list(range(min(low, len(gate.items or []))))}
            else:
                decision = "approve"
            engine.decide_now(job, gate.id, decision)
        await engine.advance(job)


def _inputs_key(call: NodeCall) -> bytes:
    return orjson.dumps(call.inputs, option=orjson.OPT_SORT_KEYS, default=repr)
