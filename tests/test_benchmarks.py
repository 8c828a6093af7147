"""The benchmark runner works end to end (tiny sizes; no time is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_benchmark_runner_reports_every_scenario_as_json() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--iterations",
            "60",
            "--chain",
            "20",
            "--latency-nodes",
            "40",
            "--server-runs",
            "0",
            "--distributed-nodes",
            "16",
            "--repetitions",
            "2",
            "--no-peers",
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
        "asyncio.gather in a fresh process (floor)",
        "dask synchronous scheduler, same fan-out",
        "for-each x60, 1 model node, CLI + SQLite",
        "for-each x60, 1 model node, CLI + SQLite, against dask",
        "3-node chain, CLI + SQLite, whole process",
        "for-each x60, 1 model node, Engine().run, fresh process",
        "for-each x60, transform + model + logic, CLI + SQLite",
        "for-each x60, 2 transforms, whole `flowgraph run` processes, expression budget check",
        "compile + validate a 60-node flow, fresh process",
        "peak memory, for-each x60 through the CLI",
        "asyncio chain of awaited tasks (floor per hop)",
        "chain of 20 model nodes, the run itself (library)",
        "40 model nodes, 50 ms latency, 64 at once, the run itself",
        "16 model nodes, 50 ms latency, in process (16 at once)",
        "16 model nodes, 50 ms latency, Dask LocalCluster (2 workers x 8 threads)",
        "for-each x60, CLI, in-memory store",
        "for-each x60, CLI, SQLite store (persistence cost)",
    ]
    by_name = {r["name"]: r for r in report["results"]}
    assert by_name["for-each x60, 1 model node, CLI + SQLite"]["nodes"] == 62
    assert by_name["for-each x60, transform + model + logic, CLI + SQLite"]["nodes"] == 60 * 3 + 4
    assert by_name["chain of 20 model nodes, the run itself (library)"]["nodes"] == 20
    budget = by_name[
        "for-each x60, 2 transforms, whole `flowgraph run` processes, expression budget check"
    ]
    assert len(budget["extra"]["budgetSeconds"]) == len(budget["extra"]["baselineSeconds"]) == 5
    compiled = by_name["compile + validate a 60-node flow, fresh process"]
    assert len(compiled["extra"]["seconds"]) == 2  # one fresh process a round
    assert compiled["extra"]["minSeconds"] == round(compiled["seconds"], 3)
    assert compiled["met"] is (compiled["seconds"] / 60 * 1e6 < 20)
    # at 60 nodes the difference of two processes' peaks is noise (it can even be negative)
    assert isinstance(
        by_name["peak memory, for-each x60 through the CLI"]["extra"]["bytesPerNode"], int
    )
    for row in report["results"]:
        assert row["target"] is None or isinstance(row["met"], bool)
    # the fan-out rows and their baselines are whole processes, two rounds of each
    for name in (
        "asyncio.gather in a fresh process (floor)",
        "dask synchronous scheduler, same fan-out",
        "for-each x60, 1 model node, CLI + SQLite",
        "for-each x60, CLI, in-memory store",
    ):
        extra = by_name[name]["extra"]
        assert len(extra["seconds"]) == 2 and extra["peakBytes"] > 0
        assert extra["minSeconds"] == min(extra["seconds"]) == by_name[name]["seconds"]
    three = by_name["3-node chain, CLI + SQLite, whole process"]
    assert three["nodes"] == 3 and len(three["extra"]["seconds"]) == 2
    assert three["met"] == (three["seconds"] < 0.25)
    library = by_name["for-each x60, 1 model node, Engine().run, fresh process"]
    assert library["nodes"] == 62 and len(library["extra"]["seconds"]) == 2
    assert library["seconds"] > 0 and library["extra"]["minSeconds"] == round(library["seconds"], 3)
    assert library["met"] == (library["seconds"] / 62 * 1e6 < 10)
    cli = by_name["for-each x60, 1 model node, CLI + SQLite"]
    floor = by_name["asyncio.gather in a fresh process (floor)"]["seconds"]
    # the ratio is of the unrounded times, the rows' seconds are rounded to the millisecond
    rounding = 0.0005 / cli["seconds"] + 0.0005 / floor
    assert cli["ratio"] == pytest.approx(cli["seconds"] / floor, rel=rounding + 1e-9)


def test_a_target_whose_baseline_did_not_run_is_not_measured() -> None:
    """Without dask, the row comparing with dask says so instead of claiming the target."""
    script = (
        "import sys; sys.modules['dask'] = None\n"  # as if dask were not installed
        "from benchmarks.__main__ import main\n"
        "sys.exit(main(['--iterations', '30', '--chain', '10', '--latency-nodes', '10',"
        " '--server-runs', '0', '--distributed-nodes', '0', '--quick']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = [line for line in result.stdout.splitlines() if "against dask" in line]
    assert len(rows) == 1, result.stdout
    assert "[not measured: at most 0.3x dask sync]" in rows[0]
    assert "dask synchronous scheduler, same fan-out" not in result.stdout


def test_the_server_load_test_completes_every_run_once() -> None:
    from benchmarks.server_load import run_load

    report = run_load(50)
    assert report["allSucceeded"] is True
    assert report["distinctJobs"] == 50
    assert report["listedJobs"] == 50 and report["listedMatches"] is True


def test_peer_rows_put_flowgraph_next_to_each_peer_at_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks import peers
    from benchmarks.scenarios import peer_rows

    monkeypatch.setitem(peers.PEERS, "LangGraph", lambda n: None)  # as if not installed
    rows = {row.name: row for row in peer_rows({"dask threaded": 20, "LangGraph": 20}, 1)}
    theirs = rows["dask threaded, same fan-out x20"]
    ours = rows["for-each x20, 1 model node, CLI + SQLite, against dask threaded"]
    assert ours.baseline == theirs.name and ours.nodes == theirs.nodes == 22
    assert ours.ratio == pytest.approx(ours.seconds / theirs.seconds, rel=0.02)
    assert not any("LangGraph" in name for name in rows)  # a peer not installed is left out
