"""`flowgraph test --suggest`: cases that reach every branch, found from the workflow alone,
checked by running them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES, FLOWS
from test_cli import flowgraph

from engine.testing.coverage import branches
from engine.testing.runs import offline_engine


@pytest.mark.parametrize(
    "workflow",
    [
        EXAMPLES / "branching.json",
        FLOWS / "cel-branches.json",
        EXAMPLES / "creative-app.json",
        # branches of an if/else that read it through `ref.equal` too: skipped as branches not
        # taken, their `equal` counts as not matched
        FLOWS / "scenario-generations.json",
    ],
    ids=lambda p: p.name,
)
def test_suggested_cases_reach_every_branch(workflow: Path, tmp_path: Path) -> None:
    suggested = tmp_path / "suggested.flowtest.json"
    result = flowgraph("test", "--suggest", str(workflow), "-o", str(suggested))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "suggested case" in result.stdout and str(suggested) in result.stdout
    document = json.loads(suggested.read_text())
    every = {b.key for b in branches(offline_engine().compile(workflow))}
    assert {key for case in document["cases"] for key in case["reaches"]} == every
    run = flowgraph("test", str(suggested), "--json")
    assert run.returncode == 0, run.stdout
    report = json.loads(run.stdout)
    assert report["ok"] and report["failed"] == 0
    (coverage,) = report["coverage"]["workflows"]
    assert coverage["percent"] == 100.0
    assert coverage["covered"] == len(every)


def test_cel_comparisons_and_contains_are_solved_from_their_literals(tmp_path: Path) -> None:
    suggested = tmp_path / "cel.flowtest.json"
    assert (
        flowgraph(
            "test", "--suggest", str(FLOWS / "cel-branches.json"), "-o", str(suggested)
        ).returncode
        == 0
    )
    by_branch = {
        key: case["inputs"]
        for case in json.loads(suggested.read_text())["cases"]
        for key in case["reaches"]
    }
    assert by_branch["route: case 1"]["count"] >= 20
    assert "night" in by_branch["route: case 2"]["prompt"]
    assert by_branch["route: case 3"]["hd"] is True and by_branch["route: case 3"]["count"] < 3
    assert by_branch["route: default"] == {}  # the defaults take it


def test_only_the_branches_the_tests_leave_untaken(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "branching.json", tmp_path / "branching.json")
    tests = tmp_path / "branching.flowtest.json"
    tests.write_text(
        json.dumps(
            {
                "workflow": "branching.json",
                "cases": [
                    {"name": "fast", "inputs": {"mode": "fast"}, "expect": {"status": "success"}}
                ],
            }
        )
    )
    result = flowgraph("test", "--suggest", str(tmp_path / "branching.json"), str(tests))
    assert result.returncode == 0, result.stderr
    written = tmp_path / "branching.suggested.flowtest.json"
    document = json.loads(written.read_text())
    assert document["workflow"] == "branching.json"
    assert [case["reaches"] for case in document["cases"]] == [
        ["check: case 2", "upscale: input `image` from `gen_quality`"]
    ]
    assert document["cases"][0]["inputs"] == {"mode": "quality"}
    everything = flowgraph("test", "--suggest", str(EXAMPLES / "branching.json"), str(EXAMPLES))
    assert everything.returncode == 0
    assert "is taken by the tests already; nothing written" in everything.stderr


def test_a_branch_no_input_reaches_is_named(tmp_path: Path) -> None:
    workflow = json.loads((EXAMPLES / "branching.json").read_text())
    workflow["flow"][0]["logic"]["default"] = "gen_fast"  # `mode` allows only the two cases
    path = tmp_path / "branching.json"
    path.write_text(json.dumps(workflow))
    result = flowgraph("test", "--suggest", str(path))
    assert result.returncode == 1
    assert "not reached: check: default: no input found that reaches it" in result.stderr
    assert (tmp_path / "branching.suggested.flowtest.json").exists()
