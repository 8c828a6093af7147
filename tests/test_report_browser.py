"""The HTML report in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, run_with_events

from engine.views.report import job_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The creative app parked at its selection gate: a branch, a loop and a gate."""
    job, transitions = run_with_events(EXAMPLES / "creative-app.json", {"subject": "a kite"})
    assert job.waiting and job.waiting[0].id == "pick"
    path = tmp_path_factory.mktemp("report") / "report.html"
    page = job_page(job.scheduler, title="creative app", transitions=transitions)
    path.write_text(page, encoding="utf-8")
    return path, job


def test_the_report_is_the_console_page_without_its_live_parts(
    report: tuple[Path, Any], artifacts: Path
) -> None:
    """One file, nothing loaded from anywhere: the page draws itself offline, and has no
    link to the jobs list, no event stream and no gate buttons."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    path, job = report
    drawn = {
        i.id: i.status.value for i in job.scheduler.instances.values() if not i.is_template_copy
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_FLAGS)
        context = browser.new_context(viewport={"width": 1500, "height": 900})
        requested: list[str] = []

        def record(route: Any) -> None:
            requested.append(route.request.url)
            if route.request.url == path.as_uri():
                route.continue_()
            else:
                route.abort()

        context.route("**/*", record)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.as_uri())
        page.wait_for_selector("svg#graph.ready")
        nodes = page.eval_on_selector_all(
            ".node", "els => els.map(e => [e.dataset.nodeId, e.getAttribute('class')])"
        )
        assert {node_id for node_id, _ in nodes} == set(drawn)
        assert len(nodes) == len(drawn)
        for node_id, classes in nodes:
            assert f"status-{drawn[node_id]}" in classes.split(), (node_id, classes)
        assert "gate" in page.get_attribute('.node[data-node-id="pick"]', "class").split()
        groups = page.eval_on_selector_all(".group", "els => els.map(e => e.dataset.loop)")
        assert groups == ["variations"]
        labels = page.eval_on_selector_all(".edge-label", "els => els.map(e => e.textContent)")
        assert "case 1: style == 'photo'" in labels and "default" in labels
        page.click('.node[data-node-id="upscale_art#1"]')
        explanation = page.text_content("aside .explanation")
        assert explanation == (
            "upscale_art#1 skipped ← branch `upscale_art` of `style_check#1` not taken; it chose "
            "`upscale_photo` ← style_check#1 chose `upscale_photo` because case 1 "
            "`style == 'photo'` was true"
        )
        assert (
            "selected" in page.get_attribute('.node[data-node-id="upscale_art#1"]', "class").split()
        )
        page.click('.node[data-node-id="generate#1"]')
        assert '"prompt": "a kite, photo, poster composition"' in page.text_content("aside pre")
        assert '"seed": 1007' in page.text_content("aside pre")
        page.click('.node[data-node-id="pick"]')
        assert page.eval_on_selector_all("aside .gate .thumb", "els => els.length") == 4
        assert page.eval_on_selector_all("aside button", "els => els.length") == 0  # no gates
        assert page.eval_on_selector_all("a[href='#/']", "els => els.length") == 0
        page.screenshot(path=str(artifacts / "docs" / "report.png"))
        page.click("button[data-tab=timeline]")
        # a bar per node that started: not the one pending, nor the skipped (they never ran)
        started = [n for n, status in drawn.items() if status not in ("pending", "skipped")]
        assert page.eval_on_selector_all(".bar", "els => els.length") == len(started)
        assert requested == [path.as_uri()] and errors == []
        browser.close()
    data = (artifacts / "docs" / "report.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000


@pytest.mark.parametrize("name", ["for-each-nested.json", "gates-in-loop.json"])
def test_nested_loops_and_gates_in_loops_draw_a_box_per_loop(name: str, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from conftest import run
    from playwright.sync_api import sync_playwright

    job = run(name)
    loops = sorted(i.id for i in job.scheduler.instances.values() if i.iterations is not None)
    path = tmp_path / "page.html"
    path.write_text(job_page(job.scheduler, title=name), encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_FLAGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.as_uri())
        page.wait_for_selector("svg#graph.ready")
        drawn = page.eval_on_selector_all(".group", "els => els.map(e => e.dataset.loop)")
        browser.close()
    assert sorted(drawn) == loops and errors == []


def test_the_coverage_page_marks_the_branches_never_taken(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    from engine.testing.coverage import WorkflowCoverage, branches, taken
    from engine.testing.runs import offline_engine, run_to_rest
    from engine.views.report import coverage_page

    engine = offline_engine()
    workflow = engine.load(EXAMPLES / "creative-app.json")
    plan = engine.compile(workflow)
    coverage = WorkflowCoverage("creative-app.json", branches(plan))
    job, _ = run_to_rest(engine, workflow, {"subject": "a kite"}, {"pick": {"select": [0]}})
    coverage.add(taken(job.scheduler))
    path = tmp_path / "coverage.html"
    path.write_text(coverage_page(plan, coverage, title="coverage"), encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_FLAGS)
        page = browser.new_page(viewport={"width": 1800, "height": 900})
        page.goto(path.as_uri())
        page.wait_for_selector("svg#graph.ready")
        classes = page.eval_on_selector_all(
            ".node", "els => els.map(e => [e.dataset.nodeId, e.getAttribute('class')])"
        )
        statuses = {
            node_id: next(c[len("status-") :] for c in names.split() if c.startswith("status-"))
            for node_id, names in classes
        }
        assert statuses["style_check"] == "partial"  # its case taken, its default never
        assert statuses["pick"] == "partial"  # selected, never rejected
        assert statuses["variations"] == "covered"  # a fixed count of 4: many iterations only
        assert statuses["generate"] == "no-branch"
        untaken = page.eval_on_selector_all(
            ".edge.untaken", "els => els.map(e => getComputedStyle(e).strokeDasharray)"
        )
        assert len(untaken) == 1 and untaken[0] not in ("", "none")
        labels = page.eval_on_selector_all(".edge-label", "els => els.map(e => e.textContent)")
        assert "default · never taken" in labels
        assert "case 1: style == 'photo'" in labels
        page.click('.node[data-node-id="style_check"]')
        assert (
            page.text_content("aside .explanation") == "1 of 2 branches taken; never taken: default"
        )
        assert "4 of 7 branches taken (57%)" in page.text_content("header")
        legend = page.text_content(".legend")
        assert all(status in legend for status in ("covered", "partial", "uncovered"))
        browser.close()
