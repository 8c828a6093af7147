"""`/v1/jobs`: read jobs, list them, cancel one."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Query

from engine.errors import DecisionError
from engine.server.inference import inference_json, is_inference
from engine.server.schemas import JobAction, JobEnvelope, JobList
from engine.server.state import ApiError, ServerState, bad_request, json_envelope, state_of

router = APIRouter(prefix="/jobs", tags=["jobs"])
State = Annotated[ServerState, Depends(state_of)]
ProjectId = Annotated[str | None, Query(alias="projectId")]


@router.get("", responses={200: {"model": JobList}})
async def list_jobs(
    state: State,
    workflow_id: Annotated[str | None, Query(alias="workflowId")] = None,
    status: str | None = None,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 50,
    pagination_token: Annotated[str | None, Query(alias="paginationToken")] = None,
    project_id: ProjectId = None,
) -> Any:
    """Workflow jobs, newest first, a page at a time."""
    try:
        records, cursor = state.store.list_jobs(
            status=status, workflow_id=workflow_id, limit=page_size, cursor=pagination_token
        )
    except ValueError as error:
        raise bad_request(str(error)) from None
    jobs = []
    for record in records:
        try:
            jobs.append(state.answered_job_json(record.job_id))
        except ApiError:
            continue  # created but not yet written: it shows on the next page load
    pieces = [b'{"jobs":[', b",".join(jobs), b"]"]
    if cursor is not None:
        pieces.append(b',"nextPaginationToken":' + orjson.dumps(cursor))
    return json_envelope([*pieces, b"}"])


@router.get("/{job_id}", responses={200: {"model": JobEnvelope}})
async def get_job(job_id: str, state: State, project_id: ProjectId = None) -> Any:
    return json_envelope([b'{"job":', state.answered_job_json(job_id), b"}"])


@router.post("/{job_id}/action", responses={200: {"model": JobEnvelope}})
async def job_action(
    job_id: str,
    state: State,
    body: Annotated[JobAction | None, Body()] = None,
    project_id: ProjectId = None,
) -> Any:
    """`{"action": "cancel"}`: running model calls are cancelled, the rest skipped (an
    inference job's call too)."""
    async with state.holding(job_id) as job:
        try:
            # a parent waiting on this job goes on in the background, as any run does here
            await state.engine.cancel(job_id, carry_parent=False)
        except DecisionError as error:
            raise bad_request(str(error)) from None
        parent = state.engine.parent_to_carry(job)
        if parent is not None:
            state.start(parent)
        document = job.document_json()
        if is_inference(job.plan.workflow.id):
            document = inference_json(document)
        return json_envelope([b'{"job":', document, b"}"])
