"""The server driven only through the official `scenario-sdk` client, as a Scenario user would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import scenario_sdk
from conftest import EXAMPLES, FLOWS
from scenario_sdk import Scenario

from engine.server.launcher import ROOT, running_server

GATED = json.loads((FLOWS / "gates.json").read_text())


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("server") / "jobs.db"
    with running_server(db) as url:
        yield url


@pytest.fixture()
def client(base_url: str) -> Iterator[Scenario]:
    with Scenario(
        api_key="any-key", api_secret="any-secret", base_url=base_url, max_retries=0
    ) as client:  # closed: a connection left open is a ResourceWarning whenever it is collected
        yield client


def ready_workflow(client: Scenario, document: dict[str, Any], name: str = "gated") -> str:
    created = client.workflows.create(name=name, description=f"{name} workflow")
    workflow_id = created.workflow.id
    client.workflows.update(
        workflow_id,
        flow=document["flow"],
        inputs=document.get("inputs", []),
        status="ready",
        tag_set=["test", name],
    )
    return workflow_id


def wait_job(client: Scenario, job_id: str, until: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = client.jobs.retrieve(job_id).job
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stayed {job.status}")
        time.sleep(0.05)


def node(job: Any, node_id: str) -> Any:
    return next(n for n in job.metadata.flow if n.id == node_id)


def waiting(node_id: str) -> Any:
    return lambda job: any(
        n.id == node_id and n.status == "processing" for n in job.metadata.flow or []
    )


def test_create_update_retrieve_list_every_page_and_delete(client: Scenario) -> None:
    ids = [ready_workflow(client, GATED, name=f"w{n}") for n in range(3)]
    created = client.workflows.create(name="draft one", description="stays a draft")
    assert created.workflow.id.startswith("wflow_")
    assert created.workflow.status == "draft" and created.workflow.has_flow is False
    fetched = client.workflows.retrieve(ids[0]).workflow
    assert fetched.has_flow is True and [n.id for n in fetched.flow] == [
        "draft",
        "review",
        "choose",
        "final",
    ]
    assert fetched.tag_set == ["test", "w0"]
    seen = [w.id for w in client.workflows.list(page_size=1)]
    assert set(ids) | {created.workflow.id} <= set(seen)
    assert len(seen) == len(set(seen))
    ready = [w.id for w in client.workflows.list(page_size=2, status="ready")]
    assert created.workflow.id not in ready and set(ids) <= set(ready)
    assert {"test", "w0", "w1", "w2"} <= set(client.workflows.get_tags().tags)
    client.workflows.delete(ids[2])
    with pytest.raises(scenario_sdk.NotFoundError) as missing:
        client.workflows.retrieve(ids[2])
    assert missing.value.body["message"] == f"workflow `{ids[2]}` not found"  # type: ignore[index]


def test_update_with_an_invalid_flow_names_every_problem(client: Scenario) -> None:
    """A draft is saved as it is (the editor saves drafts as the user works); making it ready
    checks the flow, every problem at once; a draft does not run."""
    workflow_id = client.workflows.create(name="bad", description="bad flow").workflow.id
    flow = [
        {"id": "a", "type": "transform", "logic": {"transform": "x +"}},
        {"id": "b", "type": "custom-model", "modelId": "m", "dependsOn": ["ghost"]},
    ]
    draft = client.workflows.update(workflow_id, flow=flow).workflow
    assert draft.status == "draft" and len(draft.flow) == 2
    with pytest.raises(scenario_sdk.BadRequestError) as not_ready:
        client.workflows.run(workflow_id, body={})
    assert not_ready.value.body["message"] == "Workflow is not ready"  # type: ignore[index]
    with pytest.raises(scenario_sdk.BadRequestError) as caught:
        client.workflows.update(workflow_id, status="ready")
    body = caught.value.body
    assert body["statusCode"] == 400 and body["error"] == "Bad Request"  # type: ignore[index]
    assert "flow[0].logic.transform: expression `x +` does not parse" in body["message"]  # type: ignore[index]
    assert "flow[1].dependsOn[0]: unknown node `ghost` in `dependsOn`" in body["message"]  # type: ignore[index]
    assert client.workflows.retrieve(workflow_id).workflow.status == "draft"  # nothing changed


def test_dry_run_answers_269_with_a_cost(client: Scenario) -> None:
    workflow_id = ready_workflow(client, json.loads((EXAMPLES / "fan-out.json").read_text()), "fan")
    raw = client.workflows.with_raw_response.run(
        workflow_id, body={"subjects": ["a", "b", "c", "d"]}, dry_run="true"
    )
    assert raw.status_code == 269
    parsed = raw.parse()
    assert parsed.model_extra["creativeUnitsCost"] == 5.0  # four generations and the contact sheet
    assert parsed.model_extra["creativeUnitsDiscount"] == 0
    with pytest.raises(scenario_sdk.BadRequestError) as caught:
        client.workflows.run(
            workflow_id, body={"subjects": "not a list", "colour": 1}, dry_run="true"
        )
    message = caught.value.body["message"]  # type: ignore[index]
    assert "unknown input `colour`" in message and "input `subjects` must be an array" in message


def test_run_approve_select_and_succeed(client: Scenario) -> None:
    workflow_id = ready_workflow(client, GATED)
    started = client.workflows.run(workflow_id, body={})
    assert started.workflow.id == workflow_id
    job_id = started.job.job_id
    assert job_id.startswith("job_")
    job = wait_job(client, job_id, waiting("review"))
    assert job.status == "in-progress"
    approved = client.workflows.user_approval(
        workflow_id, project_id="p", node_id="review", workflow_job_id=job_id
    )
    assert node(approved.job, "review").status == "success"
    job = wait_job(client, job_id, waiting("choose"))
    items = node(job, "choose").items
    assert len(items) == 3
    with pytest.raises(scenario_sdk.BadRequestError) as refused:
        client.workflows.user_selection(
            workflow_id,
            project_id="p",
            action="select",
            node_id="choose",
            workflow_job_id=job_id,
            selected_indices=[0, 1, 2],
        )
    assert "choose between 1 and 2 items, got 3" in refused.value.body["message"]  # type: ignore[index]
    client.workflows.user_selection(
        workflow_id,
        project_id="p",
        action="select",
        node_id="choose",
        workflow_job_id=job_id,
        selected_indices=[2, 0],
    )
    job = wait_job(client, job_id, lambda j: j.status == "success")
    assert node(job, "choose").output == [items[2], items[0]]
    assert job.progress == 1.0 and len(job.metadata.asset_ids) == 1
    assert any(j.job_id == job_id for j in client.jobs.list(workflow_id=workflow_id))


def test_reject_cancels_and_decisions_for_the_wrong_node_or_job_are_refused(
    client: Scenario,
) -> None:
    workflow_id = ready_workflow(client, GATED)
    job_id = client.workflows.run(workflow_id, body={}).job.job_id
    wait_job(client, job_id, waiting("review"))
    with pytest.raises(scenario_sdk.BadRequestError) as wrong:
        client.workflows.user_approval(
            workflow_id, project_id="p", node_id="draft", workflow_job_id=job_id
        )
    assert (
        "node `draft` is a `custom-model` node, not a `user-approval` node"
        in wrong.value.body["message"]
    )  # type: ignore[index]
    with pytest.raises(scenario_sdk.BadRequestError) as not_waiting:
        client.workflows.user_selection(
            workflow_id,
            project_id="p",
            action="select",
            node_id="choose",
            workflow_job_id=job_id,
            selected_indices=[0],
        )
    assert (
        "node `choose` is not waiting for a decision (it is pending)"
        in not_waiting.value.body["message"]
    )  # type: ignore[index]
    with pytest.raises(scenario_sdk.NotFoundError):
        client.workflows.user_approval(
            workflow_id, project_id="p", node_id="review", workflow_job_id="job_nope"
        )
    rejected = client.workflows.user_approval(
        workflow_id, project_id="p", node_id="review", workflow_job_id=job_id, action="reject"
    )
    assert node(rejected.job, "review").status == "rejected"
    job = wait_job(client, job_id, lambda j: j.status == "canceled")
    assert node(job, "choose").model_extra["statusReason"] == "gate `review` rejected"
    with pytest.raises(scenario_sdk.BadRequestError) as finished:
        client.workflows.user_approval(
            workflow_id, project_id="p", node_id="review", workflow_job_id=job_id
        )
    assert f"job `{job_id}` is finished (canceled)" in finished.value.body["message"]  # type: ignore[index]


def test_cancel_a_waiting_job(client: Scenario) -> None:
    workflow_id = ready_workflow(client, GATED)
    job_id = client.workflows.run(workflow_id, body={}).job.job_id
    wait_job(client, job_id, waiting("review"))
    canceled = client.jobs.trigger_action(job_id, action="cancel")
    assert canceled.job.status == "canceled"
    assert node(canceled.job, "draft").status == "success"
    assert node(canceled.job, "review").status == "skipped"
    with pytest.raises(scenario_sdk.BadRequestError):
        client.jobs.trigger_action(job_id, action="cancel")
    with pytest.raises(scenario_sdk.NotFoundError):
        client.jobs.retrieve("job_does_not_exist")
    # `action` is optional in the SDK: cancel is the only one
    other = client.workflows.run(workflow_id, body={}).job.job_id
    wait_job(client, other, waiting("review"))
    assert client.jobs.trigger_action(other).job.status == "canceled"


def test_jobs_list_page_by_page(client: Scenario) -> None:
    workflow_id = ready_workflow(client, GATED, name="paged")
    started = [client.workflows.run(workflow_id, body={}).job.job_id for _ in range(3)]
    for job_id in started:
        wait_job(client, job_id, waiting("review"))
    one_per_page = [j.job_id for j in client.jobs.list(page_size=1)]  # follows every token
    assert set(started) <= set(one_per_page) and len(set(one_per_page)) == len(one_per_page)
    assert one_per_page == [j.job_id for j in client.jobs.list(page_size=100)]
    first = client.jobs.list(page_size=2)
    assert len(first.jobs) == 2 and first.next_pagination_token


def test_drafts_do_not_run_and_inputs_are_checked(client: Scenario) -> None:
    draft = client.workflows.create(name="draft", description="d").workflow.id
    with pytest.raises(scenario_sdk.BadRequestError) as caught:
        client.workflows.run(draft, body={})
    assert caught.value.body["message"] == "Workflow is not ready"  # type: ignore[index]
    branching = ready_workflow(
        client, json.loads((EXAMPLES / "branching.json").read_text()), "branching"
    )
    with pytest.raises(scenario_sdk.BadRequestError) as invalid:
        client.workflows.run(branching, body={"mode": "slow", "extra": True})
    message = invalid.value.body["message"]  # type: ignore[index]
    assert message.startswith("run inputs are invalid:")
    assert "unknown input `extra`" in message and "input `mode` must be one of" in message
    job_id = client.workflows.run(branching, body={"mode": "fast", "prompt": "a kite"}).job.job_id
    job = wait_job(client, job_id, lambda j: j.status == "success")
    assert node(job, "gen_quality").status == "skipped"
    assert job.metadata.input == {"mode": "fast", "prompt": "a kite"}


def test_a_workflow_node_runs_a_stored_workflow_as_a_child_job(client: Scenario) -> None:
    child = ready_workflow(client, json.loads((EXAMPLES / "transform.json").read_text()), "child")
    parent = ready_workflow(
        client,
        {
            "flow": [
                {
                    "id": "sub",
                    "type": "workflow",
                    "workflowId": child,
                    "inputs": [{"name": "subject", "type": "string", "value": "a quiet bay"}],
                },
            ]
        },
        "parent",
    )
    job_id = client.workflows.run(parent, body={}).job.job_id
    job = wait_job(client, job_id, lambda j: j.status in ("success", "failure"))
    assert job.status == "success", job.metadata.error
    children = [
        j for j in client.jobs.list(workflow_id=child) if j.metadata.workflow_job_id == job_id
    ]
    assert len(children) == 1
    assert node(job, "sub").assets[0].asset_id == children[0].metadata.asset_ids[0]


def test_credentials_when_configured(tmp_path: Path) -> None:
    environment = {"FLOWGRAPH_API_KEY": "key", "FLOWGRAPH_API_SECRET": "secret"}
    with (
        running_server(tmp_path / "db", env=environment) as url,
        Scenario(api_key="key", api_secret="secret", base_url=url, max_retries=0) as good,
        Scenario(bearer_auth="secret", base_url=url, max_retries=0) as bearer,
        Scenario(api_key="key", api_secret="wrong", base_url=url, max_retries=0) as bad,
    ):
        assert good.workflows.create(name="n", description="d").workflow.id.startswith("wflow_")
        assert list(bearer.workflows.list()) != []
        with pytest.raises(scenario_sdk.AuthenticationError) as caught:
            bad.workflows.list().workflows  # noqa: B018
        assert caught.value.body["statusCode"] == 401  # type: ignore[index]


def test_a_base_url_without_v1_is_told_where_the_api_is(base_url: str) -> None:
    """A client given the server's address alone (no `/v1`) gets 404s that say where the API
    is; a request the API does not serve either (another path, another method) gets a bare
    404."""
    address = base_url.removesuffix("/v1")
    client = Scenario(api_key="k", api_secret="s", base_url=address, max_retries=0)
    with client, pytest.raises(scenario_sdk.NotFoundError) as caught:
        client.jobs.retrieve("job_anything")
    message = caught.value.body["message"]  # type: ignore[index]
    assert message.endswith(
        "served under /v1 (GET /v1/jobs/job_anything): end the client's base URL with /v1"
    )
    assert httpx.get(address + "/no-such-thing").json()["message"] == "Not Found"
    # a method the API does not take there gets no hint either
    assert httpx.delete(address + "/jobs/job_anything").json()["message"] == "Not Found"
    missing = httpx.get(base_url + "/jobs/job_anything").json()["message"]
    assert "/v1" not in missing and "job_anything" in missing


def test_oversized_bodies_get_413(tmp_path: Path) -> None:
    with (
        running_server(tmp_path / "db", "--max-body", "2048") as url,
        Scenario(api_key="k", api_secret="s", base_url=url, max_retries=0) as client,
    ):
        with pytest.raises(scenario_sdk.APIStatusError) as caught:
            client.workflows.create(name="x" * 5000, description="d")
        assert caught.value.status_code == 413
        assert caught.value.body["message"] == "request body larger than 2048 bytes"  # type: ignore[index]


def test_refuses_a_public_address_without_credentials(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "serve",
            "--host",
            "0.0.0.0",
            "--db",
            str(tmp_path / "db"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "refusing to listen on `0.0.0.0` without credentials" in result.stderr


def test_unfinished_jobs_resume_when_the_server_starts_again(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with (
        running_server(db) as url,
        Scenario(api_key="k", api_secret="s", base_url=url, max_retries=0) as client,
    ):
        workflow_id = ready_workflow(client, GATED)
        job_id = client.workflows.run(workflow_id, body={}).job.job_id
        first = wait_job(client, job_id, waiting("review"))
    with (
        running_server(db) as url,
        Scenario(api_key="k", api_secret="s", base_url=url, max_retries=0) as client,
    ):
        job = client.jobs.retrieve(job_id).job
        assert node(job, "review").status == "processing"
        client.workflows.user_approval(
            workflow_id, project_id="p", node_id="review", workflow_job_id=job_id
        )
        job = wait_job(client, job_id, waiting("choose"))
        assert node(job, "draft").assets == node(first, "draft").assets


def test_openapi_document_lists_the_routes(base_url: str) -> None:
    document = httpx.get(base_url.removesuffix("/v1") + "/openapi.json").json()
    paths = document["paths"]
    assert set(paths) >= {
        "/v1/workflows",
        "/v1/workflows/tags",
        "/v1/workflows/{workflow_id}",
        "/v1/workflows/{workflow_id}/run",
        "/v1/workflows/{workflow_id}/user-approval",
        "/v1/workflows/{workflow_id}/user-selection",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/action",
    }
    assert set(paths["/v1/workflows/{workflow_id}"]) == {"get", "put", "delete"}
    assert "269" in paths["/v1/workflows/{workflow_id}/run"]["put"]["responses"]


def test_a_costs_table_prices_the_dry_run(tmp_path: Path) -> None:
    table = tmp_path / "costs.json"
    table.write_text(json.dumps({"model_flux-schnell": 3, "custom-model": 2, "default": 10}))
    with (
        running_server(tmp_path / "db", "--costs", str(table)) as url,
        Scenario(api_key="k", api_secret="s", base_url=url, max_retries=0) as client,
    ):
        workflow_id = ready_workflow(
            client, json.loads((EXAMPLES / "fan-out.json").read_text()), "fan"
        )
        raw = client.workflows.with_raw_response.run(
            workflow_id, body={"subjects": ["a", "b"]}, dry_run="api"
        )
        assert raw.status_code == 269
        assert raw.parse().model_extra["creativeUnitsCost"] == 2 * 3 + 2  # two flux calls, one grid


def test_serve_workflows_loads_files_as_the_api_would_answer_them(tmp_path: Path) -> None:
    """A file's `id` wins over its name; every field the SDK requires is there (strict
    validation); a file that is no workflow is skipped with a warning."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    gated = {**GATED, "id": "wflow_kept", "name": "gated"}
    (folder / "any-name.json").write_text(json.dumps(gated))
    (folder / "wflow_by_name.json").write_text(json.dumps({"flow": GATED["flow"]}))
    (folder / "notes.json").write_text(json.dumps({"hello": "not a workflow"}))
    db = tmp_path / "db"
    with (
        running_server(db, "--workflows", str(folder)) as url,
        Scenario(
            api_key="k",
            api_secret="s",
            base_url=url,
            max_retries=0,
            _strict_response_validation=True,
        ) as client,
    ):
        kept = client.workflows.retrieve("wflow_kept").workflow
        assert kept.name == "gated" and kept.status == "ready" and kept.has_flow is True
        named = client.workflows.retrieve("wflow_by_name").workflow
        assert named.name == "wflow_by_name" and named.tag_set == []
        listed = {w.id for w in client.workflows.list().workflows}
        assert listed == {"wflow_kept", "wflow_by_name"}
        job = client.workflows.run("wflow_kept", body={}).job
        assert job.job_id.startswith("job_")
    log = next(tmp_path.glob("db.*.log")).read_text()
    assert (
        f"warning: skipped: document {folder / 'notes.json'} is invalid: "
        "flow: a workflow needs a `flow`" in log
    )


def test_gates_inside_sub_workflows_are_decided_by_path_or_by_the_child_job(tmp_path: Path) -> None:
    """A child job parked at a gate parks its parent (`serve --workflows DIR` holds both
    workflows); the SDK decides it with the parent's job and the path `sub/review`, or with
    the child's job and `review`; both jobs end and the child's outputs reach the parent."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    for path in [*(FLOWS / "subflows").glob("*.json"), *FLOWS.glob("sub-gate*.json")]:
        (folder / path.name).write_text(path.read_text())
    with (
        running_server(tmp_path / "db", "--workflows", str(folder)) as url,
        Scenario(api_key="k", api_secret="s", base_url=url, max_retries=0) as client,
    ):

        def parked(workflow_id: str, holder: str = "sub") -> tuple[str, str, Any]:
            job_id = client.workflows.run(workflow_id, body={}).job.job_id
            job = wait_job(client, job_id, lambda j: "waitingGates" in node(j, holder).model_extra)
            assert job.status == "in-progress" and node(job, holder).status == "processing"
            return job_id, str(node(job, holder).job_id), job

        job_id, child_id, job = parked("wflow_sub_gate")
        sub = node(job, "sub").model_extra
        assert [g["id"] for g in sub["waitingGates"]] == ["sub/review"]
        assert sub["waitingGates"][0]["jobId"] == child_id
        assert f"gate `review` of job `{child_id}`" in sub["statusReason"]
        assert node(client.jobs.retrieve(child_id).job, "review").status == "processing"
        with pytest.raises(scenario_sdk.BadRequestError) as refused:
            client.workflows.user_approval(
                "wflow_sub_gate", project_id="p", node_id="sub/final", workflow_job_id=job_id
            )
        assert (
            f"`sub/final`: in job `{child_id}` (the sub-workflow of `sub`): node `final` is not "
            "waiting for a decision (it is pending)"
        ) in refused.value.body["message"]  # type: ignore[index]
        client.workflows.user_approval(
            "wflow_sub_gate", project_id="p", node_id="sub/review", workflow_job_id=job_id
        )
        job = wait_job(client, job_id, lambda j: j.status == "success")
        child = client.jobs.retrieve(child_id).job
        assert child.status == "success" and child.metadata.workflow_job_id == job_id
        assert node(job, "use").output == child.metadata.asset_ids[0]
        assert node(job, "sub").assets[0].asset_id == child.metadata.asset_ids[0]

        job_id, child_id, _ = parked("wflow_sub_gate")
        client.workflows.user_approval(
            "wflow_review", project_id="p", node_id="review", workflow_job_id=child_id
        )
        job = wait_job(client, job_id, lambda j: j.status == "success")
        assert client.jobs.retrieve(child_id).job.status == "success"
        assert node(job, "use").output == client.jobs.retrieve(child_id).job.metadata.asset_ids[0]

        job_id, child_id, _ = parked("wflow_sub_gate")
        client.workflows.user_approval(
            "wflow_sub_gate",
            project_id="p",
            node_id="sub/review",
            workflow_job_id=job_id,
            action="reject",
        )
        job = wait_job(client, job_id, lambda j: j.status == "canceled")
        assert node(job, "sub").status == "rejected"
        assert client.jobs.retrieve(child_id).job.status == "canceled"

        # the child canceled on its own: the answer is the child's; its parent, in the
        # background, fails its workflow node
        job_id, child_id, _ = parked("wflow_sub_gate")
        canceled = client.jobs.trigger_action(child_id, project_id="p", action="cancel").job
        assert canceled.job_id == child_id and canceled.status == "canceled"
        job = wait_job(client, job_id, lambda j: j.status == "failure")
        assert node(job, "sub").status == "failure"
        assert node(job, "sub").model_extra["statusReason"] == (
            f"sub-workflow `wflow_review` (job `{child_id}`) ended canceled: job canceled"
        )

        job_id, _, job = parked("wflow_sub_gate_loop", "sub#1")
        first = str(node(job, "sub#0").job_id)
        wait_job(client, first, waiting("pick"))
        client.workflows.user_selection(
            "wflow_pick",
            project_id="p",
            action="select",
            node_id="pick",
            workflow_job_id=first,
            selected_indices=[1],
        )
        job = wait_job(client, job_id, lambda j: node(j, "sub#0").status == "success")
        assert node(job, "sub#1").status == "processing" and job.status == "in-progress"
        client.workflows.user_selection(
            "wflow_sub_gate_loop",
            project_id="p",
            action="select",
            node_id="sub#1/pick",  # the clone's path (`sub/pick` would take every waiting clone)
            workflow_job_id=job_id,
            selected_indices=[0, 2],
        )
        job = wait_job(client, job_id, lambda j: j.status == "success")
        chosen = [g["all"]["chosen"]["output"] for g in node(job, "gather").output]
        assert [len(c) for c in chosen] == [1, 2]


TWO_GATES = json.loads((FLOWS / "two-gates.json").read_text())


def test_decisions_sent_at_once_to_one_server_for_one_job_are_all_kept(client: Scenario) -> None:
    """Two approvals of a parked job's two gates, sent together: the server changes a job
    for one request at a time, so neither rebuilds the job under the other's feet."""
    import asyncio

    from scenario_sdk import AsyncScenario

    workflow_id = ready_workflow(client, TWO_GATES, "two gates")
    jobs = [client.workflows.run(workflow_id, body={}).job.job_id for _ in range(6)]
    for job_id in jobs:
        wait_job(client, job_id, lambda j: waiting("g1")(j) and waiting("g2")(j))

    async def approve_both() -> None:
        async with AsyncScenario(
            api_key="k", api_secret="s", base_url=str(client.base_url), max_retries=0
        ) as together:
            await asyncio.gather(
                *(
                    together.workflows.user_approval(
                        workflow_id, project_id="p", node_id=gate, workflow_job_id=job_id
                    )
                    for job_id in jobs
                    for gate in ("g1", "g2")
                )
            )

    asyncio.run(approve_both())
    for job_id in jobs:
        job = wait_job(client, job_id, lambda j: j.status != "in-progress")
        assert {n.id: n.status for n in job.metadata.flow} == {
            "draft": "success",
            "g1": "success",
            "g2": "success",
            "after1": "success",
            "after2": "success",
        }
