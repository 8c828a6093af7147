"""Load: concurrent runs of a small gated workflow through the official SDK against one server.

Every run is started, waits at its approval gate, is approved and must succeed; the check is
that all complete, none is lost and none is duplicated. Reports runs per second.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GATED: dict[str, Any] = {
    "flow": [
        {
            "id": "draft",
            "type": "custom-model",
            "modelId": "model_draft",
            "inputs": [
                {"name": "prompt", "type": "string", "ref": {"node": "workflow", "name": "prompt"}}
            ],
        },
        {"id": "review", "type": "user-approval", "dependsOn": ["draft"]},
        {
            "id": "final",
            "type": "custom-model",
            "modelId": "model_final",
            "dependsOn": ["review"],
            "inputs": [{"name": "image", "type": "file", "ref": {"node": "draft"}}],
        },
    ],
    "inputs": [{"name": "prompt", "type": "string", "required": {"always": True}}],
}


async def one_run(client: Any, workflow_id: str, n: int) -> tuple[str, str]:
    job_id = (await client.workflows.run(workflow_id, body={"prompt": f"run {n}"})).job.job_id
    while True:
        job = (await client.jobs.retrieve(job_id)).job
        if any(node.id == "review" and node.status == "processing" for node in job.metadata.flow):
            break
        await asyncio.sleep(0.02)
    await client.workflows.user_approval(
        workflow_id, project_id="bench", node_id="review", workflow_job_id=job_id
    )
    while True:
        job = (await client.jobs.retrieve(job_id)).job
        if job.status in ("success", "failure", "canceled"):
            return job_id, job.status
        await asyncio.sleep(0.02)


async def load(base_url: str, runs: int) -> dict[str, Any]:
    from scenario_sdk import AsyncScenario

    client = AsyncScenario(api_key="bench", api_secret="bench", base_url=base_url, max_retries=0)
    created = await client.workflows.create(name="load", description="gated load test")
    workflow_id = created.workflow.id
    await client.workflows.update(
        workflow_id, flow=GATED["flow"], inputs=GATED["inputs"], status="ready"
    )
    start = time.perf_counter()
    results = await asyncio.gather(*(one_run(client, workflow_id, n) for n in range(runs)))
    seconds = time.perf_counter() - start
    listed = [job.job_id async for job in client.jobs.list(workflow_id=workflow_id, page_size=100)]
    await client.close()
    ids = [job_id for job_id, _ in results]
    return {
        "runs": runs,
        "seconds": round(seconds, 3),
        "runsPerSecond": round(runs / seconds, 1),
        "allSucceeded": all(status == "success" for _, status in results),
        "distinctJobs": len(set(ids)),
        "listedJobs": len(listed),
        "listedMatches": sorted(listed) == sorted(ids),
    }


def run_load(runs: int = 50) -> dict[str, Any]:
    from engine.server.launcher import running_server

    with tempfile.TemporaryDirectory() as folder, running_server(Path(folder) / "jobs.db") as url:
        return asyncio.run(load(url, runs))


if __name__ == "__main__":
    print(run_load(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
