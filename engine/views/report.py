"""The static job page (`graph --format html`, `run --report`): the console's job page without
its live parts, as one self-contained HTML file (the scripts, the layout library, the styles
and the job's data inlined; small asset files inlined as data URLs). No network."""

from __future__ import annotations

import base64
import html
import json
from collections import defaultdict
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from engine.compile.compiler import Plan
from engine.protocols import Transition
from engine.run.scheduler import Scheduler
from engine.views.job_view import job_view, plan_view

if TYPE_CHECKING:
    from engine.testing.coverage import WorkflowCoverage

INLINE_ASSET_BYTES = 256 * 1024  # an asset file up to this size is put into the page
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


def _console_file(name: str) -> str:
    return resources.files("engine.views").joinpath(f"console/{name}").read_text("utf-8")


def _script(text: str) -> str:
    # inside <script>, only `</script` (any case) ends the element early
    return text.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def render_page(view: dict[str, Any]) -> str:
    """One HTML file drawing `view` (see engine/views/job_view.py) as the console does."""
    data = json.dumps(view, default=str, ensure_ascii=False).replace("</", "<\\/")
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{html.escape(str(view['title']))}</title>",
            f"<style>{_console_file('console.css')}</style>",
            f"<script>{_script(_console_file('vendor/elk.bundled.js'))}</script>",
            f"<script>window.FLOWGRAPH_VIEW = {data};</script>",
            "</head>",
            "<body>",
            '<div id="app"></div>',
            f"<script>{_script(_console_file('console.js'))}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _inlined(_asset_id: str, url: str) -> str:
    """A small image file as a data URL (the page stays one file); anything else as it is."""
    if not url.startswith("file://"):
        return url
    path = Path(unquote(urlparse(url).path))
    kind = _IMAGE_TYPES.get(path.suffix.lower())
    try:
        if kind is None or path.stat().st_size > INLINE_ASSET_BYTES:
            return url
        return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode()
    except OSError:
        return url


def job_page(scheduler: Scheduler, *, title: str, transitions: Iterable[Transition] = ()) -> str:
    """The page for a job; `transitions` (its event log) give the times and the timeline."""
    return render_page(
        job_view(scheduler, title=title, transitions=transitions, asset_url=_inlined)
    )


def plan_page(plan: Plan, *, title: str) -> str:
    """The page for a workflow that has not run: its templates, all pending."""
    return render_page(plan_view(plan, title=title))


NEVER_TAKEN = " · never taken"
# what a node of the coverage page is drawn as, by the share of its branches the tests took
COVERAGE_LEGEND = ["covered", "partial", "uncovered", "no-branch"]


def coverage_page(plan: Plan, coverage: WorkflowCoverage, *, title: str) -> str:
    """The page of a workflow's branch coverage: the workflow's drawing with each node that
    has decision points drawn by how many of its branches the tests took (`covered`,
    `partial`, `uncovered`; `no-branch` for the others), each branch edge never taken dashed
    and labelled so, and every branch of a node listed in its panel."""
    points: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for branch in coverage.branches:
        runs = coverage.hits.get(branch.key, 0)
        points[branch.node].append({"outcome": branch.outcome, "label": branch.label, "runs": runs})
    summary = (
        f"{coverage.covered} of {len(coverage.branches)} branches taken ({coverage.percent:.0f}%)"
    )
    view = plan_view(plan, title=f"{title} · {summary}")
    view["legend"] = COVERAGE_LEGEND
    for node in view["nodes"]:
        listed = points.get(node["id"], [])
        taken = sum(1 for point in listed if point["runs"])
        status = "no-branch"
        if listed:
            status = "covered" if taken == len(listed) else "partial" if taken else "uncovered"
        node["status"] = view["details"][node["id"]]["status"] = status
        if listed:
            untaken = [point["outcome"] for point in listed if not point["runs"]]
            view["details"][node["id"]]["explanation"] = (
                f"{taken} of {len(listed)} branches taken"
                + (f"; never taken: {', '.join(untaken)}" if untaken else "")
            )
            view["details"][node["id"]]["coverage"] = listed
    missing = {branch.key for branch in coverage.missing()}
    for edge in view["edges"]:
        case = edge["label"].partition(":")[0]
        if edge["kind"] == "branch" and edge["label"] and edge["source"] in plan.nodes:
            never = f"{edge['source']}: {case}" in missing
            edge["taken"] = not never
            if never:
                edge["label"] += NEVER_TAKEN
    return render_page(view)
