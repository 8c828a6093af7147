"""One test per rule of the run semantics, each on a small flow in tests/flows/."""

from __future__ import annotations

from conftest import decide, flow, nodes, outputs, run, statuses


def test_ref_then_value_then_default_and_integers_stay_integers() -> None:
    job = run("resolution-order.json", {"given": "from-run"})
    assert outputs(job)["probe"] == ["from-run", "literal-b", "default-c", 4]
    value = nodes(job)["probe"]["inputs"][3]["value"]
    assert value == 4 and isinstance(value, int)


def test_ref_without_name_takes_output_and_all_takes_the_mapping() -> None:
    job = run("outputs-and-names.json")
    out = outputs(job)
    assert out["pick"] == "chose-b"
    assert out["plain"] == "chose-b"
    assert out["named"] == 8 and isinstance(out["named"], int)
    assert out["everything"] == {"condition": "b", "extra": 7, "output": "chose-b"}


def test_list_to_single_file_takes_first_and_scalar_to_array_is_wrapped() -> None:
    job = run("coercion.json")
    flow = nodes(job)
    assets = [a["assetId"] for a in flow["gen"]["assets"]]
    assert len(assets) == 3
    assert flow["single"]["output"] == assets[0]
    assert flow["scalar"]["output"] == ["solo"]
    assert flow["ints"]["output"] == 8 and isinstance(flow["ints"]["output"], int)


def test_skips_propagate_through_refs_and_depends_on_with_reasons() -> None:
    job = run("skip-propagation.json")
    flow = nodes(job)
    assert statuses(job) == {
        "check": "success",
        "right": "skipped",
        "after_right": "skipped",
        "ordered_after_right": "skipped",
        "chain_end": "skipped",
        "left": "success",
    }
    assert flow["right"]["statusReason"] == "branch `right` of `check` not taken; it chose `left`"
    assert flow["after_right"]["statusReason"] == "input `image`: `right` was skipped"
    assert flow["ordered_after_right"]["statusReason"] == "`dependsOn` `right` was skipped"
    assert flow["chain_end"]["statusReason"] == "input `x`: `after_right` was skipped"
    assert "jobId" not in flow["right"] and "assets" not in flow["right"]


def test_ref_equal_selects_one_branch_of_a_cel_logic_node() -> None:
    job = run("ref-equal.json", {"n": 3})
    flow = nodes(job)
    assert statuses(job)["on_medium"] == "success"
    assert flow["on_medium"]["output"] == "medium:medium"
    assert flow["on_small"]["status"] == "skipped"
    assert (
        flow["on_small"]["statusReason"] == "branch `small` of `size` not taken; it chose `medium`"
    )
    job = run("ref-equal.json", {"n": 50})
    assert nodes(job)["size"]["output"] == "large"
    assert statuses(job)["on_large"] == "success"


def test_ref_equal_on_a_logic_node_compares_the_chosen_branch_whatever_name_passes() -> None:
    """`{node: "check", name: "subject", equal: "if1"}` passes check's `subject` when check
    chose `if1`, as Scenario's docs read; it was compared with the subject text."""
    job = run("ref-equal-named.json", {"mode": "photo"})
    flow = nodes(job)
    assert flow["check"]["output"] == "if1"
    assert flow["as_photo"]["output"] == "photo of a fox"
    assert flow["as_sketch"]["status"] == "skipped"
    assert flow["as_sketch"]["statusReason"] == "branch `if2` of `check` not taken; it chose `if1`"
    flow = nodes(run("ref-equal-named.json", {"mode": "sketch"}))
    assert flow["as_sketch"]["output"] == "sketch of a fox"
    assert flow["as_photo"]["status"] == "skipped"


def test_conditional_refs_merge_branches() -> None:
    job = run("conditional-merge.json", {"mode": "b"})
    flow = nodes(job)
    gen_b = flow["gen_b"]["assets"][0]["assetId"]
    assert flow["first_matched"]["output"] == gen_b
    assert flow["logic_equal"]["output"] == "took gen_b"
    assert flow["logic_equal_miss"]["status"] == "skipped"
    assert flow["logic_equal_miss"]["statusReason"] == (
        "input `x`: branch `gen_a` of `check` not taken; it chose `gen_b`"
    )
    assert flow["gated_value"]["output"] == "gated gen_b"
    assert flow["status_equal"]["status"] == "success"
    assert flow["all_skipped"]["status"] == "skipped"
    assert flow["all_skipped"]["statusReason"] == "input `x`: no branch matched (`gen_a` skipped)"


def test_conditional_merge_takes_the_first_matched_entry_in_list_order() -> None:
    job = run("conditional-merge.json", {"mode": "a"})
    flow = nodes(job)
    assert flow["first_matched"]["output"] == flow["gen_a"]["assets"][0]["assetId"]
    assert flow["logic_equal"]["status"] == "skipped"
    assert flow["logic_equal_miss"]["output"] == "took gen_a"


def test_logic_literal_expression_jinja_default_and_no_match() -> None:
    job = run("logic-forms.json")
    out = outputs(job)
    assert out["literal_bool"] == "yes"
    assert out["literal_number"] == "four"
    assert out["cel_case"] == "world"
    assert out["jinja_case"] == "some"
    assert out["to_default"] == "normal"
    assert out["no_match"] is None
    flow = nodes(job)
    assert flow["no_match"]["status"] == "success"
    assert flow["wants_huge"]["status"] == "skipped"
    assert (
        flow["wants_huge"]["statusReason"]
        == "branch `huge` of `no_match` not taken; it chose `null`"
    )
    assert flow["reads_null"]["output"] is True


def test_transform_error_fails_the_node_and_the_job_names_it() -> None:
    job = run("transform-error.json")
    document = job.document()
    flow = nodes(job)
    assert document["status"] == "failure"
    assert flow["bad"]["status"] == "failure"
    assert (
        "n / 0" in flow["bad"]["statusReason"] and "division by zero" in flow["bad"]["statusReason"]
    )
    assert document["metadata"]["error"].startswith("node `bad`: expression `n / 0` failed")
    assert flow["after"]["status"] == "skipped"


def test_list_outputs_its_items_as_given() -> None:
    job = run("list-node.json")
    assert outputs(job) == {"styles": ["ink", "oil", 3, "asset_abc"], "count": 4}


def test_for_each_clones_templates_per_item_and_collects_outside() -> None:
    job = run("for-each-basic.json")
    flow = nodes(job)
    assert flow["shout"]["status"] == "skipped"
    assert flow["shout"]["statusReason"] == "loop template of `loop`"
    assert [flow[f"shout#{i}"]["output"] for i in range(3)] == ["A0", "B1", "C2"]
    for i in range(3):
        clone = flow[f"gen#{i}"]
        assert clone["iterationIndex"] == i and isinstance(clone["iterationIndex"], int)
        assert clone["loopNodeId"] == "loop"
        assert clone["inputs"][0]["ref"]["node"] == f"shout#{i}"
        assert clone["inputs"][0]["value"] == flow[f"shout#{i}"]["output"]
    assert flow["all_shouts"]["output"] == ["A0", "B1", "C2"]
    images = [flow[f"gen#{i}"]["assets"][0]["assetId"] for i in range(3)]
    assert flow["all_images"]["inputs"][0]["value"] == images
    assert flow["loop"]["output"] == [[a] for a in images]
    assert flow["loop_output"]["output"] == [[[a] for a in images], 3]
    ids = [n["id"] for n in job.document()["metadata"]["flow"]]
    assert ids.index("shout") < ids.index("shout#0") < ids.index("shout#2") < ids.index("gen")


def test_for_each_count_fixes_iterations_and_items_fall_back_to_the_index() -> None:
    job = run("for-each-count.json")
    out = outputs(job)
    assert [out[f"echo#{i}"] for i in range(4)] == [["x", 0], ["y", 1], [2, 2], [3, 3]]
    assert [out[f"square#{i}"] for i in range(3)] == [0, 1, 4]
    assert out["bare"] == [0, 1, 4]


def test_nested_loops_clone_ids_templates_and_outer_major_collection() -> None:
    job = run("for-each-nested.json")
    flow = nodes(job)
    assert flow["inner#1"]["loopNodeId"] == "outer" and flow["inner#1"]["iterationIndex"] == 1
    assert flow["inner#1"]["loopBodyNodeIds"] == ["cell#1"]
    assert flow["cell#1"]["status"] == "skipped"
    assert flow["cell#1"]["statusReason"] == "loop template of `inner#1`"
    assert flow["cell#1"]["loopNodeId"] == "outer"
    assert flow["cell#1#2"]["loopNodeId"] == "inner#1"
    assert flow["cell#1#2"]["iterationIndex"] == 2
    assert flow["cell#1#2"]["output"] == "r1c2@12"
    assert flow["cells"]["output"] == [f"r{i}c{j}@{i}{j}" for i in range(2) for j in range(3)]
    assert flow["grid"]["output"] == [[f"r{i}c{j}@{i}{j}" for j in range(3)] for i in range(2)]
    assert job.document()["status"] == "success"


def test_zero_iterations_succeed_with_empty_output() -> None:
    job = run("for-each-empty.json")
    flow = nodes(job)
    assert flow["loop"]["status"] == "success" and flow["loop"]["output"] == []
    assert flow["gen"]["status"] == "skipped"
    assert flow["after"]["output"] == 0
    assert [n for n in flow if "#" in n] == []


def test_branches_inside_iterations_and_merges() -> None:
    job = run("for-each-branches.json")
    flow = nodes(job)
    assert [flow[f"merge#{i}"]["output"] for i in range(4)] == [
        "odd 1",
        "even 2",
        "odd 3",
        "even 4",
    ]
    assert flow["even#0"]["statusReason"] == "branch `even` of `parity#0` not taken; it chose `odd`"
    assert flow["evens"]["output"] == ["even 2", "even 4"]
    # the logic node is a sink too: nothing refers to it (branch edges are not references)
    assert flow["merged"]["output"] == {
        "parity": ["odd", "even", "odd", "even"],
        "merge": ["odd 1", "even 2", "odd 3", "even 4"],
    }


def test_several_sinks_give_a_mapping_from_sink_to_values() -> None:
    job = run("for-each-sinks.json")
    assert outputs(job)["collect"] == {"b": [20, 22], "c": ["c0", "c1"]}


def test_a_failed_clone_fails_the_loop_and_the_job() -> None:
    job = run("for-each-failure.json")
    document = job.document()
    flow = nodes(job)
    assert document["status"] == "failure"
    assert flow["divide#2"]["status"] == "failure"
    assert flow["loop"]["status"] in ("failure", "skipped")
    assert document["metadata"]["error"].startswith("node `divide#2`:")
    assert all(node["status"] in ("success", "failure", "skipped") for node in flow.values())


def test_keep_going_lets_independent_branches_finish() -> None:
    job = run("for-each-failure.json", keep_going=True)
    flow = nodes(job)
    assert flow["loop"]["status"] == "failure"
    assert flow["loop"]["statusReason"] == "iteration 2 failed at `divide#2`"
    assert [flow[f"divide#{i}"]["status"] for i in range(4)] == [
        "success",
        "success",
        "failure",
        "success",
    ]
    assert flow["divide#3"]["output"] == 3
    assert flow["after"]["status"] == "skipped"
    assert flow["independent"]["status"] == "success"
    assert job.document()["status"] == "failure"


def test_fail_fast_skips_unfinished_nodes_with_the_failing_node_named() -> None:
    job = run("skip-propagation.json", {"mode": "right"}, fail={"right"})
    flow = nodes(job)
    assert flow["right"]["status"] == "failure"
    assert "failure injected" in flow["right"]["statusReason"]
    assert flow["after_right"]["status"] == "skipped"
    assert job.document()["metadata"]["error"].startswith("node `right`:")


def test_user_approval_and_selection() -> None:
    job = run("gates.json")
    document = job.document()
    assert document["status"] == "in-progress"
    assert statuses(job)["review"] == "processing"
    assert statuses(job)["choose"] == "pending"
    decide(job, "review", "approve")
    flow = nodes(job)
    assert flow["review"]["status"] == "success"
    assert flow["choose"]["status"] == "processing"
    drafts = [a["assetId"] for a in flow["draft"]["assets"]]
    assert flow["choose"]["items"] == drafts
    decide(job, "choose", {"select": [2, 0]})
    flow = nodes(job)
    assert flow["choose"]["output"] == [drafts[2], drafts[0]]
    assert flow["final"]["inputs"][0]["value"] == [drafts[2], drafts[0]]
    assert job.document()["status"] == "success"


def test_reject_inside_an_iteration_cancels_the_job() -> None:
    job = run("gates-in-loop.json")
    assert sorted(g.id for g in job.waiting) == ["gate#0", "gate#1", "gate#2"]
    decide(job, "gate#0", "approve")
    assert statuses(job)["keep#0"] == "success"
    decide(job, "gate#1", "reject")
    flow = nodes(job)
    assert flow["gate#1"]["status"] == "rejected"
    assert flow["gate#2"]["status"] == "skipped"
    assert flow["gate#2"]["statusReason"] == "gate `gate#1` rejected"
    assert flow["keep#0"]["status"] == "success"
    assert job.document()["status"] == "canceled"


def test_output_nodes_asset_ids_and_metadata_output() -> None:
    job = run("output-nodes.json")
    decide(job, "gate", "approve")
    document = job.document()
    flow = nodes(job)
    keep_too = flow["keep_too"]["assets"][0]["assetId"]
    upscale = flow["upscale"]["assets"][0]["assetId"]
    assert document["metadata"]["assetIds"] == [keep_too]
    assert set(document["metadata"]["output"]) == {"keep_too", "label"}
    assert document["metadata"]["output"]["label"] == {"output": f"done: {upscale}"}
    assert document["metadata"]["output"]["keep_too"] == {}
    assert document["progress"] == 1.0


def test_progress_counts_terminal_nodes_including_templates_and_clones() -> None:
    job = run("gates-in-loop.json")
    document = job.document()
    total = len(document["metadata"]["flow"])
    terminal = sum(
        1
        for n in document["metadata"]["flow"]
        if n["status"] in ("success", "failure", "skipped", "rejected")
    )
    assert document["progress"] == round(terminal / total, 6)
    assert 0 < document["progress"] < 1


def test_generate_prompt_makes_text_that_a_string_input_reads() -> None:
    job = run("generate-prompt.json")
    flow = nodes(job)
    assert flow["prompt"]["output"] == "dry-run prompt from `prompt`: a lighthouse"
    assert "assets" not in flow["prompt"] or not flow["prompt"]["assets"]
    assert flow["image"]["inputs"][0]["value"] == "dry-run prompt from `prompt`: a lighthouse"
    assert job.document()["metadata"]["assetIds"] == [flow["image"]["assets"][0]["assetId"]]


def test_inputs_array_rows_resolve_their_refs_and_values() -> None:
    """Each row of an inputs_array is resolved like inputs: a ref (to a node or a run input),
    else its value, else its default; the node waits for the rows' sources; the job shows
    every sub-input's value, and the executor gets the rows as mappings."""
    seen: list[object] = []

    def multi(call: object) -> list[str]:
        seen.append(call.inputs["prompts"])  # type: ignore[attr-defined]
        return ["asset_multi"]

    job = run("inputs-array-rows.json", python_models={"model_multi": multi})
    rows = [{"text": "a lighthouse", "weight": 1}, {"text": "watercolor", "weight": 0.5}]
    assert seen == [rows]
    prompts = nodes(job)["gen"]["inputs"][0]
    assert prompts["value"] == rows
    assert [[cell["value"] for cell in row] for row in prompts["items"]] == [
        ["a lighthouse", 1],
        ["watercolor", 0.5],
    ]
    assert job.plan.warnings() == []  # the run input is read, by a row


def test_inputs_array_row_refs_are_checked_when_the_flow_compiles() -> None:
    import pytest

    from engine import Engine, ValidationError

    document = flow("inputs-array-rows.json")
    document["flow"][1]["inputs"][0]["items"][0][0]["ref"] = {"node": "subjet"}
    with pytest.raises(ValidationError) as caught:
        Engine().compile(document)
    assert [str(p) for p in caught.value.problems] == [
        "flow[1].inputs[0].items[0][0].ref.node: unknown node `subjet` in `ref.node`; "
        "did you mean `subject`?"
    ]
