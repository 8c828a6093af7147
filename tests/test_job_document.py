"""The job document encoded node by node is the same JSON as the document built whole."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from conftest import FLOWS, run

from engine import job as job_module

FLOW_FILES = sorted(path.name for path in Path(FLOWS).glob("*.json"))


@pytest.mark.parametrize("name", FLOW_FILES)
def test_streamed_encoding_equals_the_whole_document(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_module, "ENCODE_BATCH", 2)  # several batches even in small flows
    job = run(name)
    encoded = job.document_json()
    assert encoded == orjson.dumps(job.document())
    assert json.loads(encoded)["metadata"]["flow"] == job.document()["metadata"]["flow"]


def test_streamed_encoding_of_a_failed_job_with_extra_metadata() -> None:
    job = run("for-each-failure.json")
    job.extra_metadata["note"] = {"tag": "x"}
    job.extra_metadata["flow"] = "replaced"  # extra metadata wins over the flow, as in the dict
    assert job.status.value == "failure"
    assert job.document_json() == orjson.dumps(job.document())
    assert json.loads(job.document_json())["metadata"]["flow"] == "replaced"


def test_the_encoding_follows_changes() -> None:
    job = run("gates.json")
    before = job.document_json()
    assert job.document_json() is before  # unchanged job: encoded once
    job.scheduler.cancel("enough")
    after = json.loads(job.document_json())
    assert after["status"] == "canceled"
    assert after == job.document()
