"""The stand-in for Scenario's generate API: an inference job is a one-node job of the engine.

`POST /generate/custom/{modelId}` (and `/generate/prompt`) create a job whose only node is a
`custom-model` (or `generate-prompt`) node with the body as its input values; the server's
executors run it (the dry-run executor by default, with the latency and failures `serve` was
given), it lives in the store as any job does (a restarted server carries it on, another
server sharing the store sees it), and `GET /jobs/{id}` answers it as Scenario answers an
inference job. Its workflow id, `inference:{modelId}`, is what tells the two kinds apart.
Each asset an inference job makes is bound to its job in the store (see `index_assets`), so
`GET /assets/{assetId}` finds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from engine.api import JobRun
from engine.protocols import Store

INFERENCE_PREFIX = "inference:"
ASSET_KEY = "asset:"  # the store binds `asset:{assetId}` to the inference job that made it
PROMPT_MODEL = "prompt"  # the model id of a `/generate/prompt` job


def is_inference(workflow_id: str | None) -> bool:
    return workflow_id is not None and workflow_id.startswith(INFERENCE_PREFIX)


# A job document ends with its metadata's `workflowId` (nothing follows it but for a child's
# `workflowJobId`): an inference job's is `inference:{modelId}`. Read from the end of the
# encoded document, so that answering a workflow job costs no second read of the store.
_INFERENCE_TAIL = re.compile(rb',"workflowId":"inference:(?:[^"\\]|\\.)*"}}\Z')
_TAIL_BYTES = 4096


def is_inference_document(document_json: bytes) -> bool:
    """Whether an encoded job document is an inference job's (see `_INFERENCE_TAIL`)."""
    return (
        _INFERENCE_TAIL.search(document_json, max(0, len(document_json) - _TAIL_BYTES)) is not None
    )


def input_type(value: Any) -> str:
    """The node input type that carries `value` unchanged."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        if value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return "number_array"
        return "string_array"
    return "string"


def inference_workflow(model_id: str, body: dict[str, Any], *, node_type: str) -> dict[str, Any]:
    """A ready one-node workflow running `model_id` with the body's values as its inputs."""
    if node_type == "generate-prompt" and "prompt" in body:  # what the dry-run prompt quotes
        body = {"prompt": body["prompt"], **body}
    node: dict[str, Any] = {
        "id": model_id,  # so `serve --fail MODEL_ID` fails that model's generations
        "type": node_type,
        "inputs": [
            {"name": name, "type": input_type(value), "value": value}
            for name, value in body.items()
            if value is not None
        ],
    }
    if node_type != "generate-prompt":
        node["modelId"] = model_id
    return {
        "id": INFERENCE_PREFIX + model_id,
        "name": f"inference {model_id}",
        "status": "ready",
        "flow": [node],
        "inputs": [],
    }


def inference_document(workflow_document: dict[str, Any]) -> dict[str, Any]:
    """A workflow-job document of an inference job, as Scenario answers an inference job."""
    metadata = workflow_document.get("metadata") or {}
    flow = metadata.get("flow") or [{}]
    node = flow[0]
    given = {i["name"]: i.get("value") for i in node.get("inputs") or [] if "name" in i}
    answer: dict[str, Any] = {
        "input": given,
        "assetIds": [a["assetId"] for a in node.get("assets") or []],
    }
    if node.get("modelId"):
        answer["modelId"] = node["modelId"]
    output = node.get("output")
    if node.get("type") == "generate-prompt" and isinstance(output, str):
        answer["output"] = {"prompt": output}
    error = metadata.get("error")
    if error is not None:
        answer["error"] = error
    document: dict[str, Any] = {
        key: workflow_document[key]
        for key in ("jobId", "status", "progress", "createdAt", "updatedAt", "statusHistory")
        if key in workflow_document
    }
    job_type = "generate-prompt" if node.get("type") == "generate-prompt" else "inference"
    return {**document, "jobType": job_type, "metadata": answer}


def inference_json(document_json: bytes) -> bytes:
    return orjson.dumps(inference_document(orjson.loads(document_json)))


def index_assets(store: Store, job: JobRun) -> None:
    """Bind each asset of a finished inference job to the job, for `GET /assets/{id}`."""
    for instance in job.scheduler.instances.values():
        for asset in instance.assets:
            store.remember_key(ASSET_KEY + asset.asset_id, job.job_id)


def asset_job(store: Store, live: Iterable[JobRun], asset_id: str) -> str | None:
    """The inference job that made `asset_id`: bound in the store once the job has ended, or
    a job of this server that has made it and is ending now (a client may see the job
    succeed before its assets are bound)."""
    found = store.bound_job(ASSET_KEY + asset_id)
    if found is not None:
        return found
    for job in live:
        if is_inference(job.plan.workflow.id) and any(
            asset.asset_id == asset_id
            for instance in job.scheduler.instances.values()
            for asset in instance.assets
        ):
            return job.job_id
    return None


def asset_of(job_document: dict[str, Any], asset_id: str) -> dict[str, Any] | None:
    """The asset `asset_id` of an inference job's (workflow-job) document, if it made it."""
    metadata = job_document.get("metadata") or {}
    for node in metadata.get("flow") or []:
        for asset in node.get("assets") or []:
            if asset.get("assetId") == asset_id:
                return {**asset, "modelId": node.get("modelId"), "jobId": job_document["jobId"]}
    return None
