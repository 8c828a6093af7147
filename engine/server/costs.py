"""Dry-run cost estimates: simulate the run offline and price each model call from a table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from engine.api import Engine
from engine.compile.models import Workflow
from engine.executors import DryRunExecutor
from engine.protocols import ExecutorResult, NodeCall

DEFAULT_COST_PER_CALL = 1.0


class CountingDryRun(DryRunExecutor):
    """A dry-run executor that counts calls per (node type, modelId)."""

    def __init__(self) -> None:
        super().__init__(assets_dir=None)
        self.calls: Counter[tuple[str, str | None]] = Counter()

    async def run(self, call: NodeCall) -> ExecutorResult:
        self.calls[(call.node_type, call.model_id)] += 1
        return await super().run(call)


def price(calls: Mapping[tuple[str, str | None], int], table: Mapping[str, float]) -> float:
    """Each call costs `table[modelId]`, else `table[node type]`, else `table["default"]`."""
    default = float(table.get("default", DEFAULT_COST_PER_CALL))
    total = 0.0
    for (node_type, model_id), count in calls.items():
        unit = table.get(model_id or "", table.get(node_type, default))
        total += float(unit) * count
    return total


async def estimate(
    workflow: Workflow, inputs: Mapping[str, Any], table: Mapping[str, float], *, workflows: Engine
) -> float:
    """Simulate the run (approval gates approved, selections take their first items, in
    sub-workflows too) and price the model calls it makes. Raises ValidationError for invalid
    inputs, like a real run."""
    counter = CountingDryRun()
    engine = Engine(dry_run=counter, workflow_source=workflows.workflow)
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
    return price(counter.calls, table)
