"""The pytest plugin (entry point `flowgraph` of `pytest11`): a project's `pytest` collects
`*.flowtest.json` and `*.flowtest.yaml` files, one test per case, and reports a failing case
with its diffs and reason chains. `--flowgraph-cover` adds the branch coverage of the
workflows under test to the terminal summary.

pytest loads this module in every session of an environment where flowgraph is installed: it
holds the hooks alone, and the engine is imported when a test file is collected
(`pytest_items`)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from engine.testing.files import is_case_file

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

    from engine.testing.coverage import WorkflowCoverage

COVERAGE: pytest.StashKey[dict[str, WorkflowCoverage]] = pytest.StashKey()
# one event loop (in a thread) for every case: its worker processes serve them all
PORTAL: pytest.StashKey[tuple[BlockingPortal, AbstractContextManager[BlockingPortal]]] = (
    pytest.StashKey()
)


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


def pytest_unconfigure(config: pytest.Config) -> None:
    found = config.stash.get(PORTAL, None)
    if found is not None:
        found[1].__exit__(None, None, None)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_case_file(file_path):
        from engine.testing.pytest_items import FlowTestFile

        found: FlowTestFile = FlowTestFile.from_parent(parent, path=file_path)
        return found
    return None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    coverages = list(config.stash.get(COVERAGE, {}).values())
    if config.getoption("flowgraph_cover") and coverages:
        from engine.testing.coverage import coverage_lines

        terminalreporter.section("flowgraph branch coverage")
        for line in coverage_lines(coverages):
            terminalreporter.write_line(line)
