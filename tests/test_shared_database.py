"""Several `flowgraph serve` processes on one PostgreSQL database never run a node twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FLOWS, completion_assets
from postgres_server import postgres_server, unavailable_reason

from engine.server.launcher import running_server
from engine.stores.postgres import PostgresStore

WORKFLOW: dict[str, Any] = {
    "flow": [
        {"id": "draft", "type": "custom-model", "modelId": "model_a"},
        {"id": "loop", "type": "for-each", "count": 3, "loopBodyNodeIds": ["variant"]},
        {
            "id": "variant",
            "type": "custom-model",
            "modelId": "model_b",
            "inputs": [{"name": "image", "type": "file", "ref": {"node": "draft"}}],
        },
        {
            "id": "final",
            "type": "custom-model",
            "modelId": "model_c",
            "inputs": [{"name": "images", "type": "file_array", "ref": {"node": "variant"}}],
        },
    ],
}
MODEL_NODES_PER_JOB = 1 + 3 + 1


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    import psycopg

    with postgres_server() as url:
        name = f"shared_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        yield url.rsplit("/", 1)[0] + f"/{name}"


async def run_all(urls: list[str], runs: int) -> list[str]:
    from scenario_sdk import AsyncScenario

    # what this asserts is that every run finishes once, not how fast: 200 clients polling
    # two servers saturate a busy two-core machine, so a request may wait past the SDK's minute
    clients = [
        AsyncScenario(api_key="k", api_secret="s", base_url=u, max_retries=0, timeout=300)
        for u in urls
    ]
    workflow_id = (await clients[0].workflows.create(name="shared", description="d")).workflow.id
    await clients[0].workflows.update(workflow_id, flow=WORKFLOW["flow"], status="ready")

    async def one(n: int) -> str:
        client = clients[n % len(clients)]
        job_id = (await client.workflows.run(workflow_id, body={})).job.job_id
        for _ in range(1000):
            job = (await client.jobs.retrieve(job_id)).job
            if job.status in ("success", "failure", "canceled"):
                assert job.status == "success", job.metadata.error
                return job_id
            await asyncio.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish")

    try:
        return await asyncio.gather(*(one(n) for n in range(runs)))
    finally:
        for client in clients:
            await client.close()


def test_two_servers_and_a_late_third_on_one_database_run_every_node_once(
    database: str, tmp_path: Path
) -> None:
    latency = ("--latency", "0.1", "--max-concurrency", "8")
    with (
        running_server(tmp_path / "a", *latency, db_url=database) as a,
        running_server(tmp_path / "b", *latency, db_url=database) as b,
    ):

        async def with_a_late_server() -> list[str]:
            runs = asyncio.create_task(run_all([a, b], 200))
            probe = PostgresStore(database)
            try:
                for _ in range(200):  # until most runs are in: the SDK import takes a while
                    if len(probe.list_jobs(status="queued", limit=1000)[0]) >= 100:
                        break
                    await asyncio.sleep(0.05)
                unfinished = len(probe.list_jobs(status="queued", limit=1000)[0])
            finally:
                probe.close()
            assert unfinished >= 100
            # a third server starts while jobs run: it must not take over jobs others hold
            with running_server(tmp_path / "c", *latency, db_url=database):
                await asyncio.sleep(2.0)
            return await runs

        job_ids = asyncio.run(with_a_late_server())
    assert len(set(job_ids)) == 200
    store = PostgresStore(database)
    try:
        for job_id in job_ids:
            outcomes = store.outcomes(job_id)
            calls = Counter(o.node_id for o in outcomes if o.kind == "call")
            completed = Counter(o.node_id for o in outcomes if completion_assets(o))
            assert len(calls) == MODEL_NODES_PER_JOB, (
                job_id,
                [(o.node_id, o.kind) for o in outcomes],
            )
            assert set(calls.values()) == {1}, (job_id, calls)
            assert set(completed.values()) == {1} and len(completed) == MODEL_NODES_PER_JOB, (
                job_id,
                [(o.node_id, o.kind) for o in outcomes],
            )
            assert store.get_job(job_id).status == "success"  # type: ignore[union-attr]
    finally:
        store.close()


TWO_GATES: dict[str, Any] = json.loads((FLOWS / "two-gates.json").read_text())


def test_decisions_through_two_servers_on_one_sqlite_file_are_all_kept(tmp_path: Path) -> None:
    """Approve g1 through server B, then g2 through server A; a refused decision through A
    must not leave A a stale copy of the job that a later decision acts on."""
    import time

    from scenario_sdk import APIStatusError, Scenario

    db = tmp_path / "shared.db"
    with (
        running_server(db) as url_a,
        running_server(db) as url_b,
        Scenario(api_key="k", api_secret="s", base_url=url_a, max_retries=0) as a,
        Scenario(api_key="k", api_secret="s", base_url=url_b, max_retries=0) as b,
    ):
        workflow_id = a.workflows.create(name="two gates", description="d").workflow.id
        a.workflows.update(workflow_id, flow=TWO_GATES["flow"], status="ready")
        job_id = a.workflows.run(workflow_id, body={}).job.job_id

        def statuses() -> dict[str, str]:
            job = a.jobs.retrieve(job_id).job
            return {n.id: n.status for n in job.metadata.flow}

        def wait(until: Any) -> dict[str, str]:
            deadline = time.monotonic() + 30
            while not until(found := statuses()):
                assert time.monotonic() < deadline, found
                time.sleep(0.05)
            return found

        wait(lambda s: s["g1"] == s["g2"] == "processing")
        # A reads the job (and so may keep a copy), then a decision A refuses
        with pytest.raises(APIStatusError) as refused:
            a.workflows.user_approval(
                workflow_id, project_id="p", node_id="after1", workflow_job_id=job_id
            )
        assert refused.value.status_code == 400
        b.workflows.user_approval(workflow_id, project_id="p", node_id="g1", workflow_job_id=job_id)
        wait(lambda s: s["after1"] == "success")
        a.workflows.user_approval(workflow_id, project_id="p", node_id="g2", workflow_job_id=job_id)
        final = wait(lambda s: s["after2"] in ("success", "failure", "skipped"))
        assert final == {
            "draft": "success",
            "g1": "success",
            "g2": "success",
            "after1": "success",
            "after2": "success",
        }
        assert a.jobs.retrieve(job_id).job.status == "success"
        # g1 was decided through B: A, asked again, answers from the store, not a stale copy
        with pytest.raises(APIStatusError) as again:
            a.workflows.user_approval(
                workflow_id, project_id="p", node_id="g1", workflow_job_id=job_id
            )
        assert again.value.status_code == 400
        assert "finished" in again.value.body["message"]  # type: ignore[index]
    for log in tmp_path.glob("shared.db.*.log"):
        text = log.read_text()
        assert "UNIQUE constraint" not in text and "Traceback" not in text, text[-2000:]


def test_a_tree_of_sub_workflow_jobs_is_run_by_one_server_at_a_time(tmp_path: Path) -> None:
    """Server A runs a parent whose workflow node runs a child job: server B may neither
    cancel nor decide for the child meanwhile (the tree is leased as one). Once the tree
    waits at the child's gate, B decides it, checked for its gate type, and carries the
    parent on; every model node ran once."""
    import time

    from scenario_sdk import APIStatusError, Scenario

    db = tmp_path / "shared.db"
    with (
        running_server(db, "--latency", "1.5") as url_a,
        running_server(db, "--latency", "1.5") as url_b,
        Scenario(api_key="k", api_secret="s", base_url=url_a, max_retries=0) as a,
        Scenario(api_key="k", api_secret="s", base_url=url_b, max_retries=0) as b,
    ):
        child_wf = a.workflows.create(name="review", description="d").workflow.id
        a.workflows.update(
            child_wf,
            status="ready",
            flow=[
                {"id": "draft", "type": "custom-model", "modelId": "model_a"},
                {"id": "review", "type": "user-approval", "dependsOn": ["draft"]},
                {
                    "id": "final",
                    "type": "custom-model",
                    "modelId": "model_b",
                    "dependsOn": ["review"],
                },
            ],
        )
        parent_wf = a.workflows.create(name="parent", description="d").workflow.id
        a.workflows.update(
            parent_wf,
            status="ready",
            flow=[{"id": "sub", "type": "workflow", "workflowId": child_wf}],
        )
        job_id = a.workflows.run(parent_wf, body={}).job.job_id

        def sub() -> Any:
            (node,) = [n for n in a.jobs.retrieve(job_id).job.metadata.flow if n.id == "sub"]
            return node

        deadline = time.monotonic() + 30
        while not getattr(sub(), "job_id", None):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child_id = sub().job_id
        with pytest.raises(APIStatusError) as refused:  # A runs the child's draft now
            b.jobs.trigger_action(child_id, project_id="p", action="cancel")
        assert refused.value.status_code == 400
        assert refused.value.body["message"] == (  # type: ignore[index]
            f"job `{child_id}` is being run by another server (through job `{job_id}`, the job "
            "above it); try again when it waits or ends"
        )
        while not (sub().model_extra or {}).get("waitingGates"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert a.jobs.retrieve(child_id).job.status == "in-progress"  # not canceled by B
        with pytest.raises(APIStatusError) as wrong_type:
            b.workflows.user_selection(
                parent_wf,
                project_id="p",
                node_id="sub/review",
                workflow_job_id=job_id,
                action="select",
                selected_indices=[0],
            )
        assert wrong_type.value.body["message"] == (  # type: ignore[index]
            "node `sub/review` is a `user-approval` node, not a `user-selection` node"
        )
        b.workflows.user_approval(
            child_wf, project_id="p", node_id="review", workflow_job_id=child_id
        )
        while a.jobs.retrieve(job_id).job.status != "success":
            assert time.monotonic() < deadline + 30, a.jobs.retrieve(job_id).job
            time.sleep(0.05)
        child = a.jobs.retrieve(child_id).job
        assert [(n.id, n.status) for n in child.metadata.flow] == [
            ("draft", "success"),
            ("review", "success"),
            ("final", "success"),
        ]
    for log in tmp_path.glob("shared.db.*.log"):
        assert "Traceback" not in log.read_text()


def test_a_server_that_starts_while_another_creates_a_job_leaves_that_job_to_it(
    tmp_path: Path,
) -> None:
    """A server that starts takes over the unfinished jobs no server holds. One starting just
    as another creates a job (its row written, its run not started yet) must leave it alone:
    the creator holds the job's lease before the row exists, and its run answers 200."""
    import anyio
    import httpx

    from engine import Engine
    from engine.server import build_state, create_app
    from engine.stores.sqlite import SQLiteStore

    db = tmp_path / "shared.db"
    store_b, store_c = SQLiteStore(db), SQLiteStore(db)
    state_b = build_state(Engine(store=store_b), store_b, host="127.0.0.1")
    state_c = build_state(Engine(store=store_c), store_c, host="127.0.0.1")
    store_b.put_workflow("wflow_x", {"id": "wflow_x", "status": "ready", **WORKFLOW})
    taken_over: list[bool] = []
    create_job = store_b.create_job

    def create_then_another_server_starts(record: Any) -> None:
        create_job(record)
        taken_over.append(state_c.take_over(record.job_id))  # what C does for it as it starts

    store_b.create_job = create_then_another_server_starts  # type: ignore[method-assign]

    async def run() -> tuple[httpx.Response, str]:
        async with anyio.create_task_group() as group:
            state_b.group = state_c.group = group
            transport = httpx.ASGITransport(app=create_app(state_b))
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
                answer = await client.put("/v1/workflows/wflow_x/run", json={})
                job_id = answer.json()["job"]["jobId"] if answer.status_code == 200 else ""
                with anyio.fail_after(30):
                    while job_id and store_b.job_summary(job_id).status != "success":  # type: ignore[union-attr]
                        await anyio.sleep(0.05)
            group.cancel_scope.cancel()
        return answer, job_id

    answer, job_id = anyio.run(run)
    assert answer.status_code == 200, answer.text
    assert taken_over == [False]
    assert job_id not in state_c.engine.jobs
    ran = Counter(o.node_id for o in store_b.outcomes(job_id) if completion_assets(o) is not None)
    assert ran == {"draft": 1, "variant#0": 1, "variant#1": 1, "variant#2": 1, "final": 1}
