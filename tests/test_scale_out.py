"""Scale-out: model nodes on a Dask LocalCluster and on a second flowgraph server; the
configuration file that wires executors, routing and the store."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import EXAMPLES, FLOWS, flow, nodes

from engine import CallPolicy, DryRunExecutor, Engine, ExecutorRouter, ValidationError
from engine.config import load_config
from engine.executors.dask import DaskExecutor
from engine.executors.http import HttpExecutor
from engine.server.launcher import running_server


def loop_of(count: int) -> dict[str, Any]:
    return {
        "id": "wflow_scale",
        "flow": [
            {
                "id": "loop",
                "type": "for-each",
                "count": count,
                "loopBodyNodeIds": ["prompt", "gen"],
            },
            {
                "id": "prompt",
                "type": "transform",
                "logic": {"transform": "'item ' + string(i)"},
                "inputs": [
                    {"name": "i", "type": "number", "ref": {"node": "loop", "name": "index"}}
                ],
            },
            {
                "id": "gen",
                "type": "custom-model",
                "modelId": "model_x",
                "inputs": [{"name": "prompt", "type": "string", "ref": {"node": "prompt"}}],
            },
        ],
    }


def outcome(job: Any) -> list[tuple[str, str, Any]]:
    return [
        (n["id"], n["status"], [a["assetId"] for a in n.get("assets", [])])
        for n in job.document()["metadata"]["flow"]
    ]


def test_a_1000_iteration_loop_on_a_two_worker_dask_cluster_matches_the_local_run() -> None:
    async def both() -> tuple[Any, Any, Any]:
        cluster = DaskExecutor(workers=2, settings={"seed": 5})
        try:
            remote = Engine(
                executors=ExecutorRouter(default=cluster), seed=5, policy=CallPolicy(concurrency=16)
            )
            remote_job = await remote.run(loop_of(1000))
            same_cluster = DaskExecutor(
                address=(await cluster.client()).scheduler.address,
                settings={"seed": 5, "fail": ["gen"]},
            )
            failing = Engine(
                executors=ExecutorRouter(default=same_cluster), seed=5, policy=CallPolicy(retries=0)
            )
            try:
                failed_job = await failing.run(loop_of(2))
            finally:
                await same_cluster.close()
        finally:
            await cluster.close()
        local = Engine(dry_run=DryRunExecutor(seed=5, assets_dir=None), seed=5)
        local_job = await local.run(loop_of(1000))
        return remote_job, local_job, failed_job

    remote_job, local_job, failed_job = anyio.run(both)
    with warnings.catch_warnings():
        # distributed leaves pooled sockets to the garbage collector after closing
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert remote_job.document()["status"] == "success"
    assert outcome(remote_job) == outcome(local_job)
    assert len(outcome(remote_job)) == 2003
    reason = nodes(failed_job)["gen#0"]["statusReason"]
    assert reason.startswith(
        "executor `dask`: remote task failed: RuntimeError: dry-run failure injected for `gen`"
    )


def test_a_node_runs_on_a_second_flowgraph_server(tmp_path: Path) -> None:
    with running_server(tmp_path / "remote.db") as remote_url:

        async def go() -> Any:
            executor = HttpExecutor(remote_url, poll_interval=0.02)
            engine = Engine(executors=ExecutorRouter(default=executor))
            try:
                return await engine.run(EXAMPLES / "branching.json", {"mode": "quality"})
            finally:
                await executor.close()

        job = anyio.run(go)
        document = job.document()
        assert document["status"] == "success", document["metadata"].get("error")
        flow_nodes = nodes(job)
        remote_job_id = flow_nodes["gen_quality"]["output"]["remoteJobId"]
        remote = httpx.get(f"{remote_url}/jobs/{remote_job_id}", auth=("k", "s")).json()["job"]
        remote_assets = remote["metadata"]["flow"][0]["assets"]
        assert flow_nodes["gen_quality"]["assets"] == remote_assets
        assert flow_nodes["upscale"]["inputs"][0]["value"] == remote_assets[0]["assetId"]
        workflows = httpx.get(f"{remote_url}/workflows", auth=("k", "s")).json()["workflows"]
        assert len(workflows) == 2  # one remote workflow per kind of node, reused


def ready_workflow(client: httpx.Client, fixture: str) -> str:
    """Create a workflow over HTTP with the flow of a fixture, ready to run; its id."""
    created = client.post("/workflows", json={"name": "w", "description": "d"})
    workflow_id: str = created.json()["workflow"]["id"]
    client.put(f"/workflows/{workflow_id}", json={"flow": flow(fixture)["flow"], "status": "ready"})
    return workflow_id


def test_runs_with_the_same_idempotency_key_start_one_job(tmp_path: Path) -> None:
    with (
        running_server(tmp_path / "db") as url,
        httpx.Client(base_url=url, auth=("k", "s")) as client,
    ):
        workflow_id = ready_workflow(client, "list-node.json")
        first = client.put(
            f"/workflows/{workflow_id}/run", json={}, headers={"Idempotency-Key": "job:n:1"}
        )
        again = client.put(
            f"/workflows/{workflow_id}/run", json={}, headers={"Idempotency-Key": "job:n:1"}
        )
        other = client.put(
            f"/workflows/{workflow_id}/run", json={}, headers={"Idempotency-Key": "job:n:2"}
        )
        assert first.json()["job"]["jobId"] == again.json()["job"]["jobId"]
        assert other.json()["job"]["jobId"] != first.json()["job"]["jobId"]
        assert len(client.get("/jobs", params={"workflowId": workflow_id}).json()["jobs"]) == 2
        refused = client.put(
            f"/workflows/{workflow_id}/run",
            json={"nope": 1},
            headers={"Idempotency-Key": "job:n:3"},
        )
        assert refused.status_code == 400
    # the keys are in the store: a restarted server (or another one on the database) knows them
    with (
        running_server(tmp_path / "db") as url,
        httpx.Client(base_url=url, auth=("k", "s")) as client,
    ):
        retried = client.put(
            f"/workflows/{workflow_id}/run", json={}, headers={"Idempotency-Key": "job:n:1"}
        )
        assert retried.json()["job"]["jobId"] == first.json()["job"]["jobId"]
        corrected = client.put(
            f"/workflows/{workflow_id}/run", json={}, headers={"Idempotency-Key": "job:n:3"}
        )
        assert corrected.status_code == 200  # the refused run bound nothing
        jobs = client.get("/jobs", params={"workflowId": workflow_id}).json()["jobs"]
        assert len(jobs) == 3


def test_configuration_file_builds_executors_routes_and_store(tmp_path: Path) -> None:
    config = tmp_path / "flowgraph.toml"
    config.write_text(
        """
[engine]
max_concurrency = 32
retries = 1
[store]
url = "sqlite:///%s"
[server]
port = 9999
costs = { default = 2 }
[executors.offline]
type = "dry-run"
seed = 7
[executors.remote]
type = "http"
base_url = "http://127.0.0.1:1/v1"
[routing]
default = "offline"
[[routing.routes]]
executor = "remote"
model_id = "model_flux*"
"""
        % (tmp_path / "jobs.db")
    )
    settings = load_config(config)
    assert settings.store_location == str(tmp_path / "jobs.db")
    assert settings.policy().concurrency == 32 and settings.policy().retries == 1
    router = settings.router()
    assert type(router.route("custom-model", "model_flux-pro")).__name__ == "HttpExecutor"
    assert isinstance(router.route("custom-model", "model_sd"), DryRunExecutor)
    assert router.route("custom-model", "model_sd").seed == 7  # type: ignore[union-attr]
    bad = tmp_path / "bad.toml"
    bad.write_text('[executors.x]\ntype = "teleport"\n[routing]\ndefault = "nope"\n[extra]\n')
    with pytest.raises(ValidationError) as caught:
        load_config(bad)
    messages = [str(p) for p in caught.value.problems]
    assert (
        "unknown section `[extra]`; expected one of: engine, executors, limits, routing, server, store"
        in messages
    )
    assert (
        "executors.x.type: executor `x` needs `type` = one of: dry-run, http, dask, scenario"
        in messages
    )
    assert "routing.default: routing default `nope` is no executor of the file" in messages


def test_serve_with_a_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "flowgraph.toml"
    config.write_text("[server]\ncosts = { default = 3 }\n[engine]\nmax_concurrency = 4\n")
    with (
        running_server(tmp_path / "db", "--config", str(config)) as url,
        httpx.Client(base_url=url, auth=("k", "s")) as client,
    ):
        workflow_id = ready_workflow(client, "coercion.json")
        estimate = client.put(f"/workflows/{workflow_id}/run", params={"dryRun": "true"}, json={})
        assert estimate.status_code == 269
        assert estimate.json()["creativeUnitsCost"] == 3.0
    broken = tmp_path / "broken.toml"
    broken.write_text("[engine\n")
    from test_cli import flowgraph

    result = flowgraph("serve", "--config", str(broken), "--db", str(tmp_path / "x.db"))
    assert result.returncode == 2 and "configuration is invalid" in result.stderr


def test_run_with_a_configuration_file_and_decide_later_with_the_same_executors(
    tmp_path: Path,
) -> None:
    """`run --config`: the file's executor serves the model nodes and its store keeps the job;
    `approve` and `select` later rebuild the engine from the same file."""
    from test_cli import flowgraph, job_of

    gates = str(Path(FLOWS) / "gates.json")
    store = tmp_path / "configured.db"
    config = tmp_path / "flowgraph.toml"
    config.write_text(
        f"""
[engine]
max_concurrency = 3
[store]
url = "sqlite:///{store}"
[executors.offline]
type = "dry-run"
seed = 7
assets_dir = "{tmp_path / "assets"}"
[routing]
default = "offline"
"""
    )

    def assets(job: dict[str, Any], node_id: str) -> list[str]:
        found = next(n for n in job["metadata"]["flow"] if n["id"] == node_id)
        return [a["assetId"] for a in found.get("assets", [])]

    first = flowgraph("run", gates, "--config", str(config), "--json")
    assert first.returncode == 3, first.stderr  # waiting at `review`
    job = job_of(first)
    assert f"--db {store}" in first.stderr  # the hints name the configuration's store
    approved = flowgraph("approve", job["jobId"], "review", "--db", str(store), "--json")
    assert approved.returncode == 3, approved.stderr  # now waiting at `choose`
    done = flowgraph("select", job["jobId"], "choose", "0", "--db", str(store), "--json")
    assert done.returncode == 0, done.stderr
    configured = job_of(done)
    assert configured["status"] == "success"

    decisions = tmp_path / "decisions.json"
    decisions.write_text('{"review": "approve", "choose": {"select": [0]}}')
    same = ("--decisions", str(decisions), "--db", ":memory:", "--json")
    seed_7 = job_of(flowgraph("run", gates, "--seed", "7", *same))
    seed_0 = job_of(flowgraph("run", gates, *same))
    for node_id in ("draft", "final"):
        assert assets(configured, node_id) == assets(seed_7, node_id) != assets(seed_0, node_id)
    assert any((tmp_path / "assets").iterdir())

    config.unlink()
    gone = flowgraph("resume", job["jobId"], "--db", str(store))
    assert gone.returncode == 2 and f"no such file `{config}`" in gone.stderr


def test_cancelling_a_job_cancels_its_dask_task() -> None:
    async def go() -> tuple[Any, list[Any], float]:
        cluster = DaskExecutor(workers=1, settings={"latency": 30})
        try:
            engine = Engine(executors=ExecutorRouter(default=cluster))
            job = engine.prepare({"flow": [{"id": "slow", "type": "custom-model", "modelId": "m"}]})
            client = await cluster.client()
            started = anyio.current_time()

            async def cancel_when_running() -> None:
                while not client.futures:
                    await anyio.sleep(0.05)
                await anyio.sleep(0.5)
                await engine.cancel(job.job_id)

            async with anyio.create_task_group() as group:
                group.start_soon(cancel_when_running)
                await job.runner.run()
            for _ in range(100):  # the scheduler forgets a cancelled task
                processing = [key for keys in (await client.processing()).values() for key in keys]
                if not processing:
                    break
                await anyio.sleep(0.05)
            return job, processing, anyio.current_time() - started
        finally:
            await cluster.close()

    job, processing, seconds = anyio.run(go)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert job.document()["status"] == "canceled"
    assert nodes(job)["slow"]["statusReason"] == "canceled"
    assert processing == [] and seconds < 20


def test_the_http_executor_retries_transient_errors_with_one_idempotency_key() -> None:
    from engine import NodeCall

    seen: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("idempotency-key")))
        path = request.url.path
        if request.method == "POST" and path.endswith("/workflows"):
            return httpx.Response(200, json={"workflow": {"id": "wflow_r"}})
        if request.method == "PUT" and path.endswith("/run"):
            runs = sum(1 for m, p, _ in seen if m == "PUT" and p.endswith("/run"))
            if runs == 1:
                return httpx.Response(
                    503, json={"statusCode": 503, "error": "x", "message": "busy"}
                )
            return httpx.Response(200, json={"job": {"jobId": "job_r", "status": "in-progress"}})
        if request.method == "GET" and path.endswith("/jobs/job_r"):
            node = {
                "id": "node",
                "status": "success",
                "assets": [{"assetId": "asset_remote", "url": "https://x/a.png"}],
            }
            return httpx.Response(
                200,
                json={"job": {"jobId": "job_r", "status": "success", "metadata": {"flow": [node]}}},
            )
        return httpx.Response(200, json={"workflow": {"id": "wflow_r"}})

    executor = HttpExecutor(
        "http://remote.test/v1", poll_interval=0, transport=httpx.MockTransport(handler)
    )
    call = NodeCall(
        job_id="job_local",
        node_id="gen",
        template_id="gen",
        node_type="custom-model",
        model_id="model_x",
        inputs={"prompt": "a fox"},
        node=None,
    )

    async def go() -> Any:
        from engine.executors import call_executor

        try:
            return await call_executor(executor, call, CallPolicy(retries=2, backoff=0))
        finally:
            await executor.close()

    outcome = anyio.run(go)
    assert outcome.assets[0].asset_id == "asset_remote"
    run_keys = [key for method, path, key in seen if method == "PUT" and path.endswith("/run")]
    assert run_keys == ["job_local:gen:1", "job_local:gen:1"]  # the retry: the same key
