"""Webapp exports (an `editorInfo` graph, no `flow`) published and run offline, node by node.

The exports in tests/exports/ are shaped as Scenario's web editor writes them: backwards edges,
handle ids, UI fields, pinned inputs named by node id, no asset values.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, EXPORTS, FLOWS, decide, embedded_view, export, nodes, run, statuses

from engine import Engine, publish_document
from engine.compile.document import load_workflow, published_from_editor
from engine.errors import ValidationError


def assets(node: dict[str, Any]) -> list[str]:
    return [a["assetId"] for a in node.get("assets") or []]


def test_every_editor_node_type_is_covered_by_the_exports() -> None:
    seen = {
        node["type"]
        for path in [*EXPORTS.glob("*.json"), *EXAMPLES.glob("*.export.json")]
        for node in json.loads(path.read_text())["editorInfo"]["nodes"]
    }
    assert seen == {
        "text", "asset", "model", "llm", "transformText", "splitText", "groupItems",
        "sliceAssets", "aspectRatio", "ifElse", "forEach", "forEachEnd", "approval", "stickyNote",
    }  # fmt: skip


def test_an_export_is_published_as_it_is_read() -> None:
    document = export("character-portrait")
    assert "flow" not in document
    workflow = load_workflow(document)
    assert published_from_editor(workflow)
    wire = workflow.to_wire()
    assert [n["id"] for n in wire["flow"]] == [
        "aspect1", "prompt1", "check1", "pixel1", "paint1", "upscale1", "approve1", "bg1",
    ]  # fmt: skip
    flow = {n["id"]: n for n in wire["flow"]}
    # the documented form: a pinned text node is read as a workflow input named by its id
    assert {
        "name": "text1_output",
        "type": "string",
        "ref": {"node": "workflow", "name": "text1"},
    } in flow["prompt1"]["inputs"]  # noqa: E501
    assert (
        flow["pixel1"]["type"] == "custom-model"
        and flow["pixel1"]["modelId"] == "model_pixel-art-xl"
    )
    assert flow["pixel1"]["title"] == "Pixel generator"
    assert flow["upscale1"]["inputs"][0]["ref"] == {"conditional": ["pixel1", "paint1"]}
    assert flow["bg1"]["dependsOn"] == ["approve1"] and flow["approve1"]["dependsOn"] == [
        "upscale1"
    ]
    # the export's input entries are kept as they are (label, rules, default)
    assert [i["name"] for i in wire["inputs"]] == ["text1", "text2"]
    assert wire["inputs"][0]["description"] == "Who to draw"
    assert wire["editorInfo"] == document["editorInfo"] and wire["version"] == "1.0"
    assert not published_from_editor(load_workflow(wire))  # it has a flow now


def test_prompt_builder_if_else_merge_and_approval_run_node_by_node() -> None:
    job = run(export("character-portrait"))
    flow = nodes(job)
    assert job.status.value == "in-progress"  # parked at the approval on the upscale
    assert flow["prompt1"]["output"] == "A portrait of a knight with a lantern, watercolor style"
    assert flow["check1"]["output"] == "else"
    assert flow["pixel1"]["status"] == "skipped"
    # the gate rides on the node's inputs: the model is called with its own inputs only
    reason = "input `prompt`: branch `if1` of `check1` not taken; it chose `else`"
    assert flow["pixel1"]["statusReason"] == reason
    paint = assets(flow["paint1"])
    assert flow["paint1"]["status"] == "success" and len(paint) == 1
    prompt = next(i for i in flow["paint1"]["inputs"] if i["name"] == "prompt")
    assert prompt["value"] == flow["prompt1"]["output"]
    settings = {i["name"]: i["value"] for i in flow["paint1"]["inputs"]}
    assert settings["aspectRatio"] == "3:4" and settings["numSamples"] == 1
    # the merge takes the branch that ran
    assert flow["upscale1"]["inputs"][0]["value"] == paint[0]
    assert flow["approve1"]["status"] == "processing" and flow["bg1"]["status"] == "pending"
    decide(job, "approve1", "approve")
    flow = nodes(job)
    assert job.status.value == "success"
    assert flow["bg1"]["inputs"][0]["value"] == assets(flow["upscale1"])[0]
    assert job.document()["metadata"]["assetIds"] == assets(flow["upscale1"]) + assets(flow["bg1"])


@pytest.mark.parametrize(("style", "taken"), [("pixel art", "pixel1"), ("8-bit", "pixel1"), ("oil", "paint1")])  # fmt: skip
def test_if_else_blocks_or_their_conditions(style: str, taken: str) -> None:
    job = run(export("character-portrait"), {"text2": style})
    found = statuses(job)
    assert found[taken] == "success"
    assert found[({"pixel1", "paint1"} - {taken}).pop()] == "skipped"


def test_rejecting_the_approval_cancels_the_job() -> None:
    job = decide(run(export("character-portrait")), "approve1", "reject")
    assert job.status.value == "canceled"
    assert statuses(job)["approve1"] == "rejected" and statuses(job)["bg1"] == "skipped"


def test_split_loop_end_slice_group_and_llm_run_node_by_node() -> None:
    job = run(export("prop-sheet"), {"text3": "sword, shield ,, bow"})
    flow = nodes(job)
    assert job.status.value == "success"
    assert flow["split1"]["output"] == ["sword", "shield", "bow"]
    assert flow["prompt2#1"]["output"] == "game icon of a shield, item 1"
    icons = [assets(flow[f"icon1#{i}"])[0] for i in range(3)]
    assert len(set(icons)) == 3 and "icon1#3" not in flow
    assert flow["slice1"]["output"] == icons[:2]  # from "0", count "2"
    assert flow["last1"]["output"] == icons[-1:]  # from "-1"
    assert flow["group1"]["output"] == ["sword, shield ,, bow", "a sheet of props"]
    assert isinstance(flow["llm1"]["output"], str)  # an llm makes text
    sheet = {i["name"]: i["value"] for i in flow["sheet1"]["inputs"]}
    assert sheet == {"referenceImages": icons[-1:], "prompt": flow["llm1"]["output"]}
    # the pinned loop end puts every iteration's assets among the job's outputs
    asset_ids = job.document()["metadata"]["assetIds"]
    assert icons == [a for a in asset_ids if a in icons] and assets(flow["sheet1"])[0] in asset_ids


def test_an_if_else_inside_a_loop_gates_each_iteration_and_the_end_waits_for_approval() -> None:
    job = run(export("storyboard"), {"text5": "melancholy"})
    flow = nodes(job)
    assert [flow[f"check2#{i}"]["output"] for i in range(3)] == ["if1", "else", "if1"]
    assert [flow[f"night1#{i}"]["status"] for i in range(3)] == ["success", "skipped", "success"]
    assert flow["up2#1"]["inputs"][0]["value"] == assets(flow["day1#1"])[0]
    assert flow["approve2"]["status"] == "processing" and flow["sheet2"]["status"] == "pending"
    # a branch handle wired into data passes the if/else's input on, on that branch only
    assert flow["mood1"]["inputs"][0]["value"] == "melancholy"
    assert flow["logo1"]["status"] == "skipped"  # gated with no wired input: only `conditional`
    decide(job, "approve2", "approve")
    flow = nodes(job)
    assert job.status.value == "success"
    refs = flow["sheet2"]["inputs"][0]["value"]
    assert refs == [assets(flow[f"up2#{i}"])[0] for i in range(3)]


def test_nested_loops_from_the_editor() -> None:
    job = run(export("nested-shots"))
    flow = nodes(job)
    assert job.status.value == "success"
    shots = {k: n["inputs"][0]["value"] for k, n in flow.items() if k.count("#") == 2}
    assert shots == {
        "shot1#0#0": "rain", "shot1#0#1": "umbrella",
        "shot1#1#0": "sun", "shot1#1#1": "hat", "shot1#1#2": "shades",
    }  # fmt: skip


def test_publish_document_sets_ready_and_keeps_everything_else() -> None:
    published = publish_document(export("nested-shots"))
    assert published["status"] == "ready" and published["name"] == "Nested shots"
    assert published["tagSet"] == ["flowgraph-test"] and len(published["flow"]) == 5


def broken(document: dict[str, Any], **changes: dict[str, Any]) -> dict[str, Any]:
    """`document` with some nodes' data changed (by node id)."""
    document = copy.deepcopy(document)
    for node in document["editorInfo"]["nodes"]:
        node["data"].update(changes.get(node["id"], {}))
    return document


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        publish_document(document)
    assert caught.value.headline == "editor graph is invalid"
    return [str(p) for p in caught.value.problems]


def test_every_problem_is_named_by_node_id_title_and_field() -> None:
    document = broken(
        export("character-portrait"),
        pixel1={"modelId": ""},
        check1={
            "conditionBlocks": [
                {
                    "logic": "and",
                    "conditions": [{"field": "text9_output", "operator": "contains", "value": "x"}],
                },  # noqa: E501
                {
                    "logic": "xor",
                    "conditions": [
                        {"field": "text2_output", "operator": "startsWith", "value": "x"}
                    ],
                },  # noqa: E501
                {"conditions": [{"field": "text2_output", "operator": "equals"}]},
            ]
        },
        prompt1={"value": ""},
        aspect1={"output": "7:5"},
    )
    nodes_ = document["editorInfo"]["nodes"]
    nodes_.append({"id": "gen9", "type": "image-generator", "position": {}, "data": {}})
    nodes_.append({"id": "knob1", "type": "modelInput", "position": {}, "data": {"title": "Seed"}})
    found = problems(document)
    assert found == [
        'editorInfo.nodes[2].data.output: aspectRatio `aspect1` ("Format"): `output` `7:5` is not one of 21:9, 16:9, 3:2, 4:3, 5:4, 1:1, 4:5, 3:4, 2:3, 9:16, 9:21',  # noqa: E501
        'editorInfo.nodes[3].data.value: transformText `prompt1` ("Prompt builder"): needs a CEL expression in `value`',  # noqa: E501
        'editorInfo.nodes[4].data.conditionBlocks[0].conditions[0].field: ifElse `check1` ("Pixel art?"): condition field `text9_output` names no wired input (wired: `text2_output`); a field is `<nodeId>_<handle>` of a node wired into the if/else',  # noqa: E501
        'editorInfo.nodes[4].data.conditionBlocks[1].logic: ifElse `check1` ("Pixel art?"): `logic` `xor` is not `and` or `or`',  # noqa: E501
        'editorInfo.nodes[4].data.conditionBlocks[1].conditions[0].operator: ifElse `check1` ("Pixel art?"): unknown operator `startsWith`; expected isEmpty, isNotEmpty, contains, notContains, equals, notEquals',  # noqa: E501
        'editorInfo.nodes[4].data.conditionBlocks[2].conditions[0].value: ifElse `check1` ("Pixel art?"): `equals` needs a `value`',  # noqa: E501
        'editorInfo.nodes[5].data.modelId: model `pixel1` ("Pixel generator"): needs a `modelId`',
        "editorInfo.nodes[11].type: node `gen9`: unknown type `image-generator` (an editor palette name): write `model`",  # noqa: E501
        'editorInfo.nodes[12]: modelInput `knob1` ("Seed"): `modelInput` nodes (a model setting exposed as its own node) do not publish; put the setting in the model\'s `data.form`, or pin a text node and wire it',  # noqa: E501
    ]


def test_what_publish_refuses_in_the_wiring() -> None:
    document = broken(export("storyboard"), sheet2={"isOutput": False}, mood1={"isOutput": False},
                      logo1={"isOutput": False}, text4={"isInput": False})  # fmt: skip
    edges = document["editorInfo"]["edges"]
    # data routed through the approval, an edge written forwards, a loop end without its loop
    edges.append({"id": "e1", "source": "sheet2", "sourceHandle": "sheet2-source-prompt",
                  "target": "approve2", "targetHandle": "approve2-target-output"})  # fmt: skip
    edges.append({"id": "e2", "source": "text5", "sourceHandle": "text5-target-output",
                  "target": "mood1", "targetHandle": "mood1-source-prompt"})  # fmt: skip
    for node in document["editorInfo"]["nodes"]:
        if node["id"] == "end2":
            node["data"]["parentNodeId"] = "loop9"
    found = problems(document)
    assert found == [
        'editorInfo.nodes[3]: forEach `loop2` ("For each scene"): has no forEachEnd (a forEachEnd whose `parentNodeId` names it)',  # noqa: E501
        'editorInfo.nodes[8].data.parentNodeId: forEachEnd `end2` ("End for each"): `parentNodeId` `loop9` names no forEach node',  # noqa: E501
        'editorInfo.nodes[10]: model `sheet2` ("Contact sheet"): reads approval `approve2`, which has no outputs: wire it to the producer\'s own output (the approval only pauses its consumers)',  # noqa: E501
        "editorInfo.edges[16].sourceHandle: edge `e2`: `sourceHandle` `text5-target-output` is not `text5-source-<name>` (edges point backwards: `source` is the consumer and its input handle, `target` the producer and its output handle)",  # noqa: E501
        "editorInfo.nodes: no output pin reaches a model: pin a model or llm node, or the forEachEnd of a loop with one, as an output (`data.isOutput: true`)",  # noqa: E501
    ]


def test_an_asset_node_left_without_its_asset_is_refused() -> None:
    document = broken(export("prop-sheet"), image1={"isInput": False})
    assert problems(document) == [
        'editorInfo.nodes[1].data.value: asset `image1` ("Style reference"): has no asset (exports leave asset values out): choose one, or pin it as an input (`isInput`)'  # noqa: E501
    ]
    chosen = broken(export("prop-sheet"), image1={"isInput": False, "value": "asset_style"})
    flow = {n["id"]: n for n in publish_document(chosen)["flow"]}
    assert {"name": "referenceImages", "type": "file", "value": "asset_style"} in flow["icon1"][
        "inputs"
    ]  # noqa: E501


def test_a_cycle_in_the_editor_graph_is_named() -> None:
    document = export("prop-sheet")
    document["editorInfo"]["edges"].append(
        {
            "source": "split1",
            "sourceHandle": "split1-source-input",
            "target": "sheet1",
            "targetHandle": "sheet1-target-output",
        }  # fmt: skip
    )
    assert any(p.startswith("editorInfo.edges: cycle: ") for p in problems(document))


def test_a_workflow_with_an_empty_flow_and_an_editor_graph_is_published() -> None:
    document = {"id": "wf_draft", "name": "draft", "flow": [], **export("nested-shots")}
    assert len(load_workflow(document).flow) == 5
    assert load_workflow(document, publish_editor=False).flow == []


# ----- the CLI ----------------------------------------------------------------------------------


def test_every_command_reads_an_export_and_says_it_published_it(tmp_path: Path) -> None:
    from test_cli import flowgraph, job_of

    file = "examples/storyboard.export.json"
    note = (
        f"note: {file} has no flow: its editor graph (editorInfo) was compiled into 11 flow nodes"
    )
    result = flowgraph("validate", file)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"valid: {file} (11 nodes, 1 loop)\n" and note in result.stderr
    result = flowgraph("run", file, "--json", "--auto-approve", "--db", str(tmp_path / "j.db"))
    assert result.returncode == 0 and note in result.stderr
    job = job_of(result)  # stdout holds only the envelope
    assert job["status"] == "success" and len(job["metadata"]["assetIds"]) == 2
    result = flowgraph("explain", file, "--node", "night1#1")
    assert result.returncode == 0, result.stderr
    why = 'night1#1 "Night render" skipped ← input `prompt`: branch `if1` of `check2#1` not taken; it chose `else`'
    assert why in result.stdout
    result = flowgraph("graph", file, "--format", "mermaid")
    assert result.returncode == 0 and "check2" in result.stdout and note in result.stderr


def test_publish_writes_the_workflow_that_runs(tmp_path: Path) -> None:
    from test_cli import flowgraph, job_of

    out = tmp_path / "published.json"
    result = flowgraph("publish", str(EXPORTS / "prop-sheet.json"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith(f"9 flow nodes, 2 inputs -> {out}")
    published = json.loads(out.read_text())
    assert published["status"] == "ready" and published["flow"][0]["id"] == "split1"
    assert published == publish_document(export("prop-sheet"))
    result = flowgraph("run", str(out), "--json")
    assert job_of(result)["status"] == "success" and "note:" not in result.stderr
    to_stdout = flowgraph("publish", str(EXPORTS / "prop-sheet.json"))
    assert json.loads(to_stdout.stdout) == published


def test_publish_refuses_a_broken_graph_with_every_problem(tmp_path: Path) -> None:
    from test_cli import flowgraph

    file = tmp_path / "broken.json"
    file.write_text(json.dumps(broken(export("character-portrait"), pixel1={"modelId": None})))
    result = flowgraph("publish", str(file))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[:2] == [
        "error: editor graph is invalid",
        'editorInfo.nodes[5].data.modelId: model `pixel1` ("Pixel generator"): needs a `modelId`',
    ]
    assert flowgraph("run", str(file)).returncode == 2
    nothing = flowgraph("publish", str(FLOWS / "gates.json"))
    assert nothing.returncode == 2
    assert "nothing to publish: no `editorInfo` graph with nodes" in nothing.stderr


def test_a_transform_expression_that_does_not_parse_is_refused_by_publish(tmp_path: Path) -> None:
    from test_cli import flowgraph

    file = tmp_path / "bad-cel.json"
    file.write_text(json.dumps(broken(export("character-portrait"), prompt1={"value": "'a' +"})))
    result = flowgraph("publish", str(file))
    assert result.returncode == 2
    assert result.stderr.splitlines()[1].startswith(
        "flow[1].logic.transform: transformText `prompt1` (\"Prompt builder\"): expression `'a' +` "
        "does not parse at line 1, column 6"
    )


def test_drawings_and_the_page_show_the_editor_titles(tmp_path: Path) -> None:
    from test_cli import flowgraph

    file = "examples/storyboard.export.json"
    drawing = json.loads(flowgraph("graph", file, "--format", "json").stdout)
    titles = {n["id"]: n["title"] for n in drawing["nodes"]}
    assert titles["check2"] == "Night?" and titles["up2"] == "Upscale frame"
    assert "night1<br/>Night render<br/>" in flowgraph("graph", file).stdout
    page = tmp_path / "job.html"
    result = flowgraph("run", file, "--report", str(page), "--db", str(tmp_path / "j.db"))
    assert result.returncode == 3  # parked at the approval
    drawn = {n["id"]: n for n in embedded_view(page.read_text())["nodes"]}
    assert (drawn["night1#1"]["title"], drawn["night1#1"]["status"]) == ("Night render", "skipped")
    sheet = next(n for n in drawn.values() if n["title"] == "Contact sheet")
    assert sheet["status"] == "pending"


# ----- small graphs, one rule each --------------------------------------------------------------


def node(node_id: str, kind: str, **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": kind, "position": {"x": 0, "y": 0}, "data": data}


def wire(producer: str, output: str, consumer: str, handle: str) -> dict[str, Any]:
    return {
        "source": consumer,
        "sourceHandle": f"{consumer}-source-{handle}",
        "target": producer,
        "targetHandle": f"{producer}-target-{output}",
    }


def graph(nodes: list[dict[str, Any]], wires: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [n["id"] for n in nodes if n["data"].get("isInput")]
    return {"name": "small", "editorInfo": {"nodes": nodes, "edges": wires, "inputKeys": keys}}


NIGHT = {
    "logic": "and",
    "conditions": [{"field": "loop1_output", "operator": "contains", "value": "night"}],
}  # noqa: E501
LOOP = [
    node("text1", "text", value="a night, a day", isInput=True),
    node("split1", "splitText"),
    node("loop1", "forEach"),
    node("check1", "ifElse", conditionBlocks=[NIGHT]),
    node("night1", "model", modelId="model_night"),
    node("day1", "model", modelId="model_day"),
]
LOOP_WIRES = [
    wire("text1", "output", "split1", "input"),
    wire("split1", "output", "loop1", "input"),
    wire("loop1", "output", "check1", "input"),
    wire("loop1", "output", "night1", "prompt"),
    wire("loop1", "output", "day1", "prompt"),
    wire("check1", "if1", "night1", "conditional"),
    wire("check1", "else", "day1", "conditional"),
]


def test_a_loop_end_fed_by_two_branches_collects_the_one_that_ran() -> None:
    document = graph(
        [*LOOP, node("end1", "forEachEnd", parentNodeId="loop1", isOutput=True),
         node("sheet1", "model", modelId="model_sheet", isOutput=True)],
        [*LOOP_WIRES, wire("night1", "output", "end1", "input"), wire("day1", "output", "end1", "input"),
         wire("end1", "output", "sheet1", "referenceImages")],
    )  # fmt: skip
    flow = nodes(run(document))
    collected = [assets(flow["night1#0"])[0], assets(flow["day1#1"])[0]]
    assert [flow[f"end1#{i}"]["output"] for i in range(2)] == [[c] for c in collected]
    assert flow["sheet1"]["inputs"][0]["value"] == collected
    assert flow["night1#0"]["status"] == "success" and flow["night1#1"]["status"] == "skipped"


def test_the_gate_rides_on_the_inputs_so_a_model_gets_only_its_own() -> None:
    seen: dict[str, dict[str, Any]] = {}

    def model(call: Any) -> dict[str, Any]:
        seen[call.node_id] = dict(call.inputs)
        return {"assets": [f"asset_{call.node_id}"]}

    document = graph(
        [*LOOP, node("end1", "forEachEnd", parentNodeId="loop1", isOutput=True),
         node("logo1", "model", modelId="model_logo", form={"seed": 1}, isOutput=True),
         node("check2", "ifElse", conditionBlocks=[{"conditions": [{"field": "text1_output", "operator": "isNotEmpty"}]}])],  # noqa: E501
        [*LOOP_WIRES, wire("night1", "output", "end1", "input"), wire("day1", "output", "end1", "input"),
         wire("text1", "output", "check2", "input"), wire("check2", "if1", "logo1", "conditional")],
    )  # fmt: skip
    job = run(
        document, python_models={m: model for m in ("model_night", "model_day", "model_logo")}
    )
    assert seen["night1#0"] == {"prompt": "a night"} and seen["day1#1"] == {"prompt": "a day"}
    # a node that reads nothing is gated through an input of its own: the chosen branch
    assert seen["logo1"] == {"seed": 1, "conditional": "if1"}
    assert job.status.value == "success"


def test_an_approval_inside_a_loop_leaves_the_loop_output_to_the_model() -> None:
    document = graph(
        [node("text1", "text", value="a, b", isInput=True), node("split1", "splitText"),
         node("loop1", "forEach"), node("gen1", "model", modelId="model_gen"),
         node("ok1", "approval"), node("end1", "forEachEnd", parentNodeId="loop1", isOutput=True)],
        [wire("text1", "output", "split1", "input"), wire("split1", "output", "loop1", "input"),
         wire("loop1", "output", "gen1", "prompt"), wire("gen1", "approval", "ok1", "input"),
         wire("gen1", "output", "end1", "input")],
    )  # fmt: skip
    job = decide(run(document), "ok1", "approve")
    flow = nodes(job)
    assert flow["loop1"]["output"] == [assets(flow[f"gen1#{i}"]) for i in range(2)]


def test_pinned_outputs_of_nested_loops_reach_the_job() -> None:
    document = export("nested-shots")
    for each in document["editorInfo"]["nodes"]:
        if each["id"] == "outerEnd1":
            each["data"]["isOutput"] = True
    document["editorInfo"]["nodes"].append(node("sheet1", "model", modelId="m", isOutput=True))
    document["editorInfo"]["edges"].append(wire("outerEnd1", "output", "sheet1", "referenceImages"))
    job = run(document)
    flow = nodes(job)
    shots = [assets(n)[0] for k, n in flow.items() if k.startswith("shot1#") and k.count("#") == 2]
    assert len(shots) == 5 and job.document()["metadata"]["assetIds"] == [
        *shots,
        *assets(flow["sheet1"]),
    ]  # noqa: E501


def test_the_run_contract_follows_the_pinned_nodes() -> None:
    document = export("character-portrait")
    document["inputs"].append({"name": "gone1", "type": "string"})  # an entry of an older graph
    document["inputs"][1]["type"] = "number"  # a text pinned as a number: its default must be one
    with pytest.raises(ValidationError) as refused:
        publish_document(document)
    assert [str(p) for p in refused.value.problems] == [
        'editorInfo.nodes[1]: text `text2` ("Style"): is declared a `number` input but its default `watercolor` is not a number'  # noqa: E501
    ]
    document["inputs"][1]["type"] = "string"
    for each in document["editorInfo"]["nodes"]:
        if each["id"] == "text1":
            each["data"]["value"] = "a fox"
    inputs = publish_document(document)["inputs"]
    assert [i["name"] for i in inputs] == ["text1", "text2"]  # `gone1` is dropped
    assert inputs[0]["default"] == "a fox" and inputs[0]["description"] == "Who to draw"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # an approval on one branch of a merge would hold back the other branch too
        (lambda d: d["editorInfo"]["edges"].__setitem__(11, wire("pixel1", "approval", "approve1", "input")),  # noqa: E501
         'approval `approve1` ("Check the upscale"): holds back model `pixel1` ("Pixel generator"), one branch of the merge into `upscale1`\'s `image`'),  # noqa: E501
        # a prompt builder reading both branches would never run
        (lambda d: d["editorInfo"]["edges"].extend([wire("pixel1", "output", "prompt9", "input"), wire("paint1", "output", "prompt9", "input")])  # noqa: E501
         or d["editorInfo"]["nodes"].append(node("prompt9", "transformText", value="pixel1_output")),  # noqa: E501
         "transformText `prompt9`: reads `paint1` (else), `pixel1` (if1), on different branches of `check1`"),  # noqa: E501
        (lambda d: d["editorInfo"]["edges"].append(wire("upscale1", "approval", "bg1", "mask")),
         'model `bg1` ("Remove background"): reads the approval handle of model `upscale1`'),
        (lambda d: d["editorInfo"]["edges"].append(wire("aspect1", "width", "bg1", "width")),
         'model `bg1` ("Remove background"): reads `width` of aspectRatio `aspect1` ("Format"), which gives `output` and `quality`'),  # noqa: E501
        (lambda d: d["editorInfo"]["nodes"].append(node("else", "text", value="x")),
         "text `else`: the id `else` means something else in a flow"),
        (lambda d: d["editorInfo"]["nodes"][4]["data"]["conditionBlocks"][0]["conditions"][0].update(field=["x"]),  # noqa: E501
         'ifElse `check1` ("Pixel art?"): condition field `[\'x\']` names no wired input'),
    ],
)  # fmt: skip
def test_what_publish_refuses_one_rule_at_a_time(change: Any, expected: str) -> None:
    document = export("character-portrait")
    change(document)
    assert any(expected in p for p in problems(document)), problems(document)


def test_shapes_that_once_broke_publish() -> None:
    # not a list of handles; a number where a condition expects text; a loop index
    document = export("prop-sheet")
    document["editorInfo"]["nodes"][4]["data"]["inputHandles"] = 5
    assert run(document).status.value == "success"
    document = graph(
        [node("n1", "text", value="3", isInput=True), node("loop1", "forEach"),
         node("check1", "ifElse", conditionBlocks=[{"conditions": [{"field": "loop1_index", "operator": "isEmpty"}]}, {"conditions": [{"field": "loop1_index", "operator": "contains", "value": "1"}]}, {"conditions": [{"field": "loop1_index", "operator": "equals", "value": "NaN"}]}]),  # noqa: E501
         node("m1", "model", modelId="m"), node("end1", "forEachEnd", parentNodeId="loop1", isOutput=True)],  # noqa: E501
        [wire("n1", "output", "loop1", "input"), wire("loop1", "index", "check1", "input"),
         wire("check1", "else", "m1", "conditional"), wire("loop1", "output", "m1", "prompt"),
         wire("m1", "output", "end1", "input"), wire("m1", "output", "end1", "input")],  # one edge saved twice  # noqa: E501
    )  # fmt: skip
    flow = nodes(run(document))
    assert flow["check1#0"]["output"] == "else" and flow["m1#0"]["status"] == "success"
    # a long chain of if/else nodes passing a value on publishes without deep recursion
    chain = [node("text1", "text", value="x", isInput=True)]
    edges = []
    for index in range(1, 400):
        chain.append(
            node(
                f"c{index}",
                "ifElse",
                conditionBlocks=[
                    {
                        "conditions": [
                            {
                                "field": f"{chain[-1]['id']}_{'output' if index == 1 else 'else'}",
                                "operator": "isEmpty",
                            }
                        ]
                    }
                ],
            )
        )  # noqa: E501
        edges.append(
            wire(chain[-2]["id"], "output" if index == 1 else "else", f"c{index}", "input")
        )  # noqa: E501
    chain.append(node("m1", "model", modelId="m", isOutput=True))
    edges.append(wire("c399", "else", "m1", "prompt"))
    assert len(publish_document(graph(chain, edges))["flow"]) == 400


def test_a_cycle_through_the_flow_keeps_its_kind() -> None:
    from engine.errors import CycleError

    document = publish_document(export("nested-shots"))
    document["flow"][0]["dependsOn"] = ["outer1"]
    with pytest.raises(CycleError) as caught:
        Engine().compile(document)
    assert caught.value.problems[0].message.startswith('splitText `split3` ("Scenes"): cycle:')


def test_a_file_that_cannot_be_written_is_an_error_not_a_crash(tmp_path: Path) -> None:
    from test_cli import flowgraph

    missing = tmp_path / "missing" / "out.json"
    result = flowgraph("publish", "examples/storyboard.export.json", "-o", str(missing))
    assert (
        result.returncode == 2 and f"error: cannot write {missing}: No such file" in result.stderr
    )
    result = flowgraph("graph", "examples/branching.json", "-o", str(tmp_path))
    assert result.returncode == 2 and "Is a directory" in result.stderr
    result = flowgraph("run", "examples/fan-out.json", "--report", str(missing), "--db", ":memory:")
    assert result.returncode == 0 and "cannot write" in result.stderr  # the job ran; it says so
    assert "success" in result.stdout


def test_the_terminal_shows_titles_and_what_an_approval_asks(tmp_path: Path) -> None:
    from test_cli import flowgraph

    file = str(EXPORTS / "character-portrait.json")
    result = flowgraph("run", file, "--db", str(tmp_path / "j.db"))
    assert result.returncode == 3
    header = result.stdout.splitlines()[0].split()
    assert header[:4] == ["node", "┃", "title", "┃"]
    assert "Pixel generator" in result.stdout
    assert 'gate `approve1` "Check the upscale" (user-approval) is waiting' in result.stderr
    assert "  asks: Keep this portrait?" in result.stderr
    job_id = json.loads(flowgraph("jobs", "--json", "--db", str(tmp_path / "j.db")).stdout)["jobs"][
        0
    ]["jobId"]  # noqa: E501
    result = flowgraph("explain", job_id, "--node", "text1", "--db", str(tmp_path / "j.db"))
    assert result.returncode == 2
    assert (
        "it is a `text` node of the editor graph, which publishes to no flow node" in result.stderr
    )


def test_an_approval_in_an_iteration_says_it_holds_back_its_loop(tmp_path: Path) -> None:
    from test_cli import flowgraph

    document = graph(
        [node("text1", "text", value="a, b", isInput=True), node("split1", "splitText"),
         node("loop1", "forEach"), node("gen1", "model", modelId="model_gen"),
         node("ok1", "approval"), node("end1", "forEachEnd", parentNodeId="loop1", isOutput=True),
         node("sheet1", "model", modelId="model_sheet", isOutput=True)],
        [wire("text1", "output", "split1", "input"), wire("split1", "output", "loop1", "input"),
         wire("loop1", "output", "gen1", "prompt"), wire("gen1", "approval", "ok1", "input"),
         wire("gen1", "output", "end1", "input"), wire("end1", "output", "sheet1", "images")],
    )  # fmt: skip
    file = tmp_path / "loop-gate.json"
    file.write_text(json.dumps(document))
    result = flowgraph("run", str(file), "--db", str(tmp_path / "j.db"))
    assert result.returncode == 3
    assert (
        result.stderr.count("  holds back: loop `loop1`, which ends once every iteration has") == 2
    )  # noqa: E501


def test_deep_nesting_and_long_chains_of_loops_publish_and_compile() -> None:
    """Each loop lists its own body only, and loop membership is worked out once per loop:
    20 nested loops took 13 s to compile (every pair of listing loops walked again and again),
    and a chain of 2,000 loops 16 s to publish."""
    nodes_ = [node("text1", "text", value="a,b", isInput=True)]
    edges = []
    previous = "text1"
    for depth in range(60):
        nodes_.append(node(f"loop{depth}", "forEach"))
        edges.append(wire(previous, "output", f"loop{depth}", "input"))
        previous = f"loop{depth}"
    nodes_.append(node("model1", "model", modelId="m"))
    edges.append(wire(previous, "output", "model1", "prompt"))
    previous = "model1"
    for depth in reversed(range(60)):
        nodes_.append(
            node(f"end{depth}", "forEachEnd", parentNodeId=f"loop{depth}", isOutput=depth == 0)
        )  # noqa: E501
        edges.append(wire(previous, "output", f"end{depth}", "input"))
        previous = f"end{depth}"
    flow = {n["id"]: n for n in publish_document(graph(nodes_, edges))["flow"]}
    assert flow["loop0"]["loopBodyNodeIds"] == ["loop1"] and flow["loop59"]["loopBodyNodeIds"] == [
        "model1"
    ]  # noqa: E501
    plan = Engine().compile(
        {"flow": list(flow.values()), "inputs": [{"name": "text1", "type": "string"}]}
    )  # noqa: E501
    assert plan.nodes["model1"].loops == tuple(f"loop{d}" for d in range(60))


def test_an_editor_graph_far_larger_than_any_editor_holds_is_refused_at_once() -> None:
    document = graph([node(f"text{i}", "text", value="x") for i in range(5001)], [])
    assert problems(document) == [
        "editorInfo.nodes: an editor graph of 5,001 nodes: publish takes at most 5,000 (Scenario's cloud runs 50 nodes a workflow)"  # noqa: E501
    ]
