"""The scheduler as a pure state machine: driven by hand, no event loop anywhere."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import fixed_clock, flow, make_engine

from engine import DecisionError, Scheduler
from engine.compile.run_inputs import validate_run_inputs
from engine.protocols import Asset, ChildRejected, ChildWaits, Completed, Failed, NodeCall, RunChild
from engine.run.children import ChildGate
from engine.run.instances import Instance


def scheduler_for(name: str, inputs: dict[str, Any] | None = None, **options: Any) -> Scheduler:
    plan = make_engine().compile(flow(name))
    values = validate_run_inputs(plan.workflow, inputs or {})
    return Scheduler(plan, job_id="job_s", inputs=values, clock=fixed_clock, **options)


def call(instance: Instance) -> NodeCall:
    t = instance.template
    return NodeCall(
        job_id="job_s",
        node_id=instance.id,
        template_id=t.id,
        node_type=t.type,
        model_id=t.node.model_id,
        inputs=instance.values or {},
        node=t.node,
    )


def step(scheduler: Scheduler) -> list[str]:
    """Start everything ready; control nodes finish, model calls stay in flight."""
    started = []
    for instance in scheduler.ready():
        started.append(instance.id)
        scheduler.apply(
            instance, instance.template.kind.start(call(instance), instance.template.expressions)
        )
    return started


def finish_calls(scheduler: Scheduler, *, fail: str | None = None) -> None:
    for instance in list(scheduler.in_flight.values()):
        scheduler.call_started(instance)
        if instance.id == fail:
            scheduler.finish_call(instance, Failed("boom"))
        else:
            count = (instance.values or {}).get("numSamples", 1)
            assets = [
                Asset(f"asset_{instance.id}_{n}", f"file:///{instance.id}_{n}.png")
                for n in range(count)
            ]
            scheduler.finish_call(
                instance, Completed({"output": [a.asset_id for a in assets]}, assets=assets)
            )


def drive(scheduler: Scheduler) -> list[str]:
    order = []
    scheduler.start()
    while scheduler.is_active():
        order += step(scheduler)
        finish_calls(scheduler)
    return order


def test_nodes_start_only_after_their_predecessors_are_terminal() -> None:
    scheduler = scheduler_for("for-each-basic.json")
    scheduler.start()
    assert step(scheduler) == ["loop"]
    assert step(scheduler) == ["shout#0", "shout#1", "shout#2"]
    assert step(scheduler) == ["gen#0", "gen#1", "gen#2"]
    assert step(scheduler) == []  # model calls in flight: nothing else is ready
    assert scheduler.instances["all_images"].status.value == "pending"
    finish_calls(scheduler)
    assert sorted(step(scheduler)) == ["all_images", "all_shouts", "loop_output"]
    finish_calls(scheduler)
    assert scheduler.status.value == "success"
    assert not scheduler.is_active()


def test_transitions_are_recorded_in_order_with_reasons() -> None:
    scheduler = scheduler_for("skip-propagation.json")
    drive(scheduler)
    right = [t for t in scheduler.transitions if t.node_id == "right"]
    assert [(t.from_status, t.to_status) for t in right] == [("pending", "skipped")]
    assert right[0].reason == "branch `right` of `check` not taken; it chose `left`"
    job_level = [t.to_status for t in scheduler.transitions if t.node_id is None]
    assert job_level == ["in-progress", "success"]
    check = next(
        t for t in scheduler.transitions if t.node_id == "check" and t.to_status == "success"
    )
    assert check.details == {
        "form": "literal",
        "condition": "left",
        "case": 1,
        "caseCondition": "left",
        "chosen": "left",
    }


def test_misuse_is_refused_with_a_precise_message() -> None:
    scheduler = scheduler_for("gates.json")
    scheduler.start()
    with pytest.raises(RuntimeError, match="already started"):
        scheduler.start()
    review = scheduler.instances["review"]
    with pytest.raises(RuntimeError, match="node `review` is pending, not processing"):
        scheduler.apply(review, Completed({}))
    with pytest.raises(RuntimeError, match="node `review` has no call in flight"):
        scheduler.finish_call(review, Completed({}))


def test_fail_fast_lets_running_calls_finish_then_skips_the_rest() -> None:
    scheduler = scheduler_for("for-each-basic.json")
    scheduler.start()
    step(scheduler)
    step(scheduler)
    step(scheduler)
    calls = list(scheduler.in_flight.values())
    scheduler.finish_call(calls[0], Failed("boom"))
    assert scheduler.status.value == "in-progress"  # two calls still running
    assert scheduler.ready() == []
    for instance in calls[1:]:
        scheduler.finish_call(instance, Completed({"output": ["a"]}))
    assert scheduler.status.value == "failure"
    assert scheduler.error == "node `gen#0`: boom"
    assert scheduler.instances["gen#1"].status.value == "success"
    assert scheduler.instances["loop"].reason == "iteration 0 failed at `gen#0`"
    assert scheduler.instances["all_shouts"].reason == "input `s`: loop `loop` failed"


def test_cancel_fails_calls_in_flight_and_skips_the_rest() -> None:
    scheduler = scheduler_for("for-each-basic.json")
    scheduler.start()
    step(scheduler)
    step(scheduler)
    step(scheduler)
    scheduler.call_started(scheduler.instances["gen#0"])
    scheduler.call_started(scheduler.instances["gen#1"])
    scheduler.cancel()
    assert scheduler.status.value == "canceled"
    assert scheduler.instances["gen#0"].status.value == "failure"
    assert scheduler.instances["gen#0"].reason == "canceled"
    assert scheduler.instances["gen#2"].status.value == "skipped"  # queued, never started
    assert scheduler.instances["gen#2"].reason == "job canceled"
    assert scheduler.instances["shout#0"].status.value == "success"
    assert scheduler.instances["all_images"].reason == "job canceled"
    late = scheduler.instances["gen#1"]
    scheduler.finish_call(late, Completed({"output": []}))  # a late result changes nothing
    assert late.status.value == "failure"
    with pytest.raises(DecisionError, match="is finished"):
        scheduler.cancel()


def test_decisions_by_template_id_and_clone_prefix() -> None:
    scheduler = scheduler_for("gates-in-loop.json")
    drive(scheduler)
    assert sorted(scheduler.waiting) == ["gate#0", "gate#1", "gate#2"]
    assert scheduler.decide("gate#1", "approve") == ["gate#1"]
    assert sorted(scheduler.decide("gate", "approve")) == ["gate#0", "gate#2"]
    drive_rest = [i.id for i in scheduler.ready()]
    assert sorted(drive_rest) == ["keep#0", "keep#1", "keep#2"]


def test_refused_decisions_change_nothing() -> None:
    scheduler = scheduler_for("gates.json")
    drive(scheduler)
    with pytest.raises(
        DecisionError,
        match="node `choose` is not waiting for a decision "
        r"\(it is pending\); waiting gates: `review`",
    ):
        scheduler.decide("choose", {"select": [0]})
    with pytest.raises(DecisionError, match="no node `nobody` in job `job_s`"):
        scheduler.decide("nobody", "approve")
    with pytest.raises(DecisionError, match="takes `approve` or `reject`"):
        scheduler.decide("review", {"select": [0]})
    assert list(scheduler.waiting) == ["review"]
    scheduler.decide("review", "approve")
    with pytest.raises(DecisionError, match="node `review` is not waiting .*it is success"):
        scheduler.decide("review", "approve")
    step(scheduler)
    for bad, message in [
        ({"select": [5]}, "index `5` is out of range; there are 3 items"),
        ({"select": [0, 0]}, "indices must not repeat"),
        ({"select": [0, 1, 2]}, "choose between 1 and 2 items, got 3"),
        ({"select": []}, "choose between 1 and 2 items, got 0"),
        ({"select": ["1"]}, "index `1` is not an integer"),
        ({"select": [True]}, "index `True` is not an integer"),
    ]:
        with pytest.raises(DecisionError, match=message):
            scheduler.decide("choose", bad)
        assert "choose" in scheduler.waiting
    scheduler.decide("choose", {"select": [1]})
    step(scheduler)
    finish_calls(scheduler)
    assert scheduler.status.value == "success"
    with pytest.raises(DecisionError, match="job `job_s` is finished \\(success\\)"):
        scheduler.decide("choose", {"select": [0]})


def test_reject_cancels_the_job_and_names_the_gate() -> None:
    scheduler = scheduler_for("gates.json")
    drive(scheduler)
    scheduler.decide("review", "reject")
    assert scheduler.status.value == "canceled"
    assert scheduler.instances["review"].status.value == "rejected"
    assert scheduler.instances["choose"].reason == "gate `review` rejected"
    assert scheduler.instances["draft"].status.value == "success"


def child_gate(holder: str, gate: Instance, job_id: str = "job_child") -> ChildGate:
    path = f"{holder}/{gate.id}"
    return ChildGate(holder, path, job_id, gate.id, gate.template, None, (path,), {"id": path})


def test_a_workflow_node_parks_while_its_child_waits_and_starts_again_when_woken() -> None:
    scheduler = scheduler_for("sub-gate.json")
    scheduler.start()
    (sub,) = scheduler.ready()
    scheduler.apply(sub, RunChild("wflow_review"))
    scheduler.call_started(sub)
    review = Scheduler(
        make_engine().compile(flow("gates.json")), job_id="job_child", inputs={}
    ).instances["review"]
    waits = ChildWaits("job_child", (child_gate("sub", review),))
    assert scheduler.finish_call(sub, waits)
    assert not scheduler.is_active() and not scheduler.finished  # parked, not stalled
    assert sub.status.value == "processing" and sub.id in scheduler.parked
    assert sub.reason == "waiting for a decision at `sub/review` (gate `review` of job `job_child`)"
    (gate,) = scheduler.waiting_at()
    assert gate.id == "sub/review" and scheduler.still_waits(gate)
    assert scheduler.transitions[-1].reason == sub.reason
    with pytest.raises(DecisionError, match="node `sub` is a workflow node"):
        scheduler.decide("sub", "approve")
    scheduler.unpark(sub)
    assert sub.reason is None and not scheduler.still_waits(gate) and scheduler.is_active()
    assert scheduler.ready() == [sub]  # handed out again: its call follows the child
    scheduler.apply(sub, RunChild("wflow_review"))
    scheduler.finish_call(sub, Completed({"output": []}))
    step(scheduler)
    assert scheduler.status.value == "success"
    with pytest.raises(RuntimeError, match="node `sub` is not waiting on a child job"):
        scheduler.unpark(sub)


def test_a_child_rejected_at_a_gate_rejects_its_node_and_cancels_the_job() -> None:
    scheduler = scheduler_for("sub-gate.json")
    scheduler.start()
    (sub,) = scheduler.ready()
    scheduler.apply(sub, RunChild("wflow_review"))
    scheduler.finish_call(sub, ChildRejected("sub/review"))
    assert scheduler.status.value == "canceled" and scheduler.rejected_at == "sub/review"
    assert (sub.status.value, sub.reason) == ("rejected", "rejected by decision at `sub/review`")
    assert {i.id: i.reason for i in scheduler.instances.values() if i is not sub} == {
        "use": "gate `sub/review` rejected",
        "everything": "gate `sub/review` rejected",
    }
    assert scheduler.waiting_at() == []
