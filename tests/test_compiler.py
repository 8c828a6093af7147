"""Compilation: the DAG's edges, and every validation problem reported at once with its path."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import flow, make_engine

from engine import CycleError, DocumentError, ValidationError
from engine.compile.document import load_workflow


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        make_engine().compile(document)
    return [str(p) for p in caught.value.problems]


def test_edges_have_kinds_and_loop_membership() -> None:
    plan = make_engine().compile(flow("conditional-merge.json"))
    graph = plan.graph
    assert graph.edges["check", "gen_a"]["kinds"] == {"branch"}
    assert graph.edges["gen_a", "first_matched"]["kinds"] == {"conditional"}
    assert graph.edges["check", "gated_value"]["kinds"] == {"data"}
    nested = make_engine().compile(flow("for-each-nested.json"))
    assert nested.nodes["cell"].loops == ("outer", "inner")
    assert nested.nodes["inner"].loops == ("outer",)
    assert nested.nodes["outer"].body == ("cols", "inner")
    assert nested.graph.edges["inner", "cell"]["kinds"] >= {"loop"}
    assert nested.nodes["outer"].sinks == ("inner",)
    order = make_engine().compile(flow("gates.json")).graph.edges["draft", "review"]["kinds"]
    assert order == {"order"}


def test_every_problem_is_collected_with_node_id_and_json_path() -> None:
    document = {
        "inputs": [{"name": "prompt", "type": "string"}],
        "flow": [
            {
                "id": "a",
                "type": "custom-model",
                "modelId": "m",
                "inputs": [
                    {"name": "p", "type": "string", "ref": {"node": "ghost"}},
                    {"name": "q", "type": "string", "ref": {"name": "x"}},
                    {"name": "r", "type": "string", "ref": {"node": "workflow", "name": "nope"}},
                ],
            },
            {"id": "a", "type": "transform", "logic": {"transform": "1"}},
            {"id": "b", "type": "teleport"},
            {"id": "c", "type": "logic", "logicType": "if-else", "logic": {}},
            {"id": "d", "type": "transform", "logic": {"transform": "x +"}},
            {"id": "e", "type": "workflow"},
            {"id": "f", "type": "transform", "dependsOn": ["phantom"], "logic": {"transform": "1"}},
            {"id": "g", "type": "for-each", "loopBodyNodeIds": ["missing"]},
        ],
    }
    found = problems(document)
    expected = [
        "flow[0].inputs[0].ref.node: unknown node `ghost` in `ref.node`",
        "flow[0].inputs[1].ref: `ref` has neither `node` nor `conditional`; set at least one",
        "flow[0].inputs[2].ref.name: ref to undeclared workflow input `nope`; declare it in the workflow's `inputs`",
        "flow[1].id: duplicate node id `a` (first at flow[0])",
        "flow[3].logic.cases: logic node has no cases; add `logic.cases`",
        "flow[5].workflowId: a `workflow` node needs a `workflowId`",
        "flow[6].dependsOn[0]: unknown node `phantom` in `dependsOn`",
        "flow[7].loopBodyNodeIds[0]: unknown node `missing` in `loopBodyNodeIds`",
    ]
    for line in expected:
        assert line in found
    assert any(p.startswith("flow[2].type: unknown node type `teleport`") for p in found)
    assert any(
        p.startswith("flow[4].logic.transform: expression `x +` does not parse at line 1, column 4")
        for p in found
    )
    assert len(found) == len(expected) + 2


def test_cycles_are_printed_as_a_path() -> None:
    document = {
        "flow": [
            {
                "id": "x",
                "type": "transform",
                "logic": {"transform": "1"},
                "inputs": [{"name": "v", "type": "number", "ref": {"node": "y"}}],
            },
            {"id": "y", "type": "transform", "logic": {"transform": "1"}, "dependsOn": ["x"]},
            {"id": "solo", "type": "transform", "logic": {"transform": "1"}, "dependsOn": ["solo"]},
        ]
    }
    with pytest.raises(CycleError) as caught:
        make_engine().compile(document)
    messages = [str(p) for p in caught.value.problems]
    assert "flow[0]: cycle: x -> y -> x" in messages
    assert "flow[2]: cycle: solo -> solo" in messages
    assert caught.value.cycle == ["x", "y", "x"]


def test_a_body_node_claimed_by_two_sibling_loops() -> None:
    document = {
        "flow": [
            {"id": "l1", "type": "for-each", "count": 1, "loopBodyNodeIds": ["shared"]},
            {"id": "l2", "type": "for-each", "count": 1, "loopBodyNodeIds": ["shared"]},
            {"id": "shared", "type": "transform", "logic": {"transform": "1"}},
        ]
    }
    assert problems(document) == [
        "flow[2]: node `shared` is claimed by two sibling loops `l1` and `l2`; a node belongs to one loop"
    ]


def test_nested_loops_may_both_list_a_node_innermost_wins() -> None:
    document = {
        "flow": [
            {"id": "outer", "type": "for-each", "count": 2, "loopBodyNodeIds": ["inner", "cell"]},
            {"id": "inner", "type": "for-each", "count": 2, "loopBodyNodeIds": ["cell"]},
            {"id": "cell", "type": "transform", "logic": {"transform": "1"}},
        ]
    }
    plan = make_engine().compile(document)
    assert plan.nodes["cell"].owner == "inner"


def test_a_loop_whose_body_refers_to_its_consumer_is_a_cycle() -> None:
    document = {
        "flow": [
            {
                "id": "loop",
                "type": "for-each",
                "count": 2,
                "loopBodyNodeIds": ["body"],
                "inputs": [{"name": "l", "type": "string_array", "ref": {"node": "after"}}],
            },
            {"id": "body", "type": "transform", "logic": {"transform": "1"}},
            {
                "id": "after",
                "type": "transform",
                "logic": {"transform": "x"},
                "inputs": [{"name": "x", "type": "number_array", "ref": {"node": "body"}}],
            },
        ]
    }
    with pytest.raises(CycleError):
        make_engine().compile(document)


def test_schema_errors_name_the_json_path() -> None:
    with pytest.raises(DocumentError) as caught:
        load_workflow(
            {
                "flow": [
                    {"id": "a", "type": "transform", "inputs": [{"type": "string"}]},
                    {"type": "list"},
                ]
            }
        )
    messages = [str(p) for p in caught.value.problems]
    assert "flow[0].inputs[0].name: missing required field `name`" in messages
    assert "flow[1].id: missing required field `id`" in messages


def test_accepts_workflow_envelope_and_job_envelope() -> None:
    bare = flow("for-each-basic.json")
    assert len(make_engine().compile({"workflow": bare}).nodes) == 6
    with pytest.raises(DocumentError) as caught:
        load_workflow({"nodes": []})
    assert "a workflow needs a `flow` array of nodes" in str(caught.value)
    with pytest.raises(DocumentError):
        load_workflow([1, 2])


def test_expression_variables_that_name_no_input_are_refused_at_compile_time() -> None:
    def transform(node_id: str, source: str, *names: str) -> dict[str, Any]:
        return {
            "id": node_id,
            "type": "transform",
            "inputs": [{"name": n, "type": "string", "value": "x"} for n in names],
            "logic": {"transform": source},
        }

    found = problems(
        {
            "flow": [
                transform("typo", "subjct + ', ' + style", "subject", "style"),
                transform("none", "size(missing)"),
                transform("other", "a + b", "a", "zzz"),
                transform("tmpl", "{{ subjects | join(', ') }} {{ ghost }}", "subjects"),
                # bound by a macro, inside a string, a template's own loop: all fine
                transform("ok1", "xs.map(x, x + k).filter(y, y != 'a.map(q, q)')", "xs", "k"),
                transform(
                    "ok2", "{% for s in subjects %}{{ loop.index }} {{ s }}{% endfor %}", "subjects"
                ),
                {
                    "id": "pick",
                    "type": "logic",
                    "inputs": [{"name": "mode", "type": "string", "value": "fast"}],
                    "logic": {"cases": [{"condition": "mod == 'fast'", "value": "typo"}]},
                },
            ]
        }
    )
    assert found == [
        "flow[0].logic.transform: `subjct` is not an input of this node; did you mean `subject`?",
        "flow[1].logic.transform: `missing` is not an input of this node: it has no inputs "
        "(an expression reads the node's inputs by name)",
        "flow[2].logic.transform: `b` is not an input of this node (its inputs: a, zzz)",
        "flow[3].logic.transform: `ghost` is not an input of this node (its inputs: subjects)",
        "flow[6].logic.cases[0].condition: `mod` is not an input of this node; "
        "did you mean `mode`?",
    ]


def test_a_ref_to_an_approval_is_refused_and_misspelt_refs_get_a_suggestion() -> None:
    from conftest import FLOWS

    from engine import Engine

    with pytest.raises(ValidationError) as caught:
        Engine().compile(FLOWS / "invalid" / "ref-to-approval.json")  # not a runnable flow
    assert [str(p) for p in caught.value.problems] == [
        "flow[0].inputs[0].ref.name: ref to undeclared workflow input `promt`; "
        "did you mean `prompt`?",
        "flow[2].inputs[1].ref.node: unknown node `drat` in `ref.node`; did you mean `draft`?",
        "flow[2].inputs[0].ref.node: `review` is a user-approval node: it has no outputs to "
        'read; wait for it with `"dependsOn": ["review"]` and read the node it approves',
    ]


def test_reading_a_loop_body_node_into_a_single_value_from_outside_is_a_warning() -> None:
    """`render` left out of `loopBodyNodeIds` runs once with the list of every prompt; `sheet`
    reads the same list into an array input, as it means to."""
    from conftest import FLOWS

    from engine import Engine

    plan = Engine().compile(FLOWS / "read-from-outside-a-loop.json")
    assert [str(p) for p in plan.warnings()] == [
        "flow[2].inputs[0].ref.node: `render` reads `prompt`, a node of for-each `each`, from "
        "outside the loop: its `prompt` (string) gets the list of every iteration's value; list "
        "`render` in `loopBodyNodeIds` to run it once an iteration"
    ]


def test_an_unknown_field_within_a_typo_of_a_known_one_is_a_warning() -> None:
    """Unknown fields are kept (Scenario's documents carry many); one that is a misspelt known
    field (`rf`, `allowedValue`) changes what the workflow does, so it is named."""
    from engine import Engine

    document = {
        "inputs": [{"name": "p", "type": "string", "allowedValue": ["a", "b"]}],
        "flow": [
            {
                "id": "gen",
                "type": "custom-model",
                "modelId": "m",
                "label": "kept, not a typo",
                "inputs": [
                    {"name": "prompt", "type": "string", "rf": {"node": "workflow", "name": "p"}},
                ],
            }
        ],
    }
    warnings = [str(p) for p in Engine().compile(document).warnings()]
    assert (
        "inputs[0].allowedValue: unknown field `allowedValue` is kept as it is and not read; did you mean `allowedValues`?"
        in warnings
    )
    assert (
        "flow[0].inputs[0].rf: unknown field `rf` is kept as it is and not read; did you mean `ref`?"
        in warnings
    )
    assert not any("label" in w for w in warnings)


def test_no_example_fixture_or_export_has_a_field_taken_for_a_typo() -> None:
    """The fields Scenario's documents carry beyond the ones flowgraph reads are not close
    enough to a known one to be taken for a typo."""
    from conftest import EXAMPLES, FLOWS

    from engine.compile.document import read_document
    from engine.compile.field_names import misspelt_fields
    from engine.errors import ValidationError as Invalid

    files = [
        *EXAMPLES.glob("*.json"),
        *FLOWS.glob("*.json"),
        *(FLOWS.parent / "exports").glob("*.json"),
    ]
    read = 0
    for path in files:
        try:
            workflow = read_document(path)
        except Invalid:
            continue  # fixtures of invalid documents, test and decisions files
        read += 1
        assert misspelt_fields(workflow) == [], path
    assert read > 40
