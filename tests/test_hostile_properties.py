"""Random hostile documents through the engine: whatever the document, the answer is a
ValidationError naming problems, or a job that ends (or waits at a gate) with a JSON document;
never another exception. Two properties of 300 examples each a run (Hypothesis, no stored
database: CI sees new ones every time): documents of every shape (nearly all refused, as they
should be), and flows that compile with hostile values at run time (about half run: a sample of
300 gave 147 refused inputs or counts, 70 failures, 52 parked at a gate, 31 successes). A third
runs random editor graphs (webapp exports) through publish: of 500, 3 to 9% publish and run, the
rest are refused with problems; none raised anything else (one RecursionError was found this way:
a loop end wired into itself)."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import DryRunExecutor, Engine
from engine.errors import ValidationError
from engine.limits import Limits

IDS = ["a", "b", "c", "loop", "a#0", "b#1", "workflow", "", "x y", "é"]
TYPES = [
    "transform",
    "logic",
    "list",
    "for-each",
    "custom-model",
    "remove-background",
    "user-approval",
    "user-selection",
    "workflow",
    "nonsense",
]
EXPRESSIONS = [
    "x",
    "x + 1",
    "'a' + x",
    "1 / 0",
    "duration('1s')",
    "b'abc'",
    "{1: 'a', 'k': [x]}",
    "optional.of(x)",
    "[1, 2][5]",
    "int('nope')",
    "timestamp('bad')",
    "x.y.z",
    "size(x)",
    "xs.map(a, a)",
    "{{ x }}",
    "{{ missing }}",
    "(",
    "",
]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
)


@st.composite
def hostile_inputs(draw: st.DrawFn) -> list[Any]:
    inputs: list[Any] = []
    for _ in range(draw(st.integers(0, 3))):
        item: dict[str, Any] = {
            "name": draw(st.sampled_from(["x", "xs", "image", "condition", "output", ""])),
            "type": draw(st.sampled_from(["string", "number", "file", "string_array", "bad"])),
        }
        choice = draw(st.integers(0, 4))
        if choice == 0:
            item["ref"] = {"node": draw(st.sampled_from(IDS))}
        elif choice == 1:
            item["ref"] = {"conditional": draw(st.lists(st.sampled_from(IDS), max_size=3))}
        elif choice == 2:
            item["value"] = draw(VALUES)
        elif choice == 3:
            item["ref"] = draw(VALUES)  # not an object at all
        inputs.append(item if draw(st.integers(0, 9)) else draw(VALUES))
    return inputs


@st.composite
def hostile_nodes(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(VALUES)  # not a node
    node: dict[str, Any] = {
        "id": draw(st.sampled_from(IDS)),
        "type": draw(st.sampled_from(TYPES)),
        "inputs": draw(hostile_inputs()),
    }
    if draw(st.booleans()):
        node["logic"] = draw(
            st.one_of(
                st.fixed_dictionaries({"transform": st.sampled_from(EXPRESSIONS)}),
                st.fixed_dictionaries(
                    {
                        "cases": st.lists(
                            st.fixed_dictionaries(
                                {
                                    "condition": st.sampled_from(EXPRESSIONS),
                                    "value": st.sampled_from(IDS),
                                }
                            ),
                            max_size=3,
                        )
                    }
                ),
                VALUES,
            )
        )
    if draw(st.booleans()):
        node["loopBodyNodeIds"] = draw(st.lists(st.sampled_from(IDS), max_size=3))
    if draw(st.booleans()):
        node["count"] = draw(st.sampled_from([None, -1, 0, 2, 10**9, "3", 2.5]))
    if draw(st.booleans()):
        node["dependsOn"] = draw(st.lists(st.sampled_from(IDS), max_size=2))
    if draw(st.booleans()):
        node["items"] = draw(st.lists(VALUES, max_size=3))
    if node["type"] in ("custom-model", "workflow"):
        node["modelId"] = "m"
        node["workflowId"] = "wflow_missing"
    return node


@st.composite
def hostile_documents(draw: st.DrawFn) -> Any:
    document: dict[str, Any] = {"flow": draw(st.lists(hostile_nodes(), max_size=6))}
    if draw(st.booleans()):
        document["inputs"] = draw(hostile_inputs())
    if draw(st.integers(0, 9)) == 0:
        document["flow"] = draw(VALUES)
    return document


RUNTIME_EXPRESSIONS = [
    e for e in EXPRESSIONS if e not in ("(", "", "{{ missing }}", "xs.map(a, a)")
]


@st.composite
def runnable_documents(draw: st.DrawFn) -> Any:
    """Flows that compile, with hostile values at run time: expressions that fail or make
    values beyond JSON, loops over whatever arrives, counts past the limits."""
    size = draw(st.integers(1, 7))
    flow: list[dict[str, Any]] = []
    owned: set[str] = set()
    for index in range(size):
        node_id = f"n{index}"
        earlier = [f"n{i}" for i in range(index)]
        source = draw(st.sampled_from(["workflow", *earlier]))
        ref = {"node": source, "name": "x"} if source == "workflow" else {"node": source}
        x = {"name": "x", "type": draw(st.sampled_from(["string", "number", "string_array"]))}
        kind = draw(st.sampled_from(["transform", "logic", "for-each", "model", "gate", "list"]))
        node: dict[str, Any] = {"id": node_id, "inputs": [{**x, "ref": ref}]}
        if kind == "transform":
            node.update(
                type="transform", logic={"transform": draw(st.sampled_from(RUNTIME_EXPRESSIONS))}
            )
        elif kind == "logic":
            cases = [{"condition": draw(st.sampled_from(RUNTIME_EXPRESSIONS)), "value": "yes"}]
            node.update(type="logic", logic={"cases": cases, "default": "no"})
        elif kind == "for-each":
            body = [f"n{i}" for i in range(index + 1, min(index + 3, size))]
            body = [b for b in body if b not in owned]
            if not body:
                node.update(type="transform", logic={"transform": "x"})
            else:
                owned.update(body)
                node.update(type="for-each", loopBodyNodeIds=body)
                if draw(st.booleans()):
                    node["count"] = draw(st.sampled_from([0, 1, 3, 60]))
        elif kind == "model":
            node.update(type="custom-model", modelId="m")
        elif kind == "gate":
            node.update(type="user-approval")
        else:
            node.update(type="list", items=draw(st.lists(VALUES, max_size=3)), inputs=[])
        flow.append(node)
    return {"inputs": [{"name": "x", "type": "string"}], "flow": flow}


@given(document=runnable_documents(), x=VALUES)
@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_flows_that_compile_run_to_an_end_whatever_their_values(document: Any, x: Any) -> None:
    check(document, {"x": x})


@given(document=hostile_documents(), inputs=st.dictionaries(st.sampled_from(["x", "xs"]), VALUES))
@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_random_documents_give_problems_or_a_job_never_an_internal_error(
    document: Any, inputs: dict[str, Any]
) -> None:
    check(document, inputs)


def check(document: Any, inputs: dict[str, Any]) -> str:
    """Prepare and run; "invalid" or the job's status."""
    engine = Engine(
        dry_run=DryRunExecutor(assets_dir=None),
        limits=Limits(max_nodes=200, max_iterations=50),
    )
    try:
        job = engine.prepare(document, inputs)
    except ValidationError as error:
        assert error.problems and all(str(p).strip() for p in error.problems)
        return "invalid"
    anyio.run(engine.advance, job)
    answer = orjson.loads(job.document_json())
    assert answer["status"] in ("success", "failure", "in-progress"), answer["status"]
    if answer["status"] == "in-progress":
        assert job.waiting  # only a gate may hold a job
    if answer["status"] == "failure":
        assert answer["metadata"]["error"]
    return str(answer["status"])


# ----- editor graphs ----------------------------------------------------------------------------

EDITOR_IDS = ["text1", "model1", "if1", "loop1", "end1", "ok1", "t-2", "", "x y"]
EDITOR_TYPES = [
    "text", "asset", "model", "llm", "transformText", "splitText", "groupItems", "sliceAssets",
    "aspectRatio", "ifElse", "forEach", "forEachEnd", "approval", "stickyNote", "modelInput", "?",
]  # fmt: skip
HANDLES = ["output", "prompt", "input", "conditional", "if1", "if2", "else", "index", "approval"]
editor_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["", "a,b", "night", "-1", "2"]),
    st.lists(st.sampled_from(["asset_a", 3, None]), max_size=3), st.sampled_from(EDITOR_IDS),
)  # fmt: skip
editor_data = st.fixed_dictionaries(
    {},
    optional={
        "title": st.sampled_from(["T", "", 5]),
        "value": st.one_of(editor_values, st.sampled_from(EXPRESSIONS)),
        "isInput": st.booleans(),
        "isOutput": st.booleans(),
        "modelId": st.sampled_from(["model_x", "", None, 7]),
        "form": st.one_of(st.dictionaries(st.sampled_from(["seed", "n"]), editor_values), editor_values),
        "parentNodeId": st.sampled_from(EDITOR_IDS),
        "from": editor_values,
        "count": editor_values,
        "output": st.sampled_from(["16:9", "7:5", None]),
        "splitDelimiter": st.sampled_from([",", "", "'", None]),
        "isMultiple": st.booleans(),
        "conditionBlocks": st.one_of(
            editor_values,
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "logic": st.sampled_from(["and", "or", "xor", None]),
                        "conditions": st.lists(
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "field": st.sampled_from(["text1_output", "loop1_output", "x", 3]),
                                    "operator": st.sampled_from(["equals", "isEmpty", "contains", "gt", None]),
                                    "value": editor_values,
                                },
                            ),
                            max_size=3,
                        ),
                    },
                ),
                max_size=3,
            ),
        ),
    },
)  # fmt: skip
OUTPUT = {"id": "model1", "type": "model", "data": {"modelId": "model_x", "isOutput": True}}
editor_nodes = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from(EDITOR_IDS), "type": st.sampled_from(EDITOR_TYPES), "data": editor_data}
    ),
    max_size=8,
    unique_by=lambda node: node["id"],
).map(lambda nodes: [OUTPUT, *(n for n in nodes if n["id"] != "model1")])  # fmt: skip
editor_edges = st.lists(
    st.builds(
        lambda consumer, into, producer, out, forwards: {
            "source": producer if forwards else consumer,
            "sourceHandle": f"{consumer}-source-{into}",
            "target": consumer if forwards else producer,
            "targetHandle": f"{producer}-target-{out}",
        },
        st.sampled_from(EDITOR_IDS), st.sampled_from(HANDLES), st.sampled_from(EDITOR_IDS),
        st.sampled_from(HANDLES), st.integers(0, 9).map(lambda n: n == 0),
    ),
    max_size=12,
)  # fmt: skip


@settings(max_examples=300, deadline=None, database=None)
@given(nodes=editor_nodes, edges=editor_edges, keys=st.lists(st.sampled_from(EDITOR_IDS)))
def test_any_editor_graph_publishes_runs_or_is_refused_with_problems(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]], keys: list[str]
) -> None:
    export = {"name": "random", "editorInfo": {"nodes": nodes, "edges": edges, "inputKeys": keys}}
    engine = Engine(dry_run=DryRunExecutor(assets_dir=None), limits=Limits(max_nodes=200))

    async def go() -> None:
        job = await engine.run(export)
        orjson.dumps(job.document())

    try:
        anyio.run(go)
    except ValidationError as error:
        assert error.problems and all(p.message for p in error.problems)


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


_LIMIT_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.floats(allow_nan=False),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.integers(min_value=0, max_value=80).map(lambda depth: _nested(depth, 0)),
)
_LIMIT_VALUES = st.recursive(
    _LIMIT_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, database=None, deadline=None)
@given(_LIMIT_VALUES)
def test_the_quick_limit_walk_agrees_with_the_one_that_names_the_path(value: Any) -> None:
    """`value_problem` walks a document once without paths, and spells out a path only when it
    finds something: both walks must find the same documents at fault (nesting past 64 levels,
    an integer past 64 bits), wherever it sits."""
    from engine.compile.document import _first_problem, _within_limits, value_problem

    found = _first_problem(value, "doc")
    assert _within_limits(value) is (found is None)
    assert value_problem(value, "doc") == found
