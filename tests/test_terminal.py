"""The human output of `flowgraph run`, on a pipe and on a terminal: user text is shown as
typed (never read as rich markup) and large jobs are summarised without error."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from conftest import FLOWS
from test_interactive import read_until

ROOT = Path(__file__).parent.parent
NOTE = "a tag like [/] in a prompt, [bold red]loud[/] :warning:"
SUBJECTS = [f"[{i}] a fox [/] [bold]" for i in range(50)]  # 50 clones: a summarised table


def command(tmp_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "engine",
        "run",
        str(FLOWS / "user-text.json"),
        "--input",
        f"subjects={json.dumps(SUBJECTS)}",
        "--input",
        f"note={NOTE}",
        "--db",
        str(tmp_path / "db"),
    ]


def check(shown: str) -> None:
    assert "internal error" not in shown
    assert f"echo    │ transform    │ success  │ {NOTE}" in shown  # as typed, unstyled
    assert "gen     │ custom-model │ template │ loop template of `loop`" in shown
    assert "gen#* │ custom-model │          │ 50 clones: 50 success" in shown
    assert ": success  nodes: 52 success; 1 loop template  assets: 50" in shown


def test_through_a_pipe(tmp_path: Path) -> None:
    result = subprocess.run(
        command(tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    check(result.stdout)
    assert "\x1b[" not in result.stdout  # no styling on a pipe


def test_on_a_terminal(tmp_path: Path) -> None:
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        command(tmp_path),
        cwd=ROOT,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        close_fds=True,
        env={**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm-256color"},
    )
    os.close(secondary)
    try:
        shown = read_until(main, "assets: 50")
        assert process.wait(timeout=60) == 0
        check(shown)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)


def test_the_live_line_says_what_is_running_and_what_is_done() -> None:
    import io

    import anyio
    from rich.console import Console

    from engine import DryRunExecutor, Engine
    from engine.cli.progress import ProgressDisplay

    engine = Engine(dry_run=DryRunExecutor(assets_dir=None, latency=0.01))
    job = engine.prepare(ROOT / "examples" / "fan-out.json", {})
    display = ProgressDisplay(Console(file=io.StringIO()), job)
    seen: list[str] = []
    engine.subscribe(display)
    engine.subscribe(lambda transition: seen.append(display.detail()))
    anyio.run(engine.advance, job)
    assert any(line.startswith("running: ") for line in seen)  # before anything finished
    assert "done: transform 3, custom-model 1 | running: 2 | loop loop: 1/3 iterations" in seen
    assert display.detail() == "done: custom-model 4, transform 3, for-each 1"
