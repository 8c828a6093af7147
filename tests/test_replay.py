"""`flowgraph replay`: a job recorded from a live `flowgraph serve` (as GET /jobs/{id} answers
it, after decisions through the official client) replays in agreement; edited copies differ
in exactly the node that was edited."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EXAMPLES
from scenario_sdk import Scenario
from test_cli import flowgraph

from engine.server.launcher import running_server


def node(job: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in job["metadata"]["flow"] if n["id"] == node_id)
    return found


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """creative-app.json run on a live server: a for-each of 4, an if/else in each
    iteration, a merge, and a selection decided through scenario-sdk."""
    folder = tmp_path_factory.mktemp("replay")
    document = json.loads((EXAMPLES / "creative-app.json").read_text())
    with (
        running_server(folder / "jobs.db") as url,
        Scenario(api_key="k", api_secret="s", base_url=url, max_retries=0) as client,
    ):
        workflow_id = client.workflows.create(name="poster", description="replay").workflow.id
        client.workflows.update(
            workflow_id, flow=document["flow"], inputs=document["inputs"], status="ready"
        )
        body = {"subject": "a kite at dusk", "style": "watercolor"}
        job_id = client.workflows.run(workflow_id, body=body).job.job_id
        deadline = time.monotonic() + 30
        while not any(
            n.id == "pick" and n.status == "processing"
            for n in client.jobs.retrieve(job_id).job.metadata.flow or []
        ):
            assert time.monotonic() < deadline, "the job never reached its selection gate"
            time.sleep(0.05)
        client.workflows.user_selection(
            workflow_id,
            project_id="p",
            action="select",
            node_id="pick",
            workflow_job_id=job_id,
            selected_indices=[3, 1],
        )
        while client.jobs.retrieve(job_id).job.status == "in-progress":
            assert time.monotonic() < deadline, "the job never ended"
            time.sleep(0.05)
        envelope: dict[str, Any] = httpx.get(f"{url}/jobs/{job_id}").json()
    assert envelope["job"]["status"] == "success"
    yield envelope


def replay(tmp_path: Path, envelope: dict[str, Any], *options: str) -> Any:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(envelope))
    return flowgraph("replay", str(path), *options)


def test_a_job_recorded_from_our_server_replays_in_agreement(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    result = replay(tmp_path, recorded)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"replay of job {recorded['job']['jobId']}: recorded success")
    assert lines[1] == "the local run agrees with the recording"
    report = json.loads(replay(tmp_path, recorded, "--json").stdout)
    assert (report["agree"], report["differences"], report["localStatus"]) == (True, [], "success")


def test_a_different_branch_is_reported_once_with_the_local_reason(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    edited = json.loads(json.dumps(recorded))
    node(edited["job"], "style_check#2")["output"] = "upscale_photo"
    result = replay(tmp_path, edited)
    assert result.returncode == 1
    assert result.stdout.splitlines()[1:] == [
        "1 difference:",
        "style_check#2: branch",
        '  - recorded: "upscale_photo"',
        '  + local:    "upscale_art"',
        "  why: style_check#2 success ← style_check#2 chose `upscale_art`: no case matched, "
        "so the default",
    ]


def test_a_different_clone_count_is_reported_once_at_its_loop(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    edited = json.loads(json.dumps(recorded))
    flow = edited["job"]["metadata"]["flow"]
    edited["job"]["metadata"]["flow"] = [n for n in flow if n.get("iterationIndex") != 3]
    loop = node(edited["job"], "variations")
    loop["output"] = loop["output"][:3]
    report = json.loads(replay(tmp_path, edited, "--json").stdout)
    assert report["agree"] is False
    assert [(d["node"], d["aspect"], d["recorded"], d["local"]) for d in report["differences"]] == [
        ("variations", "iterations", 3, 4)
    ]


def test_a_different_input_value_is_reported_once(recorded: dict[str, Any], tmp_path: Path) -> None:
    edited = json.loads(json.dumps(recorded))
    seed = next(i for i in node(edited["job"], "generate#1")["inputs"] if i["name"] == "seed")
    seed["value"] = 4242
    report = json.loads(replay(tmp_path, edited, "--json").stdout)
    assert [(d["node"], d["aspect"], d["recorded"], d["local"]) for d in report["differences"]] == [
        ("generate#1", "input `seed`", 4242, 1007)
    ]


def test_recorded_decisions_and_assets_are_used(recorded: dict[str, Any], tmp_path: Path) -> None:
    edited = json.loads(json.dumps(recorded))
    node(edited["job"], "generate#0")["assets"][0]["assetId"] = "asset_from_the_cloud"
    report = json.loads(replay(tmp_path, edited, "--json").stdout)
    # the asset the recording holds for `generate#0` flows on locally (no model is called):
    # the next node resolves it, where the recording (edited in one place only) did not
    first = report["differences"][0]
    assert (first["node"], first["aspect"], first["local"]) == (
        "style_check#0",
        "input `image`",
        "asset_from_the_cloud",
    )
    rejected = json.loads(json.dumps(recorded))
    node(rejected["job"], "pick")["status"] = "rejected"
    report = json.loads(replay(tmp_path, rejected, "--json").stdout)
    assert report["localStatus"] == "canceled"
    assert [(d["node"], d["aspect"]) for d in report["differences"]][:1] == [("publish", "status")]


def test_a_file_that_is_no_recorded_job_exits_2(tmp_path: Path) -> None:
    result = replay(tmp_path, {"jobs": []})
    assert result.returncode == 2
    assert 'a recorded job is the `{"job": ...}` envelope of GET /jobs/{id}' in result.stderr


def test_what_follows_from_a_difference_is_counted_not_listed(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    # as the recording would read had the cloud taken the other branch in iteration 2
    edited = json.loads(json.dumps(recorded))
    node(edited["job"], "style_check#2")["output"] = "upscale_photo"
    node(edited["job"], "upscale_photo#2")["status"] = "success"
    node(edited["job"], "upscale_art#2")["status"] = "skipped"
    result = replay(tmp_path, edited)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1] == "1 difference:"
    assert lines[2] == "style_check#2: branch"
    assert lines[-1] == "and 2 more downstream of these (not listed: they follow)"
    report = json.loads(replay(tmp_path, edited, "--json").stdout)
    assert (len(report["differences"]), report["consequences"]) == (1, 2)
