"""The explanation text for each kind of decision, and the events that carry it."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
from conftest import decide, embedded_view, flow, make_engine, run
from test_cli import flowgraph

from engine import DryRunExecutor
from engine.views.explain import Explainer


def lines(job: Any) -> dict[str, str]:
    return {e.node_id: e.line() for e in Explainer(job.scheduler).explain_all()}


def test_literal_case_equal_mismatch_and_taken_branch() -> None:
    text = lines(run("explain-cases.json"))
    decision = "check chose `output_quality` because condition=`quality` matched case 2"
    assert text["check"] == f"check success ← {decision}"
    assert text["gen_fast"] == (
        "gen_fast skipped ← branch `output_fast` of `check` not taken; it chose `output_quality`"
        f" ← {decision}"
    )
    assert text["gen_quality"] == (
        f"gen_quality success ← branch `output_quality` of `check` taken ← {decision}"
    )


def test_a_branch_that_reads_its_if_else_through_equal_too_says_it_once() -> None:
    """`paint` is the default branch of `route` and reads it with `equal: paint`."""
    text = lines(run("scenario-generations.json", {"subjects": ["a fox"]}))
    assert text["paint"] == (
        "paint success ← branch `paint` of `route` taken"
        " ← route chose `paint`: no case matched, so the default"
    )


def test_cel_case_and_default() -> None:
    text = lines(run("explain-cases.json", {"n": 3}))
    assert text["size"] == "size success ← size chose `small` because case 1 `n < 10` was true"
    text = lines(run("explain-cases.json"))
    assert text["size"] == "size success ← size chose `large`: no case matched, so the default"
    assert text["on_small"] == (
        "on_small skipped ← branch `small` of `size` not taken; it chose `large`"
        " ← size chose `large`: no case matched, so the default"
    )


def test_conditional_merge_and_all_skipped_merge() -> None:
    text = lines(run("explain-cases.json"))
    assert text["merge"] == "merge success"
    assert text["merge_none"].startswith(
        "merge_none skipped ← input `x`: no branch matched (`gen_fast` skipped, `on_small` skipped)"
        " ← [gen_fast skipped ← branch `output_fast` of `check` not taken"
    )
    assert (
        "on_small skipped ← branch `small` of `size` not taken; it chose `large`"
        in text["merge_none"]
    )


def test_depends_on_skip_and_empty_loop() -> None:
    text = lines(run("explain-cases.json"))
    assert text["after_fast"].startswith(
        "after_fast skipped ← `dependsOn` `gen_fast` was skipped ← gen_fast skipped"
        " ← branch `output_fast` of `check` not taken"
    )
    assert text["loop"] == "loop success ← 0 iterations: the array was empty"
    assert text["body"] == "body skipped ← loop template of `loop`"


def test_failure_propagation_names_the_root_error() -> None:
    job = run(
        "explain-cases.json", dry_run=DryRunExecutor(fail_nodes={"gen_quality"}), keep_going=True
    )
    text = lines(job)
    assert text["gen_quality"] == (
        "gen_quality failure ← error: executor `dry-run`: dry-run failure injected for `gen_quality` (--fail)"
    )
    assert text["merge"].startswith("merge skipped ← input `img`: no branch matched")
    assert "gen_quality failure ← error: executor `dry-run`" in text["merge"]
    job = run("for-each-failure.json")
    text = lines(job)
    root = (
        "divide#2 failure ← error: expression `12 / n` failed: division by zero in CEL expression"
    )
    assert text["loop"] == f"loop failure ← iteration 2 failed at `divide#2` ← {root}"
    assert text["after"] == (
        f"after skipped ← input `r`: loop `loop` failed ← loop failure ← iteration 2 failed at `divide#2` ← {root}"
    )
    assert text["independent"] == f"independent skipped ← job failed at `divide#2` ← {root}"
    assert text["divide"] == "divide template (4 iterations: 3 success, 1 failure)"


def test_rejected_gate_and_loop_summaries() -> None:
    job = run("gates-in-loop.json")
    decide(job, "gate#0", "approve")
    decide(job, "gate#1", "reject")
    explainer = Explainer(job.scheduler)
    gate = explainer.explain("gate")
    assert gate.line() == "gate template (3 iterations: 1 success, 1 rejected, 1 skipped)"
    clones = {c.node_id: c.line() for c in gate.clones}
    assert clones["gate#0"] == "gate#0 success ← decided: approve"
    assert clones["gate#1"] == "gate#1 rejected ← rejected by decision"
    assert (
        clones["gate#2"] == "gate#2 skipped ← gate `gate#1` rejected ← gate#1 rejected by decision"
    )
    waiting = run("gates.json")
    assert lines(waiting)["review"] == "review processing ← waiting for a decision"
    assert lines(waiting)["choose"] == "choose pending ← waiting for `review`"


def test_transitions_carry_the_decisive_values() -> None:
    heard: list[Any] = []
    engine = make_engine()
    engine.subscribe(heard.append)
    anyio.run(engine.run, flow("explain-cases.json"), {})
    transitions = {t.node_id: t for t in heard if t.to_status in ("success", "skipped")}
    assert transitions["check"].details == {
        "form": "literal",
        "condition": "quality",
        "case": 2,
        "caseCondition": "quality",
        "chosen": "output_quality",
    }
    assert transitions["gen_fast"].details == {
        "cause": "equal",
        "input": "gate",
        "node": "check",
        "equal": "output_fast",
        "chose": "output_quality",
    }
    assert transitions["merge_none"].details["cause"] == "conditional"
    assert transitions["merge_none"].details["entries"] == {
        "gen_fast": "skipped",
        "on_small": "skipped",
    }
    assert transitions["after_fast"].details == {
        "cause": "dependsOn",
        "node": "gen_fast",
        "status": "skipped",
    }


def test_explain_cli_for_a_plan_and_a_stored_job(tmp_path: Any) -> None:
    plan = flowgraph("explain", "examples/branching.json", "--input", "mode=quality", "--json")
    assert plan.returncode == 0, plan.stderr
    nodes = {n["id"]: n for n in json.loads(plan.stdout)["nodes"]}
    assert nodes["gen_fast"]["text"] == (
        "gen_fast skipped ← branch `gen_fast` of `check` not taken; it chose `gen_quality`"
        " ← check chose `gen_quality` because condition=`quality` matched case 2"
    )
    db = str(tmp_path / "jobs.db")
    job = json.loads(flowgraph("run", "examples/fan-out.json", "--db", db, "--json").stdout)["job"]
    shown = flowgraph("explain", job["jobId"], "--db", db, "--node", "gen")
    assert shown.returncode == 0
    assert "gen template (3 iterations: 3 success)" in shown.stdout
    assert "  gen#2 success" in shown.stdout
    missing = flowgraph("explain", "job_missing", "--db", db)
    assert missing.returncode == 2 and "neither a file nor a job" in missing.stderr


def test_the_terminal_progress_shows_types_loops_and_gates() -> None:
    import io

    import anyio
    from conftest import make_engine
    from rich.console import Console

    from engine.cli.progress import ProgressDisplay
    from engine.executors import DryRunExecutor

    # generations that take a moment, as real ones do (with none, the dry run answers each
    # call as it starts, and nothing is ever seen running)
    engine = make_engine(dry_run=DryRunExecutor(latency=0.01))
    job = engine.prepare(flow("gates-in-loop.json"))
    display = ProgressDisplay(Console(file=io.StringIO(), force_terminal=True, width=200), job)
    engine.subscribe(display)
    seen: list[str] = []
    engine.subscribe(lambda transition: seen.append(display.detail()))
    anyio.run(engine.advance, job)
    assert "running: 3 | loop loop: 0/3 iterations" in seen  # the three generations at once
    display.update()
    assert display.detail() == "done: custom-model 3 | loop loop: 0/3 iterations | 3 gates waiting"
    task = display.progress.tasks[0]
    assert (
        task.total == len(job.scheduler.instances)
        and task.completed == job.scheduler.terminal_count
    )


def test_graph_html_for_a_plan_and_a_job_and_run_report(tmp_path: Any) -> None:
    plan = flowgraph("graph", "examples/fan-out.json", "--format", "html")
    assert plan.returncode == 0
    assert plan.stdout.startswith("<!doctype html>")
    drawn = embedded_view(plan.stdout)
    assert [n["status"] for n in drawn["nodes"]] == ["pending"] * 4
    assert {c["id"] for c in drawn["containers"]} == {"loop:loop", "row:loop:*"}
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", plan.stdout) is None
    db = str(tmp_path / "jobs.db")
    report = tmp_path / "report.html"
    result = flowgraph(
        "run",
        "examples/branching.json",
        "-i",
        "mode=fast",
        "--db",
        db,
        "--report",
        str(report),
        "--json",
    )
    job_id = json.loads(result.stdout)["job"]["jobId"]
    page = report.read_text()
    assert embedded_view(page)["details"]["gen_quality"]["status"] == "skipped"
    stored = flowgraph(
        "graph", job_id, "--db", db, "--format", "html", "-o", str(tmp_path / "job.html")
    )
    assert stored.returncode == 0
    stored_page = embedded_view((tmp_path / "job.html").read_text())
    assert stored_page["details"]["gen_fast"]["status"] == "success"
    assert stored_page["details"]["gen_fast"]["started"] is not None  # from the event log
