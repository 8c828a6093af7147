"""`/v1/workflows`: create, read, update, list, delete, run, and decide gates."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse

from engine.compile.compiler import compile_flow
from engine.compile.document import load_workflow
from engine.compile.editor_graph import has_editor_graph
from engine.compile.models import Workflow
from engine.compile.publish import publish
from engine.compile.run_inputs import validate_run_inputs
from engine.costs import estimate
from engine.errors import DecisionError, ValidationError
from engine.server.schemas import (
    Deleted,
    DryRunResponse,
    JobEnvelope,
    RunResponse,
    TagList,
    UserApproval,
    UserSelection,
    WorkflowCreate,
    WorkflowEnvelope,
    WorkflowList,
    WorkflowUpdate,
)
from engine.server.state import (
    ServerState,
    bad_request,
    decode_offset,
    encode_offset,
    new_workflow_id,
    now,
    problems_message,
    state_of,
)

router = APIRouter(prefix="/workflows", tags=["workflows"])
State = Annotated[ServerState, Depends(state_of)]
ProjectId = Annotated[str | None, Query(alias="projectId")]

# fields the client may not set through an update
_SERVER_FIELDS = {"id", "authorId", "ownerId", "createdAt", "updatedAt", "hasFlow"}


def complete_workflow(
    document: dict[str, Any], workflow_id: str, *, owner: str = "flowgraph"
) -> dict[str, Any]:
    """`document` with every field Scenario's API answers with (and the SDK requires) that it
    lacks: a workflow loaded from a file looks like one created through the API."""
    created = now()
    complete: dict[str, Any] = {
        "name": workflow_id,
        "description": "",
        "shortDescription": "",
        "status": "ready",
        "privacy": "private",
        "tagSet": [],
        "inputs": [],
        "flow": [],
        "editorInfo": {},
        "authorId": "flowgraph",
        "ownerId": owner,
        "createdAt": created,
        "updatedAt": created,
        **document,
        "id": workflow_id,
    }
    complete["hasFlow"] = bool(complete["flow"])
    return complete


def workflow_model(document: dict[str, Any]) -> Workflow:
    """The stored document as a Workflow, with every problem of its flow named. Its flow is the
    one stored: an editor graph is compiled only when the workflow is published."""
    try:
        workflow = load_workflow(document, publish_editor=False)
    except ValidationError as error:
        raise bad_request(problems_message(error)) from None
    return workflow


def publish_on_ready(document: dict[str, Any], changes: dict[str, Any]) -> None:
    """Setting `status: "ready"` publishes, as Scenario does: the editor graph, when it has
    nodes, is compiled into the flow and inputs (a flow given in the same request is taken as
    it is). Any other change, the editor graph's included, keeps the published flow."""
    if changes.get("status") != "ready" or changes.get("flow") or not has_editor_graph(document):
        return
    try:
        document.update(publish(document))
    except ValidationError as error:
        raise bad_request(problems_message(error)) from None


def settle(state: ServerState, document: dict[str, Any], changes: dict[str, Any]) -> None:
    """Publish if the request asks for it, then check the flow: in a worker thread, as a large
    editor graph or flow takes a while and other requests must not wait for it."""
    publish_on_ready(document, changes)
    document["hasFlow"] = bool(document.get("flow"))
    check_flow(state, document)


def check_flow(state: ServerState, document: dict[str, Any]) -> None:
    """A ready workflow must compile. A draft may be saved incomplete (the editor saves drafts
    as the user works): only its document form is checked, the flow when it is made ready."""
    workflow = workflow_model(document)
    if document.get("status") != "ready":
        return
    try:
        compile_flow(workflow, state.engine.kinds, state.engine.limits)
    except ValidationError as error:
        raise bad_request(problems_message(error)) from None


@router.post("", responses={200: {"model": WorkflowEnvelope}})
async def create_workflow(body: WorkflowCreate, state: State, project_id: ProjectId = None) -> Any:
    """Create a workflow (a draft with an empty flow, unless the body says more)."""
    extra = {k: v for k, v in (body.model_extra or {}).items() if k not in _SERVER_FIELDS}
    given = {"name": body.name, "description": body.description, "status": "draft", **extra}
    document = complete_workflow(given, new_workflow_id(), owner=project_id or "flowgraph")
    await anyio.to_thread.run_sync(settle, state, document, extra)
    state.store.put_workflow(document["id"], document)
    return {"workflow": document}


@router.get("", responses={200: {"model": WorkflowList}})
async def list_workflows(
    state: State,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 50,
    pagination_token: Annotated[str | None, Query(alias="paginationToken")] = None,
    status: Annotated[str | None, Query(pattern="^(draft|ready)$")] = None,
    privacy: Annotated[str | None, Query(pattern="^(private|public|unlisted)$")] = None,
    tags: str | None = None,
    sort_direction: Annotated[str, Query(alias="sortDirection", pattern="^(asc|desc)$")] = "desc",
    full: bool = True,
    project_id: ProjectId = None,
) -> Any:
    """List workflows, newest update first, a page at a time. Filtered and sorted on the
    store's entries (not the documents): only the page's workflows are read."""
    wanted_tags = {t.strip() for t in (tags or "").split(",") if t.strip()}
    entries = [
        e
        for e in state.store.workflow_entries()
        if (status is None or e.status == status)
        and (privacy is None or e.privacy == privacy)
        and (not wanted_tags or wanted_tags.intersection(e.tags))
    ]
    entries.sort(key=lambda e: (e.updated_at, e.workflow_id), reverse=sort_direction == "desc")
    offset = decode_offset(pagination_token)
    read = state.store.get_workflow if full else state.store.get_workflow_head
    page = [read(e.workflow_id) for e in entries[offset : offset + page_size]]
    answer: dict[str, Any] = {"workflows": [w for w in page if w is not None]}
    if offset + page_size < len(entries):
        answer["nextPaginationToken"] = encode_offset(offset + page_size)
    return answer


@router.get("/tags", responses={200: {"model": TagList}})
async def workflow_tags(
    state: State,
    status: Annotated[str, Query(pattern="^(draft|ready)$")] = "ready",
    project_id: ProjectId = None,
) -> Any:
    """The tags of the workflows with `status` (default ready)."""
    tags = {t for e in state.store.workflow_entries() if e.status == status for t in e.tags}
    return {"tags": sorted(tags)}


@router.get("/{workflow_id}", responses={200: {"model": WorkflowEnvelope}})
async def get_workflow(workflow_id: str, state: State, project_id: ProjectId = None) -> Any:
    return {"workflow": state.workflow(workflow_id)}


@router.put("/{workflow_id}", responses={200: {"model": WorkflowEnvelope}})
async def update_workflow(
    workflow_id: str, body: WorkflowUpdate, state: State, project_id: ProjectId = None
) -> Any:
    """Change any of the workflow's fields; `status: "ready"` publishes the editor graph; the
    flow of a ready workflow is checked first, and nothing changes when it does not compile."""
    changes = body.model_dump(exclude_unset=True)
    changes.pop("bypassLock", None)
    for key in ("before", "after", "thumbnail"):
        if key in changes:
            asset = changes.pop(key)
            changes[key] = {"assetId": asset, "url": f"asset://{asset}"} if asset else None
    async with state.editing_lock(workflow_id):
        document = state.workflow(workflow_id)
        document.update({k: v for k, v in changes.items() if k not in _SERVER_FIELDS})
        await anyio.to_thread.run_sync(settle, state, document, changes)
        document["updatedAt"] = now()
        state.store.put_workflow(workflow_id, document)
    return {"workflow": document}


@router.delete("/{workflow_id}", responses={200: {"model": Deleted}})
async def delete_workflow(workflow_id: str, state: State, project_id: ProjectId = None) -> Any:
    state.workflow(workflow_id)
    state.store.delete_workflow(workflow_id)
    return {"success": True}


@router.put(
    "/{workflow_id}/run",
    responses={200: {"model": RunResponse}, 269: {"model": DryRunResponse}},
)
async def run_workflow(
    workflow_id: str,
    state: State,
    request: Request,
    body: Annotated[Any, Body()] = None,
    dry_run: Annotated[str | None, Query(alias="dryRun", pattern="^(true|api)$")] = None,
    project_id: ProjectId = None,
) -> Any:
    """Run a ready workflow with the inputs in the body; `dryRun` answers 269 with a cost."""
    document = state.workflow(workflow_id)
    if document.get("status") != "ready":
        raise bad_request("Workflow is not ready")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad_request("the run body must be a JSON object of input values")
    workflow = workflow_model(document)
    if dry_run is not None:
        try:
            validate_run_inputs(workflow, body)
            cost = await estimate(
                workflow, body, state.costs, workflows=state.engine, router=state.engine.router
            )
        except ValidationError as error:
            raise bad_request(problems_message(error)) from None
        answer = {"creativeUnitsCost": cost.total, "creativeUnitsDiscount": 0, "job": {}}
        return JSONResponse(answer, status_code=269)
    key = request.headers.get("idempotency-key")
    job_id = state.engine.job_ids()
    if key:
        bound = state.store.remember_key(key, job_id)  # kept in the store: any server, any time
        if bound != job_id:
            # the same run asked again (a client retry): the job it started, not a second one
            return {"job": await started_job(state, bound), "workflow": document}
    try:
        state.reserve(job_id)
        job = state.engine.prepare(workflow, body, job_id=job_id)
    except BaseException as error:
        if key:
            state.store.forget_key(key, job_id)  # nothing started: a retry may run
        with suppress(Exception):  # the store's own error, if any, is the one to report
            state.store.release(job_id, state.owner)
        if isinstance(error, ValidationError):
            raise bad_request(problems_message(error)) from None
        raise
    try:
        state.start(job)
    except BaseException as error:  # the job row exists: end it, so that nothing runs it later
        state.end_unstarted(job, f"the run could not start: {error}")
        state.store.release(job_id, state.owner)
        raise
    return {"job": job.document(), "workflow": document}


async def started_job(state: ServerState, job_id: str, wait: float = 5.0) -> dict[str, Any]:
    """The document of a job another request bound its key to; that request may still be
    creating it (on another server), so wait a little for it to appear."""
    deadline = anyio.current_time() + wait
    while True:
        try:
            return state.engine.document(job_id)
        except LookupError:
            if anyio.current_time() > deadline:
                raise bad_request(
                    f"the run with this Idempotency-Key (job `{job_id}`) has not started; try again"
                ) from None
            await anyio.sleep(0.05)


@router.put("/{workflow_id}/user-approval", responses={200: {"model": JobEnvelope}})
async def user_approval(
    workflow_id: str, body: UserApproval, state: State, project_id: ProjectId = None
) -> Any:
    """Approve (default) or reject a waiting user-approval node."""
    return await decide(
        state, workflow_id, body.workflowJobId, body.nodeId, body.action, "user-approval"
    )


@router.put("/{workflow_id}/user-selection", responses={200: {"model": JobEnvelope}})
async def user_selection(
    workflow_id: str, body: UserSelection, state: State, project_id: ProjectId = None
) -> Any:
    """Choose items (`selectedIndices`) at a waiting user-selection node, or reject it."""
    if body.action == "reject":
        decision: Any = "reject"
    elif body.selectedIndices is None:
        raise bad_request("`selectedIndices` is required when action is `select`")
    else:
        decision = {"select": body.selectedIndices}
    return await decide(
        state, workflow_id, body.workflowJobId, body.nodeId, decision, "user-selection"
    )


async def decide(
    state: ServerState, workflow_id: str, job_id: str, node_id: str, decision: Any, gate_type: str
) -> Any:
    """Apply the decision, write it to the store, then carry the job on: the answer says it
    was taken only once it cannot be lost."""
    async with state.holding(job_id) as job:
        if job.workflow.id != workflow_id:
            raise bad_request(f"job `{job_id}` does not belong to workflow `{workflow_id}`")
        try:
            state.engine.decide_now(job, node_id, decision, gate_type=gate_type)
        except DecisionError as error:
            raise bad_request(str(error)) from None
        await state.engine.record_decisions(job)
        state.start(job)
        return {"job": job.document()}
