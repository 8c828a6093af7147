"""`flowgraph test`: test files of workflows, their expectations, the report (text, JSON,
JUnit XML), branch coverage, and the pytest plugin that runs the same files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from conftest import EXAMPLES, FLOWS, embedded_view
from test_cli import ROOT, flowgraph

from engine.errors import ValidationError
from engine.testing.coverage import WorkflowCoverage, branches, taken
from engine.testing.files import load_case_file
from engine.testing.runs import offline_engine, run_to_rest
from engine.testing.session import run_session

EXAMPLE_TESTS = sorted(
    p for p in EXAMPLES.iterdir() if p.name.endswith((".flowtest.json", ".flowtest.yaml"))
)


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
def changed_branch(tmp_path: Path) -> Path:
    """branching.json with its `fast` case sending to the quality model, and a test that
    expects the fast model: the test must fail."""
    workflow = json.loads((EXAMPLES / "branching.json").read_text())
    workflow["flow"][0]["logic"]["cases"][0]["value"] = "gen_quality"
    write(tmp_path / "branching.json", workflow)
    return write(
        tmp_path / "branching.flowtest.json",
        {
            "workflow": "branching.json",
            "cases": [
                {
                    "name": "fast mode drafts fast",
                    "inputs": {"mode": "fast"},
                    "expect": {
                        "status": "success",
                        "nodes": {
                            "check": {"branch": "gen_fast"},
                            "upscale": {"inputs": {"scale": 2}},
                        },
                    },
                },
                {
                    "name": "quality mode",
                    "inputs": {"mode": "quality"},
                    "expect": {"nodes": {"gen_fast": {"status": "success"}}},
                },
            ],
        },
    )


def test_every_example_workflow_has_a_test_file() -> None:
    tested = {load_case_file(json_or_yaml(p), p).workflow.name for p in EXAMPLE_TESTS}
    workflows = {
        p.name
        for p in EXAMPLES.glob("*.json")
        if not p.name.endswith((".decisions.json", ".flowtest.json"))
    }
    assert workflows == tested


def json_or_yaml(path: Path) -> Any:
    from engine.testing.files import parse_case_text

    return parse_case_text(path.read_text(), source=str(path), yaml=path.suffix == ".yaml")


def pytest_with_the_plugin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """pytest in its own process with the plugin named explicitly: an editable install
    registers it (entry point `flowgraph` of `pytest11`) only once `pip install -e .` ran with
    this pyproject.toml."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "engine.testing.pytest_plugin"]
        + ["-p", "no:cacheprovider", *args],
        cwd=cwd,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_example_tests_pass_through_the_pytest_plugin_with_full_coverage() -> None:
    result = pytest_with_the_plugin("--flowgraph-cover", "-v", "examples", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = sum(len(json_or_yaml(p)["cases"]) for p in EXAMPLE_TESTS)
    assert f"{cases} passed" in result.stdout
    assert "examples/storyboard.flowtest.yaml::no scene makes no frame PASSED" in result.stdout
    assert "flowgraph branch coverage" in result.stdout
    total = next(line for line in result.stdout.splitlines() if line.startswith("TOTAL"))
    assert total.endswith("100%")


def test_the_plugin_reports_a_failing_case_with_its_diff(changed_branch: Path) -> None:
    result = pytest_with_the_plugin(
        "-o", "addopts=", str(changed_branch), cwd=changed_branch.parent
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert '  - expected: "gen_fast"' in result.stdout
    assert '  + actual:   "gen_quality"' in result.stdout
    assert "FAILED branching.flowtest.json::fast mode drafts fast - check: branch" in result.stdout


def test_a_changed_branch_fails_with_the_diff_and_the_reason_chain(changed_branch: Path) -> None:
    result = flowgraph("test", str(changed_branch.parent))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "branching.flowtest.json::fast mode drafts fast FAILED" in out
    assert "branching.flowtest.json::quality mode PASSED" in out
    failure = out[out.index(" FAILURES ") :]
    lines = failure.splitlines()
    at = lines.index("check: branch")
    assert lines[at + 1 : at + 4] == [
        '  - expected: "gen_fast"',
        '  + actual:   "gen_quality"',
        "  why: check success ← check chose `gen_quality` because condition=`fast` matched case 1",
    ]
    # `gen_fast` is no branch any more: it always runs and always feeds `upscale`
    assert "never taken: upscale: input `image` from `gen_quality` (ref.conditional entry)" in out
    assert lines[-1].strip("= ").startswith("1 failed, 1 passed in ")


def test_an_unexpected_skip_shows_the_reason_chain(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "branching.json", tmp_path / "branching.json")
    test_file = write(
        tmp_path / "t.flowtest.json",
        {
            "workflow": "branching.json",
            "cases": [
                {
                    "name": "q",
                    "inputs": {"mode": "quality"},
                    "expect": {"nodes": {"gen_fast": {"status": "success"}}},
                }
            ],
        },
    )
    result = flowgraph("test", str(test_file), "--json")
    assert result.returncode == 1
    (case,) = json.loads(result.stdout)["cases"]
    assert case["outcome"] == "failed"
    assert case["mismatches"] == [
        {
            "subject": "gen_fast",
            "check": "status",
            "expected": "success",
            "actual": "skipped",
            "why": [
                "gen_fast skipped ← branch `gen_fast` of `check` not taken; it chose "
                "`gen_quality` ← check chose `gen_quality` because condition=`quality` matched case 2"
            ],
        }
    ]


def test_json_and_junit_reports(changed_branch: Path, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = flowgraph("test", str(changed_branch), "--json", "--junit-xml", str(junit))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert (report["ok"], report["passed"], report["failed"], report["errors"]) == (False, 1, 1, 0)
    assert [c["outcome"] for c in report["cases"]] == ["failed", "passed"]
    coverage = report["coverage"]["workflows"][0]
    assert (coverage["branches"], coverage["covered"]) == (4, 3)
    runs = {p["key"]: p["runs"] for p in coverage["points"]}
    # no case sends to `gen_fast` any more: it runs in both, and feeds `upscale` first
    assert runs == {
        "check: case 1": 1,
        "check: case 2": 1,
        "upscale: input `image` from `gen_fast`": 2,
        "upscale: input `image` from `gen_quality`": 0,
    }
    root = ElementTree.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    (suite,) = root
    failed = suite.find("testcase[@name='fast mode drafts fast']/failure")
    assert failed is not None and failed.get("message") == "check: branch"
    assert '- expected: "gen_fast"' in (failed.text or "")


def test_exit_codes_for_bad_test_files_and_paths(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "bad.flowtest.json",
        {
            "workflow": "missing.json",
            "cases": [
                {"inputs": [], "expect": {"status": "done", "nodes": {"a": {"colour": 1}}}},
            ],
            "extra": 1,
        },
    )
    result = flowgraph("test", str(bad))
    assert result.returncode == 2
    text = result.stdout
    assert "error: test file is invalid" in text
    for message in (
        f"{bad}: extra: unknown key `extra`; a test file has `workflow`, `workflows` and `cases`",
        f"{bad}: workflow: no workflow file `{tmp_path / 'missing.json'}`",
        f"{bad}: cases[0].name: every case has a `name` (a string)",
        f"{bad}: cases[0].inputs: `inputs` maps workflow input names to values",
        f"{bad}: cases[0].expect.status: a job's status is one of",
        f"{bad}: cases[0].expect.nodes.a.colour: unknown key `colour`",
    ):
        assert message in text, text
    missing = flowgraph("test", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert f"no such file or folder `{tmp_path / 'nowhere'}`" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = flowgraph("test", str(empty))
    assert nothing.returncode == 2
    assert "no test files" in nothing.stderr
    broken = tmp_path / "broken.flowtest.yaml"
    broken.write_text("workflow: [unclosed\n")
    result = flowgraph("test", str(broken))
    assert result.returncode == 2
    assert f"{broken}: not valid YAML at line 2" in result.stdout


def test_a_case_with_bad_inputs_is_an_error(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "branching.json", tmp_path / "branching.json")
    test_file = write(
        tmp_path / "t.flowtest.json",
        {"workflow": "branching.json", "cases": [{"name": "no mode", "expect": {}}]},
    )
    result = flowgraph("test", str(test_file))
    assert result.returncode == 1
    assert "t.flowtest.json::no mode ERROR" in result.stdout
    assert "error: run inputs are invalid" in result.stdout
    assert "input `mode` is required" in result.stdout
    write(
        test_file,
        {
            "workflow": "branching.json",
            "cases": [
                {"name": "typo", "inputs": {"mode": "fast"}, "fail": ["gen_fats", "check"]},
            ],
        },
    )
    result = flowgraph("test", str(test_file))
    assert result.returncode == 1
    assert "error: fail is invalid" in result.stdout
    assert "gen_fats: names no node of the workflow; did you mean `gen_fast`?" in result.stdout
    assert "check: `check` is a logic node; only model nodes call the executor" in result.stdout


def test_cover_fail_under_and_the_coverage_page(changed_branch: Path, tmp_path: Path) -> None:
    passing = json.loads(changed_branch.read_text())
    passing["cases"] = passing["cases"][1:2]
    passing["cases"][0]["expect"] = {"status": "success"}
    write(changed_branch, passing)
    pages = tmp_path / "pages"
    result = flowgraph(
        "test", str(changed_branch), "--cover-fail-under", "60", "--cover-html", str(pages)
    )
    assert result.returncode == 1
    assert "error: branch coverage 50.0% is under 60%" in result.stderr
    assert flowgraph("test", str(changed_branch), "--cover-fail-under", "50").returncode == 0
    view = embedded_view((pages / "branching.html").read_text())
    assert {n["id"]: n["status"] for n in view["nodes"]}["check"] == "partial"
    [untaken] = [e for e in view["edges"] if e.get("taken") is False]
    assert untaken["source"] == "check" and untaken["label"].endswith("fast · never taken")


def coverage_of(flow: str, runs: list[dict[str, Any]]) -> WorkflowCoverage:
    engine = offline_engine()
    workflow = engine.load(FLOWS / flow)
    coverage = WorkflowCoverage(flow, branches(engine.compile(workflow)))
    for run in runs:
        job, _ = run_to_rest(
            offline_engine(), workflow, run.get("inputs", {}), run.get("decisions", {})
        )
        coverage.add(taken(job.scheduler))
    return coverage


def test_coverage_of_ref_equal_counts_matched_and_not_matched() -> None:
    coverage = coverage_of("ref-equal.json", [{}])
    keys = [b.key for b in coverage.branches]
    assert any("equal" in k and k.endswith(" matched") for k in keys)
    assert any(k.endswith(" not matched") for k in keys)
    assert 0 < coverage.covered < len(keys)


def test_coverage_of_loops_by_iterations() -> None:
    coverage = coverage_of("for-each-empty.json", [{}])
    loops = [b.key for b in coverage.branches if "iteration" in b.outcome]
    assert loops and set(coverage.hits) & set(loops)
    assert any(k.endswith("zero iterations") for k in coverage.hits)


def test_session_finds_yaml_and_json_files() -> None:
    session = run_session([EXAMPLES])
    assert session.ok
    assert {r.file.path.suffix for r in session.results} == {".json", ".yaml"}


def test_a_test_file_must_name_a_workflow() -> None:
    with pytest.raises(ValidationError) as caught:
        load_case_file({"cases": []}, Path("x.flowtest.json"))
    assert [str(p) for p in caught.value.problems] == [
        "x.flowtest.json: workflow: name the workflow under test: a path relative to this file",
        "x.flowtest.json: cases: `cases` is a non-empty list of cases",
    ]


def test_sub_workflows_come_from_the_folder_the_file_names(tmp_path: Path) -> None:
    test_file = write(
        tmp_path / "sub.flowtest.json",
        {
            "workflow": os.path.relpath(FLOWS / "sub-gate.json", tmp_path),
            "workflows": os.path.relpath(FLOWS / "subflows", tmp_path),
            "cases": [
                {
                    "name": "parks inside",
                    "expect": {"status": "in-progress", "waitsAt": "sub/review"},
                },
                {
                    "name": "approved inside",
                    "decisions": {"sub/review": "approve"},
                    "expect": {"status": "success", "nodes": {"sub": {"status": "success"}}},
                },
                {
                    "name": "rejected inside",
                    "decisions": {"sub/review": "reject"},
                    "expect": {"status": "canceled", "nodes": {"sub": {"status": "rejected"}}},
                },
            ],
        },
    )
    result = flowgraph("test", str(test_file), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert [c["outcome"] for c in report["cases"]] == ["passed"] * 3
    write(
        tmp_path / "bad.flowtest.json",
        {**json.loads(test_file.read_text()), "workflows": "nowhere"},
    )
    refused = flowgraph("test", str(tmp_path / "bad.flowtest.json"))
    assert refused.returncode == 2
    assert f"workflows: no folder `{tmp_path / 'nowhere'}`" in refused.stdout


@pytest.mark.parametrize(
    "flow",
    sorted(p.name for p in FLOWS.glob("*.json") if not p.name.startswith("sub-")),
)
def test_every_branch_a_run_takes_is_a_branch_of_its_workflow(flow: str) -> None:
    """`taken` and `branches` name the same decision points: a run never takes a branch the
    coverage report does not list."""
    engine = offline_engine()
    workflow = engine.load(FLOWS / flow)
    listed = {b.key for b in branches(engine.compile(workflow))}
    job, _ = run_to_rest(offline_engine(), workflow, {}, {}, auto_approve=True)
    assert taken(job.scheduler) <= listed
