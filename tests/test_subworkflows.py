"""workflow nodes run another workflow of the engine's registry as a child job."""

from __future__ import annotations

import anyio
from conftest import make_engine, nodes

from engine import Workflow

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
