"""Hostile input against a live `flowgraph serve` (its address space capped at 3 GiB) and the
CLI: every trigger gets a 4xx with the error envelope, or a job that ends as it should, while
the server keeps answering, a job parked at a gate on the same server still completes, and
the log holds neither a secret nor a traceback."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FLOWS
from test_cli import flowgraph

from engine.server.launcher import ROOT, log_of, running_server

KEY, SECRET = "hostile-key", "s3cret-never-logged"
AUTH = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
MAX_BODY = 1024 * 1024


class Server:
    def __init__(self, url: str, db: Path) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": AUTH}, timeout=30)
        self.db = db

    def workflow(self, flow: list[Any], inputs: list[Any] | None = None) -> httpx.Response:
        """Create a workflow and make it ready; the answer of the update."""
        created = self.http.post("/workflows", json={"name": "h", "description": "d"})
        assert created.status_code == 200, created.text
        workflow_id = created.json()["workflow"]["id"]
        return self.http.put(
            f"/workflows/{workflow_id}",
            json={"flow": flow, "inputs": inputs or [], "status": "ready"},
        )

    def run(self, workflow_id: str, body: Any = None) -> httpx.Response:
        return self.http.put(f"/workflows/{workflow_id}/run", json=body or {})

    def finished(self, job_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self.http.get(f"/jobs/{job_id}").json()["job"]
            if job["status"] in ("success", "failure", "canceled"):
                return job
            assert time.monotonic() < deadline, job["status"]
            time.sleep(0.05)

    def alive(self) -> None:
        """The heartbeat: a small request answers within a second."""
        started = time.monotonic()
        answer = self.http.get("/workflows", params={"pageSize": 1, "full": "false"})
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < 1.0


def refused(answer: httpx.Response, status: int, *fragments: str) -> str:
    """Assert the error envelope with `status` and every fragment in its message."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"statusCode", "error", "message"} and body["statusCode"] == status
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return str(body["message"])


def transform(expression: str, node_id: str = "t") -> dict[str, Any]:
    return {"id": node_id, "type": "transform", "logic": {"transform": expression}}


def loop_over_xs(expression: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A for-each over the run input `xs` and its one body node `a` (a transform of `i`)."""
    xs = {"name": "xs", "type": "number_array", "ref": {"node": "workflow", "name": "xs"}}
    loop = {"id": "loop", "type": "for-each", "inputs": [xs], "loopBodyNodeIds": ["a"]}
    body = {
        "id": "a",
        "type": "transform",
        "inputs": [{"name": "i", "type": "number", "ref": {"node": "loop"}}],
        "logic": {"transform": expression},
    }
    return loop, body


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("hostile") / "jobs.db"
    environment = {"FLOWGRAPH_API_KEY": KEY, "FLOWGRAPH_API_SECRET": SECRET}
    with running_server(
        db,
        "--max-iterations",
        "2000",
        "--max-body",
        str(MAX_BODY),
        "--expression-seconds",
        "2",
        env=environment,
        memory_limit=3 << 30,
    ) as url:
        server = Server(url, db)
        yield server
        server.http.close()


@pytest.fixture(scope="module")
def parked(server: Server) -> Iterator[tuple[str, str]]:
    """A job waiting at its `review` gate while the hostile requests come in."""
    gates = json.loads((FLOWS / "gates.json").read_text())
    updated = server.workflow(gates["flow"], gates.get("inputs"))
    assert updated.status_code == 200, updated.text
    workflow_id = updated.json()["workflow"]["id"]
    job_id = server.run(workflow_id).json()["job"]["jobId"]
    deadline = time.monotonic() + 30
    while server.http.get(f"/jobs/{job_id}").json()["job"]["status"] != "in-progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield workflow_id, job_id


def test_cel_values_beyond_json_become_json(server: Server, parked: tuple[str, str]) -> None:
    """A transform's CEL value is mapped to JSON as CEL does (was: the job machinery broke)."""
    cases = {
        "duration('1.5s')": "1.5s",
        "b'abc'": "YWJj",
        "{1: 'a'}": {"1": "a"},
        "optional.of(1)": 1,
        "optional.none()": None,
        "[timestamp('2023-01-01T00:00:00Z')]": ["2023-01-01T00:00:00Z"],
    }
    for expression, expected in cases.items():
        updated = server.workflow([transform(expression)])
        assert updated.status_code == 200, (expression, updated.text)
        job_id = server.run(updated.json()["workflow"]["id"]).json()["job"]["jobId"]
        job = server.finished(job_id)
        assert job["status"] == "success", (expression, job["metadata"].get("error"))
        assert job["metadata"]["flow"][0].get("output") == expected, expression
    server.alive()


def test_flows_past_the_limits_are_refused_before_they_run(server: Server) -> None:
    loop = {"id": "loop", "type": "for-each", "loopBodyNodeIds": ["a"]}
    body = {
        "id": "a",
        "type": "transform",
        "inputs": [{"name": "i", "type": "number", "ref": {"node": "loop"}}],
        "logic": {"transform": "i"},
    }
    refused(
        server.workflow([{**loop, "count": 2}, body, transform("1", "a#0")]),
        400,
        "flow[2].id",
        "node id `a#0` is the id of a clone of `a`",
    )
    refused(
        server.workflow([{**loop, "count": 1_000_000_000}, body]),
        400,
        "flow[0].count",
        "for-each `loop` needs 1,000,000,000 iterations; the limit is 2,000 iterations per loop",
        "--max-iterations",
    )
    server.alive()


def test_a_loop_over_a_long_input_fails_its_job_at_the_limit(server: Server) -> None:
    loop, body = loop_over_xs("i * 2")
    updated = server.workflow([loop, body], [{"name": "xs", "type": "number_array"}])
    assert updated.status_code == 200, updated.text
    workflow_id = updated.json()["workflow"]["id"]
    job = server.finished(server.run(workflow_id, {"xs": list(range(5000))}).json()["job"]["jobId"])
    assert job["status"] == "failure"
    assert "needs 5,000 iterations; the limit is 2,000" in job["metadata"]["error"]
    job = server.finished(server.run(workflow_id, {"xs": list(range(2000))}).json()["job"]["jobId"])
    assert job["status"] == "success"
    server.alive()


def test_runaway_expressions_fail_within_the_budget_while_the_server_answers(
    server: Server,
) -> None:
    xs = {"name": "xs", "type": "number_array", "ref": {"node": "workflow", "name": "xs"}}
    runaway = {
        "cel": (
            {**transform("xs.map(a, xs.map(b, a + b)).size()"), "inputs": [xs]},
            {"xs": list(range(5000))},
        ),
        "jinja": (
            transform(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                "{% endfor %}done"
            ),
            {},
        ),
    }
    jobs = {}
    for name, (node, body) in runaway.items():
        inputs = [{"name": "xs", "type": "number_array"}] if body else []
        updated = server.workflow([node], inputs)
        assert updated.status_code == 200, updated.text  # compiling it takes no time
        jobs[name] = server.run(updated.json()["workflow"]["id"], body).json()["job"]["jobId"]
    started = time.monotonic()
    while time.monotonic() - started < 1.5:  # the event loop stays free meanwhile
        server.alive()
        time.sleep(0.1)
    for name, job_id in jobs.items():
        job = server.finished(job_id, timeout=20)
        assert job["status"] == "failure", name
        error = job["metadata"]["error"]
        # the CEL one may reach the worker's memory cap before the 2 s (it allocates fast)
        assert "ran longer than 2s and was stopped" in error or (
            name == "cel" and "worker process died, most likely out of memory" in error
        ), (name, error)
    assert time.monotonic() - started < 15
    for expression, message in (
        ("{{ 'a' * 400000000 }}", "`*` would make a value of 400,000,000 characters"),
        ("{{ 2 ** 100000000 }}", "`**` would make a number of about 100,000,000 bits"),
    ):
        updated = server.workflow([transform(expression)])
        assert updated.status_code == 200, updated.text  # not folded at compile time
        job = server.finished(server.run(updated.json()["workflow"]["id"]).json()["job"]["jobId"])
        assert job["status"] == "failure" and message in job["metadata"]["error"]
    server.alive()


def test_pagination_tokens_that_are_not_ours(server: Server) -> None:
    deep = base64.urlsafe_b64encode(b"[" * 3000).decode()
    for token in (deep, "x" * 5000, base64.urlsafe_b64encode(b'{"offset": true}').decode()):
        for path in ("/jobs", "/workflows"):
            started = time.monotonic()
            answer = server.http.get(path, params={"paginationToken": token})
            refused(answer, 400, "invalid")
            assert time.monotonic() - started < 1.0
            assert len(answer.text) < 300  # the token is quoted shortened
    server.alive()


def test_credentials_beyond_ascii_are_refused(server: Server) -> None:
    for header in (
        b"Basic " + base64.b64encode("hostile-key:s\u00e9cret".encode()),
        "Bearer s\u00e9cret".encode(),
        "Basic k\u00e9y".encode(),
        b"Basic \xff\xfe",
    ):
        with httpx.Client(timeout=5) as client:
            answer = client.get(
                f"{server.http.base_url}workflows", headers={"Authorization": header}
            )
        refused(answer, 401)
    server.alive()


def test_bodies_nested_too_deep_are_refused_and_nothing_is_stored(server: Server) -> None:
    before = server.http.get("/workflows", params={"pageSize": 100}).json()["workflows"]
    created = server.http.post(
        "/workflows", json={"name": "deep", "description": "d", "editorInfo": nested(300)}
    )
    refused(created, 400, "nested more than 64 levels deep", "editorInfo")
    after = server.http.get("/workflows", params={"pageSize": 100})
    assert after.status_code == 200
    assert len(after.json()["workflows"]) == len(before)
    node = {**transform("1"), "extra": nested(300)}
    refused(server.workflow([node]), 400, "nested more than 64 levels deep", "flow[0].extra")
    updated = server.workflow([transform("1")], [{"name": "v", "type": "string_array"}])
    workflow_id = updated.json()["workflow"]["id"]
    refused(server.run(workflow_id, {"v": nested(300)}), 400, "inputs.v", "64 levels")
    assert server.http.get("/workflows").status_code == 200
    server.alive()


def test_an_oversized_chunked_body_gets_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(2 * MAX_BODY // 65536):
            yield b"x" * 65536
        yield b'", "description": "d"}'

    answer = server.http.post(
        "/workflows", content=chunks(), headers={"Content-Type": "application/json"}
    )
    refused(answer, 413, f"larger than {MAX_BODY} bytes")
    small = server.http.post(
        "/workflows",
        content=iter([b'{"name": "chunked", ', b'"description": "d"}']),
        headers={"Content-Type": "application/json"},
    )
    assert small.status_code == 200, small.text
    server.alive()


def test_the_parked_job_still_completes(server: Server, parked: tuple[str, str]) -> None:
    workflow_id, job_id = parked
    job = server.http.get(f"/jobs/{job_id}").json()["job"]
    review = next(n for n in job["metadata"]["flow"] if n["id"] == "review")
    assert job["status"] == "in-progress" and review["status"] == "processing"
    approve = {"nodeId": "review", "workflowJobId": job_id}
    approved = server.http.put(f"/workflows/{workflow_id}/user-approval", json=approve)
    assert approved.status_code == 200, approved.text
    deadline = time.monotonic() + 30
    while True:
        job = server.http.get(f"/jobs/{job_id}").json()["job"]
        choose = next(n for n in job["metadata"]["flow"] if n["id"] == "choose")
        if choose["status"] == "processing" and choose.get("items"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    select = {
        "nodeId": "choose",
        "workflowJobId": job_id,
        "action": "select",
        "selectedIndices": [0],
    }
    selected = server.http.put(f"/workflows/{workflow_id}/user-selection", json=select)
    assert selected.status_code == 200, selected.text
    assert server.finished(job_id)["status"] == "success"


def test_the_log_holds_no_secret_and_no_traceback(server: Server) -> None:
    server.alive()
    log = log_of(server.db).read_text()
    assert SECRET not in log and "s\u00e9cret" not in log
    assert "Traceback" not in log, log[-3000:]


def test_empty_credentials_are_refused_at_start(tmp_path: Path) -> None:
    for key, secret in (("", ""), ("key", "")):
        result = subprocess.run(
            [sys.executable, "-m", "engine", "serve", "--db", str(tmp_path / "db")],
            cwd=ROOT,
            env={**_environment(), "FLOWGRAPH_API_KEY": key, "FLOWGRAPH_API_SECRET": secret},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 2, result.stderr
        assert "set but empty" in result.stderr


def _environment() -> dict[str, str]:
    import os

    return dict(os.environ)


# ----- the same triggers through the CLI: exit 1 or 2 with a clear message, never 70 --------


def test_the_cli_on_hostile_flows(tmp_path: Path) -> None:
    def write(name: str, document: Any) -> str:
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        return str(path)

    duration = write("duration.json", {"flow": [transform("duration('1s')")]})
    result = flowgraph("run", duration, "--db", ":memory:", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["job"]["metadata"]["flow"][0]["output"] == "1s"

    count = write(
        "count.json",
        {
            "flow": [
                {"id": "loop", "type": "for-each", "count": 10**9, "loopBodyNodeIds": ["a"]},
                transform("1", "a"),
            ]
        },
    )
    for command in ("validate", "run"):
        result = flowgraph(command, count, *(["--db", ":memory:"] if command == "run" else []))
        assert result.returncode == 2, result.stderr
        assert "flow[0].count: for-each `loop` needs 1,000,000,000 iterations" in result.stderr

    result = flowgraph(
        "run", count, "--db", ":memory:", "--max-iterations", "2000000000", "--max-nodes", "10"
    )
    assert result.returncode == 2, result.stderr
    assert "the limit is 10 nodes per job" in result.stderr

    huge = write("huge.json", '{"flow": [], "n": ' + "9" * 5000 + "}")
    result = flowgraph("validate", huge)
    assert result.returncode == 2, result.stderr
    assert "a number of more than 4,300 digits does not fit in 64 bits" in result.stderr

    deep = write("deep.json", "[" * 3000 + "]" * 3000)
    result = flowgraph("validate", deep)
    assert result.returncode == 2 and "nested more than 64 levels deep" in result.stderr

    node = {**transform("1"), "extra": nested(100)}
    result = flowgraph("validate", write("node.json", {"flow": [node]}))
    assert result.returncode == 2 and "flow[0].extra" in result.stderr

    loop, body = loop_over_xs("i")
    dynamic = write(
        "dynamic.json", {"inputs": [{"name": "xs", "type": "number_array"}], "flow": [loop, body]}
    )
    result = flowgraph(
        "run",
        dynamic,
        "--db",
        ":memory:",
        "--max-iterations",
        "10",
        "--input",
        f"xs={json.dumps(list(range(11)))}",
        "--json",
    )
    assert result.returncode == 1, result.stderr
    error = json.loads(result.stdout)["job"]["metadata"]["error"]
    assert "needs 11 iterations; the limit is 10 iterations per loop" in error


# ----- in the library: whatever breaks inside a job ends that job, never the engine ----------


def test_a_node_kind_that_raises_fails_its_node_only() -> None:
    import anyio

    from engine import Engine
    from nodes import default_registry
    from nodes.transform import TransformKind

    class Broken(TransformKind):
        def start(self, call: Any, expressions: Any) -> Any:
            if call.node_id == "bad":
                raise KeyError("a bug in a node kind")
            return super().start(call, expressions)

    engine = Engine(kinds={**default_registry(), "transform": Broken()})
    flow = {"flow": [transform("1", "bad"), {**transform("2", "after"), "dependsOn": ["bad"]}]}
    job = anyio.run(engine.run, flow)
    nodes = {n["id"]: n for n in job.document()["metadata"]["flow"]}
    assert nodes["bad"]["status"] == "failure"
    assert nodes["bad"]["statusReason"] == "transform node: KeyError: 'a bug in a node kind'"
    assert nodes["after"]["status"] == "skipped"
    again = anyio.run(engine.run, {"flow": [transform("3", "fine")]})
    assert again.status.value == "success"  # the engine carries on


def test_an_executor_answering_outputs_that_are_not_json_fails_its_node() -> None:

    import anyio

    from engine import Engine

    engine = Engine(python_models={"m": lambda call: {"assets": ["a1"], "tags": {"a", "b"}}})
    flow = {"flow": [{"id": "gen", "type": "custom-model", "modelId": "m"}]}
    job = anyio.run(engine.run, flow)
    gen = job.document()["metadata"]["flow"][0]
    assert gen["status"] == "failure"
    assert "answered outputs that are not JSON" in gen["statusReason"]


def test_a_store_that_cannot_write_ends_the_job_with_its_reason() -> None:
    import anyio

    from engine import Engine
    from engine.errors import StoreError
    from engine.stores.memory import MemoryStore

    class FullDisk(MemoryStore):
        """Refuses `failures` writes of the job log, then works again."""

        def __init__(self, failures: int) -> None:
            super().__init__()
            self.failures = failures

        def record(self, job_id: str, outcomes: Any, transitions: Any) -> None:
            if self.failures > 0:
                self.failures -= 1
                raise StoreError("the store `jobs.db` failed: database or disk is full")
            super().record(job_id, outcomes, transitions)

    async def slow(call: Any) -> dict[str, Any]:
        await anyio.sleep(0.3)  # the log is flushed while the call runs
        return {"assets": ["a1"]}

    flow = {
        "flow": [
            {"id": "gen", "type": "custom-model", "modelId": "slow"},
            {**transform("2", "b"), "dependsOn": ["gen"]},
        ]
    }
    # the failure is recorded once the disk has room again
    store = FullDisk(failures=1)
    engine = Engine(store=store, python_models={"slow": slow})
    job = anyio.run(engine.run, flow)
    assert job.status.value == "failure"
    error = "the store `jobs.db` failed: database or disk is full"
    assert job.document()["metadata"]["error"] == error
    stored = store.get_job(job.job_id)
    assert stored is not None and stored.status == "failure"
    nodes = {n["id"]: n["status"] for n in job.document()["metadata"]["flow"]}
    assert nodes == {"gen": "failure", "b": "skipped"}  # the call in flight was cut short
    rebuilt = Engine(store=store).get(job.job_id)  # the log replays to the same end
    assert rebuilt.status.value == "failure" and rebuilt.scheduler.error == error
    # a store that keeps failing: the caller hears it, the job is failed in memory
    engine = Engine(store=FullDisk(failures=100), python_models={"slow": slow})
    prepared = engine.prepare(flow)
    with pytest.raises(StoreError, match="database or disk is full"):
        anyio.run(engine.advance, prepared)
    assert prepared.status.value == "failure"


def test_sqlite_errors_name_the_store_and_the_reason(tmp_path: Path) -> None:
    import sqlite3

    from engine.errors import StoreError
    from engine.stores.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "jobs.db")
    store._connection.close()  # any SQLite error would do; a closed database is one
    store._connection = sqlite3.connect(":memory:", check_same_thread=False)
    with pytest.raises(StoreError, match=r"the store `.*jobs.db` failed: no such table: workflows"):
        store.put_workflow("w", {"flow": []})


def test_a_job_whose_last_checkpoint_was_lost_is_repaired_at_start(tmp_path: Path) -> None:
    """A server killed inside a job's final checkpoint: the log says finished, the document
    `queued`. The next server's start writes the document again."""
    import anyio

    from engine import Engine
    from engine.stores.sqlite import SQLiteStore

    db = tmp_path / "jobs.db"
    store = SQLiteStore(db)
    engine = Engine(store=store)
    queued = engine.prepare({"flow": [transform("1 + 1", "a")]})
    created = store.document_json(queued.job_id)
    assert created is not None
    anyio.run(engine.advance, queued)
    assert store.get_job(queued.job_id).status == "success"  # type: ignore[union-attr]
    store.checkpoint(  # what the lost write leaves: the document as it was created
        queued.job_id, status="queued", updated_at=queued.created_at, document_json=created
    )
    store.close()
    with running_server(db) as url, httpx.Client(base_url=url, timeout=30) as client:
        job = client.get(f"/jobs/{queued.job_id}").json()["job"]
        assert job["status"] == "success"
        assert job["metadata"]["flow"][0]["output"] == 2


def test_a_run_that_cannot_start_leaves_no_job_to_run_later(tmp_path: Path) -> None:
    """Whatever stops a run between creating its job and starting it (here: the server's task
    group is not running), the answer is a 500 and the job is failed in the store: the SDK
    retries a 500, and a server starting later must not run the first attempt's job."""
    import anyio

    from engine import Engine
    from engine.server import build_state, create_app
    from engine.stores.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "jobs.db")
    state = build_state(Engine(store=store), store, host="127.0.0.1")
    app = create_app(state)  # called without its lifespan: no task group to run jobs in
    workflow = {**transform("1"), "id": "a"}
    store.put_workflow("wflow_x", {"id": "wflow_x", "status": "ready", "flow": [workflow]})

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowgraph") as client:
            return await client.put("/v1/workflows/wflow_x/run", json={})

    answer = anyio.run(run)
    assert answer.status_code == 500
    assert answer.json()["message"] == "internal error: AssertionError"
    records, _ = store.list_jobs()
    assert [r.status for r in records] == ["failure"]
    assert state.resume_unfinished() == []
    document = store.get_job(records[0].job_id).document  # type: ignore[union-attr]
    assert document["metadata"]["error"].startswith("the run could not start")


def test_numbers_beyond_64_bits_are_refused_where_they_come_in() -> None:
    """JSON allows any integer, but the job document (and Scenario's API) carries 64 bits: a
    bigger one in a workflow or a run input is a problem naming where, not a job that cannot
    be written (found by tests/test_hostile_properties.py)."""
    from engine import Engine
    from engine.errors import ValidationError

    with pytest.raises(ValidationError) as caught:
        Engine().prepare({"flow": [{"id": "l", "type": "list", "items": [1, 2**70]}]})
    assert [str(p) for p in caught.value.problems] == [
        "flow[0].items[1]: the number 1180591620717411303424 does not fit in 64 bits"
    ]
    flow = {"inputs": [{"name": "x", "type": "number"}], "flow": [transform("x")]}
    flow["flow"][0]["inputs"] = [
        {"name": "x", "type": "number", "ref": {"node": "workflow", "name": "x"}}
    ]
    with pytest.raises(ValidationError) as caught:
        Engine().prepare(flow, {"x": -(2**64)})
    assert [str(p) for p in caught.value.problems] == [
        "inputs.x: the number -18446744073709551616 does not fit in 64 bits"
    ]
    assert Engine().prepare(flow, {"x": 2**64 - 1}).status.value == "queued"  # a u64 fits


def test_a_job_that_failed_fast_rebuilds_from_its_log() -> None:
    """A batch handed out before a failure has its outcomes in the log; the replay hands those
    nodes out although the job is halting (it used to refuse the log)."""
    import anyio

    from engine import Engine
    from engine.stores.memory import MemoryStore

    async def slow(call: Any) -> list[str]:
        await anyio.sleep(0.2)
        return ["asset_c"]

    store = MemoryStore()
    flow = {
        "flow": [
            {"id": "c", "type": "custom-model", "modelId": "slow"},
            transform("1 / 0", "a"),
            transform("1 + 1", "b"),
        ]
    }
    engine = Engine(store=store, python_models={"slow": slow})
    job = anyio.run(engine.run, flow)
    assert job.status.value == "failure"
    engine.forget(job.job_id)
    rebuilt = engine.get(job.job_id)
    assert rebuilt.status.value == "failure"
    assert {i.id: i.status.value for i in rebuilt.scheduler.instances.values()} == {
        i.id: i.status.value for i in job.scheduler.instances.values()
    }


@pytest.mark.parametrize("after", ["{{ x | upper }}", "model"])
def test_a_decision_while_a_run_is_ending_is_carried_out(after: str) -> None:
    """Approving in the moment a run closes (its workers cancelled, the gate still waiting):
    the node the decision frees runs (it used to stay `processing` forever)."""
    import anyio

    from engine import Engine

    node: dict[str, Any] = (
        {**transform(after, "t"), "inputs": [{"name": "x", "type": "string", "value": "hi"}]}
        if after != "model"
        else {"id": "t", "type": "custom-model", "modelId": "m"}
    )
    flow = {"flow": [{"id": "review", "type": "user-approval"}, {**node, "dependsOn": ["review"]}]}
    engine = Engine()
    job = engine.prepare(flow)

    async def main() -> None:
        async def decide_while_closing() -> None:
            while not (job.runner.active and not job.scheduler.is_active() and job.waiting):
                await anyio.sleep(0)
            await engine.decide(job.job_id, "review", "approve")

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(decide_while_closing)
                await engine.advance(job)

    anyio.run(main)
    assert job.status.value == "success"
    assert job.document()["metadata"]["flow"][1]["status"] == "success"


def test_a_decision_for_a_path_of_any_length_is_refused_at_once(
    server: Server, parked: tuple[str, str]
) -> None:
    workflow_id, job_id = parked
    for route, body in (
        ("user-approval", {"nodeId": "x/" * 40_000, "workflowJobId": job_id}),
        (
            "user-selection",
            {
                "nodeId": "x/" * 40_000,
                "workflowJobId": job_id,
                "action": "select",
                "selectedIndices": [0],
            },
        ),  # noqa: E501
    ):
        answer = server.http.put(f"/workflows/{workflow_id}/{route}", json=body)
        refused(answer, 400, "nodeId: String should have at most 1000 characters")
    server.alive()


def test_a_workflow_that_forges_waiting_gates_shows_only_its_own(tmp_path: Path) -> None:
    forged = tmp_path / "forged.json"
    forged.write_text(
        json.dumps(
            {"flow": [
                {"id": "g", "type": "user-approval", "waitingGates": ["x"]},
                {"id": "w", "type": "workflow", "workflowId": "none", "dependsOn": ["g"],
                 "waitingGates": [{"id": 3}, "y"]},
            ]}
        )
    )  # fmt: skip
    db = str(tmp_path / "jobs.db")
    result = flowgraph("run", str(forged), "--db", db, "--json")
    assert result.returncode == 3
    flow = json.loads(result.stdout)["job"]["metadata"]["flow"]
    assert all("waitingGates" not in node for node in flow)
    listed = flowgraph("jobs", "--status", "waiting", "--db", db)
    assert listed.returncode == 0 and " g " in listed.stdout
