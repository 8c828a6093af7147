"""The pytest plugin (entry point `flowgraph` of `pytest11`): a project's `pytest` collects
`*.flowtest.json` and `*.flowtest.yaml` files, one test per case, and reports a failing case
with its diffs and reason chains. `--flowgraph-cover` adds the branch coverage of the
workflows under test to the terminal summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from engine.errors import ValidationError
from engine.testing.coverage import WorkflowCoverage, branches, coverage_lines, taken
from engine.testing.files import Case, CaseFile, display_path, is_case_file, read_case_file
from engine.testing.output import result_lines
from engine.testing.session import (
    PASSED,
    CaseResult,
    UnderTest,
    load_workflow_under_test,
    run_case,
)

COVERAGE = pytest.StashKey[dict[str, WorkflowCoverage]]()
# one event loop (in a thread) for every case: its worker processes serve them all
PORTAL = pytest.StashKey[tuple[BlockingPortal, AbstractContextManager[BlockingPortal]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flowgraph", "flowgraph workflow tests")
    group.addoption(
        "--flowgraph-cover",
        action="store_true",
        default=False,
        help="Report the branch coverage of the workflows the *.flowtest files test",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[COVERAGE] = {}


def portal_of(config: pytest.Config) -> BlockingPortal:
    found = config.stash.get(PORTAL, None)
    if found is None:
        manager = start_blocking_portal()
        found = config.stash[PORTAL] = (manager.__enter__(), manager)
    return found[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    found = config.stash.get(PORTAL, None)
    if found is not None:
        found[1].__exit__(None, None, None)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_case_file(file_path):
        found: FlowTestFile = FlowTestFile.from_parent(parent, path=file_path)
        return found
    return None


class CaseFailed(Exception):
    """A case ended otherwise than expected (its result says how)."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.node_id)
        self.result = result


class FlowTestFile(pytest.File):
    """A test file: its cases, one item each, against the workflow it names."""

    case_file: CaseFile | None = None
    under_test: UnderTest | ValidationError | None = None

    def collect(self) -> Iterator[FlowTestCase]:
        self.case_file = read_case_file(self.path)
        try:
            self.under_test = load_workflow_under_test(self.case_file)
        except ValidationError as error:
            self.under_test = error
        else:
            key = display_path(self.case_file.workflow)
            coverage = self.config.stash[COVERAGE]
            coverage.setdefault(key, WorkflowCoverage(key, branches(self.under_test.plan)))
        for case in self.case_file.cases:
            yield FlowTestCase.from_parent(self, name=case.name, case=case)

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> str:
        if isinstance(excinfo.value, ValidationError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class FlowTestCase(pytest.Item):
    """One case of a test file."""

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, FlowTestFile) and parent.case_file is not None
        under_test = parent.under_test
        if isinstance(under_test, ValidationError):
            raise under_test
        assert under_test is not None
        result = run_case(parent.case_file, self.case, under_test, portal_of(self.config))
        if result.job is not None:
            key = display_path(parent.case_file.workflow)
            self.config.stash[COVERAGE][key].add(taken(result.job.scheduler))
        if result.outcome != PASSED:
            raise CaseFailed(result)

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> str:
        if isinstance(excinfo.value, CaseFailed):
            return "\n".join(result_lines(excinfo.value.result))
        if isinstance(excinfo.value, ValidationError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"flowtest: {self.name}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    coverages = list(config.stash.get(COVERAGE, {}).values())
    if config.getoption("flowgraph_cover") and coverages:
        terminalreporter.section("flowgraph branch coverage")
        for line in coverage_lines(coverages):
            terminalreporter.write_line(line)
