"""The job document encoded node by node is the same JSON as the document built whole."""

from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import EXAMPLES, FLOWS, export, run

from engine.api import JobRun
from engine.protocols import NodeStatus
from engine.run import job as job_module
from engine.run.instances import Instance

FLOW_FILES = sorted(path.name for path in Path(FLOWS).glob("*.json"))


def example_runs() -> list[tuple[str, dict[str, Any]]]:
    """Each example workflow with the inputs of each case of its test file."""
    runs = []
    for tests in sorted(Path(EXAMPLES).glob("*.flowtest.json")):
        cases = json.loads(tests.read_text())
        workflow = str(Path(EXAMPLES) / cases["workflow"])
        runs += [(workflow, case.get("inputs", {})) for case in cases["cases"]]
    return runs


# the fixture flows, the examples with their test cases' inputs, an editor export run whole
DOCUMENTS = [*((name, {}) for name in FLOW_FILES), *example_runs(), ("storyboard", {})]
NAMES = [f"{Path(name).name}-{index}" for index, (name, _) in enumerate(DOCUMENTS)]


def run_document(name: str, inputs: dict[str, Any]) -> JobRun:
    """A fixture flow by file name, an example by path, or an editor export by name."""
    return run(name if name.endswith(".json") else export(name), inputs)


@pytest.mark.parametrize("large", [False, True], ids=["", "large-lists"])
@pytest.mark.parametrize(("name", "inputs"), DOCUMENTS, ids=NAMES)
def test_streamed_encoding_equals_the_whole_document(
    name: str, inputs: dict[str, Any], large: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_module, "ENCODE_BATCH", 2)  # several batches even in small flows
    if large:  # every list `output` or `items` of two or more is written a batch at a time
        monkeypatch.setattr(job_module, "LARGE_LIST", 1)  # (a loop's unread one: from its clones)
    job = run_document(name, inputs)
    encoded = job.document_json()
    assert encoded == orjson.dumps(job.document())
    assert json.loads(encoded)["metadata"]["flow"] == job.document()["metadata"]["flow"]


def flow_order(instance: Instance) -> tuple[int, tuple[int, ...]]:
    """Flow order by definition: the template's position, then the clone's iteration indices
    from the outermost loop in (the template itself, which has none, first)."""
    path: list[int] = []
    scope = instance.scope
    while scope.index is not None:
        path.insert(0, scope.index)
        assert scope.parent is not None
        scope = scope.parent
    return (instance.template.position, tuple(path))


@pytest.mark.parametrize(("name", "inputs"), DOCUMENTS, ids=NAMES)
def test_the_flow_is_in_flow_order_and_the_outputs_are_the_output_nodes(
    name: str, inputs: dict[str, Any]
) -> None:
    """Every node once, each template then its clones outer loop first; `metadata.output` and
    `assetIds` the succeeded output nodes' (a model node's asset list left out of its outputs,
    as is a for-each's that collects assets), in that order."""
    job = run_document(name, inputs)
    scheduler = job.scheduler
    by_definition = sorted(scheduler.instances.values(), key=flow_order)
    metadata = json.loads(job.document_json())["metadata"]
    assert [node["id"] for node in metadata["flow"]] == [i.id for i in by_definition]
    output_nodes = [
        i
        for i in by_definition
        if i.status is NodeStatus.SUCCESS
        and i.template.is_output_candidate
        and not i.is_template_copy
    ]
    assert metadata["assetIds"] == [a.asset_id for i in output_nodes for a in i.assets]
    expected = {}
    for instance in output_nodes:
        template = instance.template
        outputs = dict(instance.outputs)
        if template.produces_assets or (
            template.type == "for-each" and scheduler.plan.loop_output_is_assets(template.id)
        ):
            outputs.pop("output", None)
        expected[instance.id] = outputs
    assert list(metadata["output"].items()) == list(json.loads(json.dumps(expected)).items())


def test_streamed_encoding_of_a_failed_job_with_extra_metadata() -> None:
    job = run("for-each-failure.json")
    job.extra_metadata["note"] = {"tag": "x"}
    job.extra_metadata["flow"] = "replaced"  # extra metadata wins over the flow, as in the dict
    job.extra_metadata["output"] = {"kept": [1, 2]}  # and over the outputs
    assert job.status.value == "failure"
    assert job.document_json() == orjson.dumps(job.document())
    metadata = json.loads(job.document_json())["metadata"]
    assert metadata["flow"] == "replaced" and metadata["output"] == {"kept": [1, 2]}


def test_the_encoding_follows_changes() -> None:
    job = run("gates.json")
    before = job.document_json()
    assert job.document_json() is before  # unchanged job: encoded once
    job.scheduler.cancel("enough")
    after = json.loads(job.document_json())
    assert after["status"] == "canceled"
    assert after == job.document()


def test_a_large_job_document_goes_to_the_store_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SPOOL_NODES nodes the document is encoded into a temporary file, once per change:
    the store gets the same bytes, a reader gets them from the file, and the file is closed
    when the job changes."""
    from engine import api
    from engine.run.spooled import SpooledDocument
    from engine.stores import SQLiteStore

    monkeypatch.setattr(api, "SPOOL_NODES", 3)  # gates.json has more nodes than that
    store = SQLiteStore(tmp_path / "jobs.db")
    job = run("gates.json", store=store)
    assert job.spools and job.status.value == "in-progress"  # waiting at its gates
    spooled = job.stored_form()
    assert isinstance(spooled, SpooledDocument) and job.stored_form() is spooled  # one encoding
    assert spooled.read() == orjson.dumps(job.document())
    assert store.document_json(job.job_id) == spooled.read()  # the run's last checkpoint
    assert job.document_json() == spooled.read()  # read from the file, not encoded again
    # and weighed, for readers that may take a lagging encoding, by what encoding it took
    assert job._document_json is not None and job._spooled is not None
    assert job._document_json[3] == job._spooled[2] > 0
    job.scheduler.cancel("enough")
    changed = job.stored_form()
    assert changed is not spooled and not spooled.closed  # its holder may still read it
    released = weakref.ref(spooled)
    del spooled
    assert released() is None  # the job let it go: its file with it
    assert (
        json.loads(changed.read() if isinstance(changed, SpooledDocument) else changed)["status"]
        == "canceled"
    )
    store.close()


def test_a_large_job_document_is_kept_in_memory_when_no_file_can_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (or an unwritable TMPDIR) costs the spared memory, not the job."""
    import tempfile

    from engine import api
    from engine.stores import SQLiteStore

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(api, "SPOOL_NODES", 3)
    monkeypatch.setattr(tempfile, "mkstemp", full)
    monkeypatch.setattr(tempfile, "TemporaryFile", full)  # the deflated document's file
    store = SQLiteStore(tmp_path / "jobs.db")
    job = run("gates.json", store=store)
    assert job.spools and job.status.value == "in-progress"
    encoded = job.stored_form()
    assert isinstance(encoded, bytes) and encoded == orjson.dumps(job.document())
    assert store.document_json(job.job_id) == encoded
    store.close()


@pytest.mark.anyio
async def test_a_polled_running_job_lags_by_at_most_twice_its_encoding_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Readers that poll (the server's job routes) may get a running job's previous encoding
    while it is younger than twice what it took to make; everyone else gets the exact state."""
    from conftest import make_engine

    from engine import api

    now = [0.0]

    def clock() -> float:
        now[0] += 1.0  # each reading one second later: every encoding "takes" a second
        return now[0]

    monkeypatch.setattr(api, "monotonic", clock)
    seen: dict[str, bytes] = {}
    holder: list[api.JobRun] = []

    def first(call: Any) -> list[str]:
        seen["first"] = holder[0].document_json(may_lag=True)  # made at t=2, took 1 s
        return ["asset_first"]

    def second(call: Any) -> list[str]:
        job = holder[0]
        seen["lagging"] = job.document_json(may_lag=True)  # t=3: 1 s old, under 2 s: reused
        now[0] += 10
        seen["late"] = job.document_json(may_lag=True)  # too old: encoded again
        seen["exact"] = job.document_json()  # nothing changed since: the same encoding
        return ["asset_second"]

    engine = make_engine(python_models={"m_first": first, "m_second": second})
    job = engine.prepare(
        {
            "flow": [
                {"id": "a", "type": "custom-model", "modelId": "m_first"},
                {
                    "id": "b",
                    "type": "custom-model",
                    "modelId": "m_second",
                    "inputs": [{"name": "image", "type": "file", "ref": {"node": "a"}}],
                },
            ]
        }
    )
    holder.append(job)
    await engine.advance(job)

    def status_of(encoded: bytes, node_id: str) -> str:
        flow = json.loads(encoded)["metadata"]["flow"]
        return str(next(n["status"] for n in flow if n["id"] == node_id))

    assert status_of(seen["first"], "a") == "processing"
    assert seen["lagging"] is seen["first"]  # `a` has succeeded since, but it is recent
    assert status_of(seen["late"], "a") == "success"
    assert seen["exact"] is seen["late"]
    assert json.loads(job.document_json(may_lag=True))["status"] == "success"  # not running


def _clone_flows() -> list[dict[str, Any]]:
    """Loops of model nodes whose clones the spliced encoding covers, in their variety: inputs
    from the item, the index, a run input, literal values (given in the wire, set in place),
    the wire's keys in another order and unknown ones, several assets, no inputs at all; and
    clones it leaves to the general way (a failure, a ref to another clone)."""
    loop = {"id": "loop", "type": "for-each", "count": 3, "loopBodyNodeIds": ["gen"]}
    gen_inputs = [
        {"name": "prompt", "type": "string", "ref": {"node": "loop", "name": "item"}},
        {"name": "index", "type": "number", "ref": {"node": "loop", "name": "index"}},
        {"name": "style", "type": "string", "ref": {"node": "workflow", "name": "style"}},
        {"name": "numSamples", "type": "number", "value": 2},
        {"name": "note", "type": "string", "value": 'é \u2028 "quoted"', "x-extra": [1, {}]},
    ]
    reordered = {
        "inputs": gen_inputs,
        "modelId": "model_a",
        "title": "Gen",
        "type": "custom-model",
        "id": "gen",
        "x-editor": {"position": [1.5, -2]},
    }
    chained = [
        {**loop, "loopBodyNodeIds": ["gen", "upscale"]},
        {"id": "gen", "type": "custom-model", "modelId": "model_a"},
        {
            "id": "upscale",
            "type": "remove-background",
            "modelId": "model_up",
            "inputs": [{"name": "image", "type": "file", "ref": {"node": "gen"}}],
        },
    ]
    outside = [
        {"id": "prompt", "type": "transform", "logic": {"transform": "'a fox'"}},
        loop,
        {
            "id": "gen",
            "type": "custom-model",
            "modelId": "model_a",
            "inputs": [
                {"name": "prompt", "type": "string", "ref": {"node": "prompt"}},
                {"name": "i", "type": "number", "ref": {"node": "loop", "name": "index"}},
            ],
        },
    ]
    nested = [
        {"id": "outer", "type": "for-each", "count": 2, "loopBodyNodeIds": ["word", "inner"]},
        {
            "id": "word",
            "type": "transform",
            "inputs": [{"name": "i", "type": "number", "ref": {"node": "outer", "name": "index"}}],
            "logic": {"transform": "'word ' + string(i)"},
        },
        {"id": "inner", "type": "for-each", "count": 2, "loopBodyNodeIds": ["gen"]},
        {
            "id": "gen",
            "type": "custom-model",
            "modelId": "model_a",
            "inputs": [{"name": "prompt", "type": "string", "ref": {"node": "word"}}],
        },
    ]
    # a body of expression nodes around the model node: a transform of the item, a logic node
    # reading the model's clone (its ref written after its value, with a name and extra
    # fields), and one whose condition fails on the last iteration (a failure: the general way)
    body = [
        {**loop, "loopBodyNodeIds": ["prompt", "gen", "check", "strict"]},
        {
            "id": "prompt",
            "type": "transform",
            "inputs": [{"name": "i", "type": "number", "ref": {"node": "loop", "name": "index"}}],
            "logic": {"transform": "'item ' + string(i)"},
        },
        {
            "id": "gen",
            "type": "custom-model",
            "modelId": "model_a",
            "inputs": [{"name": "prompt", "type": "string", "ref": {"node": "prompt"}}],
        },
        {
            "id": "check",
            "type": "logic",
            "logicType": "if-else",
            "inputs": [
                {
                    "value": None,
                    "name": "image",
                    "type": "file",
                    "ref": {"name": "output", "node": "gen", "x-note": "é"},
                },
                # text that reads as a format's slot, before the ref's node
                {
                    "name": "p",
                    "description": "100%bonus",
                    "type": "string",
                    "ref": {"node": "prompt"},
                },
            ],
            "logic": {
                "cases": [{"condition": "size(image) > 0", "value": "kept"}],
                "default": "no",
            },
        },
        {
            "id": "strict",
            "type": "transform",
            "inputs": [{"name": "p", "type": "string", "ref": {"node": "prompt"}}],
            "logic": {"transform": "p == 'item 2' ? 1 / 0 : p"},
        },
    ]
    return [
        {"inputs": [{"name": "style", "type": "string"}], "flow": [loop, reordered]},
        {"flow": [loop, {"id": "gen", "type": "custom-model", "modelId": "model_a"}]},
        {"flow": [loop, {"id": "gen", "type": "custom-model", "modelId": "m", "inputs": []}]},
        {"flow": chained},
        {"flow": outside},
        {"flow": nested},
        {"flow": body},
    ]


@pytest.mark.parametrize("number", range(7))
def test_spliced_clone_encodings_equal_the_general_one(
    number: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.run.clone_encoding import CloneEncoder

    spliced: list[str] = []
    encode = CloneEncoder.encode

    def counting(self: CloneEncoder, instance: Instance) -> bytes | None:
        encoded = encode(self, instance)
        if encoded is not None:
            spliced.append(instance.id)
        return encoded

    monkeypatch.setattr(CloneEncoder, "encode", counting)
    flow = _clone_flows()[number]
    failing = {"fail": ["gen#1"], "keep_going": True} if number == 1 else {}
    if number == 6:
        failing = {"keep_going": True}
    job = run(flow, {"style": "ink"} if number == 0 else {}, **failing)
    assert job.document_json() == orjson.dumps(job.document())
    clones = ["gen#0", "gen#1", "gen#2"]
    expected = {
        1: ["gen#0", "gen#2"],
        # chained: `upscale` reads another clone, its ref shown as that clone's id
        3: [*clones, "upscale#0", "upscale#1", "upscale#2"],
        # nested: `gen` reads its outer iteration's `word#i`
        5: ["word#0", "word#1", "gen#0#0", "gen#0#1", "gen#1#0", "gen#1#1"],
        # a body of expression nodes: `strict#2` failed
        6: [
            *(f"prompt#{i}" for i in range(3)),
            *clones,
            *(f"check#{i}" for i in range(3)),
            "strict#0",
            "strict#1",
        ],
    }
    assert spliced == expected.get(number, clones)
    if number == 6:
        check = json.loads(job.document_json())["metadata"]["flow"]
        shown = {node["id"]: node for node in check}
        assert shown["check#1"]["inputs"][0]["ref"] == {
            "name": "output",
            "node": "gen#1",
            "x-note": "é",
        }
        assert shown["check#1"]["output"] == "kept"
        assert shown["check#1"]["inputs"][1]["ref"] == {"node": "prompt#1"}
        assert shown["check#1"]["inputs"][1]["value"] == "item 1"
        assert shown["strict#2"]["status"] == "failure"
    if number == 4:  # reading a node outside the loop, the clones share their links
        links = {id(job.scheduler.instances[f"gen#{i}"].input_links) for i in range(3)}
        assert len(links) == 1


def test_documents_share_no_outputs_between_jobs() -> None:
    """An output node whose only output is its assets shows `{}` in `metadata.output`: a dict
    of its own in each document, so one caller's change reaches no other job."""
    document = {"flow": [{"id": "gen", "type": "custom-model", "modelId": "model_a"}]}
    first, second = run(document), run(document)
    first.document()["metadata"]["output"]["gen"]["note"] = "changed"
    assert second.document()["metadata"]["output"] == {"gen": {}}
    assert json.loads(second.document_json())["metadata"]["output"] == {"gen": {}}


def _fan_out(count: int, *, readers: int = 0) -> dict[str, Any]:
    """A for-each of `count` model nodes, and `readers` transforms of the loop's output."""
    flow: list[dict[str, Any]] = [
        {"id": "loop", "type": "for-each", "count": count, "loopBodyNodeIds": ["gen"]},
        {"id": "gen", "type": "custom-model", "modelId": "model_a"},
    ]
    for n in range(readers):
        ref = {"name": "all", "type": "string_array", "ref": {"node": "loop"}}
        flow.append(
            {
                "id": f"read{n}",
                "type": "transform",
                "inputs": [ref],
                "logic": {"transform": "size(all)"},
            }
        )
    return {"flow": flow}


def _asset_id_lists() -> int:
    """Lists alive holding one asset id: what a collected fan-out output holds, one a clone."""
    import gc

    gc.collect()
    return sum(
        1
        for value in gc.get_objects()
        if type(value) is list and len(value) == 1 and str(value[0]).startswith("asset_")
    )


@pytest.mark.parametrize("streamed", [False, True], ids=["in-place", "streamed"])
def test_a_fan_out_output_nothing_reads_is_written_from_its_clones_not_kept(
    streamed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A for-each's `output` (a list per clone) is collected when something reads it; in a
    fan-out whose clones are the job's outputs nothing does, and the job document writes it
    from the clones (past LARGE_LIST iterations a batch at a time, else in one list it
    drops): no list per clone stays alive for it, and the document is the same as the one
    built whole."""
    if streamed:
        monkeypatch.setattr(job_module, "LARGE_LIST", 100)
    job = run(_fan_out(3000))
    before = _asset_id_lists()
    encoded = job.document_json()
    assert before < 100 and _asset_id_lists() < 100
    loop = json.loads(encoded)["metadata"]["flow"][0]
    assert loop["id"] == "loop" and len(loop["output"]) == 3000
    assert loop["output"][7] == [job.scheduler.instances["gen#7"].assets[0].asset_id]
    assert encoded == orjson.dumps(job.document())


def test_a_read_loop_output_is_collected_once_and_kept() -> None:
    """Read, the output is collected once and kept: every later read gets that one list, as
    it did when it was a dict's value (not a collection per read, which would be quadratic
    in a loop whose clones read another loop's output)."""
    job = run(_fan_out(50, readers=3))
    instances = job.scheduler.instances
    ids = [[instances[f"gen#{i}"].assets[0].asset_id] for i in range(50)]
    assert [instances[f"read{n}"].resolved[0] for n in range(3)] == [sum(ids, [])] * 3
    output = instances["loop"].outputs["output"]
    assert output == ids and instances["loop"].outputs.get("output") is output
    assert [node["output"] for node in job.document()["metadata"]["flow"][-3:]] == [50, 50, 50]
    assert job.document_json() == orjson.dumps(job.document())
