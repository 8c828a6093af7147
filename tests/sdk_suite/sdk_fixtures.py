"""A pytest plugin for scenario-sdk's own generated tests, run against a live `flowgraph serve`
(see tests/test_sdk_generated_suite.py): before each test, the ids its literals name exist as
a fresh test needs them. Workflow `workflowId` (ready), job `jobId` and job `workflowJobId`
waiting at gate `nodeId` (a user-selection for the selection tests, else a user-approval), are
written again into the server's SQLite store, so what one test did (delete, cancel, approve) is
not what the next one finds. Asset `assetId` is made once, by an inference job of the
generate stand-in (engine/server/inference.py) whose model answers that asset."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine import Engine, ExecutorRouter, PythonExecutor
from engine.server.inference import index_assets, inference_workflow
from engine.server.workflows import complete_workflow
from engine.stores.sqlite import SQLiteStore

DRAFT = {"id": "draft", "type": "custom-model", "modelId": "model_draft"}
APPROVAL = [DRAFT, {"id": "nodeId", "type": "user-approval", "dependsOn": ["draft"]}]
SELECTION = [
    DRAFT,
    {
        "id": "nodeId",
        "type": "user-selection",
        "inputs": [
            {"name": "images", "type": "file_array", "ref": {"node": "draft"}, "min": 1, "max": 2}
        ],
    },
]


def reseed(db: Path, selection: bool) -> None:
    store = SQLiteStore(db)
    try:
        # a job the last test approved or canceled may still be running on the server: wait
        # until it gives the job back (its lease), or the server would answer from its copy
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with store._lock:
                held = store._connection.execute(
                    "SELECT COUNT(*) FROM leases WHERE job_id IN ('jobId', 'workflowJobId')"
                ).fetchone()[0]
            if not held:
                break
            time.sleep(0.01)
        document = complete_workflow({"flow": SELECTION if selection else APPROVAL}, "workflowId")
        store.put_workflow("workflowId", document)
        with store._lock:
            for table in ("jobs", "log_batches", "leases"):
                store._connection.execute(
                    f"DELETE FROM {table} WHERE job_id IN ('jobId', 'workflowJobId')"
                )
        engine = Engine(store=store)
        for job_id in ("jobId", "workflowJobId"):
            anyio.run(engine.advance, engine.prepare(document, job_id=job_id))
        if store.get_job(ASSET_JOB) is None:
            make_asset(store)
    finally:
        store.close()


ASSET_JOB = "assetJob"


def make_asset(store: SQLiteStore) -> None:
    """The inference job that made asset `assetId` (its url is the server's own)."""
    model = PythonExecutor({"modelId": lambda call: ["assetId"]})
    engine = Engine(store=store, executors=ExecutorRouter(default=model))
    workflow = inference_workflow("modelId", {"prompt": "a fox"}, node_type="custom-model")
    job = engine.prepare(workflow, job_id=ASSET_JOB)
    anyio.run(engine.advance, job)
    index_assets(store, job)


@pytest.fixture(autouse=True)
def _flowgraph_ids(request: Any) -> Iterator[None]:
    reseed(Path(os.environ["FLOWGRAPH_SDK_DB"]), "user_selection" in request.node.name)
    yield


# What only a mock server accepts: flowgraph answers as Scenario's API does, and these tests of
# the generated suite expect otherwise (strict: each must keep failing, or the list is wrong).
MOCK_ONLY = {
    "test_method_user_selection": "a selection without `selectedIndices`: 400, it chooses nothing",
    "test_raw_response_user_selection": "a selection without `selectedIndices`: 400",
    "test_streaming_response_user_selection": "a selection without `selectedIndices`: 400",
    "test_method_list_with_all_params": "a made-up `paginationToken`: 400, not one we handed out",
    "test_method_run_with_all_params": (
        "`dryRun` answers 269 with a cost and an empty `job`, which the test parses as a job"
    ),
    "test_method_run_model_with_all_params": (
        "`dryRun` answers 269 with a cost and an empty `job`, which the test parses as a job"
    ),
}

# Of these files, only the tests of these methods run: the stand-in serves them, not the rest
# of the generate and assets APIs.
ONLY = {"test_generate.py": "run_model", "test_assets.py": "retrieve"}


def _served(item: pytest.Item) -> bool:
    method = ONLY.get(item.path.name)
    name = item.name.split("[", 1)[0]
    return method is None or name.endswith((f"_{method}", f"_{method}_with_all_params"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselected = [item for item in items if not _served(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if _served(item)]
    for item in items:
        reason = MOCK_ONLY.get(item.name.split("[", 1)[0])
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
