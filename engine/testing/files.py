"""Test files of workflows (`*.flowtest.json`, `*.flowtest.yaml`): finding them, reading them
and checking their shape, every problem named by file and JSON path at once.

    {"workflow": "branching.json",
     "cases": [{"name": "quality", "inputs": {"mode": "quality"},
                "expect": {"status": "success", "nodes": {"check": {"branch": "gen_quality"}}}}]}
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import Problem, ValidationError

# The engine (pydantic, networkx) is imported where a file is read: the pytest plugin asks
# `is_case_file` of every file of every session.
SUFFIXES = (".flowtest.json", ".flowtest.yaml", ".flowtest.yml")
JOB_STATUSES = ("success", "failure", "canceled", "in-progress", "queued")
NODE_STATUSES = ("success", "failure", "skipped", "rejected", "processing", "pending")
CASE_KEYS = {"name", "inputs", "decisions", "autoApprove", "fail", "seed", "expect", "reaches"}
EXPECT_KEYS = {"status", "nodes", "assetCount", "waitsAt", "error"}
NODE_KEYS = {"status", "output", "outputIncludes", "clones", "reason", "branch", "inputs"}


@dataclass
class NodeExpectation:
    """What a test expects of the nodes a selector names (an id, a template id, a glob)."""

    selector: str
    checks: dict[str, Any]


@dataclass
class Expectation:
    status: str | None = None
    asset_count: int | None = None
    waits_at: list[str] | None = None
    error: str | None = None
    nodes: list[NodeExpectation] = field(default_factory=list)


@dataclass
class Case:
    """One run of the workflow under test and what it should do."""

    name: str
    inputs: dict[str, Any]
    decisions: dict[str, Any]
    auto_approve: bool
    fail: list[str]
    seed: int
    expect: Expectation
    reaches: list[str] = field(default_factory=list)  # a suggested case: the branches it reaches


@dataclass
class CaseFile:
    path: Path
    workflow: Path
    cases: list[Case]
    sub_workflows: Path | None = None  # a folder of the workflows `workflow` nodes run

    @property
    def shown(self) -> str:
        return display_path(self.path)


def display_path(path: Path) -> str:
    """The path relative to the working directory when it is below it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def is_case_file(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


# folders never searched, as pytest's `norecursedirs`: hidden ones, environments, builds
SKIPPED_FOLDERS = ("node_modules", "venv", "build", "dist", "__pycache__")


def case_files_below(folder: Path) -> Iterator[Path]:
    """The test files below `folder`, hidden folders, environments and builds left out."""
    for root, folders, files in os.walk(folder):
        folders[:] = [
            f
            for f in folders
            if not f.startswith(".") and f not in SKIPPED_FOLDERS and not f.endswith(".egg-info")
        ]
        yield from (Path(root) / name for name in files if name.endswith(SUFFIXES))


def find_case_files(paths: Iterable[Path]) -> list[Path]:
    """The test files of `paths`: a file as it is given, a folder searched below for
    `*.flowtest.json` and `*.flowtest.yaml` (name order; hidden folders, `venv`,
    `node_modules`, `build` and `dist` are not searched). Raises ValidationError for a path
    that does not exist."""
    found: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found += sorted(case_files_below(path))
        elif path.is_file():
            found.append(path)
        else:
            problems.append(Problem(f"no such file or folder `{path}`"))
    if problems:
        raise ValidationError(problems, what="test paths")
    return list(dict.fromkeys(found))


def parse_case_text(text: str, *, source: str, yaml: bool) -> Any:
    """The document of a test file's text, JSON or YAML."""
    if not yaml:
        from engine.compile.document import parse_json

        return parse_json(text, source=source)
    import yaml as pyyaml

    try:
        return pyyaml.safe_load(text)
    except pyyaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ValidationError(
            [Problem(f"not valid YAML{where}: {problem}", path=source)], what="test file"
        ) from None


def read_case_file(path: Path) -> CaseFile:
    """Read and check one test file; raises ValidationError listing every problem."""
    from engine.compile.document import read_text_file

    text = read_text_file(path, what="test file")
    yaml = path.suffix in (".yaml", ".yml")
    return load_case_file(parse_case_text(text, source=str(path), yaml=yaml), path)


def load_case_file(raw: Any, path: Path) -> CaseFile:
    """A CaseFile from a parsed document; `workflow` is relative to the file's folder."""
    problems: list[Problem] = []
    source = str(path)

    def problem(message: str, where: str) -> None:
        problems.append(Problem(message, path=f"{source}: {where}" if where else source))

    if not isinstance(raw, Mapping):
        problem('a test file is an object: {"workflow": FILE, "cases": [...]}', "")
        raise ValidationError(problems, what="test file")
    for key in raw:
        if key not in ("workflow", "workflows", "cases"):
            problem(
                f"unknown key `{key}`; a test file has `workflow`, `workflows` and `cases`",
                str(key),
            )
    workflow = raw.get("workflow")
    if not isinstance(workflow, str) or not workflow.strip():
        problem("name the workflow under test: a path relative to this file", "workflow")
        workflow = ""
    target = path.parent / workflow
    if workflow and not target.is_file():
        problem(f"no workflow file `{target}`", "workflow")
    folder = raw.get("workflows")
    sub_workflows = None
    if folder is not None:
        sub_workflows = path.parent / str(folder)
        if not isinstance(folder, str) or not sub_workflows.is_dir():
            problem(
                f"no folder `{sub_workflows}`: `workflows` names a folder of the workflows "
                "`workflow` nodes run, each file named by its id (wflow_x.json)",
                "workflows",
            )
    cases_raw = raw.get("cases")
    cases: list[Case] = []
    if not isinstance(cases_raw, list) or not cases_raw:
        problem("`cases` is a non-empty list of cases", "cases")
        cases_raw = []
    names: set[str] = set()
    for index, case_raw in enumerate(cases_raw):
        case = _case(case_raw, f"cases[{index}]", problem)
        if case is None:
            continue
        if case.name in names:
            problem(f"two cases are named `{case.name}`; give each its own", f"cases[{index}]")
        names.add(case.name)
        cases.append(case)
    if problems:
        raise ValidationError(problems, what="test file")
    return CaseFile(path=path, workflow=target, cases=cases, sub_workflows=sub_workflows)


def _case(raw: Any, where: str, problem: Callable[[str, str], None]) -> Case | None:
    from engine.run.decisions import check_decisions

    if not isinstance(raw, Mapping):
        problem("a case is an object with `name`, `inputs`, `decisions`, `expect`...", where)
        return None
    count = _Counter(problem)
    for key in raw:
        if key not in CASE_KEYS:
            count(f"unknown key `{key}`; a case has {_listed(CASE_KEYS)}", f"{where}.{key}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        count("every case has a `name` (a string)", f"{where}.name")
        name = where
    inputs = raw.get("inputs", {})
    if not isinstance(inputs, Mapping):
        count("`inputs` maps workflow input names to values", f"{where}.inputs")
        inputs = {}
    decisions: dict[str, Any] = {}
    try:
        decisions = check_decisions(raw.get("decisions", {}))
    except ValidationError as error:
        for p in error.problems:
            count(p.message, f"{where}.decisions" + (f".{p.path}" if p.path else ""))
    auto_approve = raw.get("autoApprove", False)
    if not isinstance(auto_approve, bool):
        count("`autoApprove` is true or false", f"{where}.autoApprove")
    fail = raw.get("fail", [])
    if not (isinstance(fail, list) and all(isinstance(f, str) for f in fail)):
        count("`fail` lists the node ids (or template ids) whose model call fails", f"{where}.fail")
        fail = []
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        count("`seed` is an integer", f"{where}.seed")
        seed = 0
    reaches = raw.get("reaches", [])
    if isinstance(reaches, str):
        reaches = [reaches]
    if not (isinstance(reaches, list) and all(isinstance(r, str) for r in reaches)):
        count("`reaches` lists the branches a suggested case reaches", f"{where}.reaches")
        reaches = []
    expect = _expectation(raw.get("expect", {}), f"{where}.expect", count)
    if count.seen:
        return None
    return Case(
        name=name,
        inputs=dict(inputs),
        decisions=decisions,
        auto_approve=bool(auto_approve),
        fail=list(fail),
        seed=seed,
        expect=expect,
        reaches=list(reaches),
    )


class _Counter:
    """Passes problems on and remembers whether any was seen."""

    def __init__(self, problem: Callable[[str, str], None]) -> None:
        self.problem = problem
        self.seen = False

    def __call__(self, message: str, where: str) -> None:
        self.seen = True
        self.problem(message, where)


def _listed(keys: Iterable[str]) -> str:
    return ", ".join(f"`{k}`" for k in sorted(keys))


def _expectation(raw: Any, where: str, problem: _Counter) -> Expectation:
    expect = Expectation()
    if not isinstance(raw, Mapping):
        problem(f"`expect` is an object with {_listed(EXPECT_KEYS)}", where)
        return expect
    for key in raw:
        if key not in EXPECT_KEYS:
            problem(f"unknown key `{key}`; `expect` has {_listed(EXPECT_KEYS)}", f"{where}.{key}")
    status = raw.get("status")
    if status is not None and status not in JOB_STATUSES:
        problem(f"a job's status is one of {_listed(JOB_STATUSES)}", f"{where}.status")
    expect.status = status
    count = raw.get("assetCount")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        problem("`assetCount` is a number of assets (0 or more)", f"{where}.assetCount")
    expect.asset_count = count
    waits = raw.get("waitsAt")
    if isinstance(waits, str):
        waits = [waits]
    if waits is not None and not (
        isinstance(waits, list) and all(isinstance(w, str) for w in waits)
    ):
        problem("`waitsAt` names the gate (or gates) the run parks at", f"{where}.waitsAt")
        waits = None
    expect.waits_at = waits
    error = raw.get("error")
    if error is not None and not isinstance(error, str):
        problem("`error` is a part of the job's error message", f"{where}.error")
    expect.error = error
    nodes = raw.get("nodes", {})
    if not isinstance(nodes, Mapping):
        problem(
            "`nodes` maps node ids (or globs such as `shot#*`) to expectations", f"{where}.nodes"
        )
        nodes = {}
    for selector, checks in nodes.items():
        here = f"{where}.nodes.{selector}"
        if not isinstance(checks, Mapping) or not checks:
            problem(f"expect one or more of {_listed(NODE_KEYS)}", here)
            continue
        for key, value in checks.items():
            message = _node_check_problem(key, value)
            if message:
                problem(message, f"{here}.{key}")
        expect.nodes.append(NodeExpectation(str(selector), dict(checks)))
    return expect


def _node_check_problem(key: str, value: Any) -> str | None:
    if key not in NODE_KEYS:
        return f"unknown key `{key}`; a node expectation has {_listed(NODE_KEYS)}"
    if key == "status" and value not in NODE_STATUSES:
        return f"a node's status is one of {_listed(NODE_STATUSES)}"
    if key == "clones" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        return "`clones` is a number of clones (0 or more)"
    if key == "reason" and not isinstance(value, str):
        return "`reason` is a part of the node's status reason (text)"
    if key == "inputs" and not isinstance(value, Mapping):
        return "`inputs` maps input names to their resolved values"
    return None


GLOB = re.compile(r"[*?\[]")


def is_glob(selector: str) -> bool:
    return GLOB.search(selector) is not None
