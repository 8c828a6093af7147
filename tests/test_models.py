"""Models: camelCase on the wire, unknown fields kept and written back unchanged."""

from __future__ import annotations

import json

import anyio
from conftest import EXAMPLES, make_engine

from engine import Job, Workflow, load_workflow


def test_round_trip_keeps_unknown_fields_everywhere() -> None:
    document = {
        "id": "wflow_x",
        "name": "n",
        "flow": [],
        "editorInfo": {"canvas": {"x": 1}},
        "uiConfig": {"presets": []},
        "shortDescription": "s",
        "inputs": [
            {
                "name": "p",
                "type": "string",
                "label": "Prompt",
                "promptSpark": True,
                "required": {"always": True, "customRule": 1},
            }
        ],
    }
    document["flow"] = [
        {
            "id": "a",
            "type": "custom-model",
            "modelId": "m",
            "position": {"x": 3, "y": 4},
            "includeOutputsInWorkflowJob": True,
            "inputs": [
                {
                    "name": "p",
                    "type": "string",
                    "ref": {"node": "workflow", "name": "p", "extra": 1},
                    "group": "g",
                }
            ],
        }
    ]
    workflow = load_workflow(document)
    assert workflow.to_wire() == document
    assert workflow.flow[0].include_outputs_in_workflow_job is True


def test_every_example_round_trips() -> None:
    for example in EXAMPLES.glob("*.json"):
        if example.name.endswith((".decisions.json", ".flowtest.json")):
            continue
        raw = json.loads(example.read_text())
        assert Workflow.model_validate(raw).to_wire() == raw


def test_job_nodes_keep_unknown_fields_and_the_job_validates_as_the_model() -> None:
    document = {
        "flow": [{"id": "a", "type": "list", "items": [1], "position": {"x": 1}, "note": "kept"}]
    }

    async def go() -> dict[str, object]:
        job = await make_engine().run(document)
        return job.document()

    job = anyio.run(go)
    node = job["metadata"]["flow"][0]  # type: ignore[index]
    assert node["position"] == {"x": 1} and node["note"] == "kept"
    parsed = Job.model_validate(job)
    assert parsed.job_type == "workflow"
    assert parsed.to_wire()["metadata"]["flow"][0]["note"] == "kept"


def test_a_job_envelope_replays_its_recorded_flow() -> None:
    async def go() -> tuple[dict[str, object], dict[str, object]]:
        engine = make_engine()
        first = await engine.run(EXAMPLES / "fan-out.json", {"subjects": ["x", "y"]})
        replay = await engine.run({"job": first.document()})
        return first.document(), replay.document()

    first, replay = anyio.run(go)

    def shape(job: dict[str, object]) -> list[tuple[str, str, object]]:
        return [(n["id"], n["status"], n.get("assets")) for n in job["metadata"]["flow"]]  # type: ignore[index]

    assert shape(first) == shape(replay)
    assert replay["metadata"]["input"] == {"subjects": ["x", "y"], "style": "ink sketch"}  # type: ignore[index]
