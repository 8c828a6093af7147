"""Run by test_durability.py in a subprocess that is killed with SIGKILL mid-run: a parent
whose `workflow` node runs a child job with a gate.

The child's `draft` gets a random asset id (so a re-run would show), then `prep` runs (it
hangs forever with `running`: the child is cut short before its gate), then `review` waits.
The parent's `slow` hangs forever, so the process is alive when the child's gate parks `sub`.
"""

from __future__ import annotations

import sys
import uuid

import anyio

from engine import Engine, ExecutorResult, NodeCall, Workflow
from engine.stores import SQLiteStore

CHILD = {
    "id": "wflow_crash_child",
    "flow": [
        {"id": "draft", "type": "custom-model", "modelId": "model_random"},
        {"id": "prep", "type": "custom-model", "modelId": "model_prep", "dependsOn": ["draft"]},
        {"id": "review", "type": "user-approval", "dependsOn": ["prep"]},
        {
            "id": "final",
            "type": "custom-model",
            "modelId": "model_upscale",
            "dependsOn": ["review"],
            "inputs": [{"name": "image", "type": "file", "ref": {"node": "draft"}}],
        },
    ],
}
PARENT = {
    "id": "wflow_crash_parent",
    "flow": [
        {"id": "sub", "type": "workflow", "workflowId": "wflow_crash_child"},
        {"id": "slow", "type": "custom-model", "modelId": "model_slow"},
        {
            "id": "use",
            "type": "transform",
            "inputs": [{"name": "a", "type": "file", "ref": {"node": "sub"}}],
            "logic": {"transform": "a"},
        },
    ],
}


def random_asset(call: NodeCall) -> list[str]:
    return [f"asset_{uuid.uuid4().hex}"]


async def hang(call: NodeCall) -> ExecutorResult:
    await anyio.sleep(3600)
    return ExecutorResult()


async def main(db: str, job_id: str, mode: str) -> None:
    models = {
        "model_random": random_asset,
        "model_slow": hang,
        "model_prep": hang if mode == "running" else random_asset,
    }
    engine = Engine(
        store=SQLiteStore(db),
        python_models=models,
        workflows={"wflow_crash_child": Workflow.model_validate(CHILD)},
    )
    await engine.run(PARENT, job_id=job_id)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
