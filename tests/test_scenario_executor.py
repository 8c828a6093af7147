"""The scenario executor (engine/executors/scenario.py) against a second, live `flowgraph serve`
and its stand-in for Scenario's generate API: the executor talks to it through scenario-sdk as
it would to Scenario's cloud."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from scenario_sdk import Scenario

from engine import Engine
from engine.cli.common import build_engine
from engine.config import load_config
from engine.executors.scenario import ScenarioExecutor
from engine.server.launcher import ROOT, log_of, running_server
from engine.stores.sqlite import SQLiteStore

FLOW = ROOT / "tests" / "flows" / "scenario-generations.json"
MODEL_NODES = ("paint", "portrait#0", "portrait#1", "portrait#2")


def sdk_environment(url: str) -> dict[str, str]:
    return {
        "SCENARIO_BASE_URL": url,
        "SCENARIO_SDK_API_KEY": "key",
        "SCENARIO_SDK_API_SECRET": "secret",
        "COLUMNS": "200",
    }


def flowgraph(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def client(url: str) -> Scenario:
    return Scenario(
        base_url=url, api_key="key", api_secret="secret", _strict_response_validation=True
    )


def generate_calls(db: Path, route: str = "/v1/generate/custom/") -> int:
    """The generate requests the stand-in received, from its access log."""
    return len(re.findall(rf'"POST {re.escape(route)}\S* HTTP', log_of(db).read_text()))


def by_id(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in job["metadata"]["flow"]}


def test_model_nodes_generate_on_the_stand_in_and_their_assets_come_back(tmp_path: Path) -> None:
    db = tmp_path / "stand-in.db"
    with running_server(db, "--latency", "0.05") as url:
        check_generations(url, db, tmp_path)


def run_on_stand_in(url: str, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`flowgraph run FLOW --executor scenario --json`, its model nodes generating on `url`."""
    run_db = str(tmp_path / "run.db")
    return flowgraph(
        "run",
        str(FLOW),
        "--executor",
        "scenario",
        "--db",
        run_db,
        "--json",
        *options,
        env=sdk_environment(url),
    )


def check_generations(url: str, db: Path, tmp_path: Path) -> None:
    result = run_on_stand_in(url, tmp_path)
    assert result.returncode == 0, result.stderr
    nodes = by_id(json.loads(result.stdout)["job"])
    assert nodes["sketch"]["status"] == "skipped"  # the branch not taken generates nothing
    assert nodes["prompt"]["output"] == "dry-run prompt from `prompt`: a lighthouse"
    with client(url) as sdk:
        check_assets(sdk, url, nodes)
    assert generate_calls(db) == 4 and generate_calls(db, "/v1/generate/prompt") == 1


def check_assets(sdk: Scenario, url: str, nodes: dict[str, dict[str, Any]]) -> None:
    for node_id in MODEL_NODES:
        node = nodes[node_id]
        assert node["status"] == "success", node
        inference = sdk.jobs.retrieve(node["jobId"]).job  # the node's job is Scenario's job
        assert inference.job_type == "inference" and inference.status == "success"
        assert [a["assetId"] for a in node["assets"]] == inference.metadata.asset_ids
        for asset in node["assets"]:
            served = sdk.assets.retrieve(asset["assetId"]).asset
            assert asset["url"] == served.url
            assert served.url.startswith(url.removesuffix("/v1") + "/files/")
            assert httpx.get(served.url).content.startswith(b"\x89PNG")
    assert len(nodes["paint"]["assets"]) == 2  # numSamples: 2
    owl = sdk.jobs.retrieve(nodes["portrait#1"]["jobId"]).job
    assert owl.metadata.input == {"prompt": "an owl", "guidance": 3.5}
    assert owl.metadata.model_extra == {"modelId": "model_flux"}


def test_a_failed_inference_job_fails_its_node_with_scenarios_message(tmp_path: Path) -> None:
    with running_server(tmp_path / "stand-in.db", "--fail", "model_paint") as url:
        check_failure(url, tmp_path)


def check_failure(url: str, tmp_path: Path) -> None:
    result = run_on_stand_in(url, tmp_path, "--keep-going")
    assert result.returncode == 1, result.stderr
    nodes = by_id(json.loads(result.stdout)["job"])
    paint = nodes["paint"]
    assert paint["status"] == "failure"
    assert re.fullmatch(
        r"executor `scenario`: inference job `job_\w+` ended failure: node `model_paint`: "
        r"executor `dry-run`: dry-run failure injected for `model_paint` \(--fail\)",
        paint["statusReason"],
    ), paint
    with client(url) as sdk:
        assert sdk.jobs.retrieve(paint["jobId"]).job.status == "failure"
    assert all(nodes[n]["status"] == "success" for n in MODEL_NODES[1:])  # --keep-going


def test_cancelling_the_node_cancels_the_inference_job(tmp_path: Path) -> None:
    with running_server(tmp_path / "stand-in.db", "--latency", "60") as url:
        check_cancel(url)


def check_cancel(url: str) -> None:
    executor = ScenarioExecutor(
        base_url=url, api_key="key", api_secret="secret", poll_interval=0.05
    )
    engine = Engine(executors=None, seed=0)
    engine.router.default = executor
    document = {"flow": [{"id": "draw", "type": "custom-model", "modelId": "model_slow"}]}
    job = engine.prepare(document)

    async def scenario() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(engine.advance, job)
            with anyio.fail_after(30), client(url) as sdk:
                while not sdk.jobs.list().jobs:  # the inference job started
                    await anyio.sleep(0.05)
            with anyio.fail_after(30):
                while "draw" not in job.runner.call_progress:  # polled, its progress reported
                    await anyio.sleep(0.05)
            assert job.runner.call_progress == {"draw": 0.0}
            await engine.cancel(job.job_id)
        await executor.close()
        assert job.runner.call_progress == {}

    anyio.run(scenario)
    node = job.document()["metadata"]["flow"][0]
    assert job.status.value == "canceled"
    assert (node["status"], node["statusReason"]) == ("failure", "canceled")
    with client(url) as sdk:
        inference = sdk.jobs.retrieve(node["jobId"]).job
    assert inference.job_type == "inference" and inference.status == "canceled"


def test_a_job_resumed_after_kill_9_polls_the_inference_jobs_it_had_started(
    tmp_path: Path,
) -> None:
    db = tmp_path / "stand-in.db"
    with running_server(db, "--latency", "4") as url:
        check_resume(url, db, tmp_path)


def check_resume(url: str, db: Path, tmp_path: Path) -> None:
    run_db = tmp_path / "run.db"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "run",
            str(FLOW),
            "--executor",
            "scenario",
            "--db",
            str(run_db),
            "--json",
        ],
        cwd=ROOT,
        env={**os.environ, **sdk_environment(url)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    started: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 60
        while len(started) < 3:  # the three portraits' inference jobs, recorded by the run
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
            if run_db.exists():
                store = SQLiteStore(run_db)
                try:
                    jobs, _ = store.list_jobs()
                    if jobs:
                        job_id = jobs[0].job_id
                        started = {
                            o.node_id: o.payload["jobId"]
                            for o in store.outcomes(job_id)
                            if o.kind == "remote"
                        }
                finally:
                    store.close()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with client(url) as sdk:
        states = {sdk.jobs.retrieve(j).job.status for j in started.values()}
    assert states <= {"queued", "in-progress"}, "the calls are in flight when the run is killed"
    assert generate_calls(db) == 3
    resumed = flowgraph("resume", job_id, "--db", str(run_db), "--json", env=sdk_environment(url))
    assert resumed.returncode == 0, resumed.stderr
    nodes = by_id(json.loads(resumed.stdout)["job"])
    assert {n: nodes[n]["jobId"] for n in started} == started  # polled, not started again
    assert all(nodes[n]["status"] == "success" for n in MODEL_NODES)
    assert generate_calls(db) == 4  # the three portraits once each, then the painting
    with client(url) as sdk:
        prompts = [j for j in sdk.jobs.list().jobs if j.job_type == "generate-prompt"]
    assert len(prompts) == 1  # a prompt request cut short is sent again with its key


def test_scenario_executors_come_from_the_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "flowgraph.toml"
    config.write_text(
        '[executors.cloud]\ntype = "scenario"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'concurrency = 3\n[routing]\ndefault = "cloud"\n'
    )
    router = load_config(config).router()
    assert isinstance(router.default, ScenarioExecutor)
    assert (router.default.base_url, router.default.concurrency) == ("http://127.0.0.1:9/v1", 3)


def test_an_unknown_executor_is_named(tmp_path: Path) -> None:
    result = flowgraph(
        "run", str(FLOW), "--executor", "gpu", "--db", str(tmp_path / "run.db"), env={}
    )
    assert result.returncode == 2
    assert "`--executor gpu` is no executor; expected one of: dry-run, scenario" in result.stderr


def test_the_executor_is_kept_with_the_job_for_resume(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "run.db")
    engine = build_engine(store, {"executor": "scenario"})
    assert isinstance(engine.router.default, ScenarioExecutor)
    assert engine.policy.concurrency == 10  # the cloud's limit, unless --max-concurrency
    store.close()


def test_explain_cost_asks_the_stand_ins_dry_runs_and_matches_its_run_estimate(
    tmp_path: Path,
) -> None:
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"model_paint": 4, "model_flux": 2, "generate-prompt": 0.5}))
    db = tmp_path / "stand-in.db"
    with running_server(db, "--costs", str(costs)) as url:
        inputs = ("-i", "style=sketch", "-i", 'subjects=["a fox", "an owl"]')
        result = flowgraph(
            "explain", str(FLOW), "--cost", "--executor", "scenario", "--json", *inputs,
            env=sdk_environment(url),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        cost = json.loads(result.stdout)["cost"]
        # the branch taken (sketch: the default price) and two iterations, one dryRun a call
        nodes = {"prompt": 0.5, "sketch": 1.0, "portrait#0": 2.0, "portrait#1": 2.0}
        assert cost == {"total": 5.5, "nodes": nodes, "asked": 4}
        assert generate_calls(db, "/v1/generate/custom/") == 3
        assert generate_calls(db, "/v1/generate/prompt") == 1
        with client(url) as sdk:
            workflow_id = sdk.workflows.create(name="costed", description="").workflow.id
            document = json.loads(FLOW.read_text())
            sdk.workflows.update(
                workflow_id, flow=document["flow"], inputs=document["inputs"], status="ready"
            )
            estimate = sdk.workflows.with_raw_response.run(
                workflow_id, body={"style": "sketch", "subjects": ["a fox", "an owl"]},
                dry_run="true",
            )  # fmt: skip
        assert estimate.status_code == 269
        assert estimate.http_response.json()["creativeUnitsCost"] == 5.5
        text = flowgraph(
            "explain", str(FLOW), "--cost", "--executor", "scenario", *inputs,
            env=sdk_environment(url),
        )  # fmt: skip
    assert "cost: 5.5 creative units (4 distinct calls priced by their executor)" in text.stdout
    assert re.search(r"^  sketch\s+1$", text.stdout, re.MULTILINE), text.stdout


def test_the_console_shows_how_far_a_generation_has_come(tmp_path: Path) -> None:
    """A front server whose model nodes generate on a second one: while an inference job
    runs, the node's panel in the front's console carries the progress the executor reports."""
    with running_server(tmp_path / "stand-in.db", "--latency", "8") as back:
        config = tmp_path / "front.toml"
        config.write_text(
            f'[executors.cloud]\ntype = "scenario"\nbase_url = "{back}"\n'
            'api_key = "key"\napi_secret = "secret"\npoll_interval = 0.1\n'
            '[routing]\ndefault = "cloud"\n'
        )
        with (
            running_server(tmp_path / "front.db", "--config", str(config)) as front,
            Scenario(base_url=front, api_key="key", api_secret="secret") as sdk,
        ):
            console = front.removesuffix("/v1") + "/console/api/jobs/"
            document = json.loads(FLOW.read_text())
            workflow_id = sdk.workflows.create(name="generations", description="d").workflow.id
            sdk.workflows.update(
                workflow_id, flow=document["flow"], inputs=document.get("inputs"), status="ready"
            )
            job_id = sdk.workflows.run(workflow_id, body={}).job.job_id
            panel: dict[str, Any] = {}
            deadline = time.monotonic() + 60
            while "progress" not in panel:
                assert time.monotonic() < deadline, panel
                time.sleep(0.2)
                panel = httpx.get(f"{console}{job_id}/nodes/paint").json()
            assert panel["status"] == "processing" and 0 <= panel["progress"] <= 1
            sdk.jobs.trigger_action(job_id, action="cancel")
            done = httpx.get(f"{console}{job_id}/nodes/paint").json()
            assert "progress" not in done
