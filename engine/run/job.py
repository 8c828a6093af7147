"""The job document: the scheduler's state rendered as Scenario's Job JSON."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from itertools import groupby, islice
from operator import attrgetter
from types import MappingProxyType
from typing import Any

import orjson

from engine.compile.compiler import Plan
from engine.protocols import ChildWaits, NodeStatus
from engine.run.instances import INSTANCE, Instance
from engine.run.scheduler import Scheduler

# a processing node has a reason only while it waits on its sub-workflow's gates
_REASON_STATUSES = frozenset(
    {NodeStatus.SKIPPED, NodeStatus.FAILURE, NodeStatus.REJECTED, NodeStatus.PROCESSING}
)
NOT_PARKED: Mapping[str, ChildWaits] = MappingProxyType({})
_OUTPUT_TYPES = frozenset(
    {"generate-prompt", "logic", "transform", "list", "for-each", "user-selection"}
)


_TEMPLATE = attrgetter("template")


def iteration_path(instance: Instance) -> tuple[int, ...]:
    path: list[int] = []
    scope = instance.scope
    while scope.index is not None:
        path.append(scope.index)
        assert scope.parent is not None
        scope = scope.parent
    return tuple(reversed(path))


def ordered_instances(scheduler: Scheduler) -> list[Instance]:
    """Flow order: each template, then its clones in iteration order (outer-major).

    Grouped by template rather than sorted whole (a sort would build a key for each of a
    million nodes): the instances of a template in at most one loop are made in that order
    already, its copy first, then the one expansion of its loop, index by index. Only the
    clones of a template nested in several loops are sorted, by their iteration path."""
    groups: dict[int, list[Instance]] = {}
    for instance in scheduler.instances.values():
        group = groups.get(instance.template.position)
        if group is None:
            groups[instance.template.position] = [instance]
        else:
            group.append(instance)
    ordered: list[Instance] = []
    for position in sorted(groups):
        group = groups[position]
        if len(group[0].template.loops) > 1:
            group.sort(key=iteration_path)
        ordered += group
    return ordered


def node_document(
    plan: Plan, instance: Instance, parked: Mapping[str, ChildWaits] = NOT_PARKED
) -> dict[str, Any]:
    """One node of `metadata.flow`: the original fields (unknown ones kept) plus its state.

    A workflow node parked while its child job waits (`parked`) lists the child's gates in
    `waitingGates`: each the gate's node in the job it waits in, named by its path, with that
    job's id (`jobId`) and its id there (`nodeId`)."""
    template, scope, status = instance.template, instance.scope, instance.status
    node = dict(template.wire)
    node["id"] = instance.id
    loop = scope.loop
    cloned = loop is not None
    if loop is not None:
        node["iterationIndex"] = scope.index
        node["loopNodeId"] = loop.id
    if cloned and template.node.loop_body_node_ids:
        suffix = scope.suffix
        node["loopBodyNodeIds"] = [member + suffix for member in template.node.loop_body_node_ids]
    if cloned and instance.order_links:
        node["dependsOn"] = [
            link[1].id if link[0] == INSTANCE else target
            for link, target in zip(instance.order_links, template.depends_on, strict=True)
        ]
    if template.node.inputs and (instance.resolved is not None or instance.input_links):
        node["inputs"] = _inputs_document(instance, node["inputs"])
    node["status"] = status._value_  # `.value` is a descriptor, four times slower to read
    node.pop("waitingGates", None)  # only a run writes it: a document's own is never shown
    if instance.job_id:
        node["jobId"] = instance.job_id
    outputs = instance.outputs
    if template.produces_assets:
        if instance.assets:
            node["assets"] = [
                {"assetId": a.asset_id, "url": a.url, "kind": a.kind} for a in instance.assets
            ]
        extra = {k: v for k, v in outputs.items() if k != "output"} if len(outputs) > 1 else {}
        if template.type == "workflow" and "all" in outputs:
            extra = outputs["all"]
        if extra:
            node["output"] = extra
    elif template.type in _OUTPUT_TYPES and status is NodeStatus.SUCCESS:
        node["output"] = outputs.get("output")
    if instance.items is not None:
        node["items"] = instance.items
    if instance.reason is not None and status in _REASON_STATUSES:
        node["statusReason"] = instance.reason
        waits = parked.get(instance.id)
        if waits is not None:
            node["waitingGates"] = [gate.document for gate in waits.gates]
    return node


def _rows_document(rows: list[list[dict[str, Any]]], values: Any) -> Any:
    """The `items` of an inputs_array, each sub-input with the value it resolved to (when the
    input's value is not its rows, given by a ref or literally, `items` stay as they are)."""
    if not isinstance(values, list) or not all(isinstance(row, dict) for row in values):
        return rows
    return [
        [{**cell, "value": row.get(cell["name"])} for cell in cells]
        for cells, row in zip(rows, values, strict=False)
    ]


def _inputs_document(instance: Instance, wire_inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rewritten = []
    values = instance.values
    for position, wire in enumerate(wire_inputs):
        item = dict(wire)
        link = instance.input_links[position] if position < len(instance.input_links) else None
        conditional = (
            instance.conditional_links[position]
            if position < len(instance.conditional_links)
            else []
        )
        source = link[1] if link is not None and link[0] == INSTANCE else None
        if (
            instance.scope.loop is not None
            and ("ref" in item)
            and (source is not None or conditional)
        ):
            ref = dict(item["ref"])  # the wire form is shared: never changed in place
            if source is not None:
                ref["node"] = source.id
            if conditional:
                ref["conditional"] = [
                    entry[1].id if entry[0] == INSTANCE else original
                    for entry, original in zip(conditional, ref["conditional"], strict=False)
                ]
            item["ref"] = ref
        if values is not None and item.get("name") in values:
            item["value"] = values[item["name"]]
            compiled = instance.template.inputs[position]
            if compiled.rows and "items" in item:
                # an inputs_array resolved from its rows: each sub-input shows its value
                item["items"] = _rows_document(item["items"], item["value"])
        rewritten.append(item)
    return rewritten


def _job_outputs(
    plan: Plan, ordered: list[Instance]
) -> tuple[list[str], Iterator[tuple[str, dict[str, Any]]]]:
    """`metadata.assetIds`, and `metadata.output` as (node id, outputs) pairs made as they are
    read: the assets and outputs of the output nodes that succeeded, in flow order (a model
    node's or a for-each's asset list left out of its outputs). `ordered` is in flow order, a
    template's nodes together, and is read a template at a time: what the template decides is
    read once, and the clones of a template that has no output node are not read at all."""
    done = [
        (template, [i for i in clones if i.status is NodeStatus.SUCCESS and not i.is_template_copy])
        for template, clones in groupby(ordered, key=_TEMPLATE)
        if template.is_output_candidate
    ]
    asset_ids = [asset.asset_id for _, nodes in done for i in nodes for asset in i.assets]

    def pairs() -> Iterator[tuple[str, dict[str, Any]]]:
        for template, nodes in done:
            without_assets = template.produces_assets or (
                template.type == "for-each" and plan.loop_output_is_assets(template.id)
            )
            for instance in nodes:
                kept = dict(instance.outputs)
                if without_assets:
                    kept.pop("output", None)
                yield instance.id, kept

    return asset_ids, pairs()


def job_document(
    scheduler: Scheduler, *, created_at: str, extra_metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The whole job, as `GET /jobs/{id}` returns it (without the `{"job": ...}` envelope)."""
    plan = scheduler.plan
    ordered = ordered_instances(scheduler)
    flow = [node_document(plan, instance, scheduler.parked) for instance in ordered]
    asset_ids, outputs = _job_outputs(plan, ordered)
    return _document(scheduler, flow, asset_ids, dict(outputs), created_at, extra_metadata)


class _Streamed:
    """Stands for a part of a document that `job_document_json` encodes a batch at a time:
    `metadata.flow` (its nodes) and `metadata.output` (each output node's outputs)."""


STREAMED = _Streamed()
ENCODE_BATCH = 1000  # nodes (or outputs) encoded at once


def job_document_json(
    scheduler: Scheduler, *, created_at: str, extra_metadata: dict[str, Any] | None = None
) -> bytes:
    """`job_document` as UTF-8 JSON, byte for byte what `orjson.dumps(job_document(...))`
    gives, but encoded a batch of nodes at a time: the node dicts of a 100,000-node job, and
    the copies of their outputs, never exist all at once, only their encoding does."""
    out = io.BytesIO()
    write_job_document(scheduler, out.write, created_at=created_at, extra_metadata=extra_metadata)
    return out.getvalue()


def write_job_document(
    scheduler: Scheduler,
    write: Callable[[bytes], object],
    *,
    created_at: str,
    extra_metadata: dict[str, Any] | None = None,
) -> None:
    """`job_document_json`'s bytes, given to `write` a piece at a time (see `SpooledDocument`:
    a large job's encoding then never exists whole in memory either)."""
    plan = scheduler.plan
    ordered = ordered_instances(scheduler)
    asset_ids, outputs = _job_outputs(plan, ordered)
    document = _document(scheduler, STREAMED, asset_ids, STREAMED, created_at, extra_metadata)

    def write_object(value: dict[str, Any], special: Mapping[str, Callable[[Any], None]]) -> None:
        write(b"{")
        for index, (key, item) in enumerate(value.items()):
            write(b',"' if index else b'"')
            write(orjson.dumps(key)[1:])  # the key's closing quote and text
            write(b":")
            writer = special.get(key)
            if writer is not None:
                writer(item)
            else:
                write(orjson.dumps(item))
        write(b"}")

    def streamed(
        parts: Iterator[Any], encode: Callable[[list[Any]], bytes]
    ) -> Callable[[Any], None]:
        """A writer of `parts` encoded a batch at a time (an array or an object, as `encode`
        makes it), unless extra metadata put a value of its own in their place."""

        def write_parts(item: Any) -> None:
            if item is not STREAMED:
                write(orjson.dumps(item))
                return
            empty = encode([])  # `[]` or `{}`: the brackets around the batches
            write(empty[:1])
            for number, batch in enumerate(iter(lambda: list(islice(parts, ENCODE_BATCH)), [])):
                if number:
                    write(b",")
                write(encode(batch)[1:-1])
            write(empty[1:])

        return write_parts

    parked = scheduler.parked
    metadata_parts = {
        "flow": streamed((node_document(plan, i, parked) for i in ordered), orjson.dumps),
        "output": streamed(outputs, lambda pairs: orjson.dumps(dict(pairs))),
    }
    write_object(document, {"metadata": lambda metadata: write_object(metadata, metadata_parts)})


def _document(
    scheduler: Scheduler,
    flow: Any,
    asset_ids: list[str],
    output: Any,
    created_at: str,
    extra_metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    plan = scheduler.plan
    metadata: dict[str, Any] = {
        "input": dict(scheduler.inputs),
        "flow": flow,
        "assetIds": asset_ids,
        "output": output,
    }
    if scheduler.error is not None:
        metadata["error"] = scheduler.error
    if plan.workflow.id:
        metadata["workflowId"] = plan.workflow.id
    metadata.update(extra_metadata or {})
    history = [{"date": at, "status": status.value} for at, status in scheduler.status_history]
    return {
        "jobId": scheduler.job_id,
        "jobType": "workflow",
        "status": scheduler.status.value,
        "progress": round(scheduler.progress, 6),
        "createdAt": created_at,
        "updatedAt": scheduler.updated_at or created_at,
        "statusHistory": history,
        "metadata": metadata,
    }
