"""Publish through the server, driven by the official `scenario-sdk`: an editor graph saved as a
draft, published by setting `status: "ready"`, run; exports served from `serve --workflows`."""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
import scenario_sdk
from conftest import EXPORTS, export
from scenario_sdk import Scenario

from engine.server.launcher import running_server


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("exports")
    for name in ("prop-sheet", "nested-shots"):
        shutil.copy(EXPORTS / f"{name}.json", folder / f"{name}.json")
    db = tmp_path_factory.mktemp("server") / "jobs.db"
    with running_server(db, "--workflows", str(folder)) as url:
        yield url


@pytest.fixture()
def client(base_url: str) -> Scenario:
    return Scenario(api_key="any-key", api_secret="any-secret", base_url=base_url, max_retries=0)


def finished(client: Scenario, job_id: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = client.jobs.retrieve(job_id).job
        if job.status in ("success", "failure", "canceled"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} stayed {job.status}"
        time.sleep(0.05)


def by_id(job: Any) -> dict[str, Any]:
    return {n.id: n for n in job.metadata.flow}


def test_serve_workflows_publishes_the_exports_it_loads(client: Scenario) -> None:
    workflow = client.workflows.retrieve("prop-sheet").workflow
    assert workflow.status == "ready" and workflow.has_flow is True
    assert workflow.name == "Prop sheet" and workflow.editor_info["inputKeys"] == [
        "text3",
        "image1",
    ]
    assert [n.id for n in workflow.flow][:3] == ["split1", "loop1", "prompt2"]
    assert [i.name for i in workflow.inputs] == ["text3", "image1"]
    started = client.workflows.run("nested-shots", body={"text6": "a + b | c"})
    job = finished(client, started.job.job_id)
    assert job.status == "success"
    shots = {k: n.inputs[0].value for k, n in by_id(job).items() if k.count("#") == 2}
    assert shots == {"shot1#0#0": "a", "shot1#0#1": "b", "shot1#1#0": "c"}


def test_export_publish_run_round_trip_through_the_sdk(client: Scenario) -> None:
    document = export("prop-sheet")
    workflow_id = client.workflows.create(
        name=document["name"], description="from an export"
    ).workflow.id
    # the editor saves drafts as the user works: an incomplete graph is kept as it is
    draft = copy.deepcopy(document["editorInfo"])
    draft["nodes"] = [n for n in draft["nodes"] if n["id"] != "end1"]
    saved = client.workflows.update(
        workflow_id, editor_info=draft, inputs=document["inputs"]
    ).workflow
    assert saved.status == "draft" and saved.has_flow is False and saved.flow == []
    # publishing it is refused, every problem named; nothing changes
    with pytest.raises(scenario_sdk.BadRequestError) as refused:
        client.workflows.update(workflow_id, status="ready")
    message = refused.value.body["message"]  # type: ignore[index]
    assert 'forEach `loop1` ("For each prop"): has no forEachEnd' in message
    assert client.workflows.retrieve(workflow_id).workflow.status == "draft"
    # the complete graph, published
    client.workflows.update(workflow_id, editor_info=document["editorInfo"])
    published = client.workflows.update(workflow_id, status="ready").workflow
    assert published.status == "ready" and published.has_flow is True
    assert [n.id for n in published.flow] == [
        "split1", "loop1", "prompt2", "icon1", "slice1", "group1", "llm1", "last1", "sheet1",
    ]  # fmt: skip
    job = finished(client, client.workflows.run(workflow_id, body={"text3": "axe, bow"}).job.job_id)
    flow = by_id(job)
    assert job.status == "success"
    assert flow["split1"].output == ["axe", "bow"]
    assert flow["prompt2#1"].output == "game icon of a bow, item 1"
    icons = [flow[f"icon1#{i}"].assets[0].asset_id for i in range(2)]  # type: ignore[index]
    assert flow["slice1"].output == icons and flow["last1"].output == icons[1:]
    assert set(icons) <= set(job.metadata.asset_ids)


def test_a_ready_workflow_runs_its_published_flow_until_the_next_publish(client: Scenario) -> None:
    document = export("nested-shots")
    workflow_id = client.workflows.create(name="shots", description="republished").workflow.id
    client.workflows.update(
        workflow_id, editor_info=document["editorInfo"], inputs=document["inputs"]
    )
    first = client.workflows.update(workflow_id, status="ready").workflow
    changed = copy.deepcopy(document["editorInfo"])
    for node in changed["nodes"]:
        if node["id"] == "split4":
            node["data"]["splitDelimiter"] = "&"
    kept = client.workflows.update(workflow_id, editor_info=changed).workflow
    assert kept.editor_info == changed and kept.flow == first.flow  # the old flow runs on
    job = finished(
        client, client.workflows.run(workflow_id, body={"text6": "a + b & c"}).job.job_id
    )
    assert by_id(job)["split4#0"].output == ["a", "b & c"]
    republished = client.workflows.update(workflow_id, status="ready").workflow
    assert republished.flow != first.flow
    job = finished(
        client, client.workflows.run(workflow_id, body={"text6": "a + b & c"}).job.job_id
    )
    assert by_id(job)["split4#0"].output == ["a + b", "c"]
