"""At an interactive terminal, a run that reaches a gate asks what to do."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def read_until(fd: int, text: str, timeout: float = 60) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"never saw {text!r}; got: {seen.decode(errors='replace')}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            seen = ANSI.sub(b"", seen)
    return seen.decode(errors="replace")


def test_a_gate_asks_at_a_terminal_and_the_answer_decides_it(tmp_path: Path) -> None:
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "run",
            "tests/flows/gates.json",
            "--db",
            str(tmp_path / "db"),
        ],
        cwd=ROOT,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        close_fds=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(secondary)
    try:
        shown = read_until(main, "approve or reject")
        assert "gate `review` (user-approval) is waiting" in shown
        assert "approves: draft (custom-model): asset_" in shown
        assert "holds back: choose" in shown
        os.write(main, b"approve\n")
        shown = read_until(main, "indices (space separated)")
        assert "gate `choose` (user-selection) is waiting: choose 1 to 2 of 3 items" in shown
        assert re.search(r"\[2\] asset_\w+  from draft  file://\S+\.png", shown), shown
        os.write(main, b"7\n")  # out of range: refused, asked again
        shown = read_until(main, "indices (space separated)")
        assert "refused: user-selection `choose`: index `7` is out of range" in shown
        os.write(main, b"2 0\n")
        shown = read_until(main, "job ")
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
