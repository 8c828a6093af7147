"""A test session for people (pytest-like lines), for programs (JSON) and for CI (JUnit XML)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.testing.coverage import coverage_lines, total_percent
from engine.testing.session import ERROR, FAILED, PASSED, CaseResult, Session

STYLES = {PASSED: "green", FAILED: "bold red", ERROR: "bold red"}
WIDTH = 78

Line = tuple[str, str | None]  # text, rich style


def banner(title: str, fill: str = "=") -> str:
    title = f" {title} "
    left = max((WIDTH - len(title)) // 2, 3)
    return f"{fill * left}{title}{fill * max(WIDTH - left - len(title), 3)}"


def result_lines(result: CaseResult) -> list[str]:
    """What went wrong in one case: every mismatch with its diff and reason chain."""
    if result.outcome == ERROR:
        return [
            f"error: {line}" if i == 0 else line
            for i, line in enumerate((result.error or "").splitlines())
        ]
    lines: list[str] = []
    for mismatch in result.mismatches:
        lines += mismatch.lines()
    return lines


def session_lines(session: Session, *, coverage: bool) -> Iterator[Line]:
    """The whole report: one line per case, the failures, coverage, the summary."""
    files = len({r.file.path for r in session.results}) + len(session.invalid)
    cases = len(session.results)
    yield (
        f"collected {cases} case{'s' if cases != 1 else ''} from {files} test file"
        f"{'s' if files != 1 else ''}",
        "bold",
    )
    yield ("", None)
    for result in session.results:
        yield (f"{result.node_id} {result.outcome.upper()}", STYLES[result.outcome])
    if session.invalid:
        yield ("", None)
        yield (banner("ERRORS"), None)
        for path, error in session.invalid:
            yield (banner(str(path), "_"), "bold red")
            yield (f"error: {error.headline}", "red")
            for problem in error.problems:
                yield (str(problem), None)
    bad = [r for r in session.results if r.outcome != PASSED]
    if bad:
        yield ("", None)
        yield (banner("FAILURES"), None)
        for result in bad:
            yield (banner(result.node_id, "_"), "bold red")
            for line in result_lines(result):
                yield (line, _style(line))
    if coverage and session.coverage:
        yield ("", None)
        yield (banner("branch coverage"), None)
        for line in coverage_lines(list(session.coverage.values())):
            yield (line, "yellow" if line.startswith("  never taken") else None)
    yield (banner(summary(session)), "bold green" if session.ok else "bold red")


def _style(line: str) -> str | None:
    """Expected in red, actual in green, the reason chain dim (a diff's lines included)."""
    if line.startswith("  -"):
        return "red"
    if line.startswith("  +"):
        return "green"
    if line.startswith("  why:"):
        return "dim"
    return None


def summary(session: Session) -> str:
    parts = []
    for outcome in (FAILED, ERROR, PASSED):
        count = session.count(outcome)
        if count:
            word = "errors" if outcome == ERROR and count != 1 else outcome
            parts.append(f"{count} {word}")
    if session.invalid:
        count = len(session.invalid)
        parts.append(f"{count} invalid test file{'s' if count != 1 else ''}")
    return f"{', '.join(parts) or 'no cases'} in {session.seconds:.2f}s"


def session_json(session: Session, *, coverage: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ok": session.ok,
        "passed": session.count(PASSED),
        "failed": session.count(FAILED),
        "errors": session.count(ERROR),
        "seconds": round(session.seconds, 3),
        "invalid": [
            {"file": str(path), "problems": [str(p) for p in error.problems]}
            for path, error in session.invalid
        ],
        "cases": [r.to_json() for r in session.results],
    }
    if coverage:
        workflows = list(session.coverage.values())
        out["coverage"] = {
            "percent": round(total_percent(workflows), 1),
            "workflows": [c.to_json() for c in workflows],
        }
    return out


def junit_xml(session: Session) -> str:
    """JUnit XML: a testsuite per test file, a testcase per case, failures with their diffs."""
    from xml.etree import ElementTree

    root = ElementTree.Element(
        "testsuites",
        name="flowgraph test",
        tests=str(len(session.results)),
        failures=str(session.count(FAILED)),
        errors=str(session.count(ERROR) + len(session.invalid)),
        time=f"{session.seconds:.3f}",
    )
    by_file: dict[str, list[CaseResult]] = {}
    for result in session.results:
        by_file.setdefault(result.file.shown, []).append(result)
    for shown, results in by_file.items():
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            name=shown,
            tests=str(len(results)),
            failures=str(sum(1 for r in results if r.outcome == FAILED)),
            errors=str(sum(1 for r in results if r.outcome == ERROR)),
            time=f"{sum(r.seconds for r in results):.3f}",
        )
        for result in results:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                classname=shown,
                name=result.case.name,
                time=f"{result.seconds:.3f}",
            )
            if result.outcome != PASSED:
                lines = result_lines(result)
                tag = "failure" if result.outcome == FAILED else "error"
                element = ElementTree.SubElement(case, tag, message=lines[0] if lines else tag)
                element.text = "\n".join(lines)
    for path, error in session.invalid:
        suite = ElementTree.SubElement(root, "testsuite", name=str(path), tests="1", errors="1")
        case = ElementTree.SubElement(suite, "testcase", classname=str(path), name="collect")
        element = ElementTree.SubElement(case, "error", message=error.headline)
        element.text = "\n".join(str(p) for p in error.problems)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
