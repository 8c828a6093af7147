"""A model node's clones encoded from their template's encoding, spliced.

Most nodes of a large job are the clones of one model node in a loop, each succeeded with its
assets. Their documents differ from the template's in a few values: the id, the inputs'
values, the iteration, the job id and the assets. `CloneEncoder` encodes the template once,
in pieces, and each such clone by joining the pieces with the encodings of its own values:
byte for byte what `orjson.dumps(node_document(...))` gives (tests compare them), at a third
of its cost. A clone it does not cover (another status, a reason, outputs beyond the assets,
a ref to rewrite) is encoded the general way.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.compile.compiler import TemplateNode
from engine.protocols import NodeStatus
from engine.run.instances import Instance

_MARK = "\x01flowgraph-splice\x01"  # a placeholder no document holds (a control character)
_MARK_JSON = orjson.dumps(_MARK)
# fields a node document sets after the wire's: present in the wire, they would stay in place
_SET_AFTER = frozenset(
    {
        "iterationIndex",
        "loopNodeId",
        "loopBodyNodeIds",
        "status",
        "jobId",
        "assets",
        "output",
        "items",
        "statusReason",
        "waitingGates",
    }
)


def _split(value: dict[str, Any], key: str) -> tuple[bytes, bytes] | None:
    """The encoding of `value` before and after the value at `key` (None if that cannot be
    told apart)."""
    probe = dict(value)
    probe[key] = _MARK
    pieces = orjson.dumps(probe).split(_MARK_JSON)
    return (pieces[0], pieces[1]) if len(pieces) == 2 else None


class CloneEncoder:
    """The pieces of one template's clone documents; `encode` joins them for a clone."""

    def __init__(self, template: TemplateNode) -> None:
        self.usable = False
        node, wire = template.node, template.wire
        names = template.input_names
        self.has_inputs = bool(node.inputs)
        if (
            not template.loops
            or not template.produces_assets
            or template.type == "workflow"
            or node.loop_body_node_ids
            or template.depends_on
            or "id" not in wire
            or _SET_AFTER.intersection(wire)
            or any(compiled.rows or compiled.conditional for compiled in template.inputs)
            or (self.has_inputs and not isinstance(wire.get("inputs"), list))
        ):
            return
        # each input as encoded before and after its value (set in place, or added last)
        self.inputs: list[tuple[bytes, bytes]] = []
        if self.has_inputs:
            wire_inputs = wire["inputs"]
            if len(set(names)) != len(names) or [
                item.get("name") if isinstance(item, dict) else None for item in wire_inputs
            ] != list(names):
                return  # values are shown by name: only distinct names map one to one
            for item in wire_inputs:
                split = _split(item, "value")
                if split is None:
                    return
                self.inputs.append(split)
        # the wire's encoding around the id and the inputs, in the order the wire has them
        probe = dict(wire)
        probe["id"] = _MARK
        if self.has_inputs:
            probe["inputs"] = _MARK + "inputs"
        encoded = orjson.dumps(probe)
        marks = [(encoded.find(_MARK_JSON), "id")]
        if self.has_inputs:
            marks.append((encoded.find(orjson.dumps(_MARK + "inputs")), "inputs"))
        marks.sort()
        self.segments: list[bytes] = []
        self.slots: list[str] = []
        at = 0
        for position, slot in marks:
            if position < at or encoded.count(_MARK.encode()[1:-1]) != len(marks):
                return
            self.segments.append(encoded[at:position])
            self.slots.append(slot)
            at = position + len(_MARK_JSON if slot == "id" else orjson.dumps(_MARK + "inputs"))
        self.segments.append(encoded[at:-1])  # without the closing brace
        # one bytes format for the whole document: `%b` where a clone's values go
        fmt = b""
        for segment, slot in zip(self.segments, self.slots, strict=False):
            fmt += segment.replace(b"%", b"%%")
            if slot == "id":
                fmt += b"%b"
            else:
                fields = (
                    before.replace(b"%", b"%%") + b"%b" + after.replace(b"%", b"%%")
                    for before, after in self.inputs
                )
                fmt += b"[" + b",".join(fields) + b"]"
        fmt += self.segments[-1].replace(b"%", b"%%")
        self.format = fmt + b',"iterationIndex":%d,"loopNodeId":%b,"status":"success","jobId":%b%b}'
        self.id_first = self.slots[0] == "id"
        self.usable = True

    def encode(self, instance: Instance) -> bytes | None:
        """The clone's document as `orjson.dumps(node_document(...))` gives it, or None when
        this encoder does not cover it."""
        if (
            instance.status is not NodeStatus.SUCCESS
            or instance.resolved is None
            or not instance.job_id
            or instance.items is not None
            or instance.is_template_copy
            or len(instance.outputs) > 1
        ):
            return None
        for link in instance.input_links:
            if link is not None and link[1] is not None:  # a ref to rewrite to another clone
                return None
        scope = instance.scope
        loop, index = scope.loop, scope.index
        assert loop is not None and index is not None
        dumps = orjson.dumps
        values = [dumps(value) for value in instance.resolved] if self.has_inputs else []
        if self.id_first:
            values.insert(0, dumps(instance.id))
        else:
            values.append(dumps(instance.id))
        assets = (
            b',"assets":'
            + dumps(
                [{"assetId": a.asset_id, "url": a.url, "kind": a.kind} for a in instance.assets]
            )
            if instance.assets
            else b""
        )
        return self.format % (*values, index, dumps(loop.id), dumps(instance.job_id), assets)
