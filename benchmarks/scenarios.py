"""Benchmark scenarios and their baselines. Every number is a ratio against a baseline measured
in the same process, because wall-clock times on shared machines are noisy."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Measurement:
    name: str
    nodes: int
    seconds: float
    baseline: str | None = None
    ratio: float | None = None

    @property
    def micros_per_node(self) -> float:
        return self.seconds / max(self.nodes, 1) * 1e6

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "microsPerNode": round(self.micros_per_node, 2)}


def timed(function: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def bare_asyncio(count: int) -> float:
    """The practical floor: gather `count` no-op coroutines."""

    async def noop() -> None:
        return None

    async def main() -> None:
        await asyncio.gather(*(noop() for _ in range(count)))

    return timed(lambda: asyncio.run(main()))


def fan_out_workflow(iterations: int) -> dict[str, Any]:
    """A for-each of `iterations` with one model node per iteration."""
    return {
        "id": "wflow_bench_fan_out",
        "name": "fan-out benchmark",
        "flow": [
            {"id": "loop", "type": "for-each", "count": iterations, "loopBodyNodeIds": ["gen"]},
            {
                "id": "gen",
                "type": "custom-model",
                "modelId": "model_bench",
                "inputs": [
                    {"name": "index", "type": "number", "ref": {"node": "loop", "name": "index"}}
                ],
            },
        ],
    }


def cli_run(path: Path, *extra: str) -> int:
    """`flowgraph run PATH --json ...` in this process, stdout discarded; returns the exit code."""
    from engine.cli import app

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(io.StringIO()):
        try:
            app(["run", str(path), "--json", *extra], standalone_mode=False)
        except SystemExit as stop:  # typer.Exit surfaces as SystemExit only in standalone mode
            return int(stop.code or 0)
    envelope = json.loads(sink.getvalue())
    return 0 if envelope["job"]["status"] == "success" else 1


def fan_out_through_cli(iterations: int, *, db: str = ":memory:") -> float:
    """Seconds for `flowgraph run` of the fan-out, with the given store (`:memory:` or a file)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fan-out.json"
        path.write_text(json.dumps(fan_out_workflow(iterations)))
        assets = Path(folder) / "assets"
        store = str(Path(folder) / "jobs.db") if db == "sqlite" else db
        outcome: list[int] = []
        seconds = timed(
            lambda: outcome.append(cli_run(path, "--assets-dir", str(assets), "--db", store))
        )
        if outcome != [0]:
            raise RuntimeError(f"the {iterations}-iteration fan-out did not succeed")
        return seconds


FLOOR = "bare asyncio.gather (floor)"


def run_suite(iterations: int = 10_000, persistence_iterations: int = 100_000) -> list[Measurement]:
    """The core scenarios: a fan-out through the CLI against the floor, and the cost of the
    SQLite store against the in-memory store on the same fan-out."""
    results = []
    floor = bare_asyncio(iterations)
    results.append(Measurement(FLOOR, iterations, floor))
    engine = fan_out_through_cli(iterations, db="sqlite")
    results.append(
        Measurement(
            f"for-each x{iterations}, CLI, SQLite store",
            iterations + 2,
            engine,
            baseline=FLOOR,
            ratio=engine / floor,
        )
    )
    if persistence_iterations:
        memory = fan_out_through_cli(persistence_iterations, db=":memory:")
        sqlite = fan_out_through_cli(persistence_iterations, db="sqlite")
        label = f"for-each x{persistence_iterations}, CLI"
        results.append(Measurement(f"{label}, in-memory store", persistence_iterations + 2, memory))
        results.append(
            Measurement(
                f"{label}, SQLite store",
                persistence_iterations + 2,
                sqlite,
                baseline=f"{label}, in-memory store",
                ratio=sqlite / memory,
            )
        )
    return results


def server_load(runs: int = 50) -> Measurement:
    """Concurrent gated runs through the SDK; raises if any run is lost, duplicated or failed."""
    from .server_load import run_load

    report = run_load(runs)
    if not (report["allSucceeded"] and report["distinctJobs"] == runs and report["listedMatches"]):
        raise RuntimeError(f"the server load test lost or broke runs: {report}")
    return Measurement(
        f"server: {runs} concurrent gated runs via the SDK",
        runs,
        report["seconds"],
        baseline=None,
        ratio=None,
    )
