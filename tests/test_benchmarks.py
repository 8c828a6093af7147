"""The benchmark runner works end to end (tiny sizes; no time is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_benchmark_runner_reports_every_scenario_as_json() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--iterations",
            "50",
            "--persistence-iterations",
            "40",
            "--server-runs",
            "0",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(result.stdout)
    names = [r["name"] for r in report["results"]]
    assert names == [
        "bare asyncio.gather (floor)",
        "for-each x50, CLI, SQLite store",
        "for-each x40, CLI, in-memory store",
        "for-each x40, CLI, SQLite store",
    ]
    for row in report["results"]:
        assert row["seconds"] > 0 and row["microsPerNode"] > 0
    assert report["results"][3]["baseline"] == "for-each x40, CLI, in-memory store"


def test_the_server_load_test_completes_every_run_once() -> None:
    from benchmarks.server_load import run_load

    report = run_load(50)
    assert report["allSucceeded"] is True
    assert report["distinctJobs"] == 50
    assert report["listedJobs"] == 50 and report["listedMatches"] is True
