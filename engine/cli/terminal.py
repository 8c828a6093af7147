"""What the CLI shows on a terminal: live progress, a summary of the job, gate prompts."""

from __future__ import annotations

import json
import time
from collections import Counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

from engine.protocols import NodeStatus, Transition
from engine.run.children import ChildGate
from engine.run.instances import Instance, is_loop_template

if TYPE_CHECKING:
    from engine.api import JobRun

STATUS_STYLE = {
    "template": "dim",
    "success": "green",
    "failure": "red",
    "skipped": "dim",
    "rejected": "magenta",
    "processing": "yellow",
    "pending": "white",
}
SUMMARY_ROWS = 40


class ProgressDisplay:
    """A rich progress bar on stderr, fed by the engine's transitions: nodes done, counts per
    node type, loop progress (iterations done / total), gates waiting, elapsed time."""

    def __init__(self, console: Console, job: JobRun, *, refresh: float = 0.1) -> None:
        self.job = job
        self.refresh = refresh
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} nodes"),
            TextColumn("{task.fields[detail]}", markup=False),  # loop ids are user text
            GenerationColumn(job),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("running", total=1, detail="")
        self.types: Counter[str] = Counter()  # finished nodes by type
        self.running = 0  # nodes processing now, loops apart (waiting gates included)
        self._last = 0.0

    def __call__(self, transition: Transition) -> None:
        scheduler = self.job.scheduler
        instance = scheduler.instances.get(transition.node_id or "")
        # a gate's own update (processing -> processing) is not a start; a loop is shown apart
        if instance is not None and transition.from_status != transition.to_status:
            if instance.template.type != "for-each":
                if transition.to_status == "processing":
                    self.running += 1
                elif transition.from_status == "processing":
                    self.running -= 1
            if transition.to_status == "success":
                self.types[instance.template.type] += 1
        now = time.monotonic()
        if now - self._last < self.refresh and transition.node_id is not None:
            return
        self._last = now
        self.update()

    def detail(self) -> str:
        """The text beside the bar: per-type counts, loops, gates."""
        scheduler = self.job.scheduler
        done = ", ".join(f"{t} {n}" for t, n in self.types.most_common(4))
        waiting = len(scheduler.waiting) + len(scheduler.parked)  # parked: at a child's gates
        running = self.running - waiting
        parts = [f"done: {done}" if done else "", f"running: {running}" if running > 0 else ""]
        loops = [
            i
            for i in scheduler.instances.values()
            if i.template.type == "for-each"
            and i.iterations is not None
            and i.status is NodeStatus.PROCESSING
        ][:2]
        for loop in loops:
            unfinished = {
                i.scope.index
                for i in scheduler.instances.values()
                if i.scope.loop is loop and not i.status.terminal
            }
            total = len(loop.iterations or [])
            parts.append(f"loop {loop.id}: {total - len(unfinished)}/{total} iterations")
        if waiting:
            parts.append(f"{waiting} gate{'s' if waiting > 1 else ''} waiting")
        return " | ".join(p for p in parts if p)

    def update(self) -> None:
        scheduler = self.job.scheduler
        self.progress.update(
            self.task,
            total=len(scheduler.instances),
            completed=scheduler.terminal_count,
            detail=self.detail(),
        )

    def __enter__(self) -> ProgressDisplay:
        self.progress.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.update()
        self.progress.__exit__(kind, value, traceback)


class GenerationColumn(ProgressColumn):
    """How far the remote jobs of the model calls in flight have come, as their executors
    report it (the scenario executor: each inference job's `progress`); read at each refresh,
    since a remote job progresses without any transition of the flow."""

    def __init__(self, job: JobRun) -> None:
        super().__init__()
        self.job = job

    def render(self, task: Task) -> Text:
        try:
            reported = list(self.job.runner.call_progress.values())
        except RuntimeError:  # changed while read, from the run's thread: the next refresh
            return Text("")
        if not reported:
            return Text("")
        average = sum(reported) / len(reported)
        return Text(f"generating {len(reported)}: {average:.0%}", style="yellow")


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_summary(console: Console, job: JobRun, document: dict[str, Any]) -> None:
    """One row per node (or per-template counts for large flows), then the job's outcome."""
    flow = document["metadata"]["flow"]
    table = Table(show_edge=False, header_style="bold")
    titled = any(node.get("title") for node in flow)  # published from the editor: its titles
    for column in ("node", *(("title",) if titled else ()), "type", "status", "result"):
        table.add_column(column)
    shown = flow if len(flow) <= SUMMARY_ROWS else _summarised(flow)
    for node in shown:
        result = node.get("statusReason") or ""
        if node.get("assets"):
            result = ", ".join(a["assetId"] for a in node["assets"][:3])
        elif "output" in node and not result:
            result = _short(node["output"])
        status = str(node.get("status") or "")
        if is_loop_template(node):
            status = "template"  # skipped by construction: its clones run
        title = (Text(str(node.get("title") or "")),) if titled else ()
        table.add_row(
            Text(node["id"]),
            *title,
            Text(node["type"]),
            Text(status, style=STATUS_STYLE.get(status, "")),
            Text(result),
        )
    console.print(table)
    status = document["status"]
    style = {"success": "bold green", "failure": "bold red", "canceled": "bold magenta"}.get(
        status, "bold yellow"
    )
    console.print(
        Text.assemble(
            f"job {document['jobId']}: ",
            (status, style),
            f"  {count_nodes(flow)}  assets: {len(document['metadata']['assetIds'])}",
        )
    )
    if document["metadata"].get("error"):
        console.print(Text.assemble(("error:", "red"), " ", str(document["metadata"]["error"])))


def count_nodes(flow: list[dict[str, Any]]) -> str:
    """`nodes: 22 success, 4 skipped; 6 loop templates`: templates are counted apart from
    the nodes a branch, a failure or a rejection skipped."""
    counts: Counter[str] = Counter()
    templates = 0
    for node in flow:
        if is_loop_template(node):
            templates += 1
        else:
            counts[node["status"]] += 1
    text = "nodes: " + ", ".join(f"{n} {status}" for status, n in counts.most_common())
    if templates:
        text += f"; {templates} loop template{'s' if templates != 1 else ''}"
    return text


def _summarised(flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Large flows: templates and top-level nodes, with clone counts per status."""
    clones: dict[str, Counter[str]] = {}
    rows = []
    for node in flow:
        if "loopNodeId" in node:
            template = node["id"].split("#", 1)[0]
            clones.setdefault(template, Counter())[node["status"]] += 1
        else:
            rows.append(node)
    out = []
    for node in rows:
        out.append(node)
        counts = clones.get(node["id"])
        if counts:
            total = sum(counts.values())
            detail = ", ".join(f"{n} {s}" for s, n in counts.most_common())
            out.append(
                {
                    "id": f"  {node['id']}#*",
                    "type": node["type"],
                    "status": "",
                    "statusReason": f"{total} clones: {detail}",
                }
            )
    return out


def ask_decision(console: Console, gate: Instance | ChildGate, description: list[str]) -> Any:
    """Ask at a terminal what to do with a waiting gate (described by `describe_gate`);
    None when the person declines."""
    headline, *details = description
    console.print(Text.assemble("\n", (headline, "bold")))
    for line in details:
        console.print(line)
    if gate.template.type == "user-selection":
        while True:
            answer = Prompt.ask(
                "indices (space separated), 'reject', or empty to stop",
                console=console,
                default="",
            ).strip()
            if not answer:
                return None
            if answer == "reject":
                return "reject"
            try:
                return {"select": [int(part) for part in answer.replace(",", " ").split()]}
            except ValueError:
                console.print("indices are whole numbers, like: 2 0")
    answer = Prompt.ask(
        "approve or reject",
        choices=["approve", "reject", "stop"],
        console=console,
        default="approve",
    )
    return None if answer == "stop" else answer


__all__ = ["NodeStatus", "ProgressDisplay", "ask_decision", "print_summary"]
