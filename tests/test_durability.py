"""Durable jobs end to end: a process killed with SIGKILL, resumed by another; the CLI's
store commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FLOWS, completion_assets
from test_cli import flowgraph, job_of

from engine.protocols import OutcomeRecord
from engine.stores import SQLiteStore

HERE = Path(__file__).parent


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the condition")


def run_and_kill(db: Path, script: str, *args: str, until: Callable[[SQLiteStore], bool]) -> None:
    """Run `script` (of tests/) on the store `db` in a subprocess, and kill it with SIGKILL
    once `until(store)` holds."""
    environment = {**os.environ, "PYTHONPATH": str(HERE.parent) + os.pathsep + str(HERE)}
    process = subprocess.Popen(
        [sys.executable, str(HERE / script), str(db), *args],
        env=environment,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: db.exists() and until(SQLiteStore(db)))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def outcome_kinds(store: SQLiteStore, job_id: str) -> set[tuple[str, str]]:
    return {(o.node_id, o.kind) for o in store.outcomes(job_id)}


def call_attempts(outcomes: list[OutcomeRecord], node_id: str) -> list[int]:
    """The attempt of each call the log records for `node_id`: its `call` records, and the
    results of calls answered as they started (the dry run's), which stand for theirs."""
    return [
        o.payload["attempt"]
        if o.kind == "call"
        else o.payload[0]  # answered as it started: [attempt, jobId, ...]
        if o.kind == "answered"
        else o.payload["call"]["attempt"]
        for o in outcomes
        if o.node_id == node_id and (o.kind in ("call", "answered") or "call" in o.payload)
    ]


def test_a_job_survives_sigkill_and_finishes_in_another_process(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    job_id = "job_crashtest0000000000000001"

    def gate_waits_and_slow_started(store: SQLiteStore) -> bool:
        kinds = outcome_kinds(store, job_id)
        return ("review", "wait") in kinds and ("slow", "call") in kinds

    run_and_kill(db, "crash_run.py", job_id, until=gate_waits_and_slow_started)
    before = SQLiteStore(db).outcomes(job_id)
    draft_asset = next(
        assets[0]
        for o in before
        if o.node_id == "draft" and (assets := completion_assets(o)) is not None
    )

    resumed = flowgraph("resume", job_id, "--db", str(db), "--json")
    assert resumed.returncode == 3, resumed.stderr
    job = job_of(resumed)
    statuses = {n["id"]: n["status"] for n in job["metadata"]["flow"]}
    assert statuses == {
        "draft": "success",
        "review": "processing",
        "slow": "success",
        "final": "pending",
    }
    assert "flowgraph approve" in resumed.stderr

    approved = flowgraph("approve", job_id, "review", "--db", str(db), "--json")
    assert approved.returncode == 0, approved.stderr
    job = job_of(approved)
    assert job["status"] == "success"
    flow = {n["id"]: n for n in job["metadata"]["flow"]}
    assert flow["draft"]["assets"][0]["assetId"] == draft_asset  # not run again
    assert flow["final"]["inputs"][0]["value"] == draft_asset
    outcomes = SQLiteStore(db).outcomes(job_id)
    assert sum(1 for o in outcomes if o.node_id == "draft" and completion_assets(o)) == 1
    assert call_attempts(outcomes, "slow") == [1, 1]  # the same idempotency key again


def test_cli_gate_commands_through_the_store(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    parked = flowgraph("run", str(FLOWS / "gates.json"), "--db", db, "--json")
    assert parked.returncode == 3
    job_id = job_of(parked)["jobId"]
    assert f"flowgraph approve {job_id} review --db {db}" in parked.stderr

    wrong = flowgraph("select", job_id, "review", "0", "--db", db, "--json")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert "refused: user-approval `review` takes `approve` or `reject`" in wrong.stderr
    not_waiting = flowgraph("approve", job_id, "choose", "--db", db)
    assert not_waiting.returncode == 2
    assert "node `choose` is not waiting for a decision (it is pending)" in not_waiting.stderr

    approved = flowgraph("approve", job_id, "review", "--db", db, "--json")
    assert approved.returncode == 3
    assert f"flowgraph select {job_id} choose 0 --db {db}" in approved.stderr
    for bad, message in [
        (["5"], "index `5` is out of range"),
        (["0", "0"], "indices must not repeat"),
        (["0", "1", "2"], "choose between 1 and 2 items, got 3"),
    ]:
        refused = flowgraph("select", job_id, "choose", *bad, "--db", db)
        assert refused.returncode == 2 and message in refused.stderr
    still = json.loads(flowgraph("jobs", job_id, "--db", db, "--json").stdout)["job"]
    assert {n["id"]: n["status"] for n in still["metadata"]["flow"]}["choose"] == "processing"

    chosen = flowgraph("select", job_id, "choose", "2", "0", "--db", db, "--json")
    assert chosen.returncode == 0
    done = job_of(chosen)
    drafts = [
        a["assetId"]
        for a in next(n for n in done["metadata"]["flow"] if n["id"] == "draft")["assets"]
    ]
    assert next(n for n in done["metadata"]["flow"] if n["id"] == "choose")["output"] == [
        drafts[2],
        drafts[0],
    ]
    twice = flowgraph("approve", job_id, "review", "--db", db)
    assert twice.returncode == 2
    assert f"job `{job_id}` is finished (success)" in twice.stderr


def test_cli_reject_cancel_and_jobs_listing(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    first = job_of(flowgraph("run", str(FLOWS / "gates.json"), "--db", db, "--json"))["jobId"]
    second = job_of(flowgraph("run", str(FLOWS / "gates-in-loop.json"), "--db", db, "--json"))[
        "jobId"
    ]
    rejected = flowgraph("reject", second, "gate#1", "--db", db, "--json")
    assert rejected.returncode == 1
    statuses = {n["id"]: n["status"] for n in job_of(rejected)["metadata"]["flow"]}
    assert statuses["gate#1"] == "rejected" and statuses["gate#0"] == "skipped"
    canceled = flowgraph("cancel", first, "--db", db, "--json")
    assert canceled.returncode == 0
    assert job_of(canceled)["status"] == "canceled"
    listing = json.loads(flowgraph("jobs", "--db", db, "--json").stdout)["jobs"]
    assert [j["jobId"] for j in listing] == [second, first]
    assert {j["status"] for j in listing} == {"canceled"}
    again = flowgraph("cancel", first, "--db", db)
    assert again.returncode == 2 and "is finished (canceled)" in again.stderr
    unknown = flowgraph("approve", "job_nope", "x", "--db", db)
    assert unknown.returncode == 2 and "no job `job_nope` in the store" in unknown.stderr
    table = flowgraph("jobs", "--db", db)
    assert first in table.stdout and second in table.stdout


def test_flowgraph_db_environment_variable(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    result = flowgraph(
        "run", str(FLOWS / "list-node.json"), "--json", env={"FLOWGRAPH_DB": str(db)}
    )
    assert result.returncode == 0
    assert SQLiteStore(db).get_job(job_of(result)["jobId"]) is not None


def test_a_resumed_fan_out_re_issues_only_the_calls_in_flight_and_logs_every_start(
    tmp_path: Path,
) -> None:
    """A 2,000-iteration fan-out stopped mid-run: the resume hands out only the calls that were
    in flight (at most the queue ahead of the workers), the rest as the workers free up, and
    every node's start is in the event log."""
    import anyio

    from engine import Engine

    flow = {
        "flow": [
            {"id": "loop", "type": "for-each", "count": 2000, "loopBodyNodeIds": ["gen"]},
            {
                "id": "gen",
                "type": "custom-model",
                "modelId": "m",
                "inputs": [{"name": "i", "type": "number", "ref": {"node": "loop"}}],
            },
        ]
    }
    db = tmp_path / "jobs.db"

    async def hang(call: Any) -> list[str]:
        await anyio.sleep(3600)
        return []

    async def first() -> str:
        engine = Engine(store=SQLiteStore(db), python_models={"m": hang})
        job = engine.prepare(flow)
        with anyio.move_on_after(1.0):  # the process "stops" with calls in flight
            await engine.advance(job)
        return job.job_id

    job_id = anyio.run(first)
    calls: list[str] = []

    def fast(call: Any) -> list[str]:
        calls.append(call.node_id)
        return [f"asset_{call.node_id}"]

    engine = Engine(store=SQLiteStore(db), python_models={"m": fast})
    job = engine.get(job_id)
    in_flight = len(job.runner.pending_start)
    assert 0 < in_flight <= job.runner.queue_ahead + engine.policy.concurrency
    anyio.run(engine.advance, job)
    assert job.status.value == "success"
    assert len(calls) == len(set(calls)) <= 2000
    events = SQLiteStore(db).events(job_id)
    reached: dict[str, set[str]] = {}
    for event in events:
        if event.node_id is not None:
            reached.setdefault(event.node_id, set()).add(event.to_status)
    clones = [f"gen#{i}" for i in range(2000)]
    assert all({"processing", "success"} <= reached[c] for c in clones), [
        c for c in clones if not {"processing", "success"} <= reached[c]
    ][:5]


@pytest.mark.parametrize("moment", ["at-the-gate", "before-the-gate"])
def test_a_parent_and_its_child_job_survive_sigkill_and_finish(tmp_path: Path, moment: str) -> None:
    """Killed while the parent waits at its child's gate, or while the child still runs
    (`prep` hangs): the resumed parent parks at `sub/review` again; the decision (by path, or
    to the child job) ends both; nothing that had finished runs again."""
    db = tmp_path / "jobs.db"
    job_id = "job_crashparent00000000000001"

    def child_of(store: SQLiteStore) -> str | None:
        calls = [o for o in store.outcomes(job_id) if o.node_id == "sub" and o.kind == "call"]
        return str(calls[0].payload["jobId"]) if calls else None

    def killed_now(store: SQLiteStore) -> bool:
        child = child_of(store)
        if child is None or ("slow", "call") not in outcome_kinds(store, job_id):
            return False
        if moment == "before-the-gate":
            return ("prep", "call") in outcome_kinds(store, child)
        return any(  # the parent's own log says that `sub` waits at its child's gate
            e.node_id == "sub" and "`sub/review`" in (e.reason or "") for e in store.events(job_id)
        )

    mode = "running" if moment == "before-the-gate" else "gate"
    run_and_kill(db, "crash_child_run.py", job_id, mode, until=killed_now)
    store = SQLiteStore(db)
    child_id = child_of(store)
    assert child_id is not None
    draft = [
        assets
        for o in store.outcomes(child_id)
        if o.node_id == "draft" and (assets := completion_assets(o)) is not None
    ]
    draft_asset = draft[0][0]

    resumed = flowgraph("resume", job_id, "--db", str(db), "--json")
    assert resumed.returncode == 3, resumed.stderr
    parent = job_of(resumed)
    flow = {n["id"]: n for n in parent["metadata"]["flow"]}
    assert {n: flow[n]["status"] for n in flow} == {
        "sub": "processing",
        "slow": "success",
        "use": "pending",
    }
    assert flow["sub"]["jobId"] == child_id
    assert [g["id"] for g in flow["sub"]["waitingGates"]] == ["sub/review"]
    assert f"flowgraph approve {job_id} sub/review --db {db}" in resumed.stderr

    if moment == "at-the-gate":
        decided = flowgraph("approve", job_id, "sub/review", "--db", str(db), "--json")
    else:
        decided = flowgraph("approve", child_id, "review", "--db", str(db), "--json")
    assert decided.returncode == 0, decided.stderr
    parent = job_of(flowgraph("jobs", job_id, "--db", str(db), "--json"))
    child = job_of(flowgraph("jobs", child_id, "--db", str(db), "--json"))
    assert parent["status"] == "success" and child["status"] == "success"
    child_flow = {n["id"]: n for n in child["metadata"]["flow"]}
    assert child_flow["draft"]["assets"][0]["assetId"] == draft_asset  # not run again
    assert child_flow["final"]["inputs"][0]["value"] == draft_asset
    use = next(n for n in parent["metadata"]["flow"] if n["id"] == "use")
    assert use["output"] == child["metadata"]["assetIds"][0]
    outcomes = SQLiteStore(db).outcomes(child_id)
    completed = [o.node_id for o in outcomes if completion_assets(o) is not None]
    assert sorted(completed) == ["draft", "final", "prep"]  # each once
    assert call_attempts(outcomes, "prep") == ([1, 1] if moment == "before-the-gate" else [1])
