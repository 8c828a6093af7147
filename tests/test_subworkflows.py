"""workflow nodes run another workflow of the engine's registry as a child job."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from conftest import FLOWS, flow, make_engine, nodes, statuses
from test_cli import flowgraph, job_of

from engine import CallPolicy, Engine, JobRun, NodeCall, Workflow, read_document
from engine.errors import DecisionError, FlowgraphError
from engine.protocols import Store
from engine.run.children import ChildGate, child_job_id
from engine.run.runner import Runner
from engine.server.launcher import running_server
from engine.stores import MemoryStore, SQLiteStore

CHILD = Workflow.model_validate(
    {
        "id": "wflow_child",
        "inputs": [{"name": "prompt", "type": "string", "required": {"always": True}}],
        "flow": [
            {
                "id": "gen",
                "type": "custom-model",
                "modelId": "m",
                "inputs": [
                    {
                        "name": "prompt",
                        "type": "string",
                        "ref": {"node": "workflow", "name": "prompt"},
                    }
                ],
            },
            {
                "id": "label",
                "type": "transform",
                "includeOutputsInWorkflowJob": True,
                "inputs": [
                    {"name": "p", "type": "string", "ref": {"node": "workflow", "name": "prompt"}}
                ],
                "logic": {"transform": "'child saw ' + p"},
            },
        ],
    }
)
PARENT = {
    "id": "wflow_parent",
    "flow": [
        {
            "id": "sub",
            "type": "workflow",
            "workflowId": "wflow_child",
            "inputs": [{"name": "prompt", "type": "string", "value": "a boat"}],
        },
        {
            "id": "use",
            "type": "transform",
            "inputs": [{"name": "a", "type": "file", "ref": {"node": "sub"}}],
            "logic": {"transform": "a"},
        },
    ],
}


def test_a_workflow_node_runs_a_child_job() -> None:
    engine = make_engine(workflows={"wflow_child": CHILD})
    job = anyio.run(engine.run, PARENT)
    flow = nodes(job)
    assert job.document()["status"] == "success"
    children = [j for j in engine.jobs.values() if j.parent_job_id == job.job_id]
    assert len(children) == 1
    child = children[0].document()
    assert child["metadata"]["workflowJobId"] == job.job_id
    assert flow["sub"]["assets"][0]["assetId"] == child["metadata"]["assetIds"][0]
    assert flow["sub"]["output"]["label"] == {"output": "child saw a boat"}
    assert flow["use"]["output"] == child["metadata"]["assetIds"][0]


def test_unknown_and_cyclic_workflows_fail_the_node() -> None:
    engine = make_engine()
    job = anyio.run(engine.run, PARENT)
    assert nodes(job)["sub"]["statusReason"] == "unknown workflow `wflow_child`; registered: none"
    loop = Workflow.model_validate(
        {
            "id": "wflow_loop",
            "flow": [{"id": "again", "type": "workflow", "workflowId": "wflow_loop"}],
        }
    )
    engine = make_engine(workflows={"wflow_loop": loop})
    job = anyio.run(engine.run, loop)
    reason = nodes(job)["again"]["statusReason"]
    assert "cycle of workflows: wflow_loop -> wflow_loop" in reason


# ----- gates inside sub-workflows ------------------------------------------------------------

SUBFLOWS = FLOWS / "subflows"
REGISTRY = {path.stem: read_document(path) for path in SUBFLOWS.glob("*.json")}


class Calls:
    """A python model that counts its calls per node and answers an asset named after them."""

    def __init__(self) -> None:
        self.nodes: list[str] = []

    def __call__(self, call: NodeCall) -> list[str]:
        self.nodes.append(call.node_id)
        count = 3 if call.inputs.get("numSamples") == 3 else 1
        return [f"asset_{call.job_id[-6:]}_{call.node_id}_{i}" for i in range(count)]


def gated_engine(**options: Any) -> tuple[Engine, Calls]:
    calls = Calls()
    models = {"model_draft": calls, "model_final": calls}
    return make_engine(workflows=REGISTRY, python_models=models, **options), calls


def child_of(engine: Engine, job: JobRun, node_id: str) -> JobRun:
    return engine.get(nodes(job)[node_id]["jobId"])


def test_a_gate_inside_a_sub_workflow_parks_the_parent_and_a_decision_by_path_ends_both() -> None:
    engine, calls = gated_engine()
    job = anyio.run(engine.run, flow("sub-gate.json"))
    child = child_of(engine, job, "sub")
    assert job.status.value == "in-progress" and child.status.value == "in-progress"
    assert [g.id for g in job.waiting] == ["sub/review"]
    sub = nodes(job)["sub"]
    assert sub["status"] == "processing" and sub["jobId"] == child.job_id
    assert sub["statusReason"] == (
        f"waiting for a decision at `sub/review` (gate `review` of job `{child.job_id}`)"
    )
    (entry,) = sub["waitingGates"]
    assert entry["id"] == "sub/review" and entry["type"] == "user-approval"
    assert (entry["jobId"], entry["nodeId"], entry["status"]) == (
        child.job_id,
        "review",
        "processing",
    )
    assert nodes(child)["review"]["status"] == "processing"
    assert statuses(job)["use"] == "pending"

    job = anyio.run(engine.decide, job.job_id, "sub/review", "approve")
    assert job.status.value == "success" and child.status.value == "success"
    child_document = child.document()
    assets = child_document["metadata"]["assetIds"]
    assert assets == [f"asset_{child.job_id[-6:]}_final_0"]
    assert nodes(job)["sub"]["assets"][0]["assetId"] == assets[0]
    assert nodes(job)["use"]["output"] == assets[0]  # the child's outputs flow into the parent
    assert nodes(job)["everything"]["output"]["all"] == child_document["metadata"]["output"]
    assert child_document["metadata"]["output"]["label"] == {"output": "approved: a paper boat"}
    assert "waitingGates" not in nodes(job)["sub"] and "statusReason" not in nodes(job)["sub"]
    assert sorted(calls.nodes) == ["draft", "final"]  # the child's draft ran once


def test_a_decision_sent_to_the_child_job_carries_the_parent_on() -> None:
    engine, _ = gated_engine()
    job = anyio.run(engine.run, flow("sub-gate.json"))
    (gate,) = job.waiting
    assert isinstance(gate, ChildGate)
    child = anyio.run(engine.decide, gate.job_id, gate.node_id, "approve")
    assert child.status.value == "success" and job.status.value == "success"
    assert nodes(job)["use"]["output"] == child.document()["metadata"]["assetIds"][0]


def test_a_reject_inside_the_child_cancels_the_child_and_the_parent() -> None:
    engine, calls = gated_engine()
    job = anyio.run(engine.run, flow("sub-gate.json"))
    child = child_of(engine, job, "sub")
    job = anyio.run(engine.decide, job.job_id, "sub/review", "reject")
    assert job.status.value == "canceled" and child.status.value == "canceled"
    assert statuses(child) == {
        "draft": "success",
        "review": "rejected",
        "final": "skipped",
        "label": "skipped",
    }
    flow_nodes = nodes(job)
    assert flow_nodes["sub"]["status"] == "rejected"
    assert flow_nodes["sub"]["statusReason"] == "rejected by decision at `sub/review`"
    assert flow_nodes["use"]["statusReason"] == "gate `sub/review` rejected"
    assert calls.nodes == ["draft"]


def test_decisions_for_child_gates_that_do_not_wait_are_refused_and_change_nothing() -> None:
    engine, _ = gated_engine()
    job = anyio.run(engine.run, flow("sub-gate.json"))
    child = child_of(engine, job, "sub")
    in_child = f"in job `{child.job_id}` (the sub-workflow of `sub`)"
    refusals = {
        "sub/final": f"`sub/final`: {in_child}: node `final` is not waiting for a decision "
        "(it is pending); waiting gates: `review`",
        "sub/nope": f"`sub/nope`: {in_child}: no node `nope` in job `{child.job_id}`; "
        "waiting gates: `review`",
        "use/review": f"no node `use/review` in job `{job.job_id}`; waiting gates: `sub/review`",
        "sub": "node `sub` is a workflow node: it waits for the gates of its sub-workflow; "
        "name one by its path; waiting gates: `sub/review`",
    }
    for key, message in refusals.items():
        with pytest.raises(DecisionError) as refused:
            anyio.run(engine.decide, job.job_id, key, "approve")
        assert str(refused.value) == message
    with pytest.raises(DecisionError, match="takes `approve` or `reject`"):
        anyio.run(engine.decide, job.job_id, "sub/review", {"select": [0]})
    assert statuses(child)["review"] == "processing" and [g.id for g in job.waiting] == [
        "sub/review"
    ]
    anyio.run(engine.decide, job.job_id, "sub/review", "approve")
    with pytest.raises(DecisionError) as finished:
        anyio.run(engine.decide, child.job_id, "review", "approve")
    assert str(finished.value) == (
        f"job `{child.job_id}` is finished (success); decisions no longer apply"
    )
    with pytest.raises(DecisionError, match=f"job `{job.job_id}` is finished"):
        anyio.run(engine.decide, job.job_id, "sub/review", "approve")


def test_a_parked_job_replayed_from_its_document_lists_only_its_own_child_gates() -> None:
    engine, _ = gated_engine()
    parked = anyio.run(engine.run, flow("sub-gate.json"))
    again = anyio.run(engine.run, {"job": parked.document()})  # its flow keeps waitingGates
    child = child_of(engine, again, "sub")
    assert [g["jobId"] for g in nodes(again)["sub"]["waitingGates"]] == [child.job_id]
    anyio.run(engine.decide, again.job_id, "sub/review", "approve")
    assert again.status.value == "success" and "waitingGates" not in nodes(again)["sub"]


def test_a_child_canceled_on_its_own_fails_its_workflow_node() -> None:
    engine, _ = gated_engine()
    job = anyio.run(engine.run, flow("sub-gate.json"))
    child = child_of(engine, job, "sub")
    anyio.run(engine.cancel, child.job_id)
    assert child.status.value == "canceled" and job.status.value == "failure"
    assert job.waiting == []
    assert nodes(job)["sub"]["statusReason"] == (
        f"sub-workflow `wflow_review` (job `{child.job_id}`) ended canceled: job canceled"
    )


def test_each_clone_of_a_workflow_node_in_a_for_each_parks_and_is_decided_apart() -> None:
    engine, calls = gated_engine()
    job = anyio.run(engine.run, flow("sub-gate-in-loop.json"))
    assert [g.id for g in job.waiting] == ["sub#0/pick", "sub#1/pick"]
    first, second = (child_of(engine, job, f"sub#{i}") for i in range(2))
    assert first.job_id != second.job_id
    items = nodes(second)["pick"]["items"]
    job = anyio.run(engine.decide, job.job_id, "sub#1/pick", {"select": [2, 0]})
    assert second.status.value == "success" and first.status.value == "in-progress"
    assert statuses(job)["sub#1"] == "success" and [g.id for g in job.waiting] == ["sub#0/pick"]
    with pytest.raises(DecisionError) as done:
        anyio.run(engine.decide, job.job_id, "sub#1/pick", {"select": [0]})
    assert str(done.value) == (
        "`sub#1/pick`: workflow node `sub#1` does not wait at a gate of its sub-workflow "
        "(it is success); waiting gates: `sub#0/pick`"
    )
    anyio.run(engine.decide, first.job_id, "pick", {"select": [1]})  # by the child job
    assert job.status.value == "success"
    gathered = nodes(job)["gather"]["output"]
    assert [g["all"]["chosen"]["output"] for g in gathered] == [
        [nodes(first)["pick"]["items"][1]],
        [items[2], items[0]],
    ]
    assert sorted(calls.nodes) == ["draft", "draft"]


def test_a_template_path_decides_the_gate_in_every_clone_and_a_bad_one_changes_nothing() -> None:
    engine, _ = gated_engine()
    job = anyio.run(engine.run, flow("sub-gate-in-loop.json"))
    with pytest.raises(DecisionError, match="index `5` is out of range"):
        anyio.run(engine.decide, job.job_id, "sub/pick", {"select": [5]})
    assert [g.id for g in job.waiting] == ["sub#0/pick", "sub#1/pick"]
    job = anyio.run(engine.decide, job.job_id, "sub/pick", {"select": [0]})
    assert job.status.value == "success"


def middle_workflow(*after: dict[str, Any]) -> Workflow:
    """`wflow_middle`: a workflow node running `wflow_review`, then `after`."""
    inner = {
        "id": "inner",
        "type": "workflow",
        "workflowId": "wflow_review",
        "inputs": [{"name": "prompt", "type": "string", "value": "deep"}],
    }
    return Workflow.model_validate({"id": "wflow_middle", "flow": [inner, *after]})


def test_gates_two_levels_down_and_a_canceled_parent_cancels_its_waiting_child() -> None:
    middle = middle_workflow({"id": "check", "type": "user-approval", "dependsOn": ["inner"]})
    engine, _ = gated_engine()
    engine.workflows["wflow_middle"] = middle
    top = {"flow": [{"id": "sub", "type": "workflow", "workflowId": "wflow_middle"}]}
    job = anyio.run(engine.run, top)
    assert [g.id for g in job.waiting] == ["sub/inner/review"]
    middle_job = child_of(engine, job, "sub")
    inner_job = child_of(engine, middle_job, "inner")
    assert job.waiting[0].job_id == inner_job.job_id  # type: ignore[union-attr]
    job = anyio.run(engine.decide, job.job_id, "sub/inner/review", "approve")
    assert inner_job.status.value == "success"
    assert [g.id for g in job.waiting] == ["sub/check"]
    anyio.run(engine.cancel, job.job_id)
    assert job.status.value == "canceled" and middle_job.status.value == "canceled"
    assert (
        nodes(middle_job)["check"]["statusReason"] == f"its parent job `{job.job_id}` was canceled"
    )


# ----- through the CLI, against a store ---------------------------------------------------------


def parked_cli_run(db: str, name: str = "sub-gate.json") -> dict[str, Any]:
    result = flowgraph("run", str(FLOWS / name), "--workflows", str(SUBFLOWS), "--db", db, "--json")
    assert result.returncode == 3, result.stderr
    parent: dict[str, Any] = job_of(result)
    parent["stderr"] = result.stderr
    return parent


def test_cli_a_child_gate_parks_the_run_and_the_printed_commands_decide_it(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    parent = parked_cli_run(db)
    job_id, sub = parent["jobId"], parent["metadata"]["flow"][0]
    child_id = sub["jobId"]
    assert parent["status"] == "in-progress" and sub["status"] == "processing"
    assert f"gate `review` of job `{child_id}`" in sub["statusReason"]
    approve = f"flowgraph approve {job_id} sub/review --db {db}"
    assert f"  {approve}" in parent["stderr"].splitlines()
    assert (
        f"gate `sub/review` (user-approval) is waiting in job `{child_id}` (there `review`), "
        "the sub-workflow of `sub`" in parent["stderr"]
    )
    listing = json.loads(flowgraph("jobs", "--status", "waiting", "--db", db, "--json").stdout)
    waiting_at = {row["jobId"]: row["waitingAt"] for row in listing["jobs"]}
    assert waiting_at == {job_id: ["sub/review"], child_id: ["review"]}
    shown = flowgraph("jobs", job_id, "--db", db)
    assert f"gate `sub/review` (user-approval) is waiting in job `{child_id}`" in shown.stdout
    explained = flowgraph("explain", job_id, "--db", db)
    assert (
        f"sub processing ← waiting for a decision at `sub/review` (gate `review` of job `{child_id}`)"
        in explained.stdout
    )

    refused = flowgraph("approve", job_id, "sub/final", "--db", db)
    assert refused.returncode == 2
    assert (
        f"refused: `sub/final`: in job `{child_id}` (the sub-workflow of `sub`): node `final` "
        "is not waiting for a decision (it is pending); waiting gates: `review`"
    ) in refused.stderr

    approved = flowgraph(*shlex.split(approve)[1:], "--json")  # the command it printed
    assert approved.returncode == 0, approved.stderr
    done = job_of(approved)
    child = job_of(flowgraph("jobs", child_id, "--db", db, "--json"))
    assert done["status"] == "success" and child["status"] == "success"
    flow_nodes = {n["id"]: n for n in done["metadata"]["flow"]}
    assert flow_nodes["use"]["output"] == child["metadata"]["assetIds"][0]
    assert flow_nodes["sub"]["output"] == child["metadata"]["output"]
    assert child["metadata"]["output"]["label"] == {"output": "approved: a paper boat"}


def test_cli_a_decision_sent_to_the_child_job_carries_the_parent_on(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    parent = parked_cli_run(db)
    child_id = parent["metadata"]["flow"][0]["jobId"]
    approved = flowgraph("approve", child_id, "review", "--db", db, "--json")
    assert approved.returncode == 0, approved.stderr
    assert job_of(approved)["status"] == "success"
    assert f"its parent job {parent['jobId']}: success" in approved.stderr
    done = job_of(flowgraph("jobs", parent["jobId"], "--db", db, "--json"))
    assert done["status"] == "success"
    assert done["metadata"]["flow"][1]["output"] == job_of(approved)["metadata"]["assetIds"][0]


def test_cli_clones_decided_by_path_and_by_child_and_a_reject(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    parent = parked_cli_run(db, "sub-gate-in-loop.json")
    job_id = parent["jobId"]
    children = {n["id"]: n["jobId"] for n in parent["metadata"]["flow"] if "jobId" in n}
    assert f"flowgraph select {job_id} sub#0/pick 0 --db {db}" in parent["stderr"]
    picked = flowgraph("select", job_id, "sub#1/pick", "2", "0", "--db", db, "--json")
    assert picked.returncode == 3, picked.stderr  # sub#0 still waits
    assert f"flowgraph select {job_id} sub#0/pick 0 --db {db}" in picked.stderr
    done = flowgraph("select", children["sub#0"], "pick", "1", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    final = job_of(flowgraph("jobs", job_id, "--db", db, "--json"))
    assert final["status"] == "success"
    gathered = next(n for n in final["metadata"]["flow"] if n["id"] == "gather")["output"]
    assert [len(g["all"]["chosen"]["output"]) for g in gathered] == [1, 2]

    other = parked_cli_run(db, "sub-gate-in-loop.json")
    rejected = flowgraph("reject", other["jobId"], "sub#0/pick", "--db", db, "--json")
    assert rejected.returncode == 1
    assert job_of(rejected)["status"] == "canceled"
    statuses_after = {n["id"]: n["status"] for n in job_of(rejected)["metadata"]["flow"]}
    assert statuses_after["sub#0"] == "rejected" and statuses_after["sub#1"] == "skipped"
    for node_id in ("sub#0", "sub#1"):
        child_id = next(n["jobId"] for n in other["metadata"]["flow"] if n["id"] == node_id)
        child = job_of(flowgraph("jobs", child_id, "--db", db, "--json"))
        assert child["status"] == "canceled"


def test_cli_a_decisions_file_may_name_child_gates_by_path(tmp_path: Path) -> None:
    decisions = tmp_path / "decisions.json"
    decisions.write_text(
        json.dumps({"sub#0/pick": {"select": [1]}, "sub/pick": {"select": [0, 2]}})
    )
    result = flowgraph(
        "run", str(FLOWS / "sub-gate-in-loop.json"), "--workflows", str(SUBFLOWS),
        "--decisions", str(decisions), "--db", ":memory:", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    gathered = next(n for n in job_of(result)["metadata"]["flow"] if n["id"] == "gather")
    assert [len(g["all"]["chosen"]["output"]) for g in gathered["output"]] == [1, 2]
    approve_all = flowgraph(
        "run", str(FLOWS / "sub-gate.json"), "--workflows", str(SUBFLOWS), "--auto-approve",
        "--db", ":memory:", "--json",
    )  # fmt: skip
    assert approve_all.returncode == 0 and job_of(approve_all)["status"] == "success"
    decisions.write_text(json.dumps({"sub#x/pick": "approve", "gather/x": "approve"}))
    refused = flowgraph(
        "run", str(FLOWS / "sub-gate-in-loop.json"), "--decisions", str(decisions),
        "--db", ":memory:",
    )  # fmt: skip
    assert refused.returncode == 2
    assert "sub#x/pick: a clone id is the node's id and iteration indices: `sub#2/gate`" in (
        refused.stderr
    )


def test_a_cost_estimate_goes_through_the_gates_inside_sub_workflows() -> None:
    """A dry run approves and selects in children as in the parent: every model call counted."""
    from engine.costs import estimate

    async def priced(name: str) -> float:
        workflow = Engine().load(flow(name))
        with anyio.fail_after(30):
            cost = await estimate(workflow, {}, {"default": 1.0}, workflows=gated_engine()[0])
        return cost.total

    assert anyio.run(priced, "sub-gate.json") == 2.0  # the child's draft and final
    # in each clone's child, a draft and, past the selection, a polish: the gate is gone through
    assert anyio.run(priced, "sub-gate-in-loop.json") == 4.0


# ----- one advance of a job at a time; stops between a parent and its child ---------------------


def test_a_decision_to_the_child_while_its_parents_call_is_between_runs_joins_that_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The child's run has ended at its gate, and the parent's workflow node is still writing
    the child's checkpoint: a decision sent to the child job then must not start a second
    run of it beside the node's (two runs of one job drop each other's calls)."""
    calls = Calls()

    async def slow_final(call: NodeCall) -> list[str]:
        await anyio.sleep(0.2)  # the decision's run is still going when the node's ends
        return calls(call)

    engine = make_engine(
        workflows=REGISTRY,
        python_models={"model_draft": calls, "model_final": slow_final},
        store=MemoryStore(),
    )
    decided: list[JobRun] = []
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    run = Runner.run

    async def counted(runner: Runner) -> None:
        job_id = runner.scheduler.job_id
        running[job_id] = running.get(job_id, 0) + 1
        most[job_id] = max(most.get(job_id, 0), running[job_id])
        try:
            await run(runner)
        finally:
            running[job_id] -= 1

    monkeypatch.setattr(Runner, "run", counted)

    async def go() -> JobRun:
        job = engine.prepare(flow("sub-gate.json"))

        async def decide_in_the_window() -> None:
            while True:
                await anyio.lowlevel.checkpoint()
                child = next((j for j in engine.jobs.values() if j.parent_job_id), None)
                if child is None or child.runner.active or not child.waiting:
                    continue
                assert "sub" in job.scheduler.in_flight, "the window was missed"
                decided.append(await engine.decide(child.job_id, "review", "approve"))
                return

        async with anyio.create_task_group() as group:
            group.start_soon(decide_in_the_window)
            await engine.advance(job)
        return job

    job = anyio.run(go)
    (child,) = decided
    assert child.status.value == "success" and job.status.value == "success"
    assert nodes(job)["sub"]["jobId"] == child.job_id and job.waiting == []
    assert sorted(calls.nodes) == ["draft", "final"]  # each ran once
    assert most == {job.job_id: 1, child.job_id: 1}  # never two runs of one job at once


def test_a_parent_whose_record_of_its_child_was_lost_finds_the_child_again() -> None:
    """A stop after the child job was created and before the parent's log said so: the
    resumed parent starts its workflow node again, which finds the same child (its id comes
    from the parent's and the node's), so no second child is made and no node runs twice."""

    class LosesTheParentsLog(MemoryStore):
        def record(self, job_id: str, outcomes: Any, transitions: Any) -> None:
            if self.get_job(job_id).parent_job_id is not None:  # type: ignore[union-attr]
                super().record(job_id, outcomes, transitions)

    store = LosesTheParentsLog()
    first, calls = gated_engine(store=store)
    job = anyio.run(first.run, flow("sub-gate.json"))
    assert [g.id for g in job.waiting] == ["sub/review"]
    child_id = nodes(job)["sub"]["jobId"]
    assert child_id == child_job_id(job.job_id, "sub")
    assert store.outcomes(job.job_id) == []  # as if the process stopped before writing it

    again = make_engine(
        workflows=REGISTRY, store=store, python_models={"model_draft": calls, "model_final": calls}
    )
    resumed = anyio.run(again.resume, job.job_id)
    assert [g.id for g in resumed.waiting] == ["sub/review"]
    assert nodes(resumed)["sub"]["jobId"] == child_id
    children = [r for r in store.list_jobs(limit=100)[0] if r.parent_job_id == job.job_id]
    assert [r.job_id for r in children] == [child_id]
    anyio.run(again.decide, job.job_id, "sub/review", "approve")
    assert resumed.status.value == "success"
    assert sorted(calls.nodes) == ["draft", "final"]


def parent_ended_without_its_child(store: Store | None = None) -> tuple[Store, str, str]:
    """A parked parent whose cancel reached the store, and the process stopped before its
    waiting child was canceled: the store's parent id and child id."""
    store = store or MemoryStore()
    engine, _ = gated_engine(store=store)
    job = anyio.run(engine.run, flow("sub-gate.json"))
    child_id = nodes(job)["sub"]["jobId"]

    async def cancel_the_parent_alone() -> None:
        job.runner.cancel("job canceled")
        await job.runner.flush()
        await engine.checkpoint(job)

    anyio.run(cancel_the_parent_alone)
    assert store.job_summary(job.job_id).status == "canceled"  # type: ignore[union-attr]
    assert store.job_summary(child_id).status == "in-progress"  # type: ignore[union-attr]
    return store, job.job_id, child_id


@pytest.mark.parametrize("read_first", ["child", "parent"])
def test_a_child_left_waiting_by_a_stop_after_its_parent_ended_is_canceled_when_read(
    read_first: str,
) -> None:
    store, parent_id, child_id = parent_ended_without_its_child()
    engine, calls = gated_engine(store=store)
    engine.get(child_id if read_first == "child" else parent_id)
    summary = store.job_summary(child_id)
    assert summary is not None and summary.status == "canceled"
    engine = make_engine(workflows=REGISTRY, store=store)  # what the store says, read afresh
    child = engine.get(child_id)
    assert child.status.value == "canceled" and child.waiting == []
    assert nodes(child)["review"]["statusReason"] == (
        f"its parent job `{parent_id}` ended canceled"
    )
    with pytest.raises(DecisionError, match="is finished"):
        anyio.run(engine.decide, child_id, "review", "approve")
    assert calls.nodes == []


def test_a_server_starting_cancels_a_child_whose_parent_ended(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    _, parent_id, child_id = parent_ended_without_its_child(SQLiteStore(db))
    with running_server(db) as url:
        child = httpx.get(f"{url}/jobs/{child_id}").json()["job"]
    assert child["status"] == "canceled"
    (review,) = [n for n in child["metadata"]["flow"] if n["id"] == "review"]
    assert review["statusReason"] == f"its parent job `{parent_id}` ended canceled"


def test_a_resumed_sub_workflow_still_knows_the_workflows_above_it() -> None:
    """A -> B -> A: the cycle is refused where it closes, after a resume as in one run."""
    ping = Workflow.model_validate(
        {
            "id": "wflow_ping",
            "flow": [
                {"id": "go", "type": "user-approval"},
                {"id": "sub", "type": "workflow", "workflowId": "wflow_pong", "dependsOn": ["go"]},
            ],
        }
    )
    pong = Workflow.model_validate(
        {
            "id": "wflow_pong",
            "flow": [
                {"id": "go", "type": "user-approval"},
                {"id": "sub", "type": "workflow", "workflowId": "wflow_ping", "dependsOn": ["go"]},
            ],
        }
    )
    store = MemoryStore()
    registry = {"wflow_ping": ping, "wflow_pong": pong}
    engine = make_engine(workflows=registry, store=store)
    job = anyio.run(engine.run, ping)
    job = anyio.run(engine.decide, job.job_id, "go", "approve")
    assert [g.id for g in job.waiting] == ["sub/go"]
    again = make_engine(workflows=registry, store=store)  # a new process
    job = anyio.run(again.decide, job.job_id, "sub/go", "approve")
    child = again.get(nodes(job)["sub"]["jobId"])
    assert nodes(child)["sub"]["statusReason"] == (
        "cycle of workflows: wflow_ping -> wflow_pong -> wflow_ping"
    )
    assert job.status.value == "failure"


def test_a_decision_for_a_child_gate_is_in_the_store_before_anything_runs() -> None:
    store = MemoryStore()
    engine, calls = gated_engine(store=store)
    job = anyio.run(engine.run, flow("sub-gate.json"))
    child_id = nodes(job)["sub"]["jobId"]
    engine.decide_now(job, "sub/review", "approve")
    anyio.run(engine.record_decisions, job)
    assert ("review", "decision") in [(o.node_id, o.kind) for o in store.outcomes(child_id)]
    again, later = gated_engine(store=store)  # the process stopped here: a new one goes on
    job = anyio.run(again.resume, job.job_id)
    assert job.status.value == "success"
    assert (calls.nodes, later.nodes) == (["draft"], ["final"])


def test_a_decision_by_path_names_the_gate_type_it_is_for() -> None:
    engine, _ = gated_engine()
    job = anyio.run(engine.run, flow("sub-gate.json"))
    with pytest.raises(DecisionError) as wrong:
        engine.decide_now(job, "sub/review", {"select": [0]}, gate_type="user-selection")
    assert str(wrong.value) == (
        "node `sub/review` is a `user-approval` node, not a `user-selection` node"
    )
    assert [g.id for g in job.waiting] == ["sub/review"]
    engine.decide_now(job, "sub/review", "approve", gate_type="user-approval")


def test_a_tree_of_three_left_by_a_stop_is_mended_to_the_bottom() -> None:
    middle = middle_workflow()
    registry = {**REGISTRY, "wflow_middle": middle}
    store = MemoryStore()
    engine, _ = gated_engine(store=store)
    engine.workflows["wflow_middle"] = middle
    top = anyio.run(
        engine.run, {"flow": [{"id": "sub", "type": "workflow", "workflowId": "wflow_middle"}]}
    )
    middle_id = nodes(top)["sub"]["jobId"]
    inner_id = nodes(engine.get(middle_id))["inner"]["jobId"]

    async def cancel_the_top_alone() -> None:
        top.runner.cancel("job canceled")
        await top.runner.flush()
        await engine.checkpoint(top)

    anyio.run(cancel_the_top_alone)
    again = make_engine(workflows=registry, store=store)
    again.get(top.job_id)
    statuses_now = {j: store.job_summary(j).status for j in (top.job_id, middle_id, inner_id)}  # type: ignore[union-attr]
    assert statuses_now == {top.job_id: "canceled", middle_id: "canceled", inner_id: "canceled"}
    with pytest.raises(DecisionError, match="is finished"):
        anyio.run(again.decide, inner_id, "review", "approve")


def test_canceling_a_parent_whose_node_waits_for_a_worker_cancels_the_child_at_once() -> None:
    """`sub` was started again by a decision and waits for the one worker (busy with `slow`):
    a resume sent to the child then joins the parent's run instead of running the child on
    its own, so canceling the parent cancels the child before its `final` starts."""
    started: list[str] = []

    async def model(call: NodeCall) -> list[str]:
        started.append(call.node_id)
        await anyio.sleep(2 if call.node_id in ("slow", "final") else 0)
        return [f"asset_{call.node_id}"]

    engine = make_engine(
        workflows=REGISTRY,
        python_models={"model_draft": model, "model_final": model, "model_slow": model},
        policy=CallPolicy(concurrency=1),
    )
    parent = {
        "flow": [
            {
                "id": "sub",
                "type": "workflow",
                "workflowId": "wflow_review",
                "inputs": [{"name": "prompt", "type": "string", "value": "a boat"}],
            },
            {"id": "slow", "type": "custom-model", "modelId": "model_slow"},
        ]
    }

    async def go() -> tuple[JobRun, JobRun]:
        job = engine.prepare(parent)
        async with anyio.create_task_group() as group:
            group.start_soon(engine.advance, job)
            while "slow" not in job.scheduler.running:
                await anyio.sleep(0.01)
            child = engine.get(nodes(job)["sub"]["jobId"])
            group.start_soon(engine.decide, child.job_id, "review", "approve")
            while "sub" not in job.scheduler.in_flight:
                await anyio.sleep(0.01)
            group.start_soon(engine.resume, child.job_id)
            await anyio.sleep(0.1)
            await engine.cancel(job.job_id)
        return job, child

    job, child = anyio.run(go)
    assert job.status.value == "canceled" and child.status.value == "canceled"
    assert "final" not in started


def test_a_job_id_in_use_is_refused() -> None:
    engine, _ = gated_engine()
    job = anyio.run(engine.run, flow("sub-gate.json"))
    with pytest.raises(FlowgraphError, match=f"job `{job.job_id}` exists already"):
        engine.prepare(flow("sub-gate.json"), job_id=job.job_id)
