"""The job document: the scheduler's state rendered as Scenario's Job JSON."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from types import MappingProxyType
from typing import Any

import orjson

from engine.compile.compiler import Plan, TemplateNode
from engine.protocols import AssetOutputs, ChildWaits, NodeStatus
from engine.run.clone_encoding import CloneEncoder
from engine.run.instances import INSTANCE, Collected, Instance, LoopOutputs
from engine.run.scheduler import Scheduler

# a processing node has a reason only while it waits on its sub-workflow's gates
_REASON_STATUSES = frozenset(
    {NodeStatus.SKIPPED, NodeStatus.FAILURE, NodeStatus.REJECTED, NodeStatus.PROCESSING}
)
NOT_PARKED: Mapping[str, ChildWaits] = MappingProxyType({})
_OUTPUT_TYPES = frozenset(
    {"generate-prompt", "logic", "transform", "list", "for-each", "user-selection"}
)


def iteration_path(instance: Instance) -> tuple[int, ...]:
    path: list[int] = []
    scope = instance.scope
    while scope.index is not None:
        path.append(scope.index)
        assert scope.parent is not None
        scope = scope.parent
    return tuple(reversed(path))


def template_groups(scheduler: Scheduler) -> list[list[Instance]]:
    """The instances in flow order (each template, then its clones in iteration order,
    outer-major), a template's together: one list per template.

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
    ordered = [groups[position] for position in sorted(groups)]
    for group in ordered:
        if len(group[0].template.loops) > 1:
            group.sort(key=iteration_path)
    return ordered


def node_document(
    plan: Plan,
    instance: Instance,
    parked: Mapping[str, ChildWaits] = NOT_PARKED,
    *,
    streamed: bool = False,
) -> dict[str, Any]:
    """One node of `metadata.flow`: the original fields (unknown ones kept) plus its state.

    A workflow node parked while its child job waits (`parked`) lists the child's gates in
    `waitingGates`: each the gate's node in the job it waits in, named by its path, with that
    job's id (`jobId`) and its id there (`nodeId`). `streamed`: an unread for-each `output`
    of more than LARGE_LIST iterations may be a `Collected`, which `write_job_document` writes
    from the clones a batch at a time."""
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
            node["assets"] = [asset.to_json() for asset in instance.assets]
        extra = {k: v for k, v in outputs.items() if k != "output"} if len(outputs) > 1 else {}
        if template.type == "workflow" and "all" in outputs:
            extra = outputs["all"]
        if extra:
            node["output"] = extra
    elif template.type in _OUTPUT_TYPES and status is NodeStatus.SUCCESS:
        if streamed and type(outputs) is LoopOutputs:
            output = outputs.streamed_output()
            if type(output) is Collected and output.size <= LARGE_LIST:
                output = list(output)  # small: encoded with the nodes around it, not kept
        else:
            output = outputs.get("output")
        node["output"] = output
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
    plan: Plan, groups: list[list[Instance]]
) -> tuple[Iterator[list[str]], Iterator[dict[str, dict[str, Any]]]]:
    """`metadata.assetIds`, and `metadata.output`, both made as they are read, a non-empty
    batch at a time (a list of ids, a dict of outputs by node id): the assets and outputs of
    the output nodes that succeeded, in flow order (a model node's or a for-each's asset list
    left out of its outputs). `groups` are a template's instances each (see
    `template_groups`): what the template decides is read once, the clones of a template that
    has no output node are not read at all, and those of one that has are read by a
    comprehension per ENCODE_BATCH of them (not an iterator resumed per clone)."""
    done = [group for group in groups if group[0].template.is_output_candidate]
    success = NodeStatus.SUCCESS

    def succeeded() -> Iterator[tuple[TemplateNode, list[Instance]]]:
        for group in done:
            template = group[0].template
            for start in range(0, len(group), ENCODE_BATCH):
                batch = [
                    instance
                    for instance in group[start : start + ENCODE_BATCH]
                    if instance.status is success and not instance.is_template_copy
                ]
                if batch:
                    yield template, batch

    def asset_ids() -> Iterator[list[str]]:
        for _, batch in succeeded():
            ids = [asset.asset_id for instance in batch for asset in instance.assets]
            if ids:
                yield ids

    def outputs() -> Iterator[dict[str, dict[str, Any]]]:
        for template, batch in succeeded():
            if template.produces_assets or (
                template.type == "for-each" and plan.loop_output_is_assets(template.id)
            ):
                yield {instance.id: _without_assets(instance.outputs) for instance in batch}
            else:
                yield {instance.id: dict(instance.outputs) for instance in batch}

    return asset_ids(), outputs()


def _without_assets(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """A node's outputs without the asset list it also has as `assets`."""
    if type(outputs) is AssetOutputs:
        return {}  # its only output is its assets' ids
    if type(outputs) is LoopOutputs:
        return outputs.without_output()  # not collected to be dropped
    kept = dict(outputs)
    kept.pop("output", None)
    return kept


def job_document(
    scheduler: Scheduler, *, created_at: str, extra_metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The whole job, as `GET /jobs/{id}` returns it (without the `{"job": ...}` envelope)."""
    plan = scheduler.plan
    groups = template_groups(scheduler)
    flow = [node_document(plan, i, scheduler.parked) for group in groups for i in group]
    asset_ids, outputs = _job_outputs(plan, groups)
    return _document(
        scheduler,
        flow,
        [asset_id for batch in asset_ids for asset_id in batch],
        {node_id: kept for batch in outputs for node_id, kept in batch.items()},
        created_at,
        extra_metadata,
    )


class _Streamed:
    """Stands for a part of a document that `job_document_json` encodes a batch at a time:
    `metadata.flow` (its nodes), `metadata.assetIds` and `metadata.output` (each output
    node's outputs)."""


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
    groups = template_groups(scheduler)
    asset_ids, outputs = _job_outputs(plan, groups)
    document = _document(scheduler, STREAMED, STREAMED, STREAMED, created_at, extra_metadata)

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
        batches: Iterator[Any], write_batch: Callable[[Any], object], brackets: bytes
    ) -> Callable[[Any], None]:
        """A writer of `batches` (each non-empty; written by `write_batch`, its elements
        comma-separated) between `brackets` (`[]` or `{}`), unless extra metadata put a value
        of its own in their place."""

        def write_parts(item: Any) -> None:
            if item is not STREAMED:
                write(orjson.dumps(item))
                return
            write(brackets[:1])
            for number, batch in enumerate(batches):
                if number:
                    write(b",")
                write_batch(batch)
            write(brackets[1:])

        return write_parts

    def write_nodes(batch: list[dict[str, Any] | bytes]) -> None:
        """Node documents, comma-separated: encoded together, but a node with a large list
        (a for-each's `output` of a million iterations) on its own, its list a batch at a
        time (its encoding would be tens of megabytes at once); those encoded already (see
        `CloneEncoder`) as they are."""
        pieces: list[bytes] = []
        run: list[dict[str, Any]] = []
        for node in batch:
            if type(node) is bytes:
                if run:
                    pieces.append(orjson.dumps(run)[1:-1])
                    run = []
                pieces.append(node)
                continue
            assert isinstance(node, dict)
            key = _large_list_key(node)
            if key is None:
                run.append(node)
                continue
            if run:
                pieces.append(orjson.dumps(run)[1:-1])
                run = []
            if pieces:
                write(b",".join(pieces) + b",")
                pieces = []
            _write_large_node(write, node, key)
            pieces.append(b"")  # the next node follows a comma
        if run:
            pieces.append(orjson.dumps(run)[1:-1])
        if pieces:
            write(b",".join(pieces))

    def flow() -> Iterator[list[dict[str, Any] | bytes]]:
        """The nodes' documents, ENCODE_BATCH of a template's instances at a time."""
        parked = scheduler.parked
        for group in groups:
            encoder = CloneEncoder(group[0].template) if len(group) > 1 else None
            if encoder is not None and not encoder.usable:
                encoder = None
            for start in range(0, len(group), ENCODE_BATCH):
                batch = group[start : start + ENCODE_BATCH]
                if encoder is None:
                    yield [node_document(plan, i, parked, streamed=True) for i in batch]
                else:
                    yield [encoder.encode(i) or node_document(plan, i, parked) for i in batch]

    def encoded(batch: Any) -> None:
        write(orjson.dumps(batch)[1:-1])

    metadata_parts = {
        "flow": streamed(flow(), write_nodes, b"[]"),
        "assetIds": streamed(asset_ids, encoded, b"[]"),
        "output": streamed(outputs, encoded, b"{}"),
    }
    write_object(document, {"metadata": lambda metadata: write_object(metadata, metadata_parts)})


LARGE_LIST = 10_000  # elements of a node's `output` or `items` encoded a batch at a time


def _large_list_key(node: dict[str, Any]) -> str | None:
    for key in ("output", "items"):
        value = node.get(key)
        if type(value) is Collected or (type(value) is list and len(value) > LARGE_LIST):
            return key
    return None


def _write_large_node(write: Callable[[bytes], object], node: dict[str, Any], key: str) -> None:
    """`orjson.dumps(node)`'s bytes, with the list (or `Collected`) at `key` encoded a batch
    at a time."""
    keys = list(node)
    at = keys.index(key)
    before = {k: node[k] for k in keys[:at]}
    after = {k: node[k] for k in keys[at + 1 :]}
    write(orjson.dumps(before)[:-1] + (b',"' if before else b'"') + key.encode() + b'":[')
    values = iter(node[key])
    for number, batch in enumerate(iter(lambda: list(islice(values, ENCODE_BATCH)), [])):
        write((b"," if number else b"") + orjson.dumps(batch)[1:-1])
    write(b"]" + (b"," + orjson.dumps(after)[1:] if after else b"}"))


def _document(
    scheduler: Scheduler,
    flow: Any,
    asset_ids: Any,
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
