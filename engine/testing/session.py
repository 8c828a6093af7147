"""A test session: run every case of the test files found, check it, and gather the branch
coverage of the workflows under test."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from engine.api import JobRun
from engine.compile.compiler import Plan
from engine.compile.document import load_workflow_folder, read_document
from engine.compile.models import Workflow
from engine.errors import FlowgraphError, ValidationError
from engine.testing.coverage import WorkflowCoverage, branches, taken
from engine.testing.expect import Checker, Mismatch
from engine.testing.files import Case, CaseFile, display_path, find_case_files, read_case_file
from engine.testing.runs import offline_engine, run_to_rest

PASSED, FAILED, ERROR = "passed", "failed", "error"


@dataclass
class CaseResult:
    file: CaseFile
    case: Case
    outcome: str
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None
    job: JobRun | None = None
    seconds: float = 0.0

    @property
    def node_id(self) -> str:
        """`path::case name`, as pytest names a test."""
        return f"{self.file.shown}::{self.case.name}"

    def to_json(self) -> dict[str, Any]:
        job = self.job
        return {
            "file": self.file.shown,
            "workflow": display_path(self.file.workflow),
            "name": self.case.name,
            "id": self.node_id,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 4),
            "jobId": job.job_id if job else None,
            "jobStatus": job.status.value if job else None,
            "mismatches": [m.to_json() for m in self.mismatches],
            "error": self.error,
            **({"reaches": self.case.reaches} if self.case.reaches else {}),
        }


@dataclass
class Session:
    results: list[CaseResult] = field(default_factory=list)
    coverage: dict[str, WorkflowCoverage] = field(default_factory=dict)
    # test files that could not be read: the path and every problem
    invalid: list[tuple[Path, ValidationError]] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        return not self.invalid and all(r.outcome == PASSED for r in self.results)


@dataclass
class UnderTest:
    """The workflow a test file names, compiled, with the sub-workflows its `workflow` nodes
    run (by id)."""

    workflow: Workflow
    plan: Plan
    sub_workflows: dict[str, Workflow]


def load_workflow_under_test(test_file: CaseFile) -> UnderTest:
    """Read and compile what a test file names; raises ValidationError."""
    workflow = read_document(test_file.workflow)
    plan = offline_engine().compile(workflow)
    folder = test_file.sub_workflows
    return UnderTest(workflow, plan, load_workflow_folder(folder) if folder else {})


def run_case(
    test_file: CaseFile, case: Case, under_test: UnderTest, portal: BlockingPortal | None = None
) -> CaseResult:
    """Run one case offline (in `portal`'s event loop, if given) and check it."""
    started = time.perf_counter()
    engine = offline_engine(fail=case.fail, seed=case.seed)
    engine.workflows.update(under_test.sub_workflows)
    try:
        job, report = run_to_rest(
            engine,
            under_test.workflow,
            case.inputs,
            case.decisions,
            auto_approve=case.auto_approve,
            fail=case.fail,
            portal=portal,
        )
    except FlowgraphError as error:
        return CaseResult(
            test_file, case, ERROR, error=str(error), seconds=time.perf_counter() - started
        )
    mismatches = Checker(job).check(case.expect)
    mismatches += [Mismatch("decisions", "refused", None, None, note=r) for r in report.refused]
    outcome = FAILED if mismatches else PASSED
    return CaseResult(
        test_file, case, outcome, mismatches, job=job, seconds=time.perf_counter() - started
    )


def run_case_file(
    test_file: CaseFile, coverage: dict[str, WorkflowCoverage], portal: BlockingPortal
) -> list[CaseResult]:
    """Every case of a file; the branches each run took are added to `coverage`."""
    try:
        under_test = load_workflow_under_test(test_file)
    except ValidationError as error:
        return [CaseResult(test_file, case, ERROR, error=str(error)) for case in test_file.cases]
    key = display_path(test_file.workflow)
    if key not in coverage:
        coverage[key] = WorkflowCoverage(key, branches(under_test.plan))
    results = []
    for case in test_file.cases:
        result = run_case(test_file, case, under_test, portal)
        if result.job is not None:
            coverage[key].add(taken(result.job.scheduler))
        results.append(result)
    return results


def run_session(paths: Iterable[Path]) -> Session:
    """Find the test files of `paths`, run them all. Raises ValidationError for a path that
    does not exist."""
    started = time.perf_counter()
    session = Session()
    found = find_case_files(paths)
    with start_blocking_portal() as portal:
        for path in found:
            try:
                test_file = read_case_file(path)
            except ValidationError as error:
                session.invalid.append((path, error))
                continue
            session.results += run_case_file(test_file, session.coverage, portal)
    session.seconds = time.perf_counter() - started
    return session
