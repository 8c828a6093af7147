"""Peer engines on the same no-op fan-out, each run as a whole fresh process.

The shape is the one `benchmarks.scenarios.dask_fan_out` times: a source task returning
`list(range(N))`, N independent tasks each taking the source's output and its index, and a join
collecting the N results. Every peer runs as `python -c SCRIPT N`; the parent times the whole
process (interpreter start, imports, work, exit) with `time.perf_counter` around it and reads the
child's peak resident memory from `os.wait4`, which reports the largest single process among the
child and the descendants it reaped, not the sum over a tree of processes (Ray's and Prefect's
helper processes are not in it). The floor is `asyncio.gather` over the same shape, also a fresh
process, measured at every size a peer runs at, interleaved with the peers.

`python -m benchmarks.peers [--size N] [--repetitions R] [--json]`
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FLOOR = "asyncio.gather (floor)"
PREFECT_PYTHON = "FLOWGRAPH_BENCH_PREFECT_PYTHON"
"""An interpreter with Prefect installed, for when Prefect cannot share the project's environment
(Prefect 3's server pins an older FastAPI than the one the project may have)."""

# The largest of 1,000 / 10,000 / 100,000 at which one run finished in about two minutes on a
# 2-core machine. Hamilton's dynamic fan-out grows quadratically (173 s at 10,000); LangGraph
# (18 s at 10,000) and Ray (27 s) were still running after 200 s at 100,000; Prefect spends about
# 10 s starting its temporary API server and about 50 ms per task run (61 s at 1,000).
DEFAULT_SIZES: dict[str, int] = {
    "dask get_sync": 100_000,
    "dask threaded": 100_000,
    "LangGraph": 10_000,
    "Hamilton": 1_000,
    "Ray": 10_000,
    "Prefect": 1_000,
}

_HEAD = "import sys\nn = int(sys.argv[1])\n"

FLOOR_SCRIPT = """import asyncio
async def source(n):
    return list(range(n))
async def work(items, index):
    return items[index]
async def main():
    items = await source(n)
    return list(await asyncio.gather(*(work(items, i) for i in range(n))))
assert len(asyncio.run(main())) == n
"""

_DASK_GRAPH = """def source(n):
    return list(range(n))
def work(items, index):
    return items[index]
graph = {"items": (source, n)}
graph.update({f"gen-{i}": (work, "items", i) for i in range(n)})
graph["join"] = (list, [f"gen-{i}" for i in range(n)])
"""
DASK_SYNC_SCRIPT = f"""from dask.local import get_sync
{_DASK_GRAPH}assert len(get_sync(graph, "join")) == n
"""
DASK_THREADED_SCRIPT = f"""from dask.threaded import get
{_DASK_GRAPH}assert len(get(graph, "join")) == n
"""

LANGGRAPH_SCRIPT = """import operator
from typing import Annotated, TypedDict
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
class State(TypedDict, total=False):
    items: list
    results: Annotated[list, operator.add]
    joined: list
def source(state: State) -> dict:
    return {"items": list(range(n))}
def fan_out(state: State) -> list:
    return [Send("work", {"items": state["items"], "index": i}) for i in range(n)]
def work(branch: dict) -> dict:
    return {"results": [branch["items"][branch["index"]]]}
def join(state: State) -> dict:
    return {"joined": list(state["results"])}
builder = StateGraph(State)
for node in (source, work, join):
    builder.add_node(node.__name__, node)
builder.add_edge(START, "source")
builder.add_conditional_edges("source", fan_out, ["work"])
builder.add_edge("work", "join")
builder.add_edge("join", END)
assert len(builder.compile().invoke({})["joined"]) == n
"""

HAMILTON_SCRIPT = """from hamilton import ad_hoc_utils, driver
from hamilton.execution import executors
from hamilton.htypes import Collect, Parallelizable
def items(n: int) -> list:
    return list(range(n))
def index(items: list) -> Parallelizable[int]:
    yield from range(len(items))
def gen(items: list, index: int) -> int:
    return items[index]
def join(gen: Collect[int]) -> list:
    return list(gen)
dr = (
    driver.Builder()
    .with_modules(ad_hoc_utils.create_temporary_module(items, index, gen, join))
    .enable_dynamic_execution(allow_experimental_mode=True)
    .with_local_executor(executors.SynchronousLocalTaskExecutor())
    .with_remote_executor(executors.SynchronousLocalTaskExecutor())
    .build()
)
assert len(dr.execute(["join"], inputs={"n": n})["join"]) == n
"""

RAY_SCRIPT = """import ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
@ray.remote
def source(n):
    return list(range(n))
@ray.remote
def work(items, index):
    return items[index]
items = source.remote(n)
assert len(ray.get([work.remote(items, i) for i in range(n)])) == n
ray.shutdown()
"""

PREFECT_SCRIPT = """from prefect import flow, task
@task
def source(n):
    return list(range(n))
@task
def work(items, index):
    return items[index]
@flow
def fan_out(n):
    items = source(n)
    futures = [work.submit(items, i) for i in range(n)]
    return [future.result() for future in futures]
assert len(fan_out(n)) == n
"""

# No peer may reach the network: usage statistics and telemetry off.
_QUIET = {
    "DO_NOT_TRACK": "1",
    "HAMILTON_TELEMETRY_ENABLED": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
}


class PeerFailed(RuntimeError):
    """A peer's process exited with an error (or was killed at the timeout)."""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss: int
    """Bytes: `ru_maxrss` from `os.wait4` on the child."""


def run_script(
    script: str,
    n: int,
    *,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    timeout: float = 900.0,
) -> Run:
    """Run `python -c script n` to its end; its wall-clock seconds and peak RSS. The child gets
    this environment less any PREFECT_* variable (no API URL: Prefect's local temporary server)
    plus `env`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environment = inherited | _QUIET | (env or {})
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(
            [python, "-c", _HEAD + script, str(n)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=environment,
        )
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            stderr.seek(0)
            tail = stderr.read()[-1500:].decode(errors="replace")
            raise PeerFailed(f"exit status {child.returncode}: {tail}")
    return Run(seconds, usage.ru_maxrss * 1024)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def floor(n: int) -> Run:
    """`asyncio.gather` over the same shape: the cost of a process that does no scheduling."""
    return run_script(FLOOR_SCRIPT, n)


def dask_sync(n: int) -> Run | None:
    """dask's synchronous scheduler (`dask.local.get_sync`) on the graph dict."""
    return run_script(DASK_SYNC_SCRIPT, n) if _installed("dask") else None


def dask_threaded(n: int) -> Run | None:
    """dask's threaded scheduler (`dask.threaded.get`, a pool of one thread per core)."""
    return run_script(DASK_THREADED_SCRIPT, n) if _installed("dask") else None


def langgraph(n: int) -> Run | None:
    """A LangGraph StateGraph: a source node, `Send` to n branches of one node, a join node."""
    return run_script(LANGGRAPH_SCRIPT, n) if _installed("langgraph") else None


def hamilton(n: int) -> Run | None:
    """Hamilton's `Parallelizable[]`/`Collect[]` with the synchronous local executors."""
    return run_script(HAMILTON_SCRIPT, n) if _installed("hamilton") else None


def ray(n: int) -> Run | None:
    """Ray on a local cluster (`ray.init(num_cpus=2)`, paid inside the timing), n remote tasks."""
    return run_script(RAY_SCRIPT, n) if _installed("ray") else None


def prefect(n: int, *, home: str | None = None) -> Run | None:
    """A Prefect 3 flow submitting n tasks on the default task runner, with the temporary local
    API server Prefect starts when no API URL is set; `home` is PREFECT_HOME (its database), a
    fresh one, created inside the timing, when None."""
    python = os.environ.get(PREFECT_PYTHON, sys.executable)
    if python == sys.executable and not _installed("prefect"):
        return None
    with tempfile.TemporaryDirectory() as fresh:
        env = {
            "PREFECT_HOME": home or fresh,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # the default 20 s is too short for a first start (migrations) on a busy machine
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
        }
        return run_script(PREFECT_SCRIPT, n, python=python, env=env)


PEERS: dict[str, Callable[..., Run | None]] = {
    "dask get_sync": dask_sync,
    "dask threaded": dask_threaded,
    "LangGraph": langgraph,
    "Hamilton": hamilton,
    "Ray": ray,
    "Prefect": prefect,
}


def measure_peers(sizes: dict[str, int], repetitions: int) -> list[dict[str, Any]]:
    """Each peer named in `sizes` at its N, and the floor at every N used, interleaved: one run
    of each, then the next round. Prefect's database is made by an unmeasured run first, so its
    rows show a user's later runs. A row per peer and per floor size; a peer that is not
    installed or fails has `seconds` None and a `note`."""
    jobs = [(FLOOR, n) for n in sorted(set(sizes.values()))] + list(sizes.items())
    runs: dict[tuple[str, int], list[Run]] = {job: [] for job in jobs}
    notes: dict[tuple[str, int], str] = {}
    with tempfile.TemporaryDirectory() as home:
        call: dict[str, Callable[[int], Run | None]] = {FLOOR: floor, **PEERS}
        call["Prefect"] = functools.partial(prefect, home=home)
        if "Prefect" in sizes:
            try:
                prefect(1, home=home)
            except PeerFailed as error:
                notes["Prefect", sizes["Prefect"]] = f"failed: {error}"
        for _ in range(repetitions):
            for name, n in jobs:
                if (name, n) in notes:
                    continue
                try:
                    run = call[name](n)
                except PeerFailed as error:
                    notes[name, n] = f"failed: {error}"
                    continue
                if run is None:
                    notes[name, n] = "skipped: not installed"
                else:
                    runs[name, n].append(run)
    floors = {n: runs[FLOOR, n] for name, n in jobs if name == FLOOR}
    return [_row(name, n, runs[name, n], floors[n], notes.get((name, n))) for name, n in jobs]


def _row(
    name: str, n: int, runs: list[Run], floor_runs: list[Run], note: str | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "n": n, "seconds": None, "note": note}
    if not runs or not floor_runs or note:
        return row
    seconds = [run.seconds for run in runs]
    floor_seconds = [run.seconds for run in floor_runs]
    low, middle = min(seconds), statistics.median(seconds)
    return row | {
        "seconds": seconds,
        "min": low,
        "median": middle,
        "micros_per_task": low / n * 1e6,
        "micros_per_task_over_floor": (low - min(floor_seconds)) / n * 1e6,
        "peak_rss_bytes": max(run.peak_rss for run in runs),
        "ratio_min": low / min(floor_seconds),
        "ratio_median": middle / statistics.median(floor_seconds),
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'peer':<24}{'N':>8}{'min s':>9}{'median s':>10}{'µs/task':>9}{'over floor':>11}"
    lines = [head + f"{'peak RSS':>10}{'x floor (min/median)':>22}"]
    for r in rows:
        if r["seconds"] is None:
            lines.append(f"{r['name']:<24}{r['n']:>8}  {(r['note'] or '')[:200]}")
            continue
        lines.append(
            f"{r['name']:<24}{r['n']:>8}{r['min']:>9.2f}{r['median']:>10.2f}"
            f"{r['micros_per_task']:>9.1f}{r['micros_per_task_over_floor']:>11.1f}"
            f"{r['peak_rss_bytes'] / 2**20:>7.0f} MiB"
            f"{r['ratio_min']:>11.1f}x /{r['ratio_median']:>6.1f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__)
    parser.add_argument("--size", type=int, help="run every peer at this N (default: per peer)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--only", action="append", choices=list(PEERS), help="repeatable")
    parser.add_argument("--json", action="store_true", help="machine-readable rows")
    options = parser.parse_args(argv)
    names = options.only or list(PEERS)
    sizes = {name: options.size or DEFAULT_SIZES[name] for name in names}
    rows = measure_peers(sizes, options.repetitions)
    print(json.dumps(rows, indent=2) if options.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
