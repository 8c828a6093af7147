"""Run inputs against the workflow's contract: types, required rules, bounds, all at once."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FLOWS

from engine import InputError, Workflow
from engine.compile.run_inputs import validate_run_inputs


def workflow(*inputs: dict[str, Any]) -> Workflow:
    return Workflow.model_validate({"inputs": list(inputs), "flow": []})


def problems(wf: Workflow, given: dict[str, Any]) -> list[str]:
    with pytest.raises(InputError) as caught:
        validate_run_inputs(wf, given)
    return [str(p) for p in caught.value.problems]


def test_defaults_are_applied_and_valid_inputs_pass() -> None:
    wf = workflow(
        {"name": "prompt", "type": "string", "default": "x"},
        {"name": "n", "type": "number", "default": 4},
        {"name": "tags", "type": "string_array"},
    )
    assert validate_run_inputs(wf, {"tags": ["a"]}) == {"prompt": "x", "n": 4, "tags": ["a"]}


def test_every_problem_is_reported_together() -> None:
    wf = workflow(
        {"name": "prompt", "type": "string", "required": {"always": True}, "maxLength": 5},
        {"name": "steps", "type": "number", "min": 1, "max": 50},
        {"name": "style", "type": "string", "allowedValues": ["a", "b"]},
        {"name": "flag", "type": "boolean"},
        {"name": "seeds", "type": "number_array", "max": 2},
        {"name": "words", "type": "string_array"},
    )
    found = problems(
        wf,
        {
            "steps": 80,
            "style": "c",
            "flag": "yes",
            "seeds": [1, 2, 3],
            "words": ["ok", 3],
            "extra": 1,
        },
    )
    assert found == [
        "inputs.extra: unknown input `extra`; the workflow declares: `prompt`, `steps`, `style`, `flag`, `seeds`, `words`",
        "inputs.prompt: input `prompt` is required",
        "inputs.steps: input `steps` must be at most 50, got 80",
        'inputs.style: input `style` must be one of ["a", "b"], got `c`',
        "inputs.flag: input `flag` must be a boolean, got `yes`",
        "inputs.seeds: input `seeds` takes at most 2 items, got 3",
        "inputs.words: input `words`[1] must be a string, got `3`",
    ]
    assert problems(wf, {"prompt": "too long"}) == [
        "inputs.prompt: input `prompt` must be at most 5 characters long"
    ]


def test_numbers_are_not_booleans() -> None:
    wf = workflow({"name": "n", "type": "number"})
    assert problems(wf, {"n": True}) == ["inputs.n: input `n` must be a number, got `true`"]


def test_required_if_defined_and_if_not_defined() -> None:
    wf = workflow(
        {"name": "negative", "type": "string", "required": {"ifDefined": {"strength": "needs it"}}},
        {"name": "strength", "type": "number"},
        {"name": "image", "type": "file", "required": {"ifNotDefined": {"prompt": ""}}},
        {"name": "prompt", "type": "string"},
    )
    assert problems(wf, {"strength": 0.5, "prompt": "p"}) == [
        "inputs.negative: input `negative` is required when `strength` is given (needs it)"
    ]
    assert problems(wf, {}) == [
        "inputs.image: input `image` is required when `prompt` is not given"
    ]
    assert validate_run_inputs(wf, {"prompt": "p"}) == {"prompt": "p"}


def test_required_conditional_with_operators_and_the_older_conditional_values() -> None:
    wf = workflow(
        {"name": "mode", "type": "string"},
        {"name": "size", "type": "string"},
        {
            "name": "mask",
            "type": "file",
            "required": {
                "conditional": {"values": {"mode": ["inpaint"], "size": ["xl"]}, "operator": "or"}
            },
        },
        {
            "name": "ref",
            "type": "file",
            "required": {"conditional": {"values": {"mode": ["inpaint"], "size": ["xl"]}}},
        },
        {
            "name": "old",
            "type": "string",
            "required": {"conditionalValues": {"mode": "legacy, retro"}},
        },
    )
    assert problems(wf, {"mode": "inpaint"}) == [
        "inputs.mask: input `mask` is required when `mode` is one of ['inpaint'] or `size` is one of ['xl']"
    ]
    found = problems(wf, {"mode": "inpaint", "size": "xl"})
    assert [p.split(":")[0] for p in found] == ["inputs.mask", "inputs.ref"]
    assert problems(wf, {"mode": "retro"}) == [
        "inputs.old: input `old` is required when `mode` is `retro`"
    ]
    assert validate_run_inputs(wf, {"mode": "plain"}) == {"mode": "plain"}


def test_integer_inputs_and_min_length_on_arrays() -> None:
    """The `integer` type (seen on live workflows) takes whole numbers; `minLength` on an array
    counts its items, as `maxLength` does."""
    import anyio

    from engine import Engine

    engine = Engine()
    flow = FLOWS / "input-rules.json"
    job = anyio.run(engine.run, flow, {"steps": 6, "styles": ["ink", "oil"]})
    assert job.document()["metadata"]["flow"][0]["output"] == "6 steps: ink, oil"
    with pytest.raises(InputError) as caught:
        engine.prepare(flow, {"steps": 2.5, "styles": ["ink"]})
    assert [str(p) for p in caught.value.problems] == [
        "inputs.steps: input `steps` must be a whole number, got `2.5`",
        "inputs.styles: input `styles` needs at least 2 items, got 1",
    ]
