"""Benchmark scenarios and their baselines. Every number that matters is a ratio against a
baseline measured in the same process, because wall-clock times on shared machines are noisy."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FLOOR = "bare asyncio.gather (floor)"


@dataclass
class Measurement:
    name: str
    nodes: int
    seconds: float
    baseline: str | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    extra: dict[str, Any] | None = None

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


# ----- baselines ---------------------------------------------------------------------------------


def bare_asyncio(count: int) -> float:
    """The practical floor: gather `count` no-op coroutines."""

    async def noop() -> None:
        return None

    async def main() -> None:
        await asyncio.gather(*(noop() for _ in range(count)))

    return timed(lambda: asyncio.run(main()))


def asyncio_chain(count: int) -> float:
    """The floor for a latency-bound chain: one task after another, each awaited."""

    async def noop() -> None:
        return None

    async def main() -> None:
        for _ in range(count):
            await asyncio.create_task(noop())

    return timed(lambda: asyncio.run(main()))


def dask_fan_out(count: int) -> float | None:
    """dask's synchronous scheduler on the same shape: a source, `count` tasks, a join."""
    try:
        from dask.local import get_sync
    except ImportError:
        return None

    def source(n: int) -> list[int]:
        return list(range(n))

    def work(items: list[int], index: int) -> int:
        return items[index]

    graph: dict[str, Any] = {"items": (source, count)}
    for index in range(count):
        graph[f"gen-{index}"] = (work, "items", index)
    graph["join"] = (list, [f"gen-{index}" for index in range(count)])
    return timed(lambda: get_sync(graph, "join"))


# ----- engine scenarios --------------------------------------------------------------------------


def fan_out_workflow(iterations: int, *, body: int = 1) -> dict[str, Any]:
    """A for-each of `iterations`: one model node per iteration, or (body=3) a transform, a model
    node and a logic node."""
    nodes: list[dict[str, Any]] = [
        {"id": "loop", "type": "for-each", "count": iterations, "loopBodyNodeIds": ["gen"]},
        {
            "id": "gen",
            "type": "custom-model",
            "modelId": "model_bench",
            "inputs": [
                {"name": "index", "type": "number", "ref": {"node": "loop", "name": "index"}}
            ],
        },
    ]
    if body == 3:
        nodes[0]["loopBodyNodeIds"] = ["prompt", "gen", "check"]
        nodes[1]["inputs"] = [{"name": "prompt", "type": "string", "ref": {"node": "prompt"}}]
        nodes += [
            {
                "id": "prompt",
                "type": "transform",
                "logic": {"transform": "'item ' + string(i)"},
                "inputs": [
                    {"name": "i", "type": "number", "ref": {"node": "loop", "name": "index"}}
                ],
            },
            {
                "id": "check",
                "type": "logic",
                "logicType": "if-else",
                "inputs": [{"name": "image", "type": "file", "ref": {"node": "gen"}}],
                "logic": {
                    "cases": [{"condition": "size(image) > 0", "value": "kept"}],
                    "default": "dropped",
                },
            },
        ]
    return {"id": "wflow_bench_fan_out", "name": "fan-out benchmark", "flow": nodes}


def chain_workflow(length: int) -> dict[str, Any]:
    """`length` model nodes, each waiting for the one before (latency bound)."""
    flow: list[dict[str, Any]] = [{"id": "n0", "type": "custom-model", "modelId": "model_bench"}]
    for index in range(1, length):
        flow.append(
            {
                "id": f"n{index}",
                "type": "custom-model",
                "modelId": "model_bench",
                "inputs": [{"name": "image", "type": "file", "ref": {"node": f"n{index - 1}"}}],
            }
        )
    return {"id": "wflow_bench_chain", "flow": flow}


def wide_workflow(count: int) -> dict[str, Any]:
    """`count` independent model nodes (no loop): the latency scenario."""
    return {
        "id": "wflow_bench_wide",
        "flow": [
            {"id": f"n{index}", "type": "custom-model", "modelId": "model_bench"}
            for index in range(count)
        ],
    }


def compile_workflow(count: int) -> dict[str, Any]:
    """A `count`-node flow: transforms and model nodes, each reading the one before."""
    flow: list[dict[str, Any]] = [{"id": "n0", "type": "custom-model", "modelId": "m"}]
    for index in range(1, count):
        ref = {"name": "x", "type": "string", "ref": {"node": f"n{index - 1}"}}
        if index % 2:
            flow.append(
                {
                    "id": f"n{index}",
                    "type": "transform",
                    "inputs": [ref],
                    "logic": {"transform": "x"},
                }
            )
        else:
            flow.append(
                {"id": f"n{index}", "type": "custom-model", "modelId": "m", "inputs": [ref]}
            )
    return {"id": "wflow_bench_compile", "flow": flow}


def cli_run(path: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    """`flowgraph run PATH --json ...` in this process: its seconds (the command only, not the
    reading of its output afterwards) and the job it printed."""
    from engine.cli.app import app

    sink = io.StringIO()
    gc.collect()
    with (
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(io.StringIO()),
        contextlib.suppress(SystemExit),
    ):
        start = time.perf_counter()
        app(["run", str(path), "--json", *extra], standalone_mode=False)
        seconds = time.perf_counter() - start
    job: dict[str, Any] = json.loads(sink.getvalue())["job"]
    return seconds, job


def engine_through_cli(
    document: dict[str, Any], *, db: str = "sqlite", extra: tuple[str, ...] = ()
) -> tuple[float, int]:
    """Seconds for `flowgraph run` of `document` (SQLite store by default), and the number of
    nodes of the final job."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flow.json"
        path.write_text(json.dumps(document))
        store = str(Path(folder) / "jobs.db") if db == "sqlite" else db
        seconds, job = cli_run(
            path, "--assets-dir", str(Path(folder) / "assets"), "--db", store, *extra
        )
        if job["status"] != "success":
            raise RuntimeError(
                f"the benchmark run ended {job['status']}: {job['metadata'].get('error')}"
            )
        return seconds, len(job["metadata"]["flow"])


def chain_run_seconds(length: int) -> float:
    """The run of a `length`-node chain on a prepared job (compiling and process start-up are
    measured by the other scenarios): the scheduler's own cost per hop."""
    import anyio

    from engine import DryRunExecutor, Engine

    engine = Engine(dry_run=DryRunExecutor(assets_dir=None))
    job = engine.prepare(chain_workflow(length))
    seconds = timed(lambda: anyio.run(job.runner.run))
    if job.status.value != "success":
        raise RuntimeError(f"the chain ended {job.status.value}")
    return seconds


def wide_run_seconds(count: int, *, latency: float, concurrency: int) -> float:
    """The run of `count` independent model nodes with simulated latency, on a prepared job."""
    import anyio

    from engine import CallPolicy, DryRunExecutor, Engine

    engine = Engine(
        dry_run=DryRunExecutor(assets_dir=None, latency=latency),
        policy=CallPolicy(concurrency=concurrency),
    )
    job = engine.prepare(wide_workflow(count))
    seconds = timed(lambda: anyio.run(job.runner.run))
    if job.status.value != "success":
        raise RuntimeError(f"the latency run ended {job.status.value}")
    return seconds


def distributed_against_local(
    count: int, *, latency: float = 0.05, slots: int = 16
) -> tuple[float, float] | None:
    """Seconds for `count` model nodes with `latency` each: on a 2-worker Dask LocalCluster
    (`slots` threads in all) and in process (`slots` at once). The cluster starts before the
    clock does. None when distributed is not installed."""
    try:
        from engine.executors.dask import DaskExecutor
    except ImportError:
        return None
    import anyio

    from engine import CallPolicy, DryRunExecutor, Engine, ExecutorRouter

    async def both() -> tuple[float, float]:
        cluster = DaskExecutor(
            workers=2, threads_per_worker=slots // 2, settings={"latency": latency}
        )
        try:
            await cluster.client()
            remote = Engine(
                executors=ExecutorRouter(default=cluster), policy=CallPolicy(concurrency=slots)
            )
            job = remote.prepare(wide_workflow(count))
            start = time.perf_counter()
            await job.runner.run()
            remote_seconds = time.perf_counter() - start
        finally:
            await cluster.close()
        local = Engine(
            dry_run=DryRunExecutor(assets_dir=None, latency=latency),
            policy=CallPolicy(concurrency=slots),
        )
        job = local.prepare(wide_workflow(count))
        start = time.perf_counter()
        await job.runner.run()
        return remote_seconds, time.perf_counter() - start

    return anyio.run(both)


def compile_seconds(count: int) -> float:
    from engine import Engine

    document = compile_workflow(count)
    engine = Engine()
    return timed(lambda: engine.compile(document))


def peak_memory_per_node(iterations: int) -> tuple[float, int]:
    """Bytes of peak resident memory per node of the final job, for the fan-out run through
    the CLI as a user runs it (`flowgraph run flow.json --json > job.json`) in a fresh process:
    its peak, minus the peak of the same command on a 10-iteration fan-out (the interpreter,
    the imports and everything else that does not grow with the job)."""
    with tempfile.TemporaryDirectory() as folder:
        small, _ = _cli_peak_kib(Path(folder), 10)
        big, nodes = _cli_peak_kib(Path(folder), iterations)
    return (big - small) * 1024 / nodes, nodes


def _cli_peak_kib(folder: Path, iterations: int) -> tuple[int, int]:
    """Peak resident KiB (VmHWM) of a `flowgraph run --json` process, and the job's nodes."""
    flow = folder / f"flow-{iterations}.json"
    flow.write_text(json.dumps(fan_out_workflow(iterations)))
    output = folder / f"job-{iterations}.json"
    report = folder / f"peak-{iterations}.txt"
    script = f"""
import sys, engine.cli.app
try:
    engine.cli.app.app(sys.argv[1:], standalone_mode=False)
finally:
    status = open("/proc/self/status").read()
    peak = next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]
    open({str(report)!r}, "w").write(peak)
"""
    root = Path(__file__).resolve().parent.parent
    with output.open("wb") as stdout:
        subprocess.run(
            [sys.executable, "-c", script, "run", str(flow), "--json"]
            + ["--db", str(folder / f"jobs-{iterations}.db")]
            + ["--assets-dir", str(folder / "assets")],
            cwd=root,
            stdout=stdout,
            stderr=subprocess.PIPE,
            check=True,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
    nodes = len(json.loads(output.read_bytes())["job"]["metadata"]["flow"])
    return int(report.read_text()), nodes


# ----- the suite ---------------------------------------------------------------------------------


def transform_fan_out_workflow(iterations: int) -> dict[str, Any]:
    """A for-each of `iterations` transforms (CEL), each read by a jinja substitution: the
    expressions a real flow is made of, none of which needs the expression budget."""
    return {
        "id": "wflow_bench_transforms",
        "name": "transform fan-out benchmark",
        "flow": [
            {"id": "loop", "type": "for-each", "count": iterations, "loopBodyNodeIds": ["a", "b"]},
            {
                "id": "a",
                "type": "transform",
                "inputs": [
                    {"name": "i", "type": "number", "ref": {"node": "loop", "name": "index"}}
                ],
                "logic": {"transform": "'item ' + string(i * 2)"},
            },
            {
                "id": "b",
                "type": "transform",
                "inputs": [{"name": "text", "type": "string", "ref": {"node": "a"}}],
                "logic": {"transform": "{{ text }}, in watercolor"},
            },
        ],
    }


_RUN_WITHOUT_BUDGET = """
import sys
if sys.argv[2] == "baseline":  # every expression inline: the check that routes them, removed
    import engine.run.runner
    engine.run.runner.runs_apart = lambda template, inputs: False
from engine.cli.app import app
app(["run", sys.argv[1], "--db", sys.argv[3], "--json"], standalone_mode=False)
"""


def expression_budget_overhead(iterations: int, repetitions: int = 5) -> dict[str, list[float]]:
    """Seconds of whole `flowgraph run` processes over a transform fan-out, with the check
    that sends long-running expressions to the budget ("budget") and without it
    ("baseline"), interleaved, each in a fresh process with a fresh SQLite store."""
    times: dict[str, list[float]] = {"budget": [], "baseline": []}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flow.json"
        path.write_text(json.dumps(transform_fan_out_workflow(iterations)))
        for repetition in range(repetitions):
            for mode in ("budget", "baseline") if repetition % 2 == 0 else ("baseline", "budget"):
                db = Path(folder) / f"{mode}-{repetition}.db"
                start = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-c", _RUN_WITHOUT_BUDGET, str(path), mode, str(db)],
                    capture_output=True,
                    check=False,
                )
                times[mode].append(time.perf_counter() - start)
                if done.returncode != 0:
                    raise RuntimeError(f"the {mode} run failed: {done.stderr.decode()[-2000:]}")
                db.unlink()
    return times


def run_suite(
    iterations: int = 100_000,
    *,
    chain: int = 10_000,
    latency_nodes: int = 10_000,
    latency: float = 0.05,
    concurrency: int = 64,
    persistence: bool = True,
    heavy: bool = True,
    distributed_nodes: int = 1000,
) -> list[Measurement]:
    """Every scenario of the performance targets, with its baseline, in this one process."""
    results: list[Measurement] = []
    engine_through_cli(fan_out_workflow(10))  # warm up: imports and first-run costs
    floor = bare_asyncio(iterations)
    results.append(Measurement(FLOOR, iterations, floor))
    dask = dask_fan_out(iterations)
    if dask is not None:
        results.append(
            Measurement("dask synchronous scheduler, same fan-out", iterations + 2, dask)
        )

    seconds, nodes = engine_through_cli(fan_out_workflow(iterations))
    one_body = Measurement(
        f"for-each x{iterations}, 1 model node, CLI + SQLite",
        nodes,
        seconds,
        baseline=FLOOR,
        ratio=seconds / floor,
        target="within 5x of the floor",
        met=seconds / floor <= 5,
    )
    results.append(one_body)
    results.append(
        Measurement(
            f"for-each x{iterations}, 1 model node, CLI + SQLite, against dask",
            nodes,
            seconds,
            baseline="dask synchronous scheduler",
            ratio=seconds / dask if dask else None,
            target="faster than dask sync",
            met=seconds < dask if dask else None,  # None: dask is not installed, not measured
        )
    )

    if heavy:
        seconds3, nodes3 = engine_through_cli(fan_out_workflow(iterations, body=3))
        per_node_ratio = (seconds3 / nodes3) / (seconds / nodes)
        results.append(
            Measurement(
                f"for-each x{iterations}, transform + model + logic, CLI + SQLite",
                nodes3,
                seconds3,
                baseline=one_body.name,
                ratio=per_node_ratio,
                target="linear in nodes: per-node cost within 1.5x of the one-node body",
                met=per_node_ratio <= 1.5,
            )
        )

    if heavy:
        times = expression_budget_overhead(iterations)
        with_budget, without = min(times["budget"], default=0), min(times["baseline"], default=0)
        results.append(
            Measurement(
                f"for-each x{iterations}, 2 transforms, whole `flowgraph run` processes, "
                "expression budget check",
                2 * iterations + 3,
                with_budget,
                baseline="the same without the check (min of 5, interleaved)",
                ratio=with_budget / without,
                target="the check costs under 5%",
                met=with_budget / without <= 1.05,
                extra={
                    "budgetSeconds": [round(t, 3) for t in times["budget"]],
                    "baselineSeconds": [round(t, 3) for t in times["baseline"]],
                },
            )
        )

    compile_count = iterations
    compiled = compile_seconds(compile_count)
    results.append(
        Measurement(
            f"compile + validate a {compile_count}-node flow",
            compile_count,
            compiled,
            target="under 20 µs per node",
            met=compiled / compile_count * 1e6 < 20,
        )
    )

    if heavy:
        per_node, memory_nodes = peak_memory_per_node(iterations)
        results.append(
            Measurement(
                f"peak memory, for-each x{iterations} through the CLI",
                memory_nodes,
                0.0,
                target="under 3 KB per node of the final job",
                met=per_node < 3072,
                extra={"bytesPerNode": round(per_node)},
            )
        )

    chain_floor = asyncio_chain(chain)
    chain_seconds = chain_run_seconds(chain)
    results.append(
        Measurement("asyncio chain of awaited tasks (floor per hop)", chain, chain_floor)
    )
    results.append(
        Measurement(
            f"chain of {chain} model nodes, the run itself (library)",
            chain,
            chain_seconds,
            baseline="asyncio chain of awaited tasks (floor per hop)",
            ratio=chain_seconds / chain_floor,
            target="within 5x of the floor per hop",
            met=chain_seconds / chain_floor <= 5,
        )
    )

    ideal = latency_nodes * latency / concurrency
    latency_seconds = wide_run_seconds(latency_nodes, latency=latency, concurrency=concurrency)
    results.append(
        Measurement(
            f"{latency_nodes} model nodes, {int(latency * 1000)} ms latency, "
            f"{concurrency} at once, the run itself",
            latency_nodes,
            latency_seconds,
            baseline=f"ideal {ideal:.2f} s",
            ratio=latency_seconds / ideal,
            target="within 10% of the ideal",
            met=latency_seconds / ideal <= 1.10,
        )
    )

    if heavy and distributed_nodes:
        n = distributed_nodes
        measured = distributed_against_local(n)
        if measured is not None:
            remote_seconds, local_seconds = measured
            local_name = f"{n} model nodes, 50 ms latency, in process (16 at once)"
            results.append(
                Measurement(
                    local_name,
                    n,
                    local_seconds,
                    extra={"nodesPerSecond": round(n / local_seconds, 1)},
                )
            )
            results.append(
                Measurement(
                    f"{n} model nodes, 50 ms latency, Dask LocalCluster (2 workers x 8 threads)",
                    n,
                    remote_seconds,
                    baseline=local_name,
                    ratio=remote_seconds / local_seconds,
                    extra={"nodesPerSecond": round(n / remote_seconds, 1)},
                )
            )

    if persistence:
        memory_seconds, _ = engine_through_cli(fan_out_workflow(iterations), db=":memory:")
        results.append(
            Measurement(f"for-each x{iterations}, CLI, in-memory store", nodes, memory_seconds)
        )
        results.append(
            Measurement(
                f"for-each x{iterations}, CLI, SQLite store (persistence cost)",
                nodes,
                seconds,
                baseline=f"for-each x{iterations}, CLI, in-memory store",
                ratio=seconds / memory_seconds,
                target="within 2x of in-memory",
                met=seconds / memory_seconds <= 2,
            )
        )
    return results


def scaling(sizes: list[int]) -> dict[str, list[float]]:
    """Seconds per size for the engine (CLI + SQLite), the asyncio floor and dask."""
    series: dict[str, list[float]] = {"engine": [], "floor": [], "dask": []}
    for size in sizes:
        series["engine"].append(engine_through_cli(fan_out_workflow(size))[0])
        series["floor"].append(bare_asyncio(size))
        series["dask"].append(dask_fan_out(size) or float("nan"))
    return series


def plot_scaling(sizes: list[int], series: dict[str, list[float]], path: Path) -> bool:
    """Write the scaling plot as a PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    labels = {
        "engine": "flowgraph (CLI, SQLite store)",
        "floor": "bare asyncio.gather",
        "dask": "dask synchronous scheduler",
    }
    for key, values in series.items():
        axes.plot(sizes, values, marker="o", label=labels[key])
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("iterations of the fan-out (nodes)")
    axes.set_ylabel("seconds")
    axes.set_title("Fan-out: time against size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def server_load(runs: int = 50) -> Measurement:
    """Concurrent gated runs through the SDK; raises if any run is lost, duplicated or failed."""
    from benchmarks.server_load import run_load

    report = run_load(runs)
    if not (report["allSucceeded"] and report["distinctJobs"] == runs and report["listedMatches"]):
        raise RuntimeError(f"the server load test lost or broke runs: {report}")
    return Measurement(
        f"server: {runs} concurrent gated runs via the SDK",
        runs,
        report["seconds"],
        extra={"runsPerSecond": report["runsPerSecond"]},
    )
