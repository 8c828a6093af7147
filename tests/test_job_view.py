"""The job page's data: loop boxes and rows, edges kept at the level that holds both ends,
branches taken and not, merges, times, and loops past MAX_DRAWN drawn once per template."""

from __future__ import annotations

from typing import Any

from conftest import EXAMPLES, flow, run, run_with_events

from engine import Engine
from engine.views import job_view as job_view_module
from engine.views.explain import Explainer
from engine.views.job_view import job_view, plan_view


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def edges(view: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["source"], e["target"]): e for e in view["edges"]}


def test_each_iteration_is_a_row_of_its_loop_box_and_branches_say_which_was_taken() -> None:
    job = run("for-each-branches.json")
    view = job_view(job.scheduler, title="t")
    containers = by_id(view["containers"])
    assert containers["loop:loop"]["parent"] is None
    assert containers["loop:loop"]["iterations"] == 4
    rows = sorted(c["id"] for c in view["containers"] if c["kind"] == "row")
    assert rows == [f"row:loop:{i}" for i in range(4)]
    nodes = by_id(view["nodes"])
    assert nodes["parity#1"]["parent"] == "row:loop:1" and nodes["loop"]["parent"] is None
    drawn = edges(view)
    assert drawn[("parity#1", "even#1")]["label"] == "case 1: n % 2 == 0"
    assert drawn[("parity#1", "even#1")]["taken"] is True
    assert (
        drawn[("parity#1", "odd#1")] | {"taken": False, "label": "default"}
        == drawn[("parity#1", "odd#1")]
    )
    assert drawn[("parity#1", "odd#1")]["parent"] == "row:loop:1"
    # from inside the loop to outside: the edge leaves the loop's box
    assert drawn[("loop:loop", "evens")]["parent"] is None
    assert drawn[("loop", "loop:loop")]["kind"] == "loop"
    assert view["details"]["merge#1"]["merge"] == [{"input": "x", "from": "even#1"}]
    assert view["details"]["merge#0"]["merge"] == [{"input": "x", "from": "odd#0"}]


def test_a_loop_with_a_failed_iteration_counts_it_as_failed() -> None:
    job = run("for-each-failure.json", keep_going=True)
    view = job_view(job.scheduler, title="t")
    assert by_id(view["containers"])["loop:loop"]["counts"] == {"success": 3, "failure": 1}
    assert by_id(view["nodes"])["loop"]["status"] == "failure"
    assert view["details"]["divide#2"]["explanation"] == (
        "divide#2 failure ← error: expression `12 / n` failed: division by zero in CEL expression"
    )


def test_times_come_from_the_event_log_and_the_timeline_groups_loops() -> None:
    job, transitions = run_with_events(EXAMPLES / "creative-app.json", {"subject": "a kite"})
    view = job_view(job.scheduler, title="t", transitions=transitions)
    generate = view["details"]["generate#1"]
    assert generate["started"] <= generate["ended"] and generate["attempts"] == 1
    assert (
        view["details"]["pick"]["gate"]["min"] == 1 and view["details"]["pick"]["gate"]["max"] == 2
    )
    assert len(view["details"]["pick"]["gate"]["items"]) == 4
    assert view["details"]["pick"]["gate"]["holdsBack"] == ["publish"]
    bars = by_id(view["timeline"])
    assert bars["generate#1"]["group"] == "variations" and bars["compose"]["group"] is None
    assert "publish" not in bars  # not started
    assert view["job"]["started"] is not None and view["job"]["ended"] is None


def test_past_max_drawn_each_loop_is_drawn_once_per_template(monkeypatch: Any) -> None:
    monkeypatch.setattr(job_view_module, "MAX_DRAWN", 10)
    job = run("for-each-branches.json")
    view = job_view(job.scheduler, title="t")
    assert view["collapsed"] is True
    nodes = by_id(view["nodes"])
    assert nodes["even"]["collapsed"] and nodes["even"]["counts"] == {"success": 2, "skipped": 2}
    assert nodes["even"]["parent"] == "row:loop:*"
    assert view["clones"]["odd"] == [
        [f"odd#{i}", s] for i, s in enumerate(["success", "skipped"] * 2)
    ]
    assert edges(view)[("parity", "even")]["taken"] is None  # the counts say how it went
    explained = Explainer(job.scheduler).explain("even").line()  # as `flowgraph explain`
    assert view["details"]["even"]["explanation"] == explained
    assert explained == "even template (4 iterations: 2 skipped, 2 success)"
    assert "even#0" not in view["details"]  # a clone's panel is asked for on its own


def test_a_plan_draws_each_loop_body_as_one_row() -> None:
    plan = Engine().compile(flow("for-each-branches.json"))
    view = plan_view(plan, title="plan")
    assert {c["id"] for c in view["containers"]} == {"loop:loop", "row:loop:*"}
    assert by_id(view["nodes"])["merge"]["parent"] == "row:loop:*"
    assert edges(view)[("parity", "odd")]["label"] == "default"
    assert edges(view)[("loop:loop", "evens")]["parent"] is None


def test_the_server_imports_the_console_views_only_when_a_page_asks() -> None:
    import subprocess
    import sys

    from engine.server.launcher import ROOT

    script = (
        "import sys\n"
        "from engine.server import create_app\n"
        "views = ('engine.views.job_view', 'engine.views.explain', 'engine.views.report')\n"
        "print(' '.join(m for m in views if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
