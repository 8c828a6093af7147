"""The job console at `/`: the jobs list and a live job page, under the API's credentials.

The page and its scripts ship in the package (engine/views/console/); nothing is fetched from
the network. A job page follows the job through the store's event log as server-sent events,
resumable with `Last-Event-ID`; its gates are decided through the API's own routes. The views
are built in the route handlers, so that the server starts without importing them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote, urlparse

import anyio
import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse

from engine.protocols import NodeStatus
from engine.run.events import event_logger
from engine.server.state import ApiError, ServerState, bad_request, not_found, state_of

if TYPE_CHECKING:
    from engine.views.job_view import AssetUrl

log = event_logger()
STATIC = {
    "console.js": "text/javascript",
    "console.css": "text/css",
    "elk.bundled.js": "text/javascript",
}
FOLLOW_EVERY = 0.2  # seconds between two reads of a followed job's event log
KEEP_ALIVE = 15.0  # seconds of silence before a comment keeps the stream open
ASSET_JOBS_KEPT = 32  # jobs whose asset files are remembered (see `asset_file`)
FINISHED_KEPT = 2  # finished jobs whose nodes are kept for their pages (see `Remembered`)
VIEWS_KEPT = 8  # finished jobs whose page data is kept
PREPARE_FROM = 400  # nodes of a finished job whose page is prepared before it is opened
FINISHED = ("success", "failure", "canceled")
State = Annotated[ServerState, Depends(state_of)]


@dataclass
class Remembered:
    """What the console keeps between requests. Finished jobs no longer change: the nodes of
    the latest few (kept as their run ends here, or rebuilt once from the store), so that their
    pages and panels do not replay the job's log each time, and their page data. And the asset
    files of recent jobs."""

    watched: bool = False  # a console page was opened on this server
    preparing: dict[str, anyio.Event] = field(default_factory=dict)
    schedulers: OrderedDict[str, Any] = field(default_factory=OrderedDict)
    views: OrderedDict[str, bytes] = field(default_factory=OrderedDict)
    asset_files: dict[str, dict[str, str]] = field(default_factory=dict)

    lock: threading.Lock = field(default_factory=threading.Lock)  # worker threads keep too

    def keep(self, kept: OrderedDict[str, Any], key: str, value: Any, most: int) -> None:
        with self.lock:
            kept[key] = value
            kept.move_to_end(key)
            while len(kept) > most:
                kept.popitem(last=False)


def install(app: Any, state: ServerState) -> None:
    """Serve the console on `app`; keep the nodes of jobs that finish on this server."""
    kept = Remembered()
    app.state.console = kept

    def on_transition(transition: Any) -> None:
        # a server nobody watches in a browser pays nothing; one that is watched keeps the
        # nodes of what finishes, and prepares the page of a large job (a small one's page is
        # built faster than it is drawn)
        if not kept.watched or transition.node_id is not None:
            return
        job = state.engine.jobs.get(transition.job_id) if transition.to_status in FINISHED else None
        if job is None:
            return
        kept.keep(kept.schedulers, job.job_id, job.scheduler, FINISHED_KEPT)
        if state.group is not None and len(job.scheduler.instances) > PREPARE_FROM:
            state.group.start_soon(prepare, job.job_id)

    async def prepare(job_id: str) -> None:
        if job_id in kept.views or job_id in kept.preparing:
            return
        done = kept.preparing[job_id] = anyio.Event()  # a page opened meanwhile waits
        try:
            await anyio.to_thread.run_sync(partial(view_bytes, live=False), state, kept, job_id)
        except Exception as error:  # the page is then built when it is opened
            log.error("cannot prepare a job's page", jobId=job_id, message=str(error)[:300])
        finally:
            done.set()
            kept.preparing.pop(job_id, None)

    state.engine.subscribe(on_transition)
    app.include_router(router)


def remembered_of(request: Request) -> Remembered:
    found: Remembered = request.app.state.console
    found.watched = True
    return found


Kept = Annotated[Remembered, Depends(remembered_of)]


def console_credentials(request: Request) -> None:
    """The API's credentials; a browser without them is asked for them (Basic)."""
    from engine.server.app import check_credentials

    try:
        check_credentials(request)
    except ApiError as error:
        error.headers = {"WWW-Authenticate": 'Basic realm="flowgraph"'}
        raise


router = APIRouter(dependencies=[Depends(console_credentials)], include_in_schema=False)


def page_file(name: str) -> Path:
    return Path(str(resources.files("engine.views").joinpath(f"console/{name}")))


@router.get("/")
async def console_page(kept: Kept) -> HTMLResponse:
    return HTMLResponse(page_file("console.html").read_text("utf-8"))


@router.get("/console/static/{name}")
async def console_static(name: str) -> FileResponse:
    if name not in STATIC:
        raise not_found(f"no console file `{name}`")
    folder = "vendor/" if name == "elk.bundled.js" else ""
    return FileResponse(
        page_file(folder + name),
        media_type=STATIC[name],
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/console/api/jobs")
async def console_jobs(
    state: State,
    status: str | None = None,
    workflow_id: Annotated[str | None, Query(alias="workflowId")] = None,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 25,
    cursor: str | None = None,
) -> Response:
    """Jobs newest first, a page at a time, each with its workflow's name, its times and
    the gates it waits at (read from its document only while it is unfinished)."""
    from engine.protocols import TERMINAL_JOB
    from engine.views.gates import waiting_gates

    try:
        records, after = state.store.list_jobs(
            status=status or None, workflow_id=workflow_id or None, limit=page_size, cursor=cursor
        )
    except ValueError as error:
        raise bad_request(str(error)) from None
    names: dict[str, Any] = {}
    jobs = []
    for record in records:
        workflow_id_of = record.workflow_id or ""
        if workflow_id_of and workflow_id_of not in names:
            head = state.store.get_workflow_head(workflow_id_of) or {}
            names[workflow_id_of] = head.get("name")
        gates: list[str] = []
        if record.status not in TERMINAL_JOB:
            try:
                gates = waiting_gates(orjson.loads(state.job_json(record.job_id)))
            except (ApiError, KeyError, TypeError, orjson.JSONDecodeError):
                gates = []  # not written yet: the next load shows them
        jobs.append(
            {
                "id": record.job_id,
                "status": record.status,
                "workflowId": record.workflow_id,
                "workflowName": names.get(workflow_id_of),
                "parentJobId": record.parent_job_id,
                "createdAt": record.created_at,
                "updatedAt": record.updated_at,
                "finished": record.status in TERMINAL_JOB,
                "waitingGates": gates,
            }
        )
    return Response(orjson.dumps({"jobs": jobs, "next": after}), media_type="application/json")


def _view_of(
    state: ServerState, kept: Remembered, job_id: str, *, live: bool = True
) -> tuple[Any, str | None]:
    """The job's scheduler (live here, else rebuilt from the store without running or
    changing anything), with its workflow id."""
    running = state.engine.jobs.get(job_id) if live else None
    if running is not None:
        return running.scheduler, running.workflow.id
    summary = state.store.job_summary(job_id)
    finished = kept.schedulers.get(job_id)  # see `Remembered`
    if summary is not None and finished is not None:
        return finished, summary.workflow_id
    # of the job's document (most of what is stored of a large job) the replay would read only
    # the status history, which no page shows: it is left in the store
    record = state.store.get_job(job_id, document=False)
    if record is None:
        raise not_found(f"job `{job_id}` not found")
    workflow, scheduler, _, _ = state.engine.replay(record)
    if record.status in FINISHED:
        kept.keep(kept.schedulers, job_id, scheduler, FINISHED_KEPT)
    return scheduler, record.workflow_id or workflow.id


def _asset_url(job_id: str) -> AssetUrl:
    def url(asset_id: str, stored: str) -> str:
        if stored.startswith("file://"):
            return f"/console/api/jobs/{job_id}/assets/{asset_id}"
        return stored

    return url


@router.get("/console/api/jobs/{job_id}/view")
async def console_view(job_id: str, state: State, kept: Kept) -> Response:
    """The job page's data (see engine/views/job_view.py), with the position in the event
    log it was read at: the page follows the log from there. A job running here is read in
    the event loop, which changes it; any other in a worker thread."""
    preparing = kept.preparing.get(job_id)
    if preparing is not None:
        await preparing.wait()
    found = kept.views.get(job_id)
    if found is None:
        if job_id in state.engine.jobs:
            found = view_bytes(state, kept, job_id)
        else:
            found = await anyio.to_thread.run_sync(
                partial(view_bytes, live=False), state, kept, job_id
            )
    return Response(found, media_type="application/json")


def view_bytes(state: ServerState, kept: Remembered, job_id: str, *, live: bool = True) -> bytes:
    """The page data of a job, as JSON; kept when the job is finished. Without `live` (in a
    worker thread), a job that started running here meanwhile is read from the store."""
    from engine.gc_tuning import quiet_gc
    from engine.views.job_view import job_view

    with quiet_gc():  # a rebuilt job is as many objects as its run made (see gc_tuning)
        transitions, position = state.store.events_after(job_id, 0)
        scheduler, workflow_id = _view_of(state, kept, job_id, live=live)
        view = job_view(
            scheduler,
            title=f"job {job_id}",
            transitions=transitions,
            asset_url=_asset_url(job_id),
            workflow_id=workflow_id,
        )
        view["position"] = position
        encoded = orjson.dumps(view, default=str)
    if scheduler.finished:
        kept.keep(kept.views, job_id, encoded, VIEWS_KEPT)
    return encoded


@router.get("/console/api/jobs/{job_id}/nodes/{node_id:path}")
async def console_node(job_id: str, node_id: str, state: State, kept: Kept) -> Response:
    """One node's panel, as it is now (a clone of a collapsed loop included)."""
    from engine.views.explain import Explainer
    from engine.views.job_view import node_details, node_times

    scheduler, _ = _view_of(state, kept, job_id)
    instance = scheduler.instances.get(node_id)
    if instance is None:
        raise not_found(f"no node `{node_id}` in job `{job_id}`")
    transitions = [t for t in state.store.events(job_id) if t.node_id == node_id]
    assets = {a.asset_id: a.url for i in scheduler.instances.values() for a in i.assets}
    details = node_details(
        instance,
        Explainer(scheduler),
        times=node_times(transitions),
        asset_url=_asset_url(job_id),
        assets=assets,
    )
    if instance.template.type == "workflow" and instance.status is NodeStatus.PROCESSING:
        # a workflow node whose child job waits at gates: parked here, or as last written
        waits = scheduler.parked.get(node_id)
        stored = _stored_gates(state, job_id, node_id) if waits is None else []
        gates = [g.document for g in waits.gates] if waits is not None else stored
        if gates:
            details["childGates"] = gates
    running = state.engine.jobs.get(job_id)
    progress = running.runner.call_progress.get(node_id) if running is not None else None
    if progress is not None:  # how far the remote job of its call has come, as reported
        details["progress"] = progress
    return Response(orjson.dumps(details, default=str), media_type="application/json")


def _stored_gates(state: ServerState, job_id: str, node_id: str) -> list[dict[str, Any]]:
    """The `waitingGates` of a node in the job's stored document (a job parked at its child's
    gates is not kept in memory)."""
    record = state.store.get_job(job_id)
    flow = ((record.document or {}).get("metadata") or {}).get("flow") if record else None
    found: dict[str, Any] = next((n for n in flow or () if n.get("id") == node_id), {})
    gates = found.get("waitingGates")
    return gates if isinstance(gates, list) else []


def _transition_row(transition: Any) -> list[Any]:
    return [
        transition.node_id,
        transition.template_id,
        transition.from_status,
        transition.to_status,
        transition.at,
    ]


@router.get("/console/api/jobs/{job_id}/events")
async def console_events(
    job_id: str,
    state: State,
    request: Request,
    start: Annotated[int, Query(alias="from", ge=0)] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """The job's transitions as server-sent events, one message per read of the store's
    event log, its id the position to resume from (a reconnecting browser sends it back as
    `Last-Event-ID`): `[[node, template, from, to, at], ...]`, the job's own with node null."""
    if state.store.job_summary(job_id) is None:
        raise not_found(f"job `{job_id}` not found")
    position = start
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise bad_request(f"invalid Last-Event-ID `{last_event_id[:40]}`: want a position")
        position = int(last_event_id)

    async def stream() -> Any:
        nonlocal position
        yield b"retry: 1000\n\n"
        quiet = 0.0
        while not await request.is_disconnected():
            transitions, after = await anyio.to_thread.run_sync(
                state.store.events_after, job_id, position
            )
            if transitions:
                rows = [_transition_row(t) for t in transitions]
                yield b"id: %d\ndata: %s\n\n" % (after, orjson.dumps(rows))
                quiet = 0.0
            elif quiet >= KEEP_ALIVE:
                yield b": still here\n\n"
                quiet = 0.0
            position = after
            await anyio.sleep(FOLLOW_EVERY)
            quiet += FOLLOW_EVERY

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/console/api/jobs/{job_id}/assets/{asset_id}")
async def asset_file(job_id: str, asset_id: str, state: State, kept: Kept) -> FileResponse:
    """A file the job made (a dry-run placeholder, a model's download): only files that are
    the job's own assets are served."""
    asset_files = kept.asset_files  # job id -> asset id -> file url
    known = asset_files.get(job_id, {})
    if asset_id not in known:
        if len(asset_files) >= ASSET_JOBS_KEPT:
            asset_files.clear()
        document = orjson.loads(state.job_json(job_id))
        known = {
            a["assetId"]: a.get("url", "")
            for node in document.get("metadata", {}).get("flow", [])
            for a in node.get("assets") or ()
            if isinstance(a, dict) and "assetId" in a
        }
        asset_files[job_id] = known
    url = known.get(asset_id, "")
    if not url.startswith("file://"):
        raise not_found(f"no file for asset `{asset_id}` in job `{job_id}`")
    path = Path(unquote(urlparse(url).path))
    if not path.is_file():
        raise not_found(f"the file of asset `{asset_id}` is gone: {path}")
    return FileResponse(path)
