"""What the pytest plugin collects: a test file (`FlowTestFile`) and its cases
(`FlowTestCase`), each run offline against the workflow the file names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from engine.errors import ValidationError
from engine.testing.coverage import WorkflowCoverage, branches, taken
from engine.testing.files import Case, CaseFile, display_path, read_case_file
from engine.testing.output import result_lines
from engine.testing.pytest_plugin import COVERAGE, PORTAL
from engine.testing.session import (
    PASSED,
    CaseResult,
    UnderTest,
    load_workflow_under_test,
    run_case,
)


def portal_of(config: pytest.Config) -> BlockingPortal:
    found = config.stash.get(PORTAL, None)
    if found is None:
        manager = start_blocking_portal()
        found = config.stash[PORTAL] = (manager.__enter__(), manager)
    return found[0]


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
