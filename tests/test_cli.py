"""The `flowgraph` command through a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, FLOWS

ROOT = Path(__file__).parent.parent


def flowgraph(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {}), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def job_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    envelope = json.loads(result.stdout)
    assert list(envelope) == ["job"]
    job: dict[str, Any] = envelope["job"]
    return job


def test_validate_accepts_every_example() -> None:
    for example in sorted(EXAMPLES.glob("*.json")):
        if example.name.endswith((".decisions.json", ".flowtest.json")):
            continue
        result = flowgraph("validate", str(example))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"valid: {example}")
        # no warnings (every declared input is read); an export says it was published
        published = example.name.endswith(".export.json")
        assert result.stderr.startswith("note: ") if published else result.stderr == ""
        assert len(result.stderr.splitlines()) == published


def test_validate_lists_every_problem_one_a_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "flow": [
                    {
                        "id": "a",
                        "type": "transform",
                        "logic": {"transform": "1"},
                        "dependsOn": ["ghost"],
                    },
                    {"id": "a", "type": "logic"},
                ]
            }
        )
    )
    result = flowgraph("validate", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "error: flow is invalid"
    assert "flow[0].dependsOn[0]: unknown node `ghost` in `dependsOn`" in lines
    assert "flow[1].id: duplicate node id `a` (first at flow[0])" in lines
    assert "Traceback" not in result.stderr


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"flow": [\n  {"id": "a",, }\n]}')
    result = flowgraph("run", str(bad), "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert f"{bad}: malformed JSON at line 2, column 14" in result.stderr


def test_missing_file_is_a_clear_error() -> None:
    result = flowgraph("run", "nowhere.json")
    assert result.returncode == 2
    assert "no such file `nowhere.json`" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_json_prints_only_the_envelope() -> None:
    result = flowgraph(
        "run",
        "examples/branching.json",
        "--input",
        "mode=quality",
        "--input",
        "prompt=a red fox",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    job = job_of(result)
    assert job["status"] == "success"
    assert job["metadata"]["input"] == {"prompt": "a red fox", "mode": "quality"}
    statuses = {n["id"]: n["status"] for n in job["metadata"]["flow"]}
    assert statuses == {
        "check": "success",
        "gen_fast": "skipped",
        "gen_quality": "success",
        "upscale": "success",
    }


def test_input_values_parse_as_json_when_they_can(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"subjects": ["from file"], "style": "oil"}))
    result = flowgraph(
        "run",
        "examples/fan-out.json",
        "--inputs",
        str(inputs),
        "--input",
        'subjects=["a", "b"]',
        "--json",
    )
    job = job_of(result)
    assert job["metadata"]["input"] == {"subjects": ["a", "b"], "style": "oil"}
    assert [n["output"] for n in job["metadata"]["flow"] if n["id"].startswith("compose#")] == [
        "a, oil, plate 1",
        "b, oil, plate 2",
    ]
    result = flowgraph("run", str(FLOWS / "resolution-order.json"), "--input", "given=12", "--json")
    assert result.returncode == 2
    assert "input `given` must be a string, got `12`" in result.stderr
    result = flowgraph(
        "run", str(FLOWS / "resolution-order.json"), "--input", 'given="12"', "--json"
    )
    assert job_of(result)["metadata"]["input"] == {"given": "12"}


def test_invalid_inputs_exit_2_with_every_problem_and_empty_stdout() -> None:
    result = flowgraph(
        "run",
        "examples/branching.json",
        "--input",
        "mode=slow",
        "--input",
        "colour=red",
        "--input",
        "oops",
        "--json",
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "`--input oops` is not NAME=VALUE" in result.stderr
    result = flowgraph(
        "run", "examples/branching.json", "--input", "mode=slow", "--input", "colour=red"
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "inputs.colour: unknown input `colour`" in result.stderr
    assert (
        'inputs.mode: input `mode` must be one of ["fast", "quality"], got `slow`' in result.stderr
    )


def test_failure_exit_1_and_keep_going() -> None:
    result = flowgraph("run", "examples/fan-out.json", "--fail", "gen", "--json")
    assert result.returncode == 1
    job = job_of(result)
    assert job["status"] == "failure"
    assert job["metadata"]["error"].startswith("node `gen#")
    result = flowgraph("run", str(FLOWS / "for-each-failure.json"), "--keep-going", "--json")
    job = job_of(result)
    assert result.returncode == 1
    assert {n["id"]: n["status"] for n in job["metadata"]["flow"]}["independent"] == "success"


def test_a_job_waiting_at_a_gate_exits_3_and_says_how_to_continue() -> None:
    result = flowgraph("run", "examples/approval.json", "--json")
    assert result.returncode == 3
    assert job_of(result)["status"] == "in-progress"
    assert "waiting at a gate:\ngate `review` (user-approval) is waiting" in result.stderr
    result = flowgraph("run", "examples/approval.json", "--auto-approve", "--json")
    assert result.returncode == 0
    assert job_of(result)["status"] == "success"


def test_decisions_file_template_ids_prefixes_refusals_and_unused_entries(tmp_path: Path) -> None:
    decisions = tmp_path / "decisions.json"
    decisions.write_text(json.dumps({"gate": "approve", "gate#1": "reject"}))
    result = flowgraph(
        "run", str(FLOWS / "gates-in-loop.json"), "--decisions", str(decisions), "--json"
    )
    job = job_of(result)
    statuses = {n["id"]: n["status"] for n in job["metadata"]["flow"]}
    assert statuses["gate#1"] == "rejected"
    assert job["status"] == "canceled" and result.returncode == 1
    # a real gate that never waited: a warning
    decisions.write_text(json.dumps({"review": "reject", "choose": {"select": [0]}}))
    result = flowgraph("run", str(FLOWS / "gates.json"), "--decisions", str(decisions), "--json")
    assert result.returncode == 1
    assert "decision for `choose` was not used (no such gate waited)" in result.stderr
    decisions.write_text(json.dumps({"review": "approve", "choose": {"select": [7]}}))
    result = flowgraph("run", str(FLOWS / "gates.json"), "--decisions", str(decisions), "--json")
    assert result.returncode == 3
    assert "refused: user-selection `choose`: index `7` is out of range" in result.stderr
    assert {n["id"]: n["status"] for n in job_of(result)["metadata"]["flow"]}[
        "choose"
    ] == "processing"
    decisions.write_text(json.dumps({"review": "maybe"}))
    result = flowgraph("run", str(FLOWS / "gates.json"), "--decisions", str(decisions))
    assert result.returncode == 2
    assert "review: decision `maybe` is not `approve`, `reject`" in result.stderr


def test_decisions_that_name_no_gate_are_refused_before_anything_runs(tmp_path: Path) -> None:
    decisions = tmp_path / "decisions.json"
    decisions.write_text(
        json.dumps({"reveiw": "approve", "draft": "approve", "choose#1": {"select": [0]}})
    )
    db = tmp_path / "jobs.db"
    result = flowgraph(
        "run", str(FLOWS / "gates.json"), "--decisions", str(decisions), "--db", str(db)
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "error: decisions are invalid",
        "reveiw: names no node of the workflow; did you mean `review`?",
        "draft: `draft` is a custom-model node; decisions are for gates "
        "(user-approval, user-selection): review, choose",
        "choose#1: `choose` is in no for-each: it has no clones; name it `choose`",
    ]
    assert "no jobs" in flowgraph("jobs", "--db", str(db)).stderr  # nothing was created


def test_a_declared_input_no_node_reads_is_a_warning(tmp_path: Path) -> None:
    document = json.loads((EXAMPLES / "fan-out.json").read_text())
    document["inputs"].append({"name": "variations", "type": "number", "default": 4})
    path = tmp_path / "unused.json"
    path.write_text(json.dumps(document))
    warning = (
        "warning: inputs[2]: workflow input `variations` is declared but no node reads it "
        '(no input has `"ref": {"node": "workflow", "name": "variations"}`)'
    )
    result = flowgraph("validate", str(path))
    assert result.returncode == 0
    assert result.stderr.splitlines() == [warning]
    assert result.stdout.startswith(f"valid: {path} (4 nodes, 1 loop)")
    as_json = json.loads(flowgraph("validate", str(path), "--json").stdout)
    assert as_json["valid"] is True
    assert as_json["warnings"] == [
        {"path": "inputs[2]", "nodeId": None, "message": warning.split(": ", 2)[2]}
    ]
    result = flowgraph("run", str(path), "--db", ":memory:", "--json")
    assert result.returncode == 0
    assert warning in result.stderr.splitlines()


def test_a_workflow_input_value_without_default_is_a_warning(tmp_path: Path) -> None:
    document = json.loads((EXAMPLES / "fan-out.json").read_text())
    subjects = document["inputs"][0]
    subjects["value"] = subjects.pop("default")  # the fallback is `default`; `value` is not
    path = tmp_path / "value.json"
    path.write_text(json.dumps(document))
    result = flowgraph("validate", str(path))
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "warning: inputs[0].value: workflow input `subjects` has a `value` but no `default`: "
        "a run that does not give it leaves it unset (the fallback of a workflow input is "
        "`default`)"
    ]
    # what the warning foretells: the loop has nothing to iterate
    result = flowgraph("run", str(path), "--db", ":memory:", "--json")
    assert result.returncode == 1
    loop = next(n for n in job_of(result)["metadata"]["flow"] if n["id"] == "loop")
    assert loop["status"] == "failure"
    assert "no input holds an array to iterate" in loop["statusReason"]


def test_required_true_says_how_to_write_the_rule(tmp_path: Path) -> None:
    document = json.loads((EXAMPLES / "fan-out.json").read_text())
    document["inputs"][0]["required"] = True
    path = tmp_path / "required.json"
    path.write_text(json.dumps(document))
    result = flowgraph("validate", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines()[1] == (
        'inputs[0].required: `required` is an object of rules: write {"always": true} (got `true`)'
    )


def test_validate_json_lists_the_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "flow": [
                    {
                        "id": "a",
                        "type": "transform",
                        "inputs": [{"name": "subject", "type": "string", "value": "a fox"}],
                        "logic": {"transform": "subjet + '!'"},
                    }
                ]
            }
        )
    )
    result = flowgraph("validate", str(bad), "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "valid": False,
        "problems": [
            {
                "path": "flow[0].logic.transform",
                "nodeId": "a",
                "message": "`subjet` is not an input of this node; did you mean `subject`?",
            }
        ],
        "warnings": [],  # the same keys as a valid answer
    }


def test_jobs_refuses_an_unknown_status_and_lists_the_jobs_waiting_at_a_gate(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "jobs.db")
    parked = flowgraph("run", "examples/approval.json", "--db", db, "--json")
    assert parked.returncode == 3
    parked_id = job_of(parked)["jobId"]
    assert flowgraph("run", "examples/fan-out.json", "--db", db).returncode == 0
    result = flowgraph("jobs", "--status", "bogus", "--db", db)
    assert result.returncode == 2
    assert "'bogus' is not one of" in result.stderr
    waiting = json.loads(flowgraph("jobs", "--status", "waiting", "--json", "--db", db).stdout)
    assert [(j["jobId"], j["waitingAt"]) for j in waiting["jobs"]] == [(parked_id, ["review"])]
    listed = flowgraph("jobs", "--db", db).stdout
    assert "waiting at" in listed and "review" in listed
    assert len(json.loads(flowgraph("jobs", "--json", "--db", db).stdout)["jobs"]) == 2


def test_graph_formats() -> None:
    mermaid = flowgraph("graph", "examples/fan-out.json", "--format", "mermaid")
    assert mermaid.returncode == 0
    assert mermaid.stdout.startswith("flowchart LR")
    assert 'subgraph n_loop_body ["for-each loop"]' in mermaid.stdout
    dot = flowgraph("graph", "examples/branching.json", "--format", "dot")
    assert 'label="case 2: quality"' in dot.stdout
    as_json = json.loads(flowgraph("graph", "examples/branching.json", "--format", "json").stdout)
    assert {
        "source": "check",
        "target": "gen_fast",
        "kinds": ["branch"],
        "label": "case 1: fast",
    } in as_json["edges"]


def test_human_summary_on_stdout() -> None:
    result = flowgraph("run", "examples/branching.json", "--input", "mode=fast")
    assert result.returncode == 0
    assert "gen_fast" in result.stdout and "success" in result.stdout
    assert "branch `gen_quality` of `check` not taken" in result.stdout


@pytest.mark.parametrize(
    "example",
    ["branching.json", "fan-out.json", "transform.json", "creative-app.json", "approval.json"],
)
def test_every_example_runs_offline(example: str) -> None:
    args = {
        "branching.json": ["--input", "mode=fast"],
        "creative-app.json": ["--input", "subject=a kite", "--auto-approve"],
    }.get(example, [])
    result = flowgraph("run", f"examples/{example}", "--json", "--auto-approve", *args)
    job = job_of(result)
    expected = {"creative-app.json": "in-progress"}.get(example, "success")
    assert job["status"] == expected, result.stderr


def test_run_loads_sub_workflows_from_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "wflow_child.json").write_text((EXAMPLES / "transform.json").read_text())
    parent = tmp_path / "parent.json"
    parent.write_text(
        json.dumps(
            {
                "flow": [
                    {
                        "id": "sub",
                        "type": "workflow",
                        "workflowId": "wflow_child",
                        "inputs": [{"name": "subject", "type": "string", "value": "a lantern"}],
                    }
                ]
            }
        )
    )
    result = flowgraph("run", str(parent), "--workflows", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    sub = job_of(result)["metadata"]["flow"][0]
    assert sub["status"] == "success" and sub["assets"][0]["assetId"].startswith("asset_")
    assert sub["output"] == {"tag_count": {"output": 4}, "gen": {}}
    # the node's jobId is the child job's: `flowgraph jobs` finds it, and it names its parent
    db = str(tmp_path / "jobs.db")
    stored = flowgraph("run", str(parent), "--workflows", str(folder), "--db", db, "--json")
    parent_job = job_of(stored)
    child_id = parent_job["metadata"]["flow"][0]["jobId"]
    child = job_of(flowgraph("jobs", child_id, "--db", db, "--json"))
    assert child["jobId"] == child_id and child["status"] == "success"
    assert child["metadata"]["workflowJobId"] == parent_job["jobId"]
    missing = flowgraph("run", str(parent), "--json")
    assert missing.returncode == 1
    assert "unknown workflow `wflow_child`" in job_of(missing)["metadata"]["error"]
    (folder / "broken.json").write_text("{")
    broken = flowgraph("run", str(parent), "--workflows", str(folder))
    assert broken.returncode == 2 and "broken.json" in broken.stderr


def test_an_editor_export_in_the_workflows_folder_is_named_without_export(
    tmp_path: Path,
) -> None:
    """`storyboard.export.json` is the workflow `storyboard`; a second file giving the same id
    is an error naming both files, not one silently replacing the other."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "storyboard.export.json").write_text(
        (EXAMPLES / "storyboard.export.json").read_text()
    )
    # test files and decisions files beside the workflows are passed over
    (folder / "storyboard.flowtest.json").write_text('{"workflow": "x", "cases": []}')
    (folder / "storyboard.decisions.json").write_text('{"approve2": "approve"}')
    parent = tmp_path / "parent.json"
    node = {"id": "board", "type": "workflow", "workflowId": "storyboard"}
    node["inputs"] = [{"name": "text4", "type": "string", "value": "a bridge\na tower"}]
    parent.write_text(json.dumps({"flow": [node]}))
    result = flowgraph("run", str(parent), "--workflows", str(folder), "--auto-approve", "--json")
    assert result.returncode == 0, result.stderr
    board = job_of(result)["metadata"]["flow"][0]
    assert board["status"] == "success" and len(board["assets"]) >= 2
    (folder / "storyboard.json").write_text((EXAMPLES / "transform.json").read_text())
    twice = flowgraph("run", str(parent), "--workflows", str(folder))
    assert twice.returncode == 2
    assert "flowtest.json" not in twice.stderr and "decisions" not in twice.stderr
    assert "`storyboard.export.json` gives workflow id `storyboard` too" in twice.stderr


def test_a_waiting_gate_says_what_it_decides_and_how_to_continue(tmp_path: Path) -> None:
    """Candidates with their files and the rule; what an approval approves and holds back;
    one command a line, each of which works as printed."""
    db = str(tmp_path / "jobs.db")
    assets = tmp_path / "assets"
    result = flowgraph(
        "run", str(FLOWS / "gates.json"), "--db", db, "--assets-dir", str(assets), "--json"
    )
    assert result.returncode == 3
    job_id = job_of(result)["jobId"]
    lines = result.stderr.splitlines()
    assert lines[:4] == [
        f"job {job_id} is waiting at a gate:",
        "gate `review` (user-approval) is waiting",
        lines[2],
        "  holds back: choose",
    ]
    assert lines[2].startswith("  approves: draft (custom-model): asset_")
    assert f"{assets.resolve().as_uri()}/dry-run-" in lines[2]
    commands = [line.strip() for line in lines if line.startswith("  flowgraph ")]
    assert commands == [
        f"flowgraph approve {job_id} review --db {db}",
        f"flowgraph reject {job_id} review --db {db}",
        f"flowgraph jobs {job_id} --db {db}",
        f"flowgraph resume {job_id} --db {db}",
        f"flowgraph cancel {job_id} --db {db}",
    ]
    approved = flowgraph(*commands[0].split()[1:])
    assert approved.returncode == 3, approved.stderr
    lines = approved.stderr.splitlines()
    assert "gate `choose` (user-selection) is waiting: choose 1 to 2 of 3 items" in lines
    candidates = [line for line in lines if line.startswith("  [")]
    assert len(candidates) == 3
    for index, line in enumerate(candidates):
        assert line.startswith(f"  [{index}] asset_")
        url = line.split("  ")[-1]
        assert url.startswith("file://") and Path(url.removeprefix("file://")).is_file()
    select = next(line.strip() for line in lines if line.strip().startswith("flowgraph select"))
    assert select == f"flowgraph select {job_id} choose 0 --db {db}"  # min 1: one index
    shown = flowgraph("jobs", job_id, "--db", db).stdout
    assert "gate `choose` (user-selection) is waiting: choose 1 to 2 of 3 items" in shown
    explained = flowgraph("explain", job_id, "--node", "choose", "--db", db)
    assert candidates[2].strip() in explained.stdout
    as_json = json.loads(
        flowgraph("explain", job_id, "--node", "choose", "--db", db, "--json").stdout
    )
    assert as_json["gates"]["choose"][0].startswith("gate `choose`")
    assert flowgraph(*select.split()[1:]).returncode == 0


def test_loop_templates_are_counted_apart_from_skipped_nodes() -> None:
    result = flowgraph(
        "run",
        "examples/creative-app.json",
        "--input",
        "subject=a kite",
        "--input",
        "style=watercolor",
        "--db",
        ":memory:",
    )
    assert result.returncode == 3
    # 4 upscale_photo clones were skipped by the branch; 6 templates are not "skipped"
    assert "nodes: 22 success, 4 skipped, 1 processing, 1 pending; 6 loop templates" in (
        result.stdout
    )
    assert "│ template   │ loop template of `variations`" in result.stdout


def test_log_format_json_keeps_stderr_one_json_event_a_line(tmp_path: Path) -> None:
    report = tmp_path / "job.html"
    result = flowgraph(
        "run",
        "examples/fan-out.json",
        "--db",
        ":memory:",
        "--log-format",
        "json",
        "--report",
        str(report),
        "--json",
    )
    assert result.returncode == 0
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert events[-1]["event"] == "report" and events[-1]["path"] == str(report)
    assert report.is_file()


def test_log_format_json_says_notes_warnings_and_gate_hints_as_json_events() -> None:
    """A webapp export's note, a warning, and the hints of a parked job: each one JSON event
    with its level, among the transitions."""
    result = flowgraph(
        "run",
        "examples/storyboard.export.json",
        "--db",
        ":memory:",
        "--fail",
        "nope",
        "--log-format",
        "json",
    )
    assert result.returncode == 3
    events = [json.loads(line) for line in result.stderr.splitlines()]
    messages = {e["message"].partition(":")[0]: e for e in events if e["event"] == "message"}
    assert messages["note"]["level"] == "info" and "editorInfo" in messages["note"]["message"]
    assert messages["warning"]["level"] == "warning"
    assert "`--fail nope` names no node" in messages["warning"]["message"]
    hints = messages[next(key for key in messages if key.startswith("job "))]
    assert "is waiting at a gate" in hints["message"] and "--auto-approve" in hints["message"]
    assert any(e["event"] == "node" for e in events)
    invalid = flowgraph(
        "run", "examples/branching.json", "--input", "mode=bogus", "--log-format", "json"
    )
    assert invalid.returncode == 2
    [error] = [json.loads(line) for line in invalid.stderr.splitlines()]
    assert error["level"] == "error" and "input `mode` must be one of" in error["message"]


def test_serve_on_a_port_in_use_says_so_and_exits_4() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = flowgraph("serve", "--port", str(port), "--db", ":memory:")
    assert result.returncode == 4
    assert result.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: address already in use; "
        "is another `flowgraph serve` running? Choose another port with --port"
    )


def test_a_large_job_prints_and_stores_the_same_document(tmp_path: Path) -> None:
    """A job of more than 20,000 nodes has its document encoded into a temporary file: the
    CLI prints it from there, the store holds the same bytes, and no file is left behind."""
    flow_path = tmp_path / "large.json"
    count = 20_001
    flow_path.write_text(
        json.dumps(
            {
                "flow": [
                    {"id": "loop", "type": "for-each", "count": count, "loopBodyNodeIds": ["m"]},
                    {"id": "m", "type": "custom-model", "modelId": "model_x"},
                ]
            }
        )
    )
    spool = tmp_path / "tmp"
    spool.mkdir()
    db = str(tmp_path / "jobs.db")
    result = flowgraph("run", str(flow_path), "--json", "--db", db, env={"TMPDIR": str(spool)})
    assert result.returncode == 0, result.stderr
    job = job_of(result)
    assert len(job["metadata"]["flow"]) == count + 2
    assert job["metadata"]["flow"][-1]["id"] == f"m#{count - 1}"
    shown = flowgraph("jobs", job["jobId"], "--db", db, "--json")
    assert shown.stdout == result.stdout
    assert list(spool.iterdir()) == []


def test_what_a_new_user_tripped_on(tmp_path: Path) -> None:
    """Integers stay integers after a job continues; `jobs JOB --json` prints what `run --json`
    prints; long messages are one line in a pipe; an approval sent to a selection gate says how
    to select; an empty listing prints nothing on stdout."""
    db = str(tmp_path / "jobs.db")
    parked = flowgraph("run", str(FLOWS / "gates.json"), "--db", db, "--auto-approve", "--json")
    assert parked.returncode == 3
    job_id = job_of(parked)["jobId"]
    refused = flowgraph("approve", job_id, "choose", "--db", db)
    assert refused.returncode == 2
    assert f"`flowgraph select {job_id} choose INDEX ... --db {db}`" in refused.stderr
    selected = flowgraph("select", job_id, "choose", "0", "--db", db, "--json")
    assert selected.returncode == 0, selected.stderr
    choose = next(n for n in job_of(selected)["metadata"]["flow"] if n["id"] == "choose")
    bounds = [(i.get("min"), i.get("max")) for i in choose["inputs"] if "min" in i]
    assert bounds and all(type(v) is int for pair in bounds for v in pair), bounds
    shown = flowgraph("jobs", job_id, "--db", db, "--json")
    assert shown.stdout == selected.stdout  # the stored bytes, as the run printed them
    explained = flowgraph("explain", job_id, "--node", "choose", "--db", db).stdout
    assert "choose success ← decided: select 0" in explained  # which items were chosen

    limited = flowgraph("run", "examples/fan-out.json", "--db", ":memory:", "--max-iterations", "1")
    error = next(line for line in limited.stdout.splitlines() if line.startswith("error:"))
    assert error.endswith("or Engine(limits=Limits(max_iterations=...)))")  # not broken
    assert "the limit is 1 iteration per loop" in error

    empty = flowgraph("jobs", "--db", str(tmp_path / "empty.db"), "--status", "waiting")
    assert empty.returncode == 0 and empty.stdout == ""
    assert "no jobs with status `waiting`" in empty.stderr


# Modules a command imports only when it uses them; each case below names those it uses.
_WATCHED = (
    "networkx",
    "pydantic",
    "engine.api",
    "rich",
    "rich.progress",
    "jinja2",
    "prompt_toolkit",
    "cel.cli",
    "anyio.to_process",
    "engine.cli.terminal",
    "engine.cli.progress",
    "engine.compile.publish",
    "engine.views.report",
    "engine.views.graph",
    "engine.views.explain",
    "engine.views.job_view",
    "engine.views.gates",
    "engine.testing",
    "engine.costs",
    "engine.server",
)
_IMPORTED_BY_COMMAND = f"""
import sys
from engine.cli.app import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print(" ".join(m for m in {_WATCHED!r} if m in sys.modules), file=sys.stderr)
"""
ENGINE = "networkx pydantic engine.api"
SUCCESS = '"jobType":"workflow","status":"success"'


@pytest.mark.parametrize(
    ("args", "prints", "imported"),
    [
        # no template, JSON on a pipe: the engine and nothing it does not use
        (["run", "fan-out.json", "--json"], SUCCESS, ENGINE),
        # templates with linear filters: jinja2, evaluated inline (no worker process)
        (["run", "transform.json", "--json"], SUCCESS, f"{ENGINE} jinja2"),
        # a template with a loop: jinja2, and the worker processes its time budget runs it in
        (
            ["run", "computing-template.json", "--json"],
            SUCCESS,
            f"{ENGINE} jinja2 anyio.to_process",
        ),
        # an export: the publisher, and rich for the note on stderr that says it was published
        # (its chained CEL comprehensions over a few lines run inline)
        (
            ["run", "storyboard.export.json", "--json"],
            SUCCESS,
            f"{ENGINE} rich engine.compile.publish",
        ),
        # the summary table on a pipe: rich, and no progress bar
        (["run", "fan-out.json"], ": success", f"{ENGINE} rich engine.cli.terminal"),
        (["--help"], "Usage", "rich"),  # typer's help panels; none of the engine
        (["--version"], "flowgraph ", ""),
    ],
)
def test_a_command_imports_only_what_it_uses(args: list[str], prints: str, imported: str) -> None:
    """Fails when a module gains an import at its top that a command does not need."""
    if args[0] == "run":
        flow = EXAMPLES / args[1] if (EXAMPLES / args[1]).exists() else FLOWS / args[1]
        args = ["run", str(flow), *args[2:], "--auto-approve", "--db", ":memory:"]
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTED_BY_COMMAND, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert prints in done.stdout, done.stderr
    assert done.stderr.strip().splitlines()[-1:] == ([imported] if imported else [])


def test_mermaid_shows_titles_and_conditions_as_typed(tmp_path: Path) -> None:
    """Text that mermaid reads as markup or syntax (`<`, `"`, `|`, `&`) is written as its
    entity codes, so a title or a CEL condition cannot break the chart or inject HTML."""
    flow = {
        "flow": [
            {
                "id": "check",
                "type": "logic",
                "title": 'score < 5 & "best"',
                "inputs": [{"name": "n", "type": "number", "value": 3}],
                "logic": {"cases": [{"condition": "n > 1 || n < -1", "value": "big"}]},
            },
            {"id": "big", "type": "custom-model", "modelId": "model_<b>x</b>"},
        ]
    }
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow))
    result = flowgraph("graph", str(path), "--format", "mermaid")
    assert result.returncode == 0, result.stderr
    assert 'n_check{"check<br/>score #lt; 5 #amp; #quot;best#quot;<br/><small>logic</small>"}' in (
        result.stdout
    )
    assert '-->|"case 1: n #gt; 1 #124;#124; n #lt; -1"| n_big' in result.stdout
    assert "model_#lt;b#gt;x#lt;/b#gt;" in result.stdout and "<b>" not in result.stdout


def test_a_command_builds_only_itself_and_the_rest_stay_reachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`flowgraph run ...` builds the click parameters of `run` alone (typer builds every
    registered command's on each call); help, a mistyped name and every other command still
    see them all."""
    from typer.main import get_command_name

    from engine.cli import app as cli_app

    def names(argv: list[str]) -> list[str]:
        return [
            info.name or get_command_name(info.callback.__name__)
            for info in cli_app.invoked_alone(argv)
            if info.callback is not None
        ]

    every = names(["flowgraph", "--help"])
    assert {"run", "serve", "jobs", "explain", "approve", "test", "bench"} <= set(every)
    assert names(["flowgraph", "run", "flow.json", "--json"]) == ["run"]
    assert names(["flowgraph", "-V", "jobs"]) == ["jobs"]
    assert names(["flowgraph", "rn", "flow.json"]) == every  # "Did you mean 'run'?"
    assert names(["flowgraph"]) == every
    registered = list(cli_app.app.registered_commands)
    seen: list[list[Any]] = []
    monkeypatch.setattr(sys, "argv", ["flowgraph", "jobs", "--db", "x.db"])
    monkeypatch.setattr(cli_app, "run_app", lambda: seen.append(cli_app.app.registered_commands))
    cli_app.main()
    assert [info.callback.__name__ for info in seen[0]] == ["jobs"]
    assert cli_app.app.registered_commands == registered  # as they were, for the next call
