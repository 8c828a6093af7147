"""Executors: dry-run determinism and files, python functions, routing, retries, timeouts,
the concurrency limit, and cancellation reaching running calls. Run on both anyio backends."""

from __future__ import annotations

import itertools
import re
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import flow, make_engine, nodes

from engine import (
    CallPolicy,
    DryRunExecutor,
    Engine,
    ExecutorResult,
    ExecutorRouter,
    NodeCall,
    Route,
    TransientExecutorError,
)

pytestmark = pytest.mark.anyio

ONE_MODEL = {
    "flow": [
        {
            "id": "gen",
            "type": "custom-model",
            "modelId": "model_a",
            "inputs": [{"name": "prompt", "type": "string", "value": "a fox"}],
        },
    ]
}


def model_loop(count: int) -> dict[str, Any]:
    """A for-each of `count` iterations, each one `model` node (`gen`)."""
    return {
        "flow": [
            {"id": "loop", "type": "for-each", "count": count, "loopBodyNodeIds": ["gen"]},
            {"id": "gen", "type": "model", "modelId": "m"},
        ]
    }


def transform_loop(count: int, node_id: str, expression: str) -> dict[str, Any]:
    """A for-each of `count` iterations, each one transform `node_id` of the loop's index."""
    index = {"name": "i", "type": "number", "ref": {"node": "loop", "name": "index"}}
    return {
        "flow": [
            {"id": "loop", "type": "for-each", "count": count, "loopBodyNodeIds": [node_id]},
            {
                "id": node_id,
                "type": "transform",
                "inputs": [index],
                "logic": {"transform": expression},
            },
        ]
    }


def asset_ids(job: Any) -> dict[str, list[str]]:
    return {i: [a["assetId"] for a in n.get("assets", [])] for i, n in nodes(job).items()}


async def test_dry_run_assets_are_stable_distinct_and_real_files(tmp_path: Path) -> None:
    def engine(seed: int) -> Engine:
        return make_engine(dry_run=DryRunExecutor(seed=seed, assets_dir=tmp_path))

    first = await engine(0).run(flow("for-each-basic.json"))
    second = await engine(0).run(flow("for-each-basic.json"))
    other_seed = await engine(1).run(flow("for-each-basic.json"))
    assert asset_ids(first) == asset_ids(second)
    assert asset_ids(first)["gen#0"] != asset_ids(other_seed)["gen#0"]
    ids = [a for clone in ("gen#0", "gen#1", "gen#2") for a in asset_ids(first)[clone]]
    assert len(set(ids)) == 3
    asset = nodes(first)["gen#0"]["assets"][0]
    assert asset["kind"] == "image" and asset["url"].startswith("file://")
    data = Path(asset["url"].removeprefix("file://")).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", data[16:24]) == (8, 8)


async def test_dry_run_asset_ids_depend_on_the_inputs() -> None:
    executor = DryRunExecutor()

    def call(prompt: str, attempt: int = 1) -> NodeCall:
        return NodeCall(
            job_id="j",
            node_id="gen",
            template_id="gen",
            node_type="model",
            model_id="m",
            inputs={"prompt": prompt},
            node={},
            attempt=attempt,
        )

    assert executor.asset_digest(call("a")) == executor.asset_digest(call("a"))
    assert executor.asset_digest(call("a")) != executor.asset_digest(call("b"))
    assert executor.asset_digest(call("a")) != executor.asset_digest(call("a", attempt=2))


async def test_fail_covers_every_clone_of_a_template() -> None:
    job = await make_engine(dry_run=DryRunExecutor(fail_nodes={"gen"}), keep_going=True).run(
        flow("for-each-basic.json")
    )
    flow_nodes = nodes(job)
    assert [flow_nodes[f"gen#{i}"]["status"] for i in range(3)] == ["failure"] * 3
    assert flow_nodes["gen#1"]["statusReason"] == (
        "executor `dry-run`: dry-run failure injected for `gen` (--fail)"
    )


async def test_python_functions_sync_and_async_route_by_model_id() -> None:
    seen: list[str] = []

    def caption(call: NodeCall) -> dict[str, Any]:
        seen.append(call.node_id)
        return {
            "assets": [{"assetId": "asset_cap", "url": "file:///cap.txt", "kind": "document"}],
            "text": f"caption of {call.inputs['prompt']}",
        }

    async def slow(call: NodeCall) -> list[str]:
        await anyio.sleep(0)
        return ["asset_slow"]

    document = {
        "flow": [
            {
                "id": "a",
                "type": "custom-model",
                "modelId": "model_caption",
                "inputs": [{"name": "prompt", "type": "string", "value": "hi"}],
            },
            {"id": "b", "type": "model", "modelId": "model_slow"},
            {"id": "c", "type": "custom-model", "modelId": "model_other"},
        ]
    }
    job = await make_engine(python_models={"model_caption": caption, "model_slow": slow}).run(
        document
    )
    flow_nodes = nodes(job)
    assert flow_nodes["a"]["assets"] == [
        {"assetId": "asset_cap", "url": "file:///cap.txt", "kind": "document"}
    ]
    assert flow_nodes["a"]["output"] == {"text": "caption of hi"}
    assert flow_nodes["b"]["assets"][0]["assetId"] == "asset_slow"
    assert flow_nodes["c"]["assets"][0]["assetId"].startswith("asset_")  # default: dry-run
    assert seen == ["a"]


async def test_an_executor_is_given_every_field_of_its_call() -> None:
    """A call carries the job, the clone and its template, the node's type, model and
    compiled node, its inputs by name, its iteration, attempt, retry and the engine's seed."""
    calls: list[NodeCall] = []

    def capture(call: NodeCall) -> list[str]:
        calls.append(call)
        return [f"asset_{call.node_id}"]

    document = {
        "flow": [
            {"id": "loop", "type": "for-each", "count": 3, "loopBodyNodeIds": ["gen"]},
            {
                "id": "gen",
                "type": "custom-model",
                "modelId": "model_capture",
                "inputs": [
                    {"name": "index", "type": "number", "ref": {"node": "loop", "name": "index"}},
                    {"name": "prompt", "type": "string", "value": "a fox"},
                ],
            },
        ]
    }
    job = await make_engine(python_models={"model_capture": capture}, seed=7).run(document)
    assert job.document()["status"] == "success"
    call = next(c for c in calls if c.node_id == "gen#2")
    assert (call.job_id, call.template_id, call.node_type, call.model_id) == (
        job.job_id,
        "gen",
        "custom-model",
        "model_capture",
    )
    assert call.inputs == {"index": 2, "prompt": "a fox"} and call.node.id == "gen"
    assert (call.iteration_index, call.attempt, call.retry, call.seed) == (2, 1, 0, 7)
    assert call.remote_job_id is None and call.idempotency_key == f"{job.job_id}:gen#2:1"


async def test_a_node_no_executor_serves_fails_with_a_clear_message() -> None:
    engine = make_engine(executors=ExecutorRouter(routes=[]))
    job = await engine.run(ONE_MODEL)
    assert nodes(job)["gen"]["statusReason"] == (
        "no executor serves `custom-model` nodes with modelId `model_a`; register one or add a route"
    )


class Flaky:
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[tuple[int, int, str]] = []

    async def run(self, call: NodeCall) -> ExecutorResult:
        self.attempts.append((call.attempt, call.retry, call.idempotency_key))
        if len(self.attempts) <= self.failures:
            raise TransientExecutorError("rate limited")
        return ExecutorResult(outputs={"retry": call.retry})


async def test_transient_errors_are_retried_under_one_idempotency_key() -> None:
    flaky = Flaky(failures=2)
    engine = make_engine(
        executors=ExecutorRouter(default=flaky), policy=CallPolicy(retries=2, backoff=0)
    )
    job = await engine.run(ONE_MODEL)
    key = f"{job.job_id}:gen:1"
    assert flaky.attempts == [(1, 0, key), (1, 1, key), (1, 2, key)]
    assert nodes(job)["gen"]["output"] == {"retry": 2}
    flaky = Flaky(failures=5)
    engine = make_engine(
        executors=ExecutorRouter(default=flaky), policy=CallPolicy(retries=1, backoff=0)
    )
    job = await engine.run(ONE_MODEL)
    assert (
        nodes(job)["gen"]["statusReason"]
        == "executor `flaky`: rate limited (gave up after 2 attempts)"
    )


class CountedBatches(DryRunExecutor):
    """The dry run, noting how many calls each batch it answers holds."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def run_batch(self, calls: Any) -> list[ExecutorResult | Exception] | None:
        self.sizes.append(len(calls))
        return super().run_batch(calls)


async def test_a_batch_executor_answers_the_calls_that_start_together_at_once() -> None:
    """The dry run with no latency is handed many calls in one step, and its nodes end as
    they would through awaited calls: the same assets, each call recorded once with its
    attempt and job id."""
    from engine.stores.memory import MemoryStore

    batches = CountedBatches()
    store = MemoryStore()
    answered = await make_engine(dry_run=batches, store=store).run(model_loop(300))
    awaited = await make_engine(dry_run=DryRunExecutor(latency=0.0001)).run(model_loop(300))
    assert answered.document()["status"] == awaited.document()["status"] == "success"
    assert sum(batches.sizes) == 300 and max(batches.sizes) > 1
    assert asset_ids(answered) == asset_ids(awaited)
    records = [o for o in store.outcomes(answered.job_id) if o.node_id.startswith("gen#")]
    assert len(records) == 300 and {o.kind for o in records} == {"answered"}
    flow = nodes(answered)
    assert all(  # [attempt, jobId, assets, outputs (null: the assets' ids), details]
        o.payload[:2] == [1, flow[o.node_id]["jobId"]]
        and [a[0] for a in o.payload[2]] == [a["assetId"] for a in flow[o.node_id]["assets"]]
        and o.payload[3] is None
        for o in records
    )


async def test_every_model_node_of_a_large_loop_gets_its_own_job_id() -> None:
    """Node job ids are drawn from the OS's random source a few thousand at a time: a loop
    larger than one draw still gives each node a distinct id of Scenario's form."""
    job = await make_engine().run(model_loop(5000))
    ids = [node["jobId"] for node_id, node in nodes(job).items() if node_id.startswith("gen#")]
    assert len(ids) == len(set(ids)) == 5000
    assert all(re.fullmatch(r"job_[A-Za-z0-9]{24}", job_id) for job_id in ids)


def test_node_job_ids_drawn_by_threads_at_once_are_distinct() -> None:
    """The ids are taken from their pool without a lock (only a draw takes one): threads that
    take them at once, past several draws, never get the same id twice nor an empty one."""
    import threading

    from engine.run.runner import new_node_job_id

    drawn: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def draw(into: list[str]) -> None:
        start.wait()
        into.extend(new_node_job_id() for _ in range(10_000))

    threads = [threading.Thread(target=draw, args=(ids,)) for ids in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [job_id for ids in drawn for job_id in ids]
    assert len(every) == len(set(every)) == 40_000
    assert all(re.fullmatch(r"job_[A-Za-z0-9]{24}", job_id) for job_id in every)


class TransientInBatches(DryRunExecutor):
    """Answers every call at once, except that the first answer to an odd iteration is a
    transient error: those calls are retried through `run`."""

    name = "transient-batches"

    def __init__(self) -> None:
        super().__init__()
        self.awaited: list[str] = []

    def run_batch(self, calls: Any) -> list[ExecutorResult | Exception] | None:
        answers = super().run_batch(calls) or []
        return [
            TransientExecutorError("busy") if call.iteration_index % 2 else answer
            for call, answer in zip(calls, answers, strict=True)
        ]

    async def run(self, call: NodeCall) -> ExecutorResult:
        self.awaited.append(call.node_id)
        return await super().run(call)


async def test_a_transient_error_in_a_batch_is_retried_through_run() -> None:
    executor = TransientInBatches()
    job = await make_engine(dry_run=executor).run(model_loop(6))
    assert job.document()["status"] == "success"
    assert sorted(executor.awaited) == ["gen#1", "gen#3", "gen#5"]
    assert all(nodes(job)[f"gen#{i}"]["status"] == "success" for i in range(6))


class FailsInBatches(DryRunExecutor):
    """Answers every call at once; iteration 2's call fails."""

    name = "fails-in-batches"

    def run_batch(self, calls: Any) -> list[ExecutorResult | Exception] | None:
        answers = super().run_batch(calls) or []
        return [
            RuntimeError("no") if call.iteration_index == 2 else answer
            for call, answer in zip(calls, answers, strict=True)
        ]


async def test_a_failure_in_a_batch_ends_it_after_the_answers_before_it() -> None:
    """The calls completed before the failure succeed, in order, before it fails; the job
    fails fast, so the calls after it never start; the log replays to the same job."""
    from engine.stores import MemoryStore

    store, events = MemoryStore(), []
    job = await make_engine(dry_run=FailsInBatches(), store=store, sinks=[events.append]).run(
        model_loop(5)
    )
    statuses = [nodes(job)[f"gen#{i}"]["status"] for i in range(5)]
    assert statuses == ["success", "success", "failure", "skipped", "skipped"]
    ended = [
        (event.node_id, event.to_status)
        for event in events
        if event.template_id == "gen" and event.to_status in ("success", "failure")
    ]
    assert ended == [("gen#0", "success"), ("gen#1", "success"), ("gen#2", "failure")]
    rebuilt = make_engine(store=store).get(job.job_id).document()
    assert rebuilt["metadata"] == job.document()["metadata"]


async def test_event_times_never_go_back_through_a_batch() -> None:
    """A batch's successes and what they set off (an inner loop ending) are stamped in the
    order they happen."""
    ticks = itertools.count()

    def clock() -> str:
        return f"2026-01-01T00:00:{next(ticks):06.3f}Z"

    workflow = {
        "flow": [
            {"id": "outer", "type": "for-each", "count": 2, "loopBodyNodeIds": ["inner"]},
            {"id": "inner", "type": "for-each", "count": 1, "loopBodyNodeIds": ["gen"]},
            {"id": "gen", "type": "model", "modelId": "m"},
        ]
    }
    events: list[Any] = []
    await make_engine(clock=clock, sinks=[events.append]).run(workflow)
    times = [event.at for event in events]
    assert len(events) > 10
    assert times == sorted(times)


async def test_nodes_applied_before_an_engine_error_in_a_batch_are_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should applying one of a batch's answers fail (a bug of the engine's), the answers
    applied before it are in the store's log all the same."""
    from engine.run.scheduler import Scheduler
    from engine.stores import MemoryStore

    succeed = Scheduler._succeed

    def broken(self: Scheduler, instance: Any, outcome: Any) -> None:
        if instance.id == "gen#2":
            raise RuntimeError("a bug")
        succeed(self, instance, outcome)

    monkeypatch.setattr(Scheduler, "_succeed", broken)
    store = MemoryStore()
    job = await make_engine(store=store).run(model_loop(4))
    answered = [r.node_id for r in store.outcomes(job.job_id) if r.kind == "answered"]
    assert answered == ["gen#0", "gen#1"]


class BrokenBatches(DryRunExecutor):
    """A batch executor with a bug: it raises, or answers fewer results than calls."""

    name = "broken"

    def __init__(self, short: bool) -> None:
        super().__init__()
        self.short = short

    def run_batch(self, calls: Any) -> list[ExecutorResult | Exception] | None:
        if self.short:
            return []
        raise ValueError("lost its connection pool")


async def test_a_batch_executor_that_breaks_fails_its_nodes_not_the_engine() -> None:
    job = await make_engine(dry_run=BrokenBatches(short=False)).run(model_loop(3))
    assert job.document()["status"] == "failure"
    assert nodes(job)["gen#0"]["statusReason"] == "executor `broken`: lost its connection pool"
    job = await make_engine(dry_run=BrokenBatches(short=True)).run(model_loop(3))
    assert nodes(job)["gen#0"]["statusReason"] == (
        "executor `broken`: run_batch answered 0 results for 3 calls"
    )


class Sleeper:
    name = "sleeper"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running = 0
        self.peak = 0
        self.cancelled = 0

    async def run(self, call: NodeCall) -> ExecutorResult:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await anyio.sleep(self.seconds)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        return ExecutorResult()


class PlainResult(ExecutorResult):
    """An ExecutorResult of a subclass: its answer goes the general way, not the shortcut."""


@pytest.mark.parametrize("node_type", ["custom-model", "generate-prompt"])
def test_an_answer_of_assets_alone_completes_as_any_answer_does(node_type: str) -> None:
    """An ExecutorResult with assets and no outputs (most answers of a large run) takes a
    shortcut; its node completes exactly as through the general path."""
    from engine.executors.calls import executor_outcome
    from engine.protocols import Asset, Completed

    call = NodeCall(
        job_id="job_x",
        node_id="gen",
        template_id="gen",
        node_type=node_type,
        model_id="m",
        inputs={},
        node=None,
    )
    assets = [Asset("asset_a", "asset://a"), Asset("asset_b", "asset://b", "video")]
    executor = DryRunExecutor()
    short = executor_outcome(executor, call, ExecutorResult(assets=assets))
    general = executor_outcome(executor, call, PlainResult(assets=assets))
    assert isinstance(short, Completed) and isinstance(general, Completed)
    # the shortcut keeps the assets in a tuple and lists their ids when read: equal values
    assert (dict(short.outputs), list(short.assets), short.details) == (
        general.outputs,
        general.assets,
        general.details,
    )
    assert short.outputs == {"output": ["asset_a", "asset_b"]} and list(short.assets) == assets
    assert short.assets is not assets  # the executor's list is not shared with the node


async def test_timeouts_fail_the_node() -> None:
    engine = make_engine(
        executors=ExecutorRouter(default=Sleeper(5)), policy=CallPolicy(timeout=0.01, retries=0)
    )
    job = await engine.run(ONE_MODEL)
    assert nodes(job)["gen"]["statusReason"] == (
        "executor `sleeper`: timed out after 0.01s (gave up after 1 attempt)"
    )


async def test_the_concurrency_limit_bounds_executor_calls() -> None:
    sleeper = Sleeper(0.01)
    document = model_loop(20)
    engine = make_engine(
        executors=ExecutorRouter(default=sleeper), policy=CallPolicy(concurrency=3)
    )
    job = await engine.run(document)
    assert job.document()["status"] == "success"
    assert sleeper.peak == 3


async def test_a_large_fan_out_is_started_a_bounded_amount_ahead_of_the_workers() -> None:
    """Only a few calls per worker wait, `processing`, for a free worker; the rest of the
    fan-out stays `pending` (nothing is built for it yet), and every clone still runs once."""
    engine = make_engine(
        executors=ExecutorRouter(default=Sleeper(0.001)), policy=CallPolicy(concurrency=2)
    )
    started = finished = peak = 0

    def watch(transition: Any) -> None:
        nonlocal started, finished, peak
        if transition.template_id != "gen":
            return
        if transition.to_status == "processing":
            started += 1
        elif transition.to_status == "success":
            finished += 1
        peak = max(peak, started - finished)

    engine.subscribe(watch)
    job = await engine.run(model_loop(600))
    assert job.status.value == "success"
    assert started == finished == 600
    ahead = job.runner.queue_ahead
    assert ahead < 600 and peak <= ahead + 2


async def test_cancel_reaches_running_calls() -> None:
    sleeper = Sleeper(30)
    document = model_loop(4)
    document["flow"].append(
        {"id": "after", "type": "transform", "logic": {"transform": "1"}, "dependsOn": ["loop"]}
    )
    engine = make_engine(
        executors=ExecutorRouter(default=sleeper), policy=CallPolicy(concurrency=2)
    )
    job = engine.prepare(document)

    async def cancel_soon() -> None:
        while sleeper.running < 2:
            await anyio.sleep(0.001)
        await engine.cancel(job.job_id)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(cancel_soon)
            await job.runner.run()
    flow_nodes = nodes(job)
    assert job.document()["status"] == "canceled"
    assert sleeper.cancelled == 2
    assert sorted(n for n, v in flow_nodes.items() if v.get("statusReason") == "canceled") == [
        "gen#0",
        "gen#1",
    ]
    assert flow_nodes["gen#2"]["statusReason"] == "job canceled"
    assert flow_nodes["after"]["statusReason"] == "job canceled"


async def test_routes_match_node_type_and_model_id_globs() -> None:
    a, b = DryRunExecutor(seed=1), DryRunExecutor(seed=2)
    router = ExecutorRouter(
        routes=[Route(a, node_type="remove-background"), Route(b, model_id="model_flux*")]
    )
    assert router.route("remove-background", None) is a
    assert router.route("custom-model", "model_flux-pro") is b
    assert router.route("custom-model", "model_sd") is None


async def test_the_limit_is_shared_by_every_job_of_an_engine() -> None:
    sleeper = Sleeper(0.01)
    document = model_loop(6)
    engine = make_engine(
        executors=ExecutorRouter(default=sleeper), policy=CallPolicy(concurrency=2)
    )
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(engine.run, document)
    assert sleeper.peak == 2
    assert all(job.document()["status"] == "success" for job in engine.jobs.values())


async def test_expression_nodes_past_a_turns_slice_leave_the_event_loop_free_between_them() -> None:
    """Expression nodes a turn hands out past its `inline_slice` are evaluated one per turn
    of the event loop: other tasks (a server's requests, other jobs) run between them, and
    the job ends as it does when they all run in the turn that handed them out."""
    document = transform_loop(200, "label", "'item ' + string(i)")
    at_once = make_engine().prepare(document, job_id="job_same")
    await at_once.runner.run()

    engine = make_engine()
    job = engine.prepare(document, job_id="job_same")
    job.runner.inline_slice = 0.0  # every expression node after a turn's first waits its turn
    order: list[str] = []
    kind = job.plan.nodes["label"].kind
    start = kind.start

    def watched(call: Any, expressions: Any) -> Any:
        order.append("label")
        return start(call, expressions)

    kind.start = watched  # type: ignore[method-assign]

    async def other_task() -> None:
        while job.scheduler.is_active():
            order.append("other")
            await anyio.sleep(0)

    async with anyio.create_task_group() as group:
        group.start_soon(other_task)
        await job.runner.run()
    assert job.status.value == "success"
    assert order.count("label") == 200
    # the other task ran between the evaluations (at most two in a row: trio runs the tasks
    # of one turn in any order)
    longest = run = 0
    for what in order:
        run = run + 1 if what == "label" else 0
        longest = max(longest, run)
    assert longest <= 2 and order.count("other") >= 100
    assert job.document()["metadata"] == at_once.document()["metadata"]


async def test_a_failure_stops_the_expression_nodes_that_wait_their_turn() -> None:
    """Fail fast: once a node fails, the expression nodes handed out but left for a later
    turn are not evaluated (as a worker does not start its waiting calls); the rest of the
    loop is skipped."""
    document = transform_loop(200, "ratio", "100 / (int(i) - 50)")
    job = make_engine().prepare(document)
    job.runner.inline_slice = 0.0
    await job.runner.run()
    statuses = Counter(n["status"] for n in job.document()["metadata"]["flow"])
    assert job.status.value == "failure"
    assert statuses["failure"] == 1  # `ratio#50`
    # the loop, the template and the 149 iterations after the failure
    assert statuses["success"] == 50 and statuses["skipped"] == 151


async def test_a_kind_that_delegates_from_a_later_turn_hands_its_call_to_the_workers() -> None:
    """A node kind with expressions may delegate (`Engine(kinds=...)`): started in a later
    turn, its call goes to the workers as one started at once does."""
    from engine.protocols import Delegate
    from nodes import default_registry
    from nodes.transform import TransformKind

    class CheckThenCall(TransformKind):
        def start(self, call: Any, expressions: Any) -> Any:
            expressions["transform"].evaluate(call.inputs)
            return Delegate()

    document = transform_loop(3, "label", "'item ' + string(i)")
    engine = make_engine(kinds={**default_registry(), "transform": CheckThenCall()})
    job = engine.prepare(document)
    job.runner.inline_slice = 0.0
    with anyio.fail_after(10):
        await job.runner.run()
    assert job.status.value == "success"
    assert [n["status"] for n in job.document()["metadata"]["flow"]][-3:] == ["success"] * 3


async def test_a_kind_may_expand_a_node_with_no_body() -> None:
    """A plugged-in kind that answers `Expand` for a node that is no for-each (it has no body
    to clone) ends it as a loop of no body: a success with the items' count (its instance has
    no room for a loop's iterations, which it never needs)."""
    from engine.protocols import Expand
    from nodes import default_registry
    from nodes.transform import TransformKind

    class Spread(TransformKind):
        def start(self, call: Any, expressions: Any) -> Any:
            return Expand([1, 2])

    document = {
        "flow": [
            {"id": "spread", "type": "transform", "logic": {"transform": "1"}},
            {
                "id": "after",
                "type": "transform",
                "inputs": [
                    {"name": "n", "type": "number", "ref": {"node": "spread", "name": "count"}}
                ],
                "logic": {"transform": "n"},
            },
        ]
    }
    engine = make_engine(kinds={**default_registry(), "transform": Spread()})
    job = await engine.run(document)
    spread = job.scheduler.instances["spread"]
    assert (spread.status.value, dict(spread.outputs)) == (
        "success",
        {"items": [1, 2], "count": 2, "output": {}},
    )
    assert job.scheduler.instances["after"].status.value == "success"
