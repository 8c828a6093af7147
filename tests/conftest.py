"""Shared helpers: load a flow fixture, run it on a fresh engine, read the job back."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine import DryRunExecutor, Engine, JobRun
from engine.protocols import OutcomeRecord, Transition

FLOWS = Path(__file__).parent / "flows"
EXAMPLES = Path(__file__).parent.parent / "examples"
EXPORTS = Path(__file__).parent / "exports"  # webapp exports: an editor graph, no flow
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests put what the docs show (docs/*.png) and the console's timing
    (benchmarks/console-page.json): the checkout itself with FLOWGRAPH_UPDATE_DOCS=1 (`make
    docs-images`), else a temporary folder of the same layout, so that a test run leaves the
    tracked files as they were."""
    if os.environ.get("FLOWGRAPH_UPDATE_DOCS") == "1":
        return ROOT
    folder = tmp_path_factory.mktemp("artifacts")
    for part in ("docs", "benchmarks"):
        (folder / part).mkdir()
    return folder


def flow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FLOWS / name).read_text())
    return data


def export(name: str) -> dict[str, Any]:
    """A webapp export of tests/exports/, or of examples/ (`NAME.export.json`)."""
    path = EXPORTS / f"{name}.json"
    if not path.exists():
        path = EXAMPLES / f"{name}.export.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def embedded_view(page: str) -> dict[str, Any]:
    """The data a static job page (`graph --format html`, `run --report`) draws."""
    start = page.index("window.FLOWGRAPH_VIEW = ") + len("window.FLOWGRAPH_VIEW = ")
    end = page.index(";</script>", start)
    data: dict[str, Any] = json.loads(page[start:end])
    return data


def fixed_clock() -> str:
    return "2026-01-01T00:00:00.000Z"


def make_engine(**options: Any) -> Engine:
    counter = itertools.count()
    options.setdefault("dry_run", DryRunExecutor(fail_nodes=options.pop("fail", ())))
    options.setdefault("clock", fixed_clock)
    options.setdefault("job_ids", lambda: f"job_test{next(counter)}")
    return Engine(**options)


def run(document: Any, inputs: dict[str, Any] | None = None, **options: Any) -> JobRun:
    """Run `document` (a fixture name, a dict or a path) to its end or first gates."""
    if isinstance(document, str) and document.endswith(".json") and "/" not in document:
        document = flow(document)
    engine = make_engine(**options)

    async def go() -> JobRun:
        return await engine.run(document, inputs or {})

    return anyio.run(go)


def nodes(job: JobRun) -> dict[str, dict[str, Any]]:
    """The job's flow, by node id."""
    return {node["id"]: node for node in job.document()["metadata"]["flow"]}


def statuses(job: JobRun) -> dict[str, str]:
    return {node_id: node["status"] for node_id, node in nodes(job).items()}


def completion_assets(record: OutcomeRecord) -> list[str] | None:
    """The asset ids of a record of a node that completed (`completed`, or `answered`: a call
    completed as it started, a list), else None."""
    if record.kind == "answered":
        return [asset[0] for asset in record.payload[2]]
    if record.kind == "completed":
        return [asset["assetId"] for asset in record.payload["assets"]]
    return None


def outputs(job: JobRun) -> dict[str, Any]:
    return {node_id: node.get("output") for node_id, node in nodes(job).items()}


def decide(job: JobRun, node_id: str, decision: Any) -> JobRun:
    engine = job.runner  # the job keeps its own runner; decide through the scheduler + runner

    async def go() -> None:
        job.scheduler.decide(node_id, decision)
        await engine.run()

    anyio.run(go)
    return job


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Runner-level tests run on both anyio backends."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _isolated_assets(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep dry-run files and data dirs of every test under a temporary directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))


def run_with_events(document: Any, inputs: dict[str, Any]) -> tuple[JobRun, list[Transition]]:
    """Run `document` with a fresh engine; the job and every transition it made, in order."""
    engine = Engine()
    transitions: list[Transition] = []
    engine.subscribe(transitions.append)
    return anyio.run(engine.run, document, inputs), transitions
