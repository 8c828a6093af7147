"""Benchmark scenarios and their baselines. Every number that matters is a ratio against a
baseline measured in the same process, because wall-clock times on shared machines are noisy."""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import functools
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import peers
from benchmarks.peers import Run, run_script

FLOOR = "asyncio.gather in a fresh process (floor)"


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


def asyncio_chain(count: int) -> float:
    """The floor for a latency-bound chain: one task after another, each awaited."""

    async def noop() -> None:
        return None

    async def main() -> None:
        for _ in range(count):
            await asyncio.create_task(noop())

    return timed(lambda: asyncio.run(main()))


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
    compiled_checkout()
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
    repetitions: int = 3,
    peer_sizes: dict[str, int] | None = None,
) -> list[Measurement]:
    """Every scenario of the performance targets, with its baseline: the CLI rows and their
    baselines as whole fresh processes, interleaved (see `fan_out_processes`), with the
    library's run and compiling timed alone in fresh processes among them; the chain and
    latency rows in this process."""
    results: list[Measurement] = []
    runs = fan_out_processes(
        iterations, repetitions, three_node_body=heavy, memory_store=persistence
    )
    floor, dask, cli = runs["floor"], runs["dask"], runs["cli"]
    nodes = iterations + 2
    results.append(_process_row(FLOOR, iterations, floor))
    if dask:
        results.append(_process_row(DASK, nodes, dask))
    results.append(
        _process_row(
            f"for-each x{iterations}, 1 model node, CLI + SQLite",
            nodes,
            cli,
            baseline=FLOOR,
            against=floor,
            target="within 2x of the floor",
            limit=2.0,
        )
    )
    results.append(
        _process_row(
            f"for-each x{iterations}, 1 model node, CLI + SQLite, against dask",
            nodes,
            cli,
            baseline=DASK,
            against=dask,
            target="at most 0.3x dask sync",
            limit=0.3,
        )
    )
    three_nodes = runs["cli-three"]
    results.append(
        Measurement(
            "3-node chain, CLI + SQLite, whole process",
            3,
            min(r.seconds for r in three_nodes),
            target="under 0.25 s",
            met=min(r.seconds for r in three_nodes) < 0.25,
            extra=_spread(three_nodes),
        )
    )
    results.append(
        _call_row(
            f"for-each x{iterations}, 1 model node, Engine().run, fresh process",
            nodes,
            runs["library"],
            micros=10,
        )
    )
    if heavy:
        three = runs["cli-body3"]
        nodes3 = 3 * iterations + 4
        fastest = min(r.seconds for r in three)
        per_node_ratio = (fastest / nodes3) / (min(r.seconds for r in cli) / nodes)
        results.append(
            Measurement(
                f"for-each x{iterations}, transform + model + logic, CLI + SQLite",
                nodes3,
                fastest,
                baseline=f"for-each x{iterations}, 1 model node, CLI + SQLite",
                ratio=per_node_ratio,
                target="linear in nodes: per-node cost within 1.5x of the one-node body",
                met=per_node_ratio <= 1.5,
                extra=_spread(three),
            )
        )

    if heavy and peer_sizes:
        results += peer_rows(peer_sizes, repetitions)

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

    results.append(
        _call_row(
            f"compile + validate a {iterations}-node flow, fresh process",
            iterations,
            runs["compile"],
            micros=20,
        )
    )

    if heavy:
        peak = max(run.peak_rss for run in runs["cli"])
        small = max(run.peak_rss for run in runs["cli-small"])
        per_node = (peak - small) / nodes
        results.append(
            Measurement(
                f"peak memory, for-each x{iterations} through the CLI",
                nodes,
                0.0,
                target="under 1 KB per node of the final job",
                met=per_node < 1024,
                extra={"bytesPerNode": round(per_node), "peakBytes": peak},
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
        in_memory = runs["cli-memory"]
        memory_name = f"for-each x{iterations}, CLI, in-memory store"
        results.append(_process_row(memory_name, nodes, in_memory))
        results.append(
            _process_row(
                f"for-each x{iterations}, CLI, SQLite store (persistence cost)",
                nodes,
                cli,
                baseline=memory_name,
                against=in_memory,
                target="within 1.5x of in-memory",
                limit=1.5,
            )
        )
    return results


# ----- whole processes ---------------------------------------------------------------------------

DASK = "dask synchronous scheduler, same fan-out"

_CLI_SCRIPT = """from engine.cli.app import main
sys.argv = ["flowgraph", "run", {flow!r}, "--json", "--db", {db!r}, "--max-nodes", "100000000"]
main()
"""


@functools.cache
def compiled_checkout() -> Path:
    """This checkout's root, its packages compiled to bytecode first (once a process).

    Python writes a module's compiled form on its first import, and a user's later runs load
    it; a peer installed by pip was compiled at install. An environment that sets
    PYTHONDONTWRITEBYTECODE never writes one for a checkout, and every fresh process would
    compile the engine's source again (about 50 ms a start): the timings are of the engine as
    a user runs it, not of that."""
    root = Path(__file__).resolve().parent.parent
    with contextlib.redirect_stdout(sys.stderr):  # its errors: not into a `--json` table
        for package in ("engine", "nodes", "benchmarks"):
            compileall.compile_dir(root / package, quiet=1)
    return root


def _flowgraph(flow: Path, db: str) -> Run:
    """`flowgraph run FLOW --json --db DB > /dev/null` as a whole fresh process (the console
    script's `main`, from this checkout), its node limit raised past a million iterations."""
    root = compiled_checkout()
    if db != ":memory:":
        for leftover in Path(db).parent.glob(Path(db).name + "*"):
            leftover.unlink()
    return run_script(_CLI_SCRIPT.format(flow=str(flow), db=db), 0, env={"PYTHONPATH": str(root)})


_LIBRARY_SCRIPT = """import os, time
import anyio
from engine import Engine
from engine.limits import Limits
from benchmarks.scenarios import fan_out_workflow
document = fan_out_workflow(n)
async def main():
    engine = Engine(limits=Limits(max_nodes=10**8, max_iterations=10**8))
    start = time.perf_counter()
    job = await engine.run(document)
    seconds = time.perf_counter() - start
    assert job.status.value == "success", job.status
    with open(os.environ["FLOWGRAPH_BENCH_SECONDS"], "w") as out:
        out.write(repr(seconds))
anyio.run(main)
"""


def library_run(iterations: int) -> Run:
    """`await engine.run(workflow)` of the fan-out in a fresh process, no store (the default
    dry-run executor, the node limits raised past a million iterations): the seconds of that
    call alone (compiling, the run, the job's end, and what a first call imports and builds,
    about 10 ms), not the interpreter's start or the imports before it; the peak memory of
    the process."""
    return _call_alone(_LIBRARY_SCRIPT, iterations)


_COMPILE_SCRIPT = """import os, time
from engine import Engine
from benchmarks.scenarios import compile_workflow
document = compile_workflow(n)
engine = Engine()
engine.compile(compile_workflow(1))  # what a first call builds: the models' validator
start = time.perf_counter()
engine.compile(document)
seconds = time.perf_counter() - start
with open(os.environ["FLOWGRAPH_BENCH_SECONDS"], "w") as out:
    out.write(repr(seconds))
"""


def compile_run(count: int) -> Run:
    """`engine.compile(document)` of a `count`-node flow (`compile_workflow`) in a fresh
    process: the seconds of that call alone (validating, checking, building the DAG and the
    plan), not the document's making before it nor what a first call builds (the models'
    validator, pydantic's look for plugins: a 1-node flow is compiled first); the peak memory
    of the process."""
    return _call_alone(_COMPILE_SCRIPT, count)


def _call_alone(script: str, n: int) -> Run:
    """`script` run for `n` in a fresh process, which writes the seconds of the call it times
    to $FLOWGRAPH_BENCH_SECONDS."""
    root = compiled_checkout()
    with tempfile.TemporaryDirectory() as folder:
        seconds = Path(folder) / "seconds"
        run = run_script(
            script, n, env={"PYTHONPATH": str(root), "FLOWGRAPH_BENCH_SECONDS": str(seconds)}
        )
        return Run(float(seconds.read_text()), run.peak_rss)


def fan_out_processes(
    iterations: int, repetitions: int, *, three_node_body: bool, memory_store: bool
) -> dict[str, list[Run]]:
    """The fan-out as users time it, each a whole fresh process (interpreter, imports, the
    run, its output written to /dev/null, exit), `repetitions` rounds of one run of each,
    interleaved: the asyncio floor, dask's synchronous scheduler, `flowgraph run --json`
    with a SQLite store (and, as asked, with `:memory:`, with a three-node body, and at 10
    iterations for the memory baseline), a 3-node chain through the CLI, and the library's
    `Engine().run` in a fresh process (that call's own seconds; see `library_run`), and the
    compiling of an `iterations`-node flow the same way (`compile_run`). Missing
    dask leaves its list empty."""
    names = ["floor", "dask", "cli", "cli-small", "cli-three", "library", "compile"]
    names += ["cli-memory"] * memory_store + ["cli-body3"] * three_node_body
    runs: dict[str, list[Run]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as folder:
        flows = {
            "cli": fan_out_workflow(iterations),
            "cli-small": fan_out_workflow(10),
            "cli-three": chain_workflow(3),
            "cli-body3": fan_out_workflow(iterations, body=3),
        }
        paths = {name: Path(folder) / f"{name}.json" for name in flows}
        for name, document in flows.items():
            paths[name].write_text(json.dumps(document))
        db = str(Path(folder) / "jobs.db")
        measure: dict[str, Callable[[], Run | None]] = {
            "floor": lambda: peers.floor(iterations),
            "dask": lambda: peers.dask_sync(iterations),
            "cli": lambda: _flowgraph(paths["cli"], db),
            "cli-small": lambda: _flowgraph(paths["cli-small"], db),
            "cli-three": lambda: _flowgraph(paths["cli-three"], db),
            "library": lambda: library_run(iterations),
            "compile": lambda: compile_run(iterations),
            "cli-memory": lambda: _flowgraph(paths["cli"], ":memory:"),
            "cli-body3": lambda: _flowgraph(paths["cli-body3"], db),
        }
        for round_ in range(repetitions):
            for name in names if round_ % 2 == 0 else names[::-1]:
                run = measure[name]()
                if run is not None:
                    runs[name].append(run)
    return runs


def peer_rows(sizes: dict[str, int], repetitions: int) -> list[Measurement]:
    """Each peer engine installed (see benchmarks/peers.py) on the same no-op fan-out at its
    size, next to `flowgraph run --json` (SQLite store) at that size: whole fresh processes,
    `repetitions` rounds of one run of each, interleaved. A row per peer, then a row per peer
    with flowgraph's time and the ratio flowgraph/peer (of mins; `medianRatio` of medians). A
    peer not installed, or failing, is left out."""
    ours: dict[int, list[Run]] = {n: [] for n in sorted(set(sizes.values()))}
    theirs: dict[str, list[Run]] = {name: [] for name in sizes}
    failed: set[str] = set()
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "jobs.db")
        flows = {}
        for n in ours:
            flows[n] = Path(folder) / f"flow-{n}.json"
            flows[n].write_text(json.dumps(fan_out_workflow(n)))
        for _ in range(repetitions):
            for n in ours:
                ours[n].append(_flowgraph(flows[n], db))
            for name, n in sizes.items():
                if name in failed:
                    continue
                try:
                    run = peers.PEERS[name](n)
                except peers.PeerFailed:
                    run = None
                if run is None:
                    failed.add(name)
                else:
                    theirs[name].append(run)
    rows = []
    for name, n in sizes.items():
        if name in failed or not theirs[name]:
            continue
        peer_name = f"{name}, same fan-out x{n}"
        rows.append(_process_row(peer_name, n + 2, theirs[name]))
        rows.append(
            _process_row(
                f"for-each x{n}, 1 model node, CLI + SQLite, against {name}",
                n + 2,
                ours[n],
                baseline=peer_name,
                against=theirs[name],
            )
        )
    return rows


def _spread(runs: list[Run]) -> dict[str, Any]:
    seconds = [run.seconds for run in runs]
    return {
        "minSeconds": round(min(seconds), 3),
        "medianSeconds": round(statistics.median(seconds), 3),
        "seconds": [round(t, 3) for t in seconds],
        "peakBytes": max(run.peak_rss for run in runs),
    }


def _call_row(name: str, nodes: int, runs: list[Run], *, micros: float) -> Measurement:
    """A row of one call timed alone in fresh processes (see `_call_alone`): seconds is the
    min (unrounded: a small flow's milliseconds count), the target under `micros` a node."""
    seconds = min(r.seconds for r in runs)
    return Measurement(
        name,
        nodes,
        seconds,
        target=f"under {micros:g} µs per node",
        met=seconds / nodes * 1e6 < micros,
        extra=_spread(runs),
    )


def _process_row(
    name: str,
    nodes: int,
    runs: list[Run],
    *,
    baseline: str | None = None,
    against: list[Run] | None = None,
    target: str | None = None,
    limit: float | None = None,
) -> Measurement:
    """A row of whole-process runs: seconds is the min; `extra` has the median and every run;
    the ratio is min over the baseline's min (and `medianRatio` the medians'), measured in
    the same rounds. No baseline runs (not installed): the target is not measured."""
    extra = _spread(runs)
    ratio = met = None
    if against:
        ratio = min(r.seconds for r in runs) / min(r.seconds for r in against)
        extra["medianRatio"] = round(
            statistics.median(r.seconds for r in runs)
            / statistics.median(r.seconds for r in against),
            3,
        )
        met = ratio <= limit if limit is not None else None
    return Measurement(
        name,
        nodes,
        extra["minSeconds"],
        baseline=baseline,
        ratio=ratio,
        target=target,
        met=met,
        extra=extra,
    )


def scaling(sizes: list[int]) -> dict[str, list[float]]:
    """Seconds per size, one whole fresh process each: flowgraph (CLI, SQLite store), the
    asyncio floor, dask's synchronous and threaded schedulers, and each other peer installed
    up to the largest size it finishes in a few minutes (`peers.DEFAULT_SIZES`); NaN where a
    peer was not run."""
    series: dict[str, list[float]] = {"flowgraph": [], "floor": []}
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "jobs.db")
        for size in sizes:
            flow = Path(folder) / f"flow-{size}.json"
            flow.write_text(json.dumps(fan_out_workflow(size)))
            series["flowgraph"].append(_flowgraph(flow, db).seconds)
            series["floor"].append(peers.floor(size).seconds)
            for name, measure in peers.PEERS.items():
                run = None
                if size <= peers.DEFAULT_SIZES.get(name, 0):
                    try:
                        run = measure(size)
                    except peers.PeerFailed:
                        run = None
                series.setdefault(name, [])
                series[name].append(run.seconds if run is not None else float("nan"))
    return {name: values for name, values in series.items() if any(v == v for v in values)}


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
        "flowgraph": "flowgraph (CLI, SQLite store)",
        "floor": "asyncio.gather (floor)",
    }
    for key, values in series.items():
        axes.plot(sizes, values, marker="o", label=labels.get(key, key))
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("iterations of the fan-out (nodes)")
    axes.set_ylabel("seconds, whole process")
    axes.set_title("No-op fan-out: time against size")
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
