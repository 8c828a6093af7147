"""CLI commands that test workflows: `test` (run test files, check expectations, report branch
coverage, suggest cases) and `replay` (run a recorded job again and say where it differs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.common import (
    EXIT_INVALID,
    EXIT_JOB_FAILED,
    err,
    fail_invalid,
    out_console,
    write_file,
)
from engine.errors import ValidationError

if TYPE_CHECKING:
    from engine.testing.session import Session


def test(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Test files (*.flowtest.json, *.flowtest.yaml) or folders to search [.]"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results (and coverage) as one JSON object")
    ] = False,
    junit_xml: Annotated[
        Path | None, typer.Option("--junit-xml", help="Also write JUnit XML here (for CI)")
    ] = None,
    cover: Annotated[
        bool, typer.Option("--cover/--no-cover", help="Report the branch coverage")
    ] = True,
    cover_fail_under: Annotated[
        float | None,
        typer.Option(
            "--cover-fail-under", min=0, max=100, help="Fail when coverage is under N percent"
        ),
    ] = None,
    cover_html: Annotated[
        Path | None,
        typer.Option(
            "--cover-html",
            help="Write a page per workflow, untaken branches marked, into this folder",
        ),
    ] = None,
    suggest: Annotated[
        Path | None,
        typer.Option(
            "--suggest",
            help="Write cases that reach this workflow's branches the tests leave untaken",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="--suggest: the test file to write [next to it]"),
    ] = None,
) -> None:
    """Run workflow test files offline and report the branch coverage of their workflows.

    Each case runs with its inputs, decisions and injected failures, then its expectations
    are checked; a failure shows a diff and the reason chain (see docs/testing.md).

    Exit 0 when every case passes (and coverage is not under --cover-fail-under), 1 when one
    fails, 2 for a test file that is not valid or a path that does not exist.
    """
    from engine.testing.session import run_session

    if suggest is not None:
        write_suggestions(suggest, paths or [], output)
        return
    try:
        session = run_session(paths or [Path(".")])
    except ValidationError as error:
        raise fail_invalid(error) from None
    if not session.results and not session.invalid:
        err.print(f"error: no test files (*.flowtest.json, *.flowtest.yaml) in {show(paths)}")
        raise typer.Exit(EXIT_INVALID)
    from engine.testing.coverage import total_percent
    from engine.testing.output import junit_xml as junit
    from engine.testing.output import session_json, session_lines

    if junit_xml is not None and not write_file(junit_xml, junit(session)):
        raise typer.Exit(EXIT_INVALID)
    coverages = list(session.coverage.values())
    if cover_html is not None:
        write_coverage_pages(cover_html, session)
    percent = total_percent(coverages)
    under = cover_fail_under is not None and percent < cover_fail_under
    if as_json:
        sys.stdout.write(json.dumps(session_json(session, coverage=cover), default=str) + "\n")
    else:
        from rich.text import Text

        console = out_console()
        for text, style in session_lines(session, coverage=cover):
            console.print(Text(text, style=style or ""), soft_wrap=True)
    if under:
        err.print(f"error: branch coverage {percent:.1f}% is under {cover_fail_under:g}%")
    if session.invalid:
        raise typer.Exit(EXIT_INVALID)
    if not session.ok or under:
        raise typer.Exit(EXIT_JOB_FAILED)


def show(paths: list[Path] | None) -> str:
    return ", ".join(str(p) for p in paths) if paths else "."


def write_coverage_pages(folder: Path, session: Session) -> None:
    """One HTML page per workflow under test, its untaken branches marked."""
    from engine.testing.files import display_path
    from engine.testing.session import load_workflow_under_test
    from engine.views.report import coverage_page

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        err.print(f"error: cannot make the folder {folder}: {error.strerror or error}")
        raise typer.Exit(EXIT_INVALID) from None
    plans = {}
    for result in session.results:
        key = result.file.workflow
        if key not in plans:
            try:
                plans[key] = load_workflow_under_test(result.file).plan
            except ValidationError:
                continue
    for path, plan in plans.items():
        coverage = session.coverage[display_path(path)]
        page = coverage_page(plan, coverage, title=f"branch coverage of {display_path(path)}")
        target = folder / f"{path.stem}.html"
        if not write_file(target, page):
            raise typer.Exit(EXIT_INVALID)
        err.print(f"coverage page: {target}")


def write_suggestions(workflow: Path, paths: list[Path], output: Path | None) -> None:
    """`--suggest`: cases for the branches of `workflow` that the tests of `paths` (or, with
    none, no test) take, written as a test file to review."""
    from engine.testing.suggest import suggest_file

    try:
        document, unreached = suggest_file(workflow, paths, output)
    except ValidationError as error:
        raise fail_invalid(error) from None
    target = output or workflow.with_name(workflow.stem + ".suggested.flowtest.json")
    cases = document["cases"]
    if not cases and not unreached:
        err.print(f"every branch of {workflow} is taken by the tests already; nothing written")
    elif not cases:
        err.print(f"no case found for the branches of {workflow} the tests leave untaken")
    elif not write_file(target, json.dumps(document, indent=2, ensure_ascii=False) + "\n"):
        raise typer.Exit(EXIT_INVALID)
    else:
        out_console().print(
            f"wrote {len(cases)} suggested case{'s' if len(cases) != 1 else ''} to {target}; "
            f"review them, then run: flowgraph test {target}",
            soft_wrap=True,
        )
        for case in cases:
            out_console().print(
                f"  {json.dumps(case['inputs'], ensure_ascii=False)}: "
                + "; ".join(case["reaches"]),
                soft_wrap=True,
            )
    for key, why in unreached:
        err.print(f"not reached: {key}: {why}")
    if unreached:
        raise typer.Exit(EXIT_JOB_FAILED)


def replay(
    file: Annotated[
        Path,
        typer.Argument(help='A recorded job: the {"job": ...} envelope GET /jobs/{id} answers'),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the differences as one JSON object")
    ] = False,
) -> None:
    """Run a recorded job again locally and list every node where the two runs differ.

    The recorded inputs, gate decisions and model assets are used (no model is called);
    status, branch chosen, iteration count and resolved input values are compared, each
    difference listed where it starts, with the local reason chain.

    Exit 0 when the two agree, 1 when they differ, 2 when the file is no recorded job.
    """
    from engine.compile.document import read_json_file
    from engine.testing.replay import replay as replay_job
    from engine.testing.replay import replay_lines

    try:
        result = replay_job(read_json_file(file), source=str(file))
    except ValidationError as error:
        raise fail_invalid(error) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False, default=str) + "\n")
    else:
        out_console().print("\n".join(replay_lines(result)), soft_wrap=True)
    if not result.agree:
        raise typer.Exit(EXIT_JOB_FAILED)
