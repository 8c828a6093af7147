"""The store contract, run against every store; and jobs rebuilt from a store."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import flow, make_engine, nodes
from postgres_server import postgres_server, unavailable_reason

from engine import DecisionError, DryRunExecutor, Engine, ExecutorResult, NodeCall, UnknownJobError
from engine.api import JobRun
from engine.errors import StoreError
from engine.protocols import Asset, JobRecord, OutcomeRecord, Store, Transition
from engine.run.spooled import SpooledDocument
from engine.stores import MemoryStore, SQLiteStore, open_store
from engine.stores.postgres import PostgresStore


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        import psycopg

        url = request.getfixturevalue("postgres_url")
        database = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
        created: Store = PostgresStore(url.rsplit("/", 1)[0] + f"/{database}")
    elif request.param == "memory":
        created = MemoryStore()
    else:
        created = SQLiteStore(tmp_path / "db.sqlite")
    yield created
    created.close()


def record(
    job_id: str, created_at: str, *, status: str = "in-progress", workflow_id: str = "wflow_a"
) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        workflow_id=workflow_id,
        workflow={"flow": []},
        inputs={"p": 1},
        options={"seed": 3},
        status=status,
        created_at=created_at,
        updated_at=created_at,
        document={"jobId": job_id},
    )


def transition(node: str | None, to: str) -> Transition:
    return Transition(
        "job_1",
        node,
        node,
        None,
        "pending",
        to,
        "why",
        "2026-01-01T00:00:00.000Z",
        {"case": 1} if node else None,
    )


def test_workflows_put_get_list_delete(store: Store) -> None:
    store.put_workflow("wflow_a", {"id": "wflow_a", "flow": [], "extra": {"kept": True}})
    store.put_workflow("wflow_b", {"id": "wflow_b", "flow": []})
    store.put_workflow("wflow_a", {"id": "wflow_a", "flow": [], "name": "renamed"})
    assert store.get_workflow("wflow_a") == {"id": "wflow_a", "flow": [], "name": "renamed"}
    assert [w["id"] for w in store.list_workflows()] == ["wflow_a", "wflow_b"]
    assert store.delete_workflow("wflow_a") is True
    assert store.delete_workflow("wflow_a") is False
    assert store.get_workflow("wflow_a") is None


def test_workflow_entries_and_heads_list_without_the_flows(store: Store) -> None:
    from engine.protocols import WorkflowEntry

    big = {
        "id": "wflow_a",
        "status": "ready",
        "privacy": "private",
        "tagSet": ["hero", "demo"],
        "updatedAt": "2026-01-02T00:00:00.000Z",
        "flow": [{"id": "n", "type": "transform"}],
        "editorInfo": {"nodes": []},
        "name": "a",
    }
    store.put_workflow("wflow_a", big)
    store.put_workflow("wflow_b", {"id": "wflow_b", "flow": [], "tagSet": "not a list"})
    assert store.workflow_entries() == [
        WorkflowEntry("wflow_a", "ready", "private", ("hero", "demo"), "2026-01-02T00:00:00.000Z"),
        WorkflowEntry("wflow_b", None, None, (), ""),
    ]
    head = {k: v for k, v in big.items() if k not in ("flow", "editorInfo")}
    assert store.get_workflow_head("wflow_a") == head
    store.put_workflow("wflow_a", {**big, "status": "draft", "tagSet": []})  # kept in step
    assert store.workflow_entries()[0] == WorkflowEntry(
        "wflow_a", "draft", "private", (), "2026-01-02T00:00:00.000Z"
    )
    assert store.get_workflow_head("wflow_missing") is None
    store.delete_workflow("wflow_a")
    assert [e.workflow_id for e in store.workflow_entries()] == ["wflow_b"]


def test_a_sqlite_store_made_before_workflow_entries_gets_them(tmp_path: Path) -> None:
    import json
    import sqlite3

    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.execute("CREATE TABLE workflows (id TEXT PRIMARY KEY, document TEXT NOT NULL)")
    document = {"id": "wflow_old", "status": "ready", "tagSet": ["x"], "flow": []}
    old.execute("INSERT INTO workflows VALUES (?, ?)", ("wflow_old", json.dumps(document)))
    old.commit()
    old.close()
    store = SQLiteStore(db)
    assert [(e.workflow_id, e.status, e.tags) for e in store.workflow_entries()] == [
        ("wflow_old", "ready", ("x",))
    ]
    assert store.get_workflow_head("wflow_old") == {
        "id": "wflow_old",
        "status": "ready",
        "tagSet": ["x"],
    }


def test_a_reader_follows_the_event_log_from_where_it_stopped(store: Store) -> None:
    store.create_job(record("job_log", "2026-01-01T00:00:00.000Z"))
    assert store.events_after("job_log", 0) == ([], 0)
    store.record("job_log", [], [transition("a", "processing"), transition("a", "success")])
    first, position = store.events_after("job_log", 0)
    assert [(e.node_id, e.to_status) for e in first] == [("a", "processing"), ("a", "success")]
    assert store.events_after("job_log", position) == ([], position)  # nothing new yet
    store.record("job_log", [], [transition("b", "processing")])
    store.record("job_log", [], [transition(None, "success")])
    then, after = store.events_after("job_log", position)
    assert [(e.node_id, e.to_status) for e in then] == [("b", "processing"), (None, "success")]
    assert after > position and store.events_after("job_log", after) == ([], after)
    assert store.events_after("job_unknown", 0) == ([], 0)


def test_jobs_outcomes_and_events_round_trip_in_order(store: Store) -> None:
    store.create_job(record("job_1", "2026-01-01T00:00:00.000Z"))
    with pytest.raises(ValueError, match="job `job_1` already exists"):
        store.create_job(record("job_1", "2026-01-01T00:00:00.000Z"))
    first = [
        OutcomeRecord(
            "a", "completed", {"outputs": {"output": [1, 2]}, "assets": [], "details": None}
        )
    ]
    second = [
        OutcomeRecord("b", "wait", {"items": None}),
        OutcomeRecord("b", "decision", {"decision": "approve"}),
    ]
    store.record("job_1", first, [transition("a", "processing"), transition("a", "success")])
    store.record("job_1", second, [transition(None, "in-progress")])
    store.record("job_1", [], [])
    assert store.outcomes("job_1") == first + second
    events = store.events("job_1")
    assert [(e.node_id, e.to_status) for e in events] == [
        ("a", "processing"),
        ("a", "success"),
        (None, "in-progress"),
    ]
    assert events[0].details == {"case": 1} and events[0].reason == "why"
    store.checkpoint(
        "job_1",
        status="success",
        updated_at="2026-01-02T00:00:00.000Z",
        document_json=b'{"done": true}',
    )
    job = store.get_job("job_1")
    assert job is not None
    assert (job.status, job.updated_at, job.document, job.inputs, job.options) == (
        "success",
        "2026-01-02T00:00:00.000Z",
        {"done": True},
        {"p": 1},
        {"seed": 3},
    )
    assert store.get_job("job_missing") is None
    with pytest.raises(KeyError):
        store.record("job_missing", first, [])
    with pytest.raises(KeyError):
        store.checkpoint("job_missing", status="success", updated_at="x", document_json=b"{}")


def test_a_document_of_several_megabytes_round_trips(store: Store) -> None:
    """The SQLite store writes a document a megabyte at a time, deflated past 4 MiB: the
    pieces must add up, and a reader gets the JSON back as it was given."""
    store.create_job(record("job_big", "2026-01-01T00:00:00.000Z"))
    document = {"flow": [{"id": f"n{i}", "text": "é" * 50 + str(i)} for i in range(50_000)]}
    encoded = json.dumps(document, ensure_ascii=False).encode()
    assert len(encoded) > 5 * (1 << 20)
    store.checkpoint("job_big", status="success", updated_at="x", document_json=encoded)
    job = store.get_job("job_big")
    assert job is not None and job.document == document
    assert store.document_json("job_big") == encoded  # as stored, not parsed and encoded again
    assert store.document_json("job_missing") is None
    store.checkpoint("job_big", status="failure", updated_at="y", document_json=b'{"small": 1}')
    job = store.get_job("job_big")
    assert job is not None and (job.status, job.document) == ("failure", {"small": 1})


def test_a_spooled_document_is_stored_as_its_bytes(store: Store) -> None:
    """A large job's document comes from a temporary file, a piece at a time: what is stored
    is the same as from memory, and the file is left open for the next reader."""
    store.create_job(record("job_big", "2026-01-01T00:00:00.000Z"))
    document = {"flow": [{"id": f"n{i}", "text": "é" * 50 + str(i)} for i in range(50_000)]}
    encoded = json.dumps(document, ensure_ascii=False).encode()
    spooled = SpooledDocument(
        lambda write: [write(encoded[i : i + 7000]) for i in range(0, len(encoded), 7000)]
    )
    try:
        assert spooled.size == len(encoded) > 5 * (1 << 20)
        store.checkpoint("job_big", status="success", updated_at="x", document_json=spooled)
        assert store.document_json("job_big") == encoded
        job = store.get_job("job_big")
        assert job is not None and job.document == document
        assert not spooled.closed and spooled.read() == encoded
    finally:
        spooled.close()
    assert spooled.closed


def test_sqlite_deflates_a_large_log_and_documents_and_reads_its_older_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large fan-out writes hundreds of megabytes of log and document: the SQLite store keeps
    a job's log batches past its first LOG_TEXT_BYTES (64 MiB; 4 KiB here), and a document of
    4 MiB or more, deflated. Readers get the same records and JSON back, and rows written as
    JSON text (a job's first batches, and every row of a file made before) read as they did."""
    import sqlite3

    import engine.stores.sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "LOG_TEXT_BYTES", 4096)
    path = tmp_path / "db.sqlite"
    store = SQLiteStore(path)
    store.create_job(record("job_1", "2026-01-01T00:00:00.000Z"))
    batches = [
        [
            OutcomeRecord(f"gen#{i}", "completed", {"outputs": {"i": i}, "assets": []})
            for i in range(start, start + 300)
        ]
        for start in (0, 300)
    ]
    transitions = [transition(f"gen#{i}", "success") for i in range(600)]
    store.record("job_1", batches[0], transitions[:300])  # 4 KiB and more: the rest deflated
    store.record("job_1", batches[1], transitions[300:])
    store.record("job_1", [OutcomeRecord("b", "wait", {"items": None})], [])
    document = {"flow": [{"id": f"gen#{i}", "status": "success"} for i in range(200_000)]}
    encoded = json.dumps(document).encode()
    assert len(encoded) > 4 * (1 << 20)
    assert "job_1" in store._logged
    store.checkpoint("job_1", status="success", updated_at="x", document_json=encoded)
    assert "job_1" not in store._logged  # over: a long-lived server keeps no count for it
    store.close()

    raw = sqlite3.connect(path)
    rows = raw.execute(
        "SELECT typeof(outcomes), length(outcomes), typeof(events) FROM log_batches ORDER BY seq"
    ).fetchall()
    outcomes_json = json.dumps([list(o) for o in batches[1]]).encode()
    assert [(row[0], row[2]) for row in rows] == [("text", "text"), *[("blob", "blob")] * 2]
    assert rows[1][1] < len(outcomes_json) / 3
    kind, size = raw.execute("SELECT typeof(document), length(document) FROM jobs").fetchone()
    assert kind == "blob" and size < len(encoded) / 3
    # what a store of an earlier version wrote: JSON text
    raw.execute(
        "INSERT INTO log_batches VALUES ('job_1', 3, ?, '[]')",
        (json.dumps([["c", "failed", {"message": "old"}]]),),
    )
    raw.commit()
    raw.close()

    again = SQLiteStore(path)
    assert again.outcomes("job_1") == [
        *batches[0],
        *batches[1],
        OutcomeRecord("b", "wait", {"items": None}),
        OutcomeRecord("c", "failed", {"message": "old"}),
    ]
    assert again.events("job_1") == transitions
    assert again.events_after("job_1", 1) == (transitions[300:], 4)
    assert again.document_json("job_1") == encoded
    job = again.get_job("job_1")
    assert job is not None and job.document == document
    again.close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE jobs SET document = ?", ('{"flow": []}',))
    raw.commit()
    raw.close()
    old = SQLiteStore(path)
    assert old.document_json("job_1") == b'{"flow": []}'
    job = old.get_job("job_1")
    assert job is not None and job.document == {"flow": []}
    old.close()


def test_a_long_lived_sqlite_store_keeps_nothing_for_jobs_that_are_over(tmp_path: Path) -> None:
    """A server's store object lives for thousands of jobs: once a job's checkpoint says it is
    over, the store forgets it was seen. A batch that comes after (a resumed job) is still
    written, and one for a job the store does not hold is still refused."""
    store = SQLiteStore(tmp_path / "db.sqlite")
    for n in range(50):
        job_id = f"job_{n}"
        store.create_job(record(job_id, "2026-01-01T00:00:00.000Z"))
        store.record(job_id, [], [transition("a", "success")])
        store.checkpoint(job_id, status="success", updated_at="x", document_json=b"{}")
    assert not store._known_jobs and not store._logged
    store.record("job_7", [], [transition("b", "success")])  # after its end: written
    assert [t.node_id for t in store.events("job_7")] == ["a", "b"]
    with pytest.raises(KeyError, match="no job `job_x`"):
        store.record("job_x", [], [transition("a", "success")])
    store.close()


def _large_document() -> bytes:
    document = {"flow": [{"id": f"n{i}", "text": "é" * 50 + str(i)} for i in range(50_000)]}
    return json.dumps(document, ensure_ascii=False).encode()


def test_a_document_deflated_as_it_is_encoded_goes_to_sqlite_as_it_was_deflated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large job's document bound for SQLite is deflated in a thread while it is encoded,
    into the only file it has (no file of its JSON: readers get it inflated again, a piece at
    a time); the store writes that stream rather than deflating the document again."""
    import sqlite3
    import tempfile
    import zlib

    import engine.stores.sqlite as sqlite_store

    def again(pieces: Any) -> Any:
        raise AssertionError("the document was deflated a second time")

    def no_json_file(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a file of the document's JSON was made")

    monkeypatch.setattr(sqlite_store, "deflate_to_file", again)
    encoded = _large_document()
    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "mkstemp", no_json_file)
        spooled = SpooledDocument(
            lambda write: [write(encoded[i : i + 7000]) for i in range(0, len(encoded), 7000)],
            deflate=True,
        )
    assert spooled.deflated is not None and spooled.size == len(encoded)
    stream = b"".join(spooled.deflated.pieces())
    assert len(stream) < len(encoded) / 3
    assert zlib.decompress(stream) == encoded == spooled.read()
    pieces = list(spooled.pieces(100_000))
    assert b"".join(pieces) == encoded and max(map(len, pieces)) == 100_000
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.create_job(record("job_big", "2026-01-01T00:00:00.000Z"))
    store.checkpoint("job_big", status="success", updated_at="x", document_json=spooled)
    assert store.document_json("job_big") == encoded
    store.close()
    raw = sqlite3.connect(tmp_path / "db.sqlite")
    assert raw.execute("SELECT document FROM jobs").fetchone()[0] == stream
    raw.close()
    spooled.close()
    with pytest.raises(ValueError):  # the deflated file goes with the document
        next(spooled.deflated.pieces())


def test_a_deflated_document_cut_short_or_damaged_is_an_error_for_its_reader() -> None:
    """A deflated stream that ends early or does not inflate (a damaged file) is an OSError,
    never a part of the document read as the whole."""
    import zlib

    from engine.deflated import inflate_pieces

    encoded = _large_document()
    stream = zlib.compress(encoded, 1)
    assert b"".join(inflate_pieces([stream[:1000], stream[1000:]])) == encoded
    with pytest.raises(OSError, match="ends before its stream"):
        b"".join(inflate_pieces([stream[: len(stream) // 2]]))
    damaged = stream[:100] + bytes(b ^ 0xFF for b in stream[100:200]) + stream[200:]
    with pytest.raises(OSError, match="damaged"):
        b"".join(inflate_pieces([damaged]))


def test_a_document_that_cannot_be_deflated_is_stored_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No room for the deflated file (while encoding, or in the store): the document is
    spooled and stored all the same, as JSON."""
    from engine.deflated import DeflatedFile

    def full(self: DeflatedFile, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DeflatedFile, "write", full)
    encoded = _large_document()
    spooled = SpooledDocument(lambda write: [write(encoded)], deflate=True)
    try:
        assert spooled.deflated is None and spooled.read() == encoded
        store = SQLiteStore(tmp_path / "db.sqlite")
        store.create_job(record("job_big", "2026-01-01T00:00:00.000Z"))
        store.checkpoint("job_big", status="success", updated_at="x", document_json=spooled)
        store.checkpoint("job_big", status="success", updated_at="y", document_json=encoded)
        assert store.document_json("job_big") == encoded
        store.close()
    finally:
        spooled.close()


def test_a_job_is_read_without_its_document_when_asked(store: Store) -> None:
    """What rebuilds a job from its log needs the record, not the (large) document."""
    store.create_job(record("job_1", "2026-01-01T00:00:00.000Z", status="queued"))
    store.checkpoint(
        "job_1", status="success", updated_at="y", document_json=b'{"flow": [{"id": "a"}]}'
    )
    whole = store.get_job("job_1")
    bare = store.get_job("job_1", document=False)
    assert whole is not None and whole.document == {"flow": [{"id": "a"}]}
    assert bare is not None and bare.document is None
    assert (bare.status, bare.updated_at, bare.workflow) == ("success", "y", {"flow": []})
    assert dataclasses.replace(whole, document=None) == bare
    assert store.get_job("job_missing", document=False) is None


def test_idempotency_keys_bind_once(store: Store) -> None:
    assert store.remember_key("k1", "job_a") == "job_a"
    assert store.remember_key("k1", "job_b") == "job_a"  # bound already: the first job
    assert store.remember_key("k2", "job_b") == "job_b"
    store.forget_key("k1", "job_b")  # not its job: nothing happens
    assert store.remember_key("k1", "job_c") == "job_a"
    store.forget_key("k1", "job_a")
    assert store.remember_key("k1", "job_c") == "job_c"


def test_jobs_list_newest_first_with_filters_and_pages(store: Store) -> None:
    for n in range(5):
        store.create_job(
            record(
                f"job_{n}",
                f"2026-01-0{n + 1}T00:00:00.000Z",
                status="success" if n % 2 else "failure",
                workflow_id="wflow_a" if n < 3 else "wflow_b",
            )
        )
    page, cursor = store.list_jobs(limit=2)
    assert [j.job_id for j in page] == ["job_4", "job_3"]
    seen = [j.job_id for j in page]
    while cursor is not None:
        page, cursor = store.list_jobs(limit=2, cursor=cursor)
        seen += [j.job_id for j in page]
    assert seen == ["job_4", "job_3", "job_2", "job_1", "job_0"]
    assert [j.job_id for j in store.list_jobs(status="success")[0]] == ["job_3", "job_1"]
    assert [j.job_id for j in store.list_jobs(workflow_id="wflow_b")[0]] == ["job_4", "job_3"]
    assert store.list_jobs(limit=5)[1] is None
    with pytest.raises(ValueError, match="invalid pagination token"):
        store.list_jobs(cursor="not-a-token")


def test_sqlite_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    first = SQLiteStore(path)
    first.create_job(record("job_1", "2026-01-01T00:00:00.000Z"))
    first.record(
        "job_1", [OutcomeRecord("a", "failed", {"message": "boom"})], [transition("a", "failure")]
    )
    first.close()
    second = SQLiteStore(path)
    assert second.outcomes("job_1") == [OutcomeRecord("a", "failed", {"message": "boom"})]
    second.record("job_1", [OutcomeRecord("b", "failed", {"message": "again"})], [])
    assert [o.node_id for o in second.outcomes("job_1")] == ["a", "b"]
    assert open_store(":memory:").__class__ is MemoryStore


def test_a_store_file_with_sqlites_default_pages_keeps_working(tmp_path: Path) -> None:
    """New files get 16 KiB pages; a file made with 4 KiB pages (SQLite's default, what
    flowgraph made before) keeps them, and a job runs, is stored and read back from it."""
    import sqlite3

    def page_size(path: Path) -> int:
        connection = sqlite3.connect(path)
        try:
            return int(connection.execute("PRAGMA page_size").fetchone()[0])
        finally:
            connection.close()

    two_models = {
        "id": "wflow_two",
        "flow": [
            {"id": "a", "type": "custom-model", "modelId": "model_x"},
            {
                "id": "b",
                "type": "custom-model",
                "modelId": "model_x",
                "inputs": [{"name": "image", "type": "file", "ref": {"node": "a"}}],
            },
        ],
    }
    old = tmp_path / "old.db"
    made = sqlite3.connect(old)
    made.execute("PRAGMA page_size=4096")
    made.execute("PRAGMA journal_mode=WAL")
    made.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    made.close()
    for path, pages in ((old, 4096), (tmp_path / "new.db", 16384)):
        store = SQLiteStore(path)
        engine = make_engine(store=store)
        job = run_async(engine.run, two_models)
        assert job.status.value == "success"
        store.close()
        assert page_size(path) == pages
        again = SQLiteStore(path)
        assert [o.node_id for o in again.outcomes(job.job_id)] == ["a", "b"]
        stored = again.get_job(job.job_id)
        assert stored is not None and stored.document is not None
        assert [n["status"] for n in stored.document["metadata"]["flow"]] == ["success"] * 2
        again.close()


def run_async(function: Any, *args: Any) -> Any:
    return anyio.run(function, *args)


def test_a_parked_job_is_decided_from_a_fresh_engine(store: Store) -> None:
    shared = store
    job = run_async(make_engine(store=shared).run, flow("gates.json"))
    job_id = job.job_id
    stored = shared.get_job(job_id)
    assert stored is not None and stored.status == "in-progress"
    assert stored.document is not None
    drafts = [a["assetId"] for a in nodes(job)["draft"]["assets"]]

    calls: list[str] = []

    def forbidden(call: NodeCall) -> ExecutorResult:
        calls.append(call.node_id)
        return ExecutorResult()

    later = make_engine(store=shared, python_models={"m": forbidden})
    with pytest.raises(DecisionError, match="node `choose` is not waiting"):
        run_async(later.decide, job_id, "choose", {"select": [0]})
    again = make_engine(store=shared, python_models={"m": forbidden})
    resumed = run_async(again.decide, job_id, "review", "approve")
    assert resumed.document()["status"] == "in-progress"
    assert calls == []  # `draft` finished before: it is not run again
    assert [a["assetId"] for a in nodes(resumed)["draft"]["assets"]] == drafts
    third = make_engine(store=shared)
    with pytest.raises(DecisionError, match="index `3` is out of range"):
        run_async(third.decide, job_id, "choose", {"select": [3]})
    fourth = make_engine(store=shared)
    done = run_async(fourth.decide, job_id, "choose", {"select": [2, 0]})
    document = done.document()
    assert document["status"] == "success"
    assert nodes(done)["choose"]["output"] == [drafts[2], drafts[0]]
    assert shared.get_job(job_id).status == "success"  # type: ignore[union-attr]
    transitions = [(e.node_id, e.to_status) for e in shared.events(job_id)]
    assert transitions.count(("draft", "success")) == 1
    assert ("review", "success") in transitions and ("choose", "success") in transitions
    with pytest.raises(DecisionError, match="is finished"):
        run_async(make_engine(store=shared).decide, job_id, "choose", {"select": [0]})
    with pytest.raises(UnknownJobError, match="no job `job_nope`"):
        make_engine(store=shared).get("job_nope")


def test_reject_in_one_iteration_is_kept_across_a_restore(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    job = run_async(make_engine(store=store).run, flow("gates-in-loop.json"))
    run_async(make_engine(store=store).decide, job.job_id, "gate#0", "approve")
    rejected = run_async(make_engine(store=store).decide, job.job_id, "gate#1", "reject")
    assert rejected.document()["status"] == "canceled"
    rebuilt = make_engine(store=store).get(job.job_id)
    flow_nodes = nodes(rebuilt)
    assert flow_nodes["gate#1"]["status"] == "rejected"
    assert flow_nodes["keep#0"]["status"] == "success"
    assert flow_nodes["gate#2"]["statusReason"] == "gate `gate#1` rejected"


def test_cancel_of_a_parked_job_is_stored(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    job = run_async(make_engine(store=store).run, flow("gates.json"))
    canceled = run_async(make_engine(store=store).cancel, job.job_id)
    assert canceled.document()["status"] == "canceled"
    assert store.get_job(job.job_id).status == "canceled"  # type: ignore[union-attr]
    assert make_engine(store=store).get(job.job_id).document()["status"] == "canceled"


def test_interrupted_calls_run_again_with_the_same_idempotency_key(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    keys: list[str] = []

    async def hang(call: NodeCall) -> ExecutorResult:
        keys.append(call.idempotency_key)
        await anyio.sleep(3600)
        return ExecutorResult()

    engine = make_engine(store=store, python_models={"slow": hang})
    document = {
        "flow": [
            {"id": "fast", "type": "custom-model", "modelId": "m"},
            {"id": "slow", "type": "custom-model", "modelId": "slow", "dependsOn": ["fast"]},
        ]
    }
    job = engine.prepare(document)

    async def interrupted() -> None:
        with anyio.move_on_after(0.5):
            await job.runner.run()  # a stop in the middle: `slow` hangs, like a crash

    anyio.run(interrupted)
    assert keys == [f"{job.job_id}:slow:1"]
    fast_assets = nodes(job)["fast"]["assets"]
    later_keys: list[str] = []

    def quick(call: NodeCall) -> list[str]:
        later_keys.append(call.idempotency_key)
        return ["asset_slow"]

    resumed = run_async(
        make_engine(
            store=store, python_models={"slow": quick}, dry_run=DryRunExecutor(seed=99)
        ).resume,
        job.job_id,
    )
    assert later_keys == [f"{job.job_id}:slow:1"]
    assert resumed.document()["status"] == "success"
    assert nodes(resumed)["fast"]["assets"] == fast_assets


def test_engine_without_store_says_so() -> None:
    with pytest.raises(UnknownJobError, match="this engine has no store"):
        Engine().get("job_x")


def test_leases_let_one_owner_at_a_time_run_a_job(store: Store) -> None:
    import time

    store.create_job(record("job_1", "2026-01-01T00:00:00.000Z"))
    assert store.claim("job_1", "server-a", 30) is True
    assert store.claim("job_1", "server-b", 30) is False
    assert store.claim("job_1", "server-a", 30) is True  # the holder keeps it
    store.release("job_1", "server-b")  # not the holder: nothing happens
    assert store.claim("job_1", "server-b", 30) is False
    store.release("job_1", "server-a")
    assert store.claim("job_1", "server-b", 0.2) is True
    assert store.orphans() == []
    time.sleep(0.4)
    assert store.orphans() == ["job_1"]  # server-b stopped renewing
    assert store.claim("job_1", "server-a", 30) is True
    store.renew("server-a", 0.2)
    time.sleep(0.4)
    assert store.orphans() == ["job_1"]
    store.renew("server-a", 30)
    assert store.orphans() == []


@pytest.mark.parametrize("durable", [True, False])
def test_a_run_keeps_no_written_transitions_in_memory(tmp_path: Path, durable: bool) -> None:
    """Written and announced transitions are dropped from the job (a 100,000-node job would
    hold every one); the store and the sinks still get each of them, in order."""
    store = SQLiteStore(tmp_path / "jobs.db") if durable else None
    engine = make_engine(store=store)
    heard: list[Transition] = []
    engine.subscribe(heard.append)
    document = {
        "flow": [
            {"id": "loop", "type": "for-each", "count": 300, "loopBodyNodeIds": ["gen"]},
            {"id": "gen", "type": "custom-model", "modelId": "m"},
        ]
    }
    job = anyio.run(engine.run, document)
    assert job.status.value == "success"
    assert job.scheduler.transitions == []
    count = job.scheduler.transition_count
    assert count == len(heard) > 2 * 300
    assert [t.to_status for t in heard if t.node_id == "gen#299"] == [
        "processing",
        "success",
    ]
    assert job.document()["updatedAt"] == heard[-1].at
    if store is not None:
        assert [(t.node_id, t.to_status) for t in store.events(job.job_id)] == [
            (t.node_id, t.to_status) for t in heard
        ]


class BatchSpy(SQLiteStore):
    """The SQLite store, noting the size of every log batch it is given."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    def record(self, job_id: str, outcomes: Any, transitions: Any) -> None:
        self.batches.append(len(outcomes))
        super().record(job_id, outcomes, transitions)


def run_ahead_of(store: SQLiteStore) -> tuple[JobRun, int]:
    """A loop of 2,000 model nodes run against `store` with a backlog of 50 records and no
    timed flush (only the backlog makes it write while running); the job, and how many
    records a write the backlog starts may hold at most."""
    engine = make_engine(store=store)
    document = {
        "flow": [
            {"id": "loop", "type": "for-each", "count": 2000, "loopBodyNodeIds": ["gen"]},
            {"id": "gen", "type": "custom-model", "modelId": "m"},
        ]
    }
    job = engine.prepare(document)
    job.runner.backlog = 50
    job.runner.flush_interval = 60.0
    anyio.run(engine.advance, job)
    return job, job.runner.backlog + job.runner.queue_ahead + engine.policy.concurrency


def test_a_run_waits_for_the_store_rather_than_piling_up_records(tmp_path: Path) -> None:
    """When outcome records pile up faster than the store writes them, the run waits for a
    flush: no batch is much larger than the backlog, and nothing is lost."""
    store = BatchSpy(tmp_path / "jobs.db")
    job, bound = run_ahead_of(store)
    assert job.status.value == "success"
    assert max(store.batches) <= bound
    # the loop's expansion, then one record per call (the dry run answers each as it starts)
    assert sum(store.batches) == len(store.outcomes(job.job_id)) == 1 + 2000


class FailsOnce(SQLiteStore):
    """The SQLite store, refusing the first write of a job's log (a full disk), then working."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.refused = 0

    def record(self, job_id: str, outcomes: Any, transitions: Any) -> None:
        if not self.refused:
            self.refused = len(outcomes)
            raise StoreError(f"the store `{self.path}` failed: database or disk is full")
        super().record(job_id, outcomes, transitions)


def test_a_write_that_fails_while_the_run_is_behind_its_store_ends_the_job_losing_nothing(
    tmp_path: Path,
) -> None:
    """The store fails the write the run handed its backlog to: the job ends failed with the
    store's reason, and the refused records are written with the rest, in order, so that the
    job rebuilt from the store ends the same way."""
    store = FailsOnce(tmp_path / "jobs.db")
    job, bound = run_ahead_of(store)
    assert 50 <= store.refused <= bound  # the refused write was one the backlog started
    assert job.status.value == "failure"
    assert "database or disk is full" in (job.scheduler.error or "")
    rebuilt = make_engine(store=SQLiteStore(tmp_path / "jobs.db")).get(job.job_id)
    assert rebuilt.status.value == "failure"
    assert rebuilt.scheduler.error == job.scheduler.error
    assert rebuilt.document()["metadata"]["flow"] == job.document()["metadata"]["flow"]


@pytest.mark.parametrize("spooled", [False, True], ids=["in-memory", "spooled"])
def test_a_running_job_is_written_now_and_then_for_readers_of_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spooled: bool
) -> None:
    """While a job runs, its document reaches the store every `checkpoint_every` seconds (so
    another server or `flowgraph jobs` sees it progress), not only when the run stops; a
    large job's (spooled: encoded into a file) as well."""
    from engine import api

    monkeypatch.setattr(api, "SPOOL_NODES", 0 if spooled else api.SPOOL_NODES)
    store = SQLiteStore(tmp_path / "jobs.db")
    reader = SQLiteStore(tmp_path / "jobs.db")  # another connection, as another process has
    seen: dict[str, Any] = {}

    async def slow(call: NodeCall) -> list[str]:
        await anyio.sleep(0.6)  # `first` has succeeded; a checkpoint falls in this time
        record = reader.get_job(call.job_id)
        assert record is not None and record.document is not None
        seen.update(record.document)
        return ["asset_slow"]

    engine = make_engine(store=store, python_models={"m_slow": slow}, checkpoint_every=0.1)
    document = {
        "flow": [
            {"id": "first", "type": "custom-model", "modelId": "m"},
            {"id": "second", "type": "custom-model", "modelId": "m_slow", "dependsOn": ["first"]},
        ]
    }
    job = anyio.run(engine.run, document)
    assert job.status.value == "success"
    assert seen["status"] == "in-progress"
    states = {n["id"]: n["status"] for n in seen["metadata"]["flow"]}
    assert states == {"first": "success", "second": "processing"}
    final = reader.get_job(job.job_id)
    assert final is not None and final.document is not None
    assert final.document["status"] == "success"


@pytest.mark.parametrize("assets", [[], ["asset_one"]], ids=["no-assets", "one-asset"])
def test_a_model_answer_of_assets_alone_is_rebuilt_as_it_ran(
    tmp_path: Path, assets: list[str]
) -> None:
    """A model that answers assets alone (or nothing at all) gives its node an `output` of
    their ids (`[]` for none); the job rebuilt from its log reads the same, and so does the
    node after the gate that reads it."""

    def model(call: NodeCall) -> ExecutorResult:
        return ExecutorResult(assets=[Asset(a, f"asset://{a}") for a in assets])

    flow_document = {
        "flow": [
            {"id": "gen", "type": "custom-model", "modelId": "m_assets"},
            {"id": "gate", "type": "user-approval", "dependsOn": ["gen"]},
            {
                "id": "use",
                "type": "transform",
                "dependsOn": ["gate"],
                "inputs": [{"name": "ids", "type": "string_array", "ref": {"node": "gen"}}],
                "logic": {"transform": "size(ids)"},
            },
        ]
    }
    engine = make_engine(store=SQLiteStore(tmp_path / "jobs.db"), python_models={"m_assets": model})
    job = anyio.run(engine.run, flow_document)
    assert job.status.value == "in-progress"  # at the gate
    assert dict(job.scheduler.instances["gen"].outputs) == {"output": assets}
    rebuilt_engine = make_engine(
        store=SQLiteStore(tmp_path / "jobs.db"), python_models={"m_assets": model}
    )
    rebuilt = rebuilt_engine.get(job.job_id)
    assert dict(rebuilt.scheduler.instances["gen"].outputs) == {"output": assets}
    rebuilt_engine.decide_now(rebuilt, "gate", "approve")

    async def carry_on() -> None:
        await rebuilt_engine.advance(rebuilt)

    anyio.run(carry_on)
    use = next(n for n in rebuilt.document()["metadata"]["flow"] if n["id"] == "use")
    assert (use["status"], use["output"]) == ("success", len(assets))


@pytest.mark.parametrize("written_as", ["answered", "completed with its call"])
def test_calls_answered_as_they_started_are_rebuilt_from_either_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written_as: str
) -> None:
    """The dry run answers a fan-out's calls as they start, each recorded once: as an
    `answered` list (attempt, job id, assets, outputs, details), or, in a log written before
    those, as a `completed` record carrying its `call`. A job rebuilt from either has the
    same nodes, attempts, job ids, assets and outputs, and carries on past its gate."""
    from engine.run import persistence

    if written_as != "answered":

        def as_before(instance: Any, outcome: Any) -> OutcomeRecord:
            node_id, kind, payload = persistence.outcome_record(instance, outcome)
            payload["call"] = {"attempt": instance.attempt, "jobId": instance.job_id}
            return OutcomeRecord(node_id, kind, payload)

        monkeypatch.setattr(persistence, "answered_record", as_before)
    document = {
        "flow": [
            {"id": "loop", "type": "for-each", "count": 5, "loopBodyNodeIds": ["gen"]},
            {"id": "gen", "type": "custom-model", "modelId": "m"},
            {"id": "gate", "type": "user-approval", "dependsOn": ["loop"]},
            {
                "id": "count",
                "type": "transform",
                "dependsOn": ["gate"],
                "inputs": [{"name": "all", "type": "file_array", "ref": {"node": "loop"}}],
                "logic": {"transform": "size(all)"},
            },
        ]
    }
    engine = make_engine(store=SQLiteStore(tmp_path / "jobs.db"))
    job = anyio.run(engine.run, document)
    assert job.status.value == "in-progress"  # at the gate
    kinds = {o.kind for o in engine.store.outcomes(job.job_id) if o.node_id.startswith("gen#")}
    assert kinds == ({"answered"} if written_as == "answered" else {"completed"})
    rebuilt_engine = make_engine(store=SQLiteStore(tmp_path / "jobs.db"))
    rebuilt = rebuilt_engine.get(job.job_id)
    assert rebuilt.document() == job.document()
    for node_id in (f"gen#{i}" for i in range(5)):
        ran, again = job.scheduler.instances[node_id], rebuilt.scheduler.instances[node_id]
        assert (again.attempt, again.job_id, dict(again.outputs)) == (
            ran.attempt,
            ran.job_id,
            dict(ran.outputs),
        )
    rebuilt_engine.decide_now(rebuilt, "gate", "approve")
    anyio.run(rebuilt_engine.advance, rebuilt)
    counted = nodes(rebuilt)["count"]
    assert (rebuilt.status.value, counted["output"]) == ("success", 5)


def test_a_deflated_file_that_fails_at_its_end_leaves_the_document_undeflated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deflated file runs out of room while its last bytes are still buffered (its flush
    and its close both fail): the document is spooled all the same, encoded again into a file
    of its JSON, without a deflated form, rather than failing (or kept in memory)."""
    import tempfile

    class FullAtTheEnd:
        def write(self, data: bytes) -> int:
            return len(data)

        def flush(self) -> None:
            raise OSError(28, "No space left on device")

        close = flush

    monkeypatch.setattr(tempfile, "TemporaryFile", FullAtTheEnd)
    encoded = _large_document()
    spooled = SpooledDocument(lambda write: [write(encoded)], deflate=True)
    try:
        assert spooled.deflated is None and spooled.read() == encoded
    finally:
        spooled.close()


def test_a_document_whose_deflating_thread_cannot_start_is_spooled_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No thread to deflate with: the document goes to a file of its JSON, encoded once."""
    from engine.run import spooled as spooled_module

    def no_thread() -> Any:
        raise OSError("cannot start a thread to deflate the document: can't start new thread")

    monkeypatch.setattr(spooled_module, "Deflater", no_thread)
    encoded = _large_document()
    calls: list[int] = []

    def encode(write: Any) -> None:
        calls.append(1)
        write(encoded)

    spooled = SpooledDocument(encode, deflate=True)
    try:
        assert spooled.deflated is None and spooled.read() == encoded and len(calls) == 1
    finally:
        spooled.close()


def test_overlapping_deflated_encodings_restore_the_switch_interval_once_all_end() -> None:
    """Encoding beside a deflating thread lowers the interpreter's switch interval, which is
    the process's: with two such encodings at once (two threads), the first to end leaves it
    lowered for the other, and the last restores what it was before either."""
    import sys

    from engine.run.spooled import SWITCH_INTERVAL, _deflating_beside

    before = sys.getswitchinterval()
    with _deflating_beside():
        assert (
            sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL) and before > SWITCH_INTERVAL
        )
        inner = _deflating_beside()
        inner.__enter__()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)  # the second encodes
    inner.__exit__(None, None, None)
    assert sys.getswitchinterval() == before


def test_a_sqlite_file_is_marked_with_its_schema_and_a_newer_one_is_refused(
    tmp_path: Path,
) -> None:
    """A file of an earlier schema is marked with this one's when opened (its deflated rows and
    `answered` records are more than an earlier flowgraph reads); a file marked by a newer
    flowgraph is refused with a message saying so, rather than misread."""
    import sqlite3

    from engine.stores.sqlite import SCHEMA_VERSION

    path = tmp_path / "db.sqlite"
    SQLiteStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    raw.commit()
    SQLiteStore(path).close()
    assert raw.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(
        StoreError, match=f"a newer flowgraph wrote it .schema version {SCHEMA_VERSION + 1}"
    ):
        SQLiteStore(path)
