"""What the CLI prints about a job: its summary (on a terminal or a pipe) and the gate prompts
at a terminal. The live progress bar is `progress.py`'s."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

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


__all__ = ["ask_decision", "count_nodes", "print_summary"]
