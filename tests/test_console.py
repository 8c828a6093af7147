"""The job console of `flowgraph serve`, in a real headless Chromium (Debian's) through
Playwright, against a live server driven by the official `scenario-sdk`. Every request that
is not to the server on 127.0.0.1 is blocked (and fails the test). The screenshots in docs/
are taken here (written into docs/ with `make docs-images`; see the `artifacts` fixture)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from conftest import EXAMPLES, FLOWS
from scenario_sdk import Scenario
from test_report_browser import CHROMIUM, LAUNCH_FLAGS
from test_server_sdk import node, ready_workflow, wait_job, waiting

from engine.server.launcher import ROOT, running_server

GATED = json.loads((FLOWS / "gates.json").read_text())
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server whose dry-run model calls take 0.3 s, and its SQLite file."""
    folder = tmp_path_factory.mktemp("console")
    db = folder / "jobs.db"
    env = {"XDG_DATA_HOME": str(folder / "data")}
    with running_server(db, "--latency", "0.3", env=env) as url:
        yield url.removesuffix("/v1"), db


@pytest.fixture()
def client(server: tuple[str, Path]) -> Iterator[Scenario]:
    with Scenario(api_key="k", api_secret="s", base_url=server[0] + "/v1", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_FLAGS)
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A page whose requests may only go to loopback; anything else is aborted and fails."""
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    elsewhere: list[str] = []

    def only_loopback(route: Any) -> None:
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    errors: list[str] = []
    opened = context.new_page()
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert elsewhere == [], f"the page asked the network for {elsewhere}"
    assert errors == [], errors


def open_job(page: Any, base: str, job_id: str) -> float:
    """Open the job page; the seconds until its graph is laid out and drawn."""
    started = time.monotonic()
    page.goto(f"{base}/#/jobs/{job_id}")
    page.wait_for_selector("svg#graph.ready", timeout=60_000)
    return time.monotonic() - started


def shoot(page: Any, artifacts: Path, name: str) -> None:
    path = artifacts / "docs" / name
    page.screenshot(path=str(path))
    assert path.read_bytes().startswith(b"\x89PNG")


def node_class(page: Any, node_id: str) -> list[str]:
    return str(page.get_attribute(f'.node[data-node-id="{node_id}"]', "class")).split()


def run_creative_app(client: Scenario) -> tuple[str, str]:
    document = json.loads((EXAMPLES / "creative-app.json").read_text())
    workflow_id = ready_workflow(client, document, "creative")
    job_id = client.workflows.run(workflow_id, body={"subject": "a kite"}).job.job_id
    wait_job(client, job_id, waiting("pick"))
    return workflow_id, job_id


def test_the_jobs_list_shows_status_workflow_and_waiting_gates(
    client: Scenario, server: tuple[str, Path], page: Any, artifacts: Path
) -> None:
    base = server[0]
    workflow_id = ready_workflow(client, GATED, "listed")
    waiting_job = client.workflows.run(workflow_id, body={}).job.job_id
    wait_job(client, waiting_job, waiting("review"))
    fan = ready_workflow(client, json.loads((EXAMPLES / "fan-out.json").read_text()), "fan")
    done_job = client.workflows.run(fan, body={"subjects": ["a", "b"]}).job.job_id
    wait_job(client, done_job, lambda job: job.status == "success")
    page.goto(base + "/")
    page.wait_for_selector(f'tr[data-job-id="{done_job}"]')
    ids = page.eval_on_selector_all("tr[data-job-id]", "rows => rows.map(r => r.dataset.jobId)")
    assert ids.index(done_job) < ids.index(waiting_job)  # newest first
    row = page.text_content(f'tr[data-job-id="{waiting_job}"]')
    assert "in-progress" in row and "listed" in row and "review" in row
    assert "success" in page.text_content(f'tr[data-job-id="{done_job}"]')
    shoot(page, artifacts, "console-jobs.png")
    # while the list is open, a new job appears and a decided one changes, without a reload
    page.evaluate("window.sameDocument = true")
    new_job = client.workflows.run(fan, body={"subjects": ["c"]}).job.job_id
    page.wait_for_selector(f'tr[data-job-id="{new_job}"]', timeout=15_000)
    client.workflows.user_approval(
        workflow_id, project_id="p", node_id="review", workflow_job_id=waiting_job
    )
    page.wait_for_selector(
        f'tr[data-job-id="{waiting_job}"] .gates:text-is("choose")', timeout=15_000
    )
    assert page.evaluate("window.sameDocument") is True
    page.select_option("select[aria-label=status]", "success")
    page.wait_for_selector(f'tr[data-job-id="{done_job}"]')
    statuses = page.eval_on_selector_all(
        "tr[data-job-id] .badge", "els => els.map(e => e.textContent)"
    )
    assert set(statuses) == {"success"}
    page.click(f'tr[data-job-id="{done_job}"] a')
    page.wait_for_selector("svg#graph.ready")
    assert "status-success" in page.get_attribute(".job-status", "class")


def test_the_job_page_draws_loops_branches_and_explains_a_skipped_node(
    client: Scenario, server: tuple[str, Path], page: Any, artifacts: Path
) -> None:
    base, db = server
    _, job_id = run_creative_app(client)
    open_job(page, base, job_id)
    assert page.eval_on_selector_all(".group", "els => els.map(e => e.dataset.loop)") == [
        "variations"
    ]
    rows = page.eval_on_selector_all("[data-row]", "els => els.map(e => e.dataset.row)")
    assert sorted(rows) == [f"row:variations:{i}" for i in range(4)]
    # each iteration's nodes on its own row: the row's box holds them
    for index in range(4):
        row = page.eval_on_selector(
            f'[data-row="row:variations:{index}"] rect', "r => r.getBoundingClientRect().toJSON()"
        )
        box = page.eval_on_selector(
            f'.node[data-node-id="generate#{index}"] rect',
            "r => r.getBoundingClientRect().toJSON()",
        )
        assert row["top"] <= box["top"] and box["bottom"] <= row["bottom"]
    labels = page.eval_on_selector_all(".edge-label", "els => els.map(e => e.textContent)")
    assert "case 1: style == 'photo'" in labels and "default" in labels
    untaken = page.eval_on_selector_all(
        ".edge.untaken", "els => els.map(e => e.closest('.edge-group').dataset.target)"
    )
    assert {f"upscale_art#{i}" for i in range(4)} <= set(untaken)
    assert "status-skipped" in node_class(page, "upscale_art#1")
    assert "gate" in node_class(page, "pick") and "status-processing" in node_class(page, "pick")
    page.click('.node[data-node-id="upscale_art#1"]')
    page.wait_for_selector("aside h2:text-is('upscale_art#1')")
    explained = subprocess.run(
        [sys.executable, "-m", "engine", "explain", job_id, "--node", "upscale_art#1"]
        + ["--db", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[1]
    assert page.text_content("aside .explanation") == explained
    assert explained.startswith("upscale_art#1 skipped ← branch `upscale_art` of `style_check#1`")
    assert "selected" in node_class(page, "upscale_art#1")
    # a skipped node never started: when it was skipped, and no values
    assert page.query_selector("aside .fact-started") is None
    assert page.text_content("aside .fact-ended") not in ("", "–")
    assert page.text_content("aside .inputs") == "not resolved: the node did not run"
    page.click('.node[data-node-id="generate#1"]')
    page.wait_for_selector("aside h2:text-is('generate#1')")
    assert '"prompt": "a kite, photo, poster composition"' in page.text_content("aside pre.inputs")
    image = page.wait_for_selector("aside .thumbs img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image)
    assert image.get_attribute("src").startswith(f"/console/api/jobs/{job_id}/assets/asset_")
    assert page.text_content("aside .fact-attempts") == "1"
    assert page.text_content("aside .fact-took") not in ("", "–")
    shoot(page, artifacts, "console-job.png")
    page.click('.node[data-node-id="pick"]')
    page.wait_for_selector("aside .gate .thumb")
    shoot(page, artifacts, "console-gate.png")
    page.click("button[data-tab=timeline]")
    bars = page.eval_on_selector_all(".bar", "els => els.map(e => e.dataset.nodeId)")
    assert {"compose", "generate#0", "cutout#3"} <= set(bars)
    assert "upscale_art#1" not in bars  # skipped: it never ran
    groups = page.eval_on_selector_all("text.group", "els => els.map(e => e.textContent)")
    assert groups == ["for-each variations"]
    shoot(page, artifacts, "console-timeline.png")


def test_pan_zoom_fit_and_search(client: Scenario, server: tuple[str, Path], page: Any) -> None:
    _, job_id = run_creative_app(client)
    open_job(page, server[0], job_id)

    def transform() -> str:
        return str(page.get_attribute("#viewport", "transform"))

    def zoom() -> float:
        return float(page.get_attribute("svg#graph", "data-zoom"))

    fitted = zoom()
    graph = page.eval_on_selector("#viewport", "g => g.getBoundingClientRect().toJSON()")
    canvas = page.eval_on_selector("svg#graph", "s => s.getBoundingClientRect().toJSON()")
    assert graph["left"] >= canvas["left"] - 1 and graph["right"] <= canvas["right"] + 1
    assert graph["top"] >= canvas["top"] - 1 and graph["bottom"] <= canvas["bottom"] + 1
    page.click("#zoom-in")
    assert zoom() == pytest.approx(fitted * 1.25, rel=1e-3)
    page.mouse.move(canvas["left"] + 200, canvas["top"] + 200)
    page.mouse.wheel(0, -300)
    page.wait_for_function(
        f"() => Number(document.querySelector('svg#graph').dataset.zoom) > {fitted * 1.3}"
    )
    before = transform()
    page.mouse.move(canvas["left"] + 30, canvas["top"] + 30)
    page.mouse.down()
    page.mouse.move(canvas["left"] + 230, canvas["top"] + 130, steps=5)
    page.mouse.up()
    assert transform() != before  # panned
    page.click("#fit")
    assert zoom() == pytest.approx(fitted, rel=1e-3)
    page.fill("#search", "cutout")
    assert page.text_content("#matches") == "4 matches"
    matched = page.eval_on_selector_all(".node.match", "els => els.map(e => e.dataset.nodeId)")
    assert sorted(matched) == [f"cutout#{i}" for i in range(4)]
    page.fill("#search", "")
    assert page.eval_on_selector_all(".node.match", "els => els.length") == 0


def test_a_running_job_updates_without_reload_and_gates_are_decided_from_the_page(
    client: Scenario, server: tuple[str, Path], page: Any
) -> None:
    """The page follows the job as the SDK approves, then approves and selects itself."""
    base = server[0]
    workflow_id = ready_workflow(client, GATED, "live")
    job_id = client.workflows.run(workflow_id, body={}).job.job_id
    page.goto(f"{base}/#/jobs/{job_id}")
    page.wait_for_selector("svg#graph.ready")
    page.evaluate("window.sameDocument = true")  # gone on a reload
    page.wait_for_selector('.node.status-success[data-node-id="draft"]', timeout=20_000)
    page.wait_for_selector('.node.status-processing[data-node-id="review"]')
    progress = float(page.get_attribute(".progress", "data-progress"))
    # a decision through the SDK: the page sees it through the event log
    client.workflows.user_approval(
        workflow_id, project_id="p", node_id="review", workflow_job_id=job_id
    )
    page.wait_for_selector('.node.status-success[data-node-id="review"]')
    page.wait_for_selector('.node.status-processing[data-node-id="choose"]')
    assert float(page.get_attribute(".progress", "data-progress")) > progress
    assert page.evaluate("window.sameDocument") is True
    page.click('.node[data-node-id="choose"]')
    cards = page.wait_for_selector("aside .gate")
    assert "choose 1 to 2 of 3" in cards.text_content()
    assert page.is_disabled("aside .gate button.select")  # none chosen yet
    for index in (0, 1, 2):  # the third is refused: at most 2
        page.click(f'aside .gate .thumb[data-index="{index}"]')
    picked = page.eval_on_selector_all(
        "aside .gate .thumb.picked", "els => els.map(e => Number(e.dataset.index))"
    )
    assert picked == [0, 1]
    page.click('aside .gate .thumb[data-index="1"]')  # unpicked
    page.click('aside .gate .thumb[data-index="0"]')  # unpicked, then picked after 2
    page.click('aside .gate .thumb[data-index="2"]')
    page.click('aside .gate .thumb[data-index="0"]')
    order = page.eval_on_selector_all(
        "aside .gate .thumb.picked",
        "els => els.map(e => [Number(e.dataset.index), e.dataset.order])",
    )
    assert sorted(order) == [[0, "2"], [2, "1"]]  # the page shows the order of the picks
    assert "in this order: 2, 0" in page.text_content("aside .gate .pick-count")
    assert page.is_enabled("aside .gate button.select")
    items = node(client.jobs.retrieve(job_id).job, "choose").items
    page.click("aside .gate button.select")
    page.wait_for_selector(".job-status.status-success", timeout=20_000)
    assert page.evaluate("window.sameDocument") is True
    job = client.jobs.retrieve(job_id).job
    # the output in the order of the picks, as `flowgraph select JOB choose 2 0` gives
    assert job.status == "success" and node(job, "choose").output == [items[2], items[0]]
    # and an approval from the page, on a second job
    second = client.workflows.run(workflow_id, body={}).job.job_id
    wait_job(client, second, waiting("review"))
    open_job(page, base, second)
    page.click('.node[data-node-id="review"]')
    page.click("aside .gate button.approve")
    wait_job(client, second, waiting("choose"))
    assert node(client.jobs.retrieve(second).job, "review").status == "success"
    page.wait_for_selector('.node.status-processing[data-node-id="choose"]')


def test_a_gate_inside_a_sub_workflow_is_reached_from_the_parents_page(
    client: Scenario, server: tuple[str, Path], page: Any
) -> None:
    """The workflow node's panel names the gate its child job waits at and links to it; the
    child's page opens with that gate's panel, whose Approve ends the child and the parent."""
    child = json.loads((FLOWS / "subflows" / "wflow_review.json").read_text())
    child_workflow = ready_workflow(client, child, "review")
    parent = json.loads((FLOWS / "sub-gate.json").read_text())
    parent["flow"][0]["workflowId"] = child_workflow
    workflow_id = ready_workflow(client, parent, "sub-gate")
    job_id = client.workflows.run(workflow_id, body={}).job.job_id
    job = wait_job(client, job_id, lambda j: "waitingGates" in node(j, "sub").model_extra)
    child_id = str(node(job, "sub").job_id)
    open_job(page, server[0], job_id)
    page.click('.node[data-node-id="sub"]')
    link = page.wait_for_selector("aside a.child-gate")
    assert link.text_content() == f"sub/review: decide it in job {child_id}"
    link.click()
    page.wait_for_selector("aside .gate button.approve")
    assert page.text_content("aside h2") == "review"
    assert child_id in page.text_content("header")
    page.click("aside .gate button.approve")
    done = wait_job(client, job_id, lambda j: j.status == "success")
    assert node(done, "sub").status == "success" and node(done, "use").status == "success"
    assert client.jobs.retrieve(child_id).job.status == "success"


def test_a_loop_that_expands_while_the_page_is_open_is_drawn_without_reload(
    client: Scenario, server: tuple[str, Path], page: Any
) -> None:
    document = json.loads((FLOWS / "console-live-loop.json").read_text())
    workflow_id = ready_workflow(client, document, "live-loop")
    job_id = client.workflows.run(workflow_id, body={}).job.job_id
    wait_job(client, job_id, waiting("review"))
    open_job(page, server[0], job_id)
    page.evaluate("window.sameDocument = true")
    assert page.eval_on_selector_all(".group", "els => els.length") == 0  # not expanded yet
    client.workflows.user_approval(
        workflow_id, project_id="p", node_id="review", workflow_job_id=job_id
    )
    page.wait_for_selector('.group[data-loop="each"]', timeout=20_000)
    page.wait_for_selector('.node[data-node-id="upscale#2"]')
    page.wait_for_selector(".job-status.status-success", timeout=20_000)
    page.wait_for_selector('.node.status-success[data-node-id="upscale#2"]')
    assert "3 iterations" in page.text_content('.group[data-loop="each"] text')
    assert page.evaluate("window.sameDocument") is True
    assert page.text_content("#counts") == "6 nodes: 6 success"  # the template is not one


def test_the_event_stream_resumes_from_the_last_event_id(
    client: Scenario, server: tuple[str, Path]
) -> None:
    base = server[0]
    workflow_id = ready_workflow(client, GATED, "stream")
    job_id = client.workflows.run(workflow_id, body={}).job.job_id
    wait_job(client, job_id, waiting("review"))
    view = httpx.get(f"{base}/console/api/jobs/{job_id}/view").json()
    position = view["position"]
    assert position > 0

    def first_message(**headers: str) -> tuple[int, list[list[Any]]]:
        url = f"{base}/console/api/jobs/{job_id}/events"
        with httpx.stream("GET", url, headers=headers, timeout=20) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event_id, data = None, None
            for line in response.iter_lines():
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    break
        assert event_id is not None and data is not None
        return event_id, data

    everything = first_message()[1]
    assert ["draft", "draft", "pending", "processing"] in [row[:4] for row in everything]
    client.workflows.user_approval(
        workflow_id, project_id="p", node_id="review", workflow_job_id=job_id
    )
    wait_job(client, job_id, waiting("choose"))
    resumed_at, rows = first_message(**{"Last-Event-ID": str(position)})
    assert resumed_at > position
    assert {row[0] for row in rows} <= {"review", "choose"}  # nothing from before
    assert ["review", "review", "processing", "success"] in [row[:4] for row in rows]
    wrong = httpx.get(f"{base}/console/api/jobs/{job_id}/events", headers={"Last-Event-ID": "x"})
    assert wrong.status_code == 400 and "Last-Event-ID" in wrong.json()["message"]
    assert httpx.get(f"{base}/console/api/jobs/job_missing/events").status_code == 404
    # only the job's own asset files are served
    draft = httpx.get(f"{base}/console/api/jobs/{job_id}/nodes/draft").json()
    served = httpx.get(base + draft["assets"][0]["url"])
    assert served.status_code == 200 and served.content.startswith(b"\x89PNG")
    other = httpx.get(f"{base}/console/api/jobs/{job_id}/assets/asset_not_made_here")
    assert other.status_code == 404
    assert other.json()["message"] == f"no file for asset `asset_not_made_here` in job `{job_id}`"


def test_a_ten_thousand_iteration_job_opens_collapsed_and_stays_responsive(
    client: Scenario, server: tuple[str, Path], page: Any, artifacts: Path
) -> None:
    page.goto(server[0] + "/")  # watched: the server prepares the pages of large jobs
    document = json.loads((FLOWS / "console-big-loop.json").read_text())
    workflow_id = ready_workflow(client, document, "big")
    job_id = client.workflows.run(workflow_id, body={}).job.job_id
    wait_job(client, job_id, lambda job: job.status == "success", timeout=180)
    page.reload()  # the scripts are loaded: what is measured is the job's page
    page.wait_for_selector(f'tr[data-job-id="{job_id}"]')
    opened = open_job(page, server[0], job_id)
    layout_ms = float(page.get_attribute("svg#graph", "data-layout-ms"))
    assert page.eval_on_selector_all(".group", "els => els.map(e => e.dataset.loop)") == ["loop"]
    assert "10000 iterations" in page.text_content(".group text")
    collapsed = page.eval_on_selector_all(
        ".node.collapsed", "els => els.map(e => e.dataset.nodeId)"
    )
    assert sorted(collapsed) == ["even", "merge", "odd", "parity"]
    assert "5000 success · 5000 skipped" in page.text_content('.node[data-node-id="even"]')
    started = time.monotonic()
    page.click("#zoom-in")
    page.click('.node[data-node-id="odd"]')
    page.wait_for_selector("aside .clones button")
    responsive = time.monotonic() - started
    assert page.text_content("aside h2") == "odd ×10000"
    page.click("aside .pager button:has-text('→')")
    page.wait_for_selector("aside [data-clone='odd#60']")
    page.click("aside [data-clone='odd#61']")
    page.wait_for_selector("aside h2:text-is('odd#61')")
    assert page.text_content("aside .explanation").startswith("odd#61 success ← branch `odd`")
    page.fill("#search", "parity#5000")  # a clone by its id: its template, and its panel
    page.wait_for_selector("aside h2:text-is('parity#5000')")
    assert page.eval_on_selector_all(".node.match", "els => els.map(e => e.dataset.nodeId)") == [
        "parity"
    ]
    assert "parity#5000 chose `even`" in page.text_content("aside .explanation")
    page.fill("#search", "")
    shoot(page, artifacts, "console-large-loop.png")
    # a second server on the same file has nothing prepared: the page is built as it opens
    folder = server[1].parent
    with running_server(server[1], env={"XDG_DATA_HOME": str(folder / "data")}) as other:
        page.goto(other.removesuffix("/v1") + "/")
        page.wait_for_selector("tr[data-job-id]")
        cold = open_job(page, other.removesuffix("/v1"), job_id)
        assert "5000 success · 5000 skipped" in page.text_content('.node[data-node-id="even"]')
    artifacts.joinpath("benchmarks", "console-page.json").write_text(
        json.dumps(
            {
                "job": "tests/flows/console-big-loop.json: 10,000 iterations, 40,006 nodes",
                "openSeconds": round(opened, 3),
                "openSecondsBuiltOnOpen": round(cold, 3),
                "layoutMilliseconds": round(layout_ms),
                "zoomAndPanelSeconds": round(responsive, 3),
            },
            indent=2,
        )
        + "\n"
    )


def test_the_console_asks_for_the_api_credentials(tmp_path: Path) -> None:
    env = {"FLOWGRAPH_API_KEY": "key", "FLOWGRAPH_API_SECRET": "secret"}
    with running_server(tmp_path / "jobs.db", env=env) as url:
        base = url.removesuffix("/v1")
        refused = httpx.get(base + "/")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="flowgraph"'
        assert httpx.get(base + "/console/api/jobs").status_code == 401
        basic = "Basic " + base64.b64encode(b"key:secret").decode()
        page = httpx.get(base + "/", headers={"Authorization": basic})
        assert page.status_code == 200 and "/console/static/console.js" in page.text
        script = httpx.get(
            base + "/console/static/elk.bundled.js", headers={"Authorization": basic}
        )
        assert script.status_code == 200 and "ELK" in script.text[:2000]
        missing = httpx.get(base + "/console/static/nope.js", headers={"Authorization": basic})
        assert missing.status_code == 404
