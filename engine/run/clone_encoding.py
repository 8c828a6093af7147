"""A model node's clones encoded from their template's encoding, spliced.

Most nodes of a large job are the clones of one model node in a loop, each succeeded with its
assets. Their documents differ from the template's in a few values: the id, the inputs'
values, the iteration, the job id and the assets. `CloneEncoder` encodes the template once,
as a bytes format, and each such clone by filling it with the encodings of its own values:
byte for byte what `orjson.dumps(node_document(...))` gives (tests compare them), without a
dict built per node (a 100,000-iteration fan-out's whole document: 0.19 s, against 0.25 s).
A clone it does not cover (another status, a reason, outputs beyond the assets, a ref to
rewrite) is encoded the general way.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.compile.compiler import TemplateNode
from engine.protocols import AssetOutputs, NodeStatus
from engine.run.instances import INSTANCE, Instance

_MARK = "\x01flowgraph-splice\x01"  # placeholders no document holds (control characters)
_ID_MARK, _INPUTS_MARK = _MARK + "id", _MARK + "inputs"
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


def _format(value: dict[str, Any], marks: dict[str, str], replaced: dict[str, bytes]) -> bytes:
    """`value` encoded as a bytes format: the value at each key of `marks` replaced by what
    `replaced` gives for its mark (`%b` where a clone's value goes), every other `%` escaped,
    and without the closing brace."""
    probe = dict(value)
    probe.update(marks)
    encoded = orjson.dumps(probe)[:-1].replace(b"%", b"%%")
    for mark in marks.values():
        encoded = encoded.replace(orjson.dumps(mark), replaced[mark])
    return encoded


class CloneEncoder:
    """One template's clone documents as a bytes format; `encode` fills it for a clone."""

    def __init__(self, template: TemplateNode) -> None:
        self.usable = False
        node, wire = template.node, template.wire
        names = template.input_names
        self.has_inputs = bool(node.inputs)
        wire_inputs = wire.get("inputs")
        if (
            not template.loops
            or not template.produces_assets
            or template.type == "workflow"
            or node.loop_body_node_ids
            or template.depends_on
            or "id" not in wire
            or _SET_AFTER.intersection(wire)
            or any(compiled.rows or compiled.conditional for compiled in template.inputs)
            or b"flowgraph-splice" in orjson.dumps(wire)
        ):
            return
        inputs = b""
        if self.has_inputs:
            if (
                not isinstance(wire_inputs, list)
                or len(set(names)) != len(names)
                or [item.get("name") if isinstance(item, dict) else None for item in wire_inputs]
                != list(names)
            ):
                return  # values are shown by name: only distinct names map one to one
            # each input with its value (set in place, or added last) left to fill
            fields = [
                _format(item, {"value": _MARK}, {_MARK: b"%b"}) + b"}" for item in wire_inputs
            ]
            inputs = b"[" + b",".join(fields) + b"]"
        marks = {"id": _ID_MARK, **({"inputs": _INPUTS_MARK} if self.has_inputs else {})}
        self.format = _format(wire, marks, {_ID_MARK: b"%b", _INPUTS_MARK: inputs}) + (
            b',"iterationIndex":%d,"loopNodeId":%b,"status":"success","jobId":%b%b}'
        )
        # the values go in the order the wire has the id and the inputs
        self.id_first = not self.has_inputs or list(wire).index("id") < list(wire).index("inputs")
        # what the clones share, checked or encoded once: their links (one tuple, see
        # `linking.link_instance`), and their loop's id
        self._links_checked: tuple[Any, ...] | None = None
        self._loop: Any = None
        self._loop_id = b""
        self.usable = True

    def encode(self, instance: Instance) -> bytes | None:
        """The clone's document as `orjson.dumps(node_document(...))` gives it, or None when
        this encoder does not cover it."""
        outputs = instance.outputs
        if (
            instance.status is not NodeStatus.SUCCESS
            or instance.resolved is None
            or not instance.job_id
            or instance.items is not None
            or instance.is_template_copy
            or (type(outputs) is not AssetOutputs and len(outputs) > 1)
        ):
            return None
        links = instance.input_links
        if links is not self._links_checked:
            for link in links:
                if link is not None and link[0] == INSTANCE and link[1].scope.loop is not None:
                    return None  # a ref the document rewrites to that clone's id
            self._links_checked = links
        scope = instance.scope
        loop, index = scope.loop, scope.index
        assert loop is not None and index is not None
        if loop is not self._loop:
            self._loop, self._loop_id = loop, orjson.dumps(loop.id)
        dumps = orjson.dumps
        resolved = instance.resolved
        if not self.has_inputs:
            values = []
        elif len(resolved) == 1:  # the usual loop body's one input: no comprehension
            values = [dumps(resolved[0])]
        else:
            values = [dumps(value) for value in resolved]
        if self.id_first:
            values.insert(0, dumps(instance.id))
        else:
            values.append(dumps(instance.id))
        assets = b""
        if len(instance.assets) == 1:  # the usual answer: no comprehension per clone
            assets = b',"assets":' + dumps((instance.assets[0].to_json(),))
        elif instance.assets:
            assets = b',"assets":' + dumps([asset.to_json() for asset in instance.assets])
        return self.format % (*values, index, self._loop_id, dumps(instance.job_id), assets)
