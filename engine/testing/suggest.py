"""Suggested cases: run inputs (and gate decisions) that reach the branches of a workflow its
tests leave untaken, found from the workflow alone.

Candidate values for each run input come from the workflow: its `allowedValues` and default,
the literal `condition` of each if/else case, and the literals of its expressions (CEL
comparisons and `contains`: the literal, and for a number one more and one less), with empty
and one- and two-item arrays for loops. The search runs the workflow offline with the defaults,
then with each input changed to each of its candidates, then with pairs of changes, and keeps
the first run that takes each untaken branch; a gate's `rejected` branch is the run that
reached it, with the gate rejected.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from engine.api import JobRun
from engine.compile.compiler import Plan
from engine.compile.models import NodeInput, Workflow
from engine.errors import FlowgraphError, Problem, ValidationError
from engine.run.instances import Instance
from engine.testing.coverage import Branch, branches, instance_taken, taken
from engine.testing.files import CaseFile, display_path
from engine.testing.runs import offline_engine, run_to_rest
from engine.testing.session import load_workflow_under_test, run_session

MAX_RUNS = 400  # runs the search may make before it gives up on what is left
STRING = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
NUMBER = re.compile(r"(?<![\w.'\"])-?\d+(?:\.\d+)?(?![\w'\"])")
NEUTRAL = "something else"
OMIT = object()  # an optional run input left out


def workflow_literals(plan: Plan) -> tuple[list[str], list[float]]:
    """The string and number literals of the workflow: each literal `condition` of an if/else
    case, and the quoted strings and numbers of its expressions (conditions, transforms)."""
    strings: list[str] = []
    numbers: list[float] = []
    for template in plan.nodes.values():
        logic = template.node.logic
        if template.type == "logic" and logic is not None and not template.expressions:
            for case in logic.cases or []:  # compared as text with the `condition` input
                strings.append(case.condition)
                if NUMBER.fullmatch(case.condition.strip()):
                    numbers.append(float(case.condition))
        for text, _ in template.kind.expressions(template.node).values():
            strings += [unescape(a or b) for a, b in STRING.findall(text)]
            numbers += [float(n) for n in NUMBER.findall(STRING.sub(" ", text))]
    return list(dict.fromkeys(strings)), list(dict.fromkeys(numbers))


ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def unescape(quoted: str) -> str:
    """A quoted literal's text: `\\n` a new line, `\\'` a quote."""
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), quoted)


def candidates(spec: NodeInput, strings: list[str], numbers: list[float]) -> list[Any]:
    """Values worth trying for one run input: its default first (or, for an optional input
    without one, leaving it out: `OMIT`), then those that keep to its rules."""
    found: list[Any] = []
    if spec.default is not None:
        found.append(spec.default)
    elif not (spec.required is not None and spec.required.always):
        found.append(OMIT)
    if spec.allowed_values:
        return unique([*found, *spec.allowed_values])
    kind = spec.type
    if kind in ("number", "integer"):
        for n in numbers:
            found += [n - 1, n, n + 1]
        found = [int(n) if isinstance(n, float) and n.is_integer() else n for n in found]
        found.append(spec.min if spec.min is not None else 1)
    elif kind == "boolean":
        found += [True, False]
    elif kind.endswith("_array"):
        item = (spec.default or [None])[0] if isinstance(spec.default, list) else None
        item = item if item is not None else (strings[0] if strings else "item")
        found += [[], [item], [item, item]]
    elif kind == "string":
        found += [*strings, NEUTRAL, ""]
    return [v for v in unique(found) if v is OMIT or keeps_to(spec, v)]


def keeps_to(spec: NodeInput, value: Any) -> bool:
    """Whether `value` keeps to the input's `min`/`max` and lengths (a refused one is no
    candidate: it would only be refused again in every run that tries it)."""
    size = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if isinstance(value, str | list):
        size = len(value)
        low = spec.min_length if isinstance(value, str) else spec.min
        high = spec.max_length if isinstance(value, str) else spec.max
    else:
        low, high = spec.min, spec.max
    if size is None:
        return True
    return (low is None or size >= low) and (high is None or size <= high)


def unique(values: list[Any]) -> list[Any]:
    """`values` without repeats (`1` and `true` are different values), first kept."""
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault("<omit>" if value is OMIT else json.dumps(value, sort_keys=True), value)
    return list(seen.values())


def assignments(choices: Mapping[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """The defaults, then each input changed alone, then pairs of changes."""
    names = [n for n, values in choices.items() if values]
    base = {n: choices[n][0] for n in names}
    yield without_omitted(base)
    for name in names:
        for value in choices[name][1:]:
            yield without_omitted({**base, name: value})
    for first, second in itertools.combinations(names, 2):
        for a, b in itertools.product(choices[first][1:], choices[second][1:]):
            yield without_omitted({**base, first: a, second: b})


def without_omitted(inputs: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in inputs.items() if value is not OMIT}


class Search:
    """Runs the workflow with candidate inputs until every wanted branch is reached."""

    def __init__(self, workflow: Workflow, plan: Plan, portal: BlockingPortal) -> None:
        self.workflow = workflow
        self.plan = plan
        self.portal = portal
        self.runs = 0
        self.gates = [t for t in plan.nodes.values() if t.is_gate]

    def run(
        self, inputs: dict[str, Any], decisions: dict[str, Any]
    ) -> tuple[JobRun, dict[str, Any]] | None:
        """The job for these inputs and decisions (a refused selection asks for more items),
        with the decisions that applied; None when the inputs are refused."""
        decisions = dict(decisions)
        for _ in range(8):
            self.runs += 1
            try:
                job, report = run_to_rest(
                    offline_engine(), self.workflow, inputs, decisions, portal=self.portal
                )
            except FlowgraphError:
                return None
            refused = [key for key in decisions if any(f"`{key}" in r for r in report.refused)]
            if not refused:
                return job, decisions
            for key in refused:
                select = decisions[key]["select"]
                decisions[key] = {"select": list(range(len(select) + 1))}
        return None

    def default_decisions(self) -> dict[str, Any]:
        return {
            t.id: "approve" if t.type == "user-approval" else {"select": [0]} for t in self.gates
        }

    def find(self, wanted: list[Branch]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """A case per wanted branch reached, and why each other one was not."""
        left = {b.key: b for b in wanted}
        cases: list[dict[str, Any]] = []
        strings, numbers = workflow_literals(self.plan)
        choices = {spec.name: candidates(spec, strings, numbers) for spec in self.workflow.inputs}
        reached_gates: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for inputs in assignments(choices):
            if not left or self.runs >= MAX_RUNS:
                break
            found = self.run(inputs, self.default_decisions())
            if found is None:
                continue
            job, decisions = found
            for gate in self.gates:
                if gate.id not in reached_gates and _reached(job, gate.id):
                    reached_gates[gate.id] = (inputs, decisions)
            self.take(job, inputs, decisions, left, cases)
        for gate_id, (inputs, decisions) in reached_gates.items():
            key = f"{gate_id}: rejected"
            if key in left:
                found = self.run(inputs, {**decisions, gate_id: "reject"})
                if found is not None:
                    self.take(found[0], inputs, found[1], left, cases)
        why = f"no input found that reaches it ({self.runs} runs tried)"
        return cases, [(key, why) for key in left]

    def take(
        self,
        job: JobRun,
        inputs: dict[str, Any],
        decisions: dict[str, Any],
        left: dict[str, Branch],
        cases: list[dict[str, Any]],
    ) -> None:
        reached = [
            left.pop(k) for k in sorted(taken(job.scheduler) & set(left), key=list(left).index)
        ]
        if reached:
            cases.append(case_for(reached, job, self.given(inputs), decisions))

    def given(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The inputs to write: those that differ from the default, and the required ones."""
        specs = {spec.name: spec for spec in self.workflow.inputs}
        required = {n for n, s in specs.items() if s.required is not None and s.required.always}
        return {
            name: value
            for name, value in inputs.items()
            if value != specs[name].default or name in required
        }


def _reached(job: JobRun, gate_id: str) -> bool:
    return any(
        i.template.id == gate_id and not i.is_template_copy and i.details is not None
        for i in job.scheduler.instances.values()
    )


def case_for(
    reached: list[Branch], job: JobRun, inputs: dict[str, Any], decisions: dict[str, Any]
) -> dict[str, Any]:
    """A case reaching the branches `reached`, expecting what this run did at each."""
    nodes: dict[str, dict[str, Any]] = {}
    for branch in reached:
        instance = next(
            i
            for i in job.scheduler.instances.values()
            if i.template.id == branch.node and not i.is_template_copy and _took(i, branch)
        )
        template = instance.template
        if template.type == "logic" and branch.outcome.startswith(("case", "default")):
            check: dict[str, Any] = {"branch": instance.outputs.get("output")}
        elif template.type == "for-each" and "iteration" in branch.outcome:
            check = {"clones": instance.outputs.get("count")}
        else:
            check = {"status": instance.status.value}
        nodes.setdefault(instance.id, {}).update(check)
    used = {k: v for k, v in decisions.items() if any(g.startswith(k) for g in _gates(job))}
    keys = [branch.key for branch in reached]
    return {
        "name": "reaches " + "; ".join(keys),
        "reaches": keys,
        "inputs": inputs,
        **({"decisions": used} if used else {}),
        "expect": {"status": job.status.value, "nodes": nodes},
    }


def _gates(job: JobRun) -> list[str]:
    return [i.id for i in job.scheduler.instances.values() if i.template.is_gate]


def _took(instance: Instance, branch: Branch) -> bool:
    return branch.key in set(instance_taken(instance))


def suggest_file(
    workflow_path: Path, test_paths: list[Path], output: Path | None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The test file of suggested cases for `workflow_path` (for the branches the tests of
    `test_paths` do not take), and the branches no case reaches with why. Raises
    ValidationError."""
    if not workflow_path.is_file():
        raise ValidationError([Problem(f"no workflow file `{workflow_path}`")], what="--suggest")
    under_test = load_workflow_under_test(CaseFile(workflow_path, workflow_path, []))
    workflow, plan = under_test.workflow, under_test.plan
    wanted = branches(plan)
    if test_paths:
        session = run_session(test_paths)
        coverage = session.coverage.get(display_path(workflow_path))
        if coverage is not None:
            wanted = coverage.missing()
    target = output or workflow_path.with_name(workflow_path.stem + ".suggested.flowtest.json")
    with start_blocking_portal() as portal:
        cases, unreached = Search(workflow, plan, portal).find(wanted)
    relative = os.path.relpath(workflow_path.resolve(), target.resolve().parent)
    return {"workflow": relative, "cases": cases}, unreached
