"""What a waiting gate asks a person to decide, read from the job document.

A user-selection gate lists its candidates, each with the file or URL it stands for, and the
rule for how many to choose. A user-approval gate names what it approves (the outputs of the
nodes before it) and what it holds back (the nodes that wait for it).

    gate `choose` (user-selection) is waiting: choose 1 to 2 of 3 items
      [0] asset_ba02…  from cutout#1  file:///…/dry-run-186.png
    gate `review` (user-approval) is waiting
      approves: draft (custom-model): asset_4f1c…  file:///…/dry-run-034.png
      holds back: final

A gate inside a sub-workflow is listed by path (`sub/approve`), from its workflow node's
`waitingGates`, with the job it waits in.
"""

from __future__ import annotations

import json
from typing import Any

from engine.compile.models import FlowNode
from engine.run.decisions import GATE_TYPES
from nodes.user_selection import selection_bounds

SHOWN = 20  # items, predecessors and held-back nodes listed before "and N more"


def waiting_gates(document: dict[str, Any]) -> list[str]:
    """The ids of the gates the job is parked at, in flow order; those inside a sub-workflow
    by path, in place of their workflow node."""
    return [gate["id"] for _, gate in _waiting(document["metadata"]["flow"])]


def _waiting(flow: list[dict[str, Any]]) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """Each waiting gate with the workflow node it waits below (None for the job's own)."""
    found: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
    for node in flow:
        if node["status"] != "processing":
            continue
        if node["type"] in GATE_TYPES:
            found.append((None, node))
        elif node["type"] == "workflow" and isinstance(node.get("waitingGates"), list):
            found += [(node, g) for g in node["waitingGates"] if isinstance(g, dict) and "id" in g]
    return found


def _gate(flow: list[dict[str, Any]], gate_id: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The gate `gate_id` (its node, or its entry below a workflow node) and that node."""
    for holder, gate in _waiting(flow):
        if gate["id"] == gate_id:
            return holder, gate
    return None, next(node for node in flow if node["id"] == gate_id)


def describe_gate(document: dict[str, Any], gate_id: str) -> list[str]:
    """Lines for a person deciding `gate_id`: a headline, then indented details."""
    flow: list[dict[str, Any]] = document["metadata"]["flow"]
    nodes = {node["id"]: node for node in flow}
    holder, gate = _gate(flow, gate_id)
    urls = {a["assetId"]: a.get("url", "") for node in flow for a in node.get("assets") or ()}
    makers = {a["assetId"]: node["id"] for node in flow for a in node.get("assets") or ()}
    title = f" {json.dumps(gate['title'], ensure_ascii=False)}" if gate.get("title") else ""
    headline = f"gate `{gate_id}`{title} ({gate['type']}) is waiting"
    if holder is not None:
        headline += (
            f" in job `{gate['jobId']}` (there `{gate['nodeId']}`), the sub-workflow of "
            f"`{holder['id']}`"
        )
    if gate["type"] == "user-selection":
        items = gate.get("items") or []
        low, high = selection_bounds(FlowNode.model_validate(gate))
        high = min(high, len(items))
        count = str(low) if low == high else f"{low} to {high}"
        lines = [f"{headline}: choose {count} of {_plural(len(items), 'item')}"]
        lines += [f"  [{i}] {_item(item, urls, makers)}" for i, item in enumerate(items[:SHOWN])]
        lines += _more(len(items))
        return lines
    lines = [headline]
    if isinstance(gate.get("message"), str):  # what the editor's approval asks
        lines.append(f"  asks: {gate['message']}")
    sources = _sources(gate)
    if holder is not None:  # what it approves is in its own job; here it holds back its node
        if sources:
            lines.append(f"  approves: {', '.join(sources[:SHOWN])} of job `{gate['jobId']}`")
        return [*lines, *_held_back(flow, holder["id"], first=holder["id"])]
    if not sources:
        lines.append("  approves: nothing before it (no dependsOn or inputs)")
    for source in sources[:SHOWN]:
        node = nodes.get(source)
        if node is None:
            continue
        lines.append(f"  approves: {source} ({node['type']}): {_output(node, urls)}")
    lines += _more(len(sources))
    held = _held_back(flow, gate_id)
    if not _waits_on(flow, gate_id) and gate.get("loopNodeId"):
        # in an iteration, what reads its producer from outside waits for the whole loop
        held = [f"  holds back: loop `{gate['loopNodeId']}`, which ends once every iteration has"]
    return [*lines, *held]


def _waits_on(flow: list[dict[str, Any]], node_id: str) -> list[str]:
    """The nodes that read or wait for `node_id`."""
    return [node["id"] for node in flow if node_id in _sources(node)]


def _held_back(flow: list[dict[str, Any]], node_id: str, *, first: str | None = None) -> list[str]:
    """The line naming the nodes that wait for `node_id` (after `first`, when given)."""
    held = _waits_on(flow, node_id)
    if first is not None:
        held.insert(0, first)
    shown = ", ".join(held[:SHOWN])
    if len(held) > SHOWN:
        shown += f" and {len(held) - SHOWN} more"
    return [f"  holds back: {shown or 'nothing (no node waits for it)'}"]


def example_selection(document: dict[str, Any], gate_id: str) -> list[int]:
    """Indices a selection gate's rule accepts: the first `min` items (at least one)."""
    _, gate = _gate(document["metadata"]["flow"], gate_id)
    low, _ = selection_bounds(FlowNode.model_validate(gate))
    return list(range(max(1, min(low, len(gate.get("items") or [])))))


def _sources(node: dict[str, Any]) -> list[str]:
    """The nodes `node` reads or waits for: refs, conditional entries, dependsOn."""
    found: list[str] = []
    for node_input in node.get("inputs") or ():
        ref = node_input.get("ref") or {}
        if ref.get("node") and ref["node"] != "workflow":
            found.append(ref["node"])
        found.extend(ref.get("conditional") or ())
    found.extend(node.get("dependsOn") or ())
    return list(dict.fromkeys(found))


def _item(item: Any, urls: dict[str, str], makers: dict[str, str]) -> str:
    """An item: an asset with the node (clone) that made it and its file or URL."""
    if isinstance(item, str) and item in urls:
        return f"{item}  from {makers[item]}  {urls[item]}"
    return _short(item)


def _output(node: dict[str, Any], urls: dict[str, str]) -> str:
    assets = node.get("assets") or []
    if assets:
        shown = [f"{a['assetId']}  {a.get('url', '')}" for a in assets[:3]]
        more = f" (and {len(assets) - 3} more)" if len(assets) > 3 else ""
        return ", ".join(shown) + more
    if "output" in node:
        return _short(node["output"])
    return f"no output ({node.get('status')})"


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _more(count: int) -> list[str]:
    return [f"  … and {count - SHOWN} more"] if count > SHOWN else []
