"""Run by test_durability.py in a subprocess that is killed with SIGKILL mid-run.

It runs a workflow with a SQLite store: `draft` gets a random asset id (so a re-run would show),
`slow` hangs forever (it is processing when the process dies), and `review` waits.
"""

from __future__ import annotations

import sys
import uuid

import anyio

from engine import Engine, ExecutorResult, NodeCall
from engine.stores import SQLiteStore

WORKFLOW = {
    "id": "wflow_crash",
    "flow": [
        {"id": "draft", "type": "custom-model", "modelId": "model_random"},
        {"id": "review", "type": "user-approval", "dependsOn": ["draft"]},
        {"id": "slow", "type": "custom-model", "modelId": "model_slow"},
        {
            "id": "final",
            "type": "custom-model",
            "modelId": "model_upscale",
            "dependsOn": ["review"],
            "inputs": [{"name": "image", "type": "file", "ref": {"node": "draft"}}],
        },
    ],
}


def random_asset(call: NodeCall) -> list[str]:
    return [f"asset_{uuid.uuid4().hex}"]


async def hang(call: NodeCall) -> ExecutorResult:
    await anyio.sleep(3600)
    return ExecutorResult()


async def main(db: str, job_id: str) -> None:
    engine = Engine(
        store=SQLiteStore(db), python_models={"model_random": random_asset, "model_slow": hang}
    )
    await engine.run(WORKFLOW, job_id=job_id)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
