"""`/v1/generate/custom/{modelId}` and `/v1/generate/prompt`: the stand-in for Scenario's
generate API (see engine/server/inference.py), and `/v1/assets/{assetId}` with the files its
urls name."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from engine.costs import price
from engine.errors import ValidationError
from engine.executors.dry_run import placeholder_png
from engine.server.inference import (
    PROMPT_MODEL,
    asset_job,
    asset_of,
    inference_document,
    inference_workflow,
)
from engine.server.schemas import DryRunResponse
from engine.server.state import (
    ServerState,
    bad_request,
    not_found,
    problems_message,
    state_of,
)

router = APIRouter(prefix="/generate", tags=["generate"])
assets_router = APIRouter(prefix="/assets", tags=["assets"])
files_router = APIRouter(prefix="/files", tags=["files"])
State = Annotated[ServerState, Depends(state_of)]
ProjectId = Annotated[str | None, Query(alias="projectId")]
DryRun = Annotated[str | None, Query(alias="dryRun", pattern="^(true|api)$")]
TERMINAL_STATUSES = ("success", "failure", "canceled")
KEY_PREFIX = "generate:"  # generations' idempotency keys, apart from workflow runs' keys


@router.post("/custom/{model_id}", responses={269: {"model": DryRunResponse}})
async def run_model(
    model_id: str,
    state: State,
    request: Request,
    body: Annotated[Any, Body()] = None,
    dry_run: DryRun = None,
    ip_detection: Annotated[bool | None, Query(alias="ipDetection")] = None,
    project_id: ProjectId = None,
) -> Any:
    """Run one model with the body as its inputs: an inference job, polled on `/jobs/{id}`;
    `dryRun` answers 269 with its cost in creative units and runs nothing."""
    inputs = _object_body(body)
    if dry_run is not None:
        return _estimate("custom-model", model_id, state)
    return await _start(state, request, model_id, inputs, node_type="custom-model")


@router.post("/prompt", responses={269: {"model": DryRunResponse}})
async def generate_prompt(
    state: State,
    request: Request,
    body: Annotated[Any, Body()] = None,
    dry_run: DryRun = None,
    project_id: ProjectId = None,
) -> Any:
    """Write a prompt (the dry-run executor's text): answers when the prompt job has ended."""
    inputs = _object_body(body)
    if dry_run is not None:
        return _estimate("generate-prompt", None, state)
    answer = await _start(state, request, PROMPT_MODEL, inputs, node_type="generate-prompt")
    job_id = answer["job"]["jobId"]
    while (document := _inference(state, job_id))["status"] not in TERMINAL_STATUSES:
        await anyio.sleep(0.02)
    prompt = (document["metadata"].get("output") or {}).get("prompt")
    return {"job": document, "prompts": [prompt] if isinstance(prompt, str) else []}


def _object_body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request("the body of a generation is a JSON object of the model's inputs")
    return body


def _estimate(node_type: str, model_id: str | None, state: ServerState) -> JSONResponse:
    cost = price(node_type, model_id, state.costs)
    answer = {"creativeUnitsCost": cost, "creativeUnitsDiscount": 0, "job": {}}
    return JSONResponse(answer, status_code=269)


def _inference(state: ServerState, job_id: str) -> dict[str, Any]:
    return inference_document(orjson.loads(state.job_json(job_id)))


async def _start(
    state: ServerState, request: Request, model_id: str, inputs: dict[str, Any], *, node_type: str
) -> dict[str, Any]:
    from engine.server.workflows import started_job

    key = request.headers.get("idempotency-key")
    job_id = state.engine.job_ids()
    if key:
        bound = state.store.remember_key(KEY_PREFIX + key, job_id)
        if bound != job_id:  # a retry of a generation: the job it started, not a second one
            return {"job": inference_document(await started_job(state, bound))}
    try:
        job = state.engine.prepare(
            inference_workflow(model_id, inputs, node_type=node_type), {}, job_id=job_id
        )
    except ValidationError as error:
        if key:
            state.store.forget_key(KEY_PREFIX + key, job_id)
        raise bad_request(problems_message(error)) from None
    try:
        state.start(job)
    except BaseException as error:
        state.end_unstarted(job, f"the generation could not start: {error}")
        raise
    return {"job": inference_document(job.document())}


@assets_router.get("/{asset_id}")
async def retrieve_asset(
    asset_id: str,
    state: State,
    request: Request,
    original_assets: Annotated[bool | None, Query(alias="originalAssets")] = None,
    with_embedding: Annotated[bool | None, Query(alias="withEmbedding")] = None,
    with_quality_gate_details: Annotated[bool | None, Query(alias="withQualityGateDetails")] = None,
    project_id: ProjectId = None,
) -> Any:
    """An asset an inference job made, with a url this server serves."""
    job_id = asset_job(state.store, state.engine.jobs.values(), asset_id)
    document = {} if job_id is None else orjson.loads(state.job_json(job_id))
    found = asset_of(document, asset_id)
    if found is None:
        raise not_found(f"asset `{asset_id}` not found")
    at = str(document.get("updatedAt") or "")
    kind = found.get("kind") or "image"
    return {
        "asset": {
            "id": asset_id,
            "url": str(request.url_for("asset_file", asset_id=asset_id)),
            "kind": kind,
            "mimeType": "image/png",
            "status": "success",
            "privacy": "private",
            "source": "inference-txt",
            "authorId": "flowgraph",
            "ownerId": "flowgraph",
            "createdAt": at,
            "updatedAt": at,
            "tags": [],
            "collectionIds": [],
            "editCapabilities": [],
            "properties": {"size": len(placeholder_for(asset_id)), "width": 8, "height": 8},
            "metadata": {
                "kind": kind,
                "type": "inference-txt2img",
                "modelId": found.get("modelId"),
                "parentJobId": found["jobId"],
            },
        }
    }


def placeholder_for(asset_id: str) -> bytes:
    return placeholder_png(hashlib.blake2b(asset_id.encode(), digest_size=1).digest()[0])


@files_router.get("/{asset_id}.png", name="asset_file")
async def asset_file(asset_id: str, state: State) -> Response:
    """The placeholder image of an asset an inference job made (no credentials: a signed url
    of Scenario's needs none either)."""
    if asset_job(state.store, state.engine.jobs.values(), asset_id) is None:
        raise not_found(f"asset `{asset_id}` not found")
    return Response(placeholder_for(asset_id), media_type="image/png")
