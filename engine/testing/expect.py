"""Checking a finished (or parked) job against a case's expectations: every mismatch with what
was expected, what happened, and why it happened (the reason chain of `explain`)."""

from __future__ import annotations

import difflib
import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

from engine.api import JobRun
from engine.protocols import NodeStatus
from engine.run.instances import Instance
from engine.testing.files import Expectation, NodeExpectation, is_glob
from engine.views.explain import Explainer

MAX_PER_CHECK = 10  # mismatching clones listed per check; the rest are counted


@dataclass
class Mismatch:
    """One expectation the run did not meet."""

    subject: str  # `job`, or the node (a clone id, a template id, a glob)
    check: str  # status, output, branch, clones, ...
    expected: Any
    actual: Any
    why: list[str] = field(default_factory=list)
    note: str | None = None  # said instead of a diff (a selector that names nothing)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subject": self.subject,
            "check": self.check,
            "expected": self.expected,
            "actual": self.actual,
            "why": self.why,
        }
        if self.note:
            out["note"] = self.note
        return out

    def lines(self) -> list[str]:
        """The mismatch for a person: what, a diff of expected and actual, and why."""
        head = f"{self.subject}: {self.check}"
        if self.note:
            return [f"{head}: {self.note}", *(f"  why: {w}" for w in self.why)]
        lines = [head, *diff_lines(self.expected, self.actual)]
        lines += [f"  why: {w}" for w in self.why]
        return lines


def diff_lines(
    expected: Any, actual: Any, *, labels: tuple[str, str] = ("expected", "actual")
) -> list[str]:
    """`- expected` / `+ actual`; structured values as a unified diff of their JSON."""
    if isinstance(expected, dict | list) and isinstance(actual, dict | list):
        left = json.dumps(expected, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
        right = json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
        body = list(difflib.unified_diff(left, right, *labels, lineterm="", n=2))
        return ["  " + line for line in body]
    width = max(len(label) for label in labels) + 1
    return [
        f"  - {labels[0] + ':':<{width}} {shown(expected)}",
        f"  + {labels[1] + ':':<{width}} {shown(actual)}",
    ]


def shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def includes(expected: Any, actual: Any) -> bool:
    """Whether `actual` holds `expected`: the keys of an object (recursively), the elements of
    a list, a part of a text; any other value equal."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and includes(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(
            any(includes(e, a) for a in actual) for e in expected
        )
    if isinstance(expected, str) and isinstance(actual, str):
        return expected in actual
    return same(expected, actual)


def same(expected: Any, actual: Any) -> bool:
    """JSON equality: `1` and `1.0` are the same number, `true` is no number."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            same(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            same(e, a) for e, a in zip(expected, actual, strict=True)
        )
    return bool(expected == actual)


class Checker:
    """Checks one job against one case's expectations."""

    def __init__(self, job: JobRun) -> None:
        self.job = job
        self.scheduler = job.scheduler
        self.explainer = Explainer(job.scheduler)

    def check(self, expect: Expectation) -> list[Mismatch]:
        found = self.check_job(expect)
        for node in expect.nodes:
            found += self.check_node(node)
        return found

    # ----- the job ----------------------------------------------------------------------------

    def check_job(self, expect: Expectation) -> list[Mismatch]:
        found: list[Mismatch] = []
        job = self.job
        if expect.status is not None and job.status.value != expect.status:
            found.append(Mismatch("job", "status", expect.status, job.status.value, self.job_why()))
        if expect.asset_count is not None:
            assets = job.document()["metadata"].get("assetIds", [])
            if len(assets) != expect.asset_count:
                found.append(Mismatch("job", "assetCount", expect.asset_count, len(assets)))
        if expect.waits_at is not None:
            waiting = [gate.id for gate in job.waiting] if not job.scheduler.finished else []
            missing = [
                name
                for name in expect.waits_at
                if not any(g == name or g.startswith((name + "#", name + "/")) for g in waiting)
            ]
            if missing or (not expect.waits_at and waiting):
                found.append(Mismatch("job", "waitsAt", expect.waits_at, waiting, self.job_why()))
        if expect.error is not None:
            error = job.scheduler.error
            if error is None or expect.error not in error:
                found.append(Mismatch("job", "error", expect.error, error))
        return found

    def job_why(self) -> list[str]:
        scheduler = self.scheduler
        if scheduler.first_failure is not None:
            return [self.explainer.explain_instance(scheduler.first_failure).line()]
        if scheduler.rejected_at is not None:
            return [f"gate `{scheduler.rejected_at}` was rejected"]
        if self.job.waiting and not scheduler.finished:
            gates = ", ".join(f"`{g.id}`" for g in self.job.waiting)
            return [f"waiting for a decision at {gates} (decide it in the case's `decisions`)"]
        return []

    # ----- nodes ------------------------------------------------------------------------------

    def select(self, selector: str) -> tuple[list[Instance], bool] | str:
        """The instances a selector names and whether it names clones (a loop template's id,
        a glob); else why it names none."""
        instances = self.scheduler.instances
        if is_glob(selector):
            chosen = [
                i
                for i in instances.values()
                if not i.is_template_copy and fnmatch.fnmatchcase(i.id, selector)
            ]
            return chosen, True
        instance = instances.get(selector)
        if instance is not None and instance.is_template_copy:
            return self.explainer.clones_of(instance.template.id), True
        if instance is not None:
            return [instance], False
        template = selector.partition("#")[0]
        if template in self.scheduler.plan.nodes:
            count = len(self.explainer.clones_of(template))
            return f"no clone `{selector}` in this run (`{template}` has {count} clones)"
        close = difflib.get_close_matches(selector, list(self.scheduler.plan.nodes), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        return f"names no node of the workflow{hint}"

    def check_node(self, expectation: NodeExpectation) -> list[Mismatch]:
        selector, checks = expectation.selector, expectation.checks
        selected = self.select(selector)
        if isinstance(selected, str):
            return [Mismatch(selector, "node", None, None, note=selected)]
        chosen, many = selected
        found: list[Mismatch] = []
        if "clones" in checks:
            count = self.clone_count(chosen, many)
            if count != checks["clones"]:
                found.append(Mismatch(selector, "clones", checks["clones"], count))
        if many and not chosen:
            rest = [k for k in checks if k != "clones"]
            if rest:
                note = "names no node of this run (0 clones); nothing to check " + ", ".join(
                    f"`{k}`" for k in rest
                )
                found.append(Mismatch(selector, ", ".join(rest), None, None, note=note))
            return found
        for key, expected in checks.items():
            if key == "clones":
                continue
            wrong = []
            for instance in chosen:
                actual = self.actual(instance, key, expected)
                if not self.meets(key, expected, actual):
                    wrong.append((instance, actual))
            for instance, actual in wrong[:MAX_PER_CHECK]:
                found.append(Mismatch(instance.id, key, expected, actual, self.why(instance)))
            if len(wrong) > MAX_PER_CHECK:
                found.append(
                    Mismatch(
                        selector,
                        key,
                        expected,
                        None,
                        note=f"and {len(wrong) - MAX_PER_CHECK} more clones of `{selector}`",
                    )
                )
        return found

    def clone_count(self, chosen: list[Instance], many: bool) -> int:
        if not many and len(chosen) == 1 and chosen[0].template.type == "for-each":
            count = chosen[0].outputs.get("count")
            return count if isinstance(count, int) else 0
        return len(chosen) if many else 0

    @staticmethod
    def actual(instance: Instance, key: str, expected: Any) -> Any:
        if key == "status":
            return instance.status.value
        if key in ("output", "outputIncludes"):
            return instance.outputs.get("output")
        if key == "branch":
            if instance.template.type != "logic":
                return f"<a {instance.template.type} node: only logic nodes choose a branch>"
            return instance.outputs.get("output") if instance.status is NodeStatus.SUCCESS else None
        if key == "reason":
            return instance.reason
        # inputs: the resolved values of the inputs named
        values = instance.values or {}
        return {name: values.get(name) for name in expected}

    @staticmethod
    def meets(key: str, expected: Any, actual: Any) -> bool:
        if key == "reason":
            return isinstance(actual, str) and expected in actual
        if key == "outputIncludes":
            return includes(expected, actual)
        return same(expected, actual)

    def why(self, instance: Instance) -> list[str]:
        """The reason chain of `explain`, when there is more to say than the status."""
        explanation = self.explainer.explain_instance(instance)
        return [explanation.line()] if explanation.chain else []
