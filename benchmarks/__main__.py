"""`python -m benchmarks` (also `make bench`, `flowgraph bench`): every performance scenario
next to its baseline (the CLI rows as whole fresh processes, interleaved); a table, or
`--json`; the scaling plot as a PNG."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from benchmarks.peers import DEFAULT_SIZES
from benchmarks.scenarios import Measurement, plot_scaling, run_suite, scaling, server_load


def machine() -> str:
    import os

    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )


def table(results: list[Measurement]) -> str:
    lines = [f"{'scenario':<66} {'nodes':>8} {'seconds':>8} {'µs/node':>8}  ratio / target"]
    for r in results:
        detail = ""
        if r.ratio is not None:
            detail = f"{r.ratio:.2f}x {r.baseline}"
        if r.extra and "bytesPerNode" in r.extra:
            detail = f"{r.extra['bytesPerNode']} bytes/node"
        if r.extra and "runsPerSecond" in r.extra:
            detail = f"{r.extra['runsPerSecond']} runs/s"
        if r.extra and "nodesPerSecond" in r.extra:
            detail = f"{r.extra['nodesPerSecond']} nodes/s" + (f"; {detail}" if detail else "")
        if r.extra and "medianSeconds" in r.extra and len(r.extra.get("seconds", [])) > 1:
            median = f"median {r.extra['medianSeconds']:.3f} s"
            if "medianRatio" in r.extra:
                median += f", {r.extra['medianRatio']:.2f}x"
            detail = f"{detail} ({median})" if detail else f"({median})"
        if r.target:
            verdict = "not measured" if r.met is None else "met" if r.met else "NOT MET"
            detail += f"  [{verdict}: {r.target}]"
        seconds = f"{r.seconds:8.3f}" if r.seconds else f"{'-':>8}"
        per_node = f"{r.micros_per_node:8.1f}" if r.seconds else f"{'-':>8}"
        lines.append(f"{r.name:<66} {r.nodes:>8} {seconds} {per_node}  {detail}")
    return "\n".join(lines)


def peer_sizes(largest: int | None) -> dict[str, int]:
    """Each peer at its size (`peers.DEFAULT_SIZES`), capped at `largest`; dask's synchronous
    scheduler is left out (it is the fan-out rows' own baseline)."""
    return {
        name: min(n, largest or n) for name, n in DEFAULT_SIZES.items() if name != "dask get_sync"
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--chain", type=int, default=10_000)
    parser.add_argument("--latency-nodes", type=int, default=10_000)
    parser.add_argument(
        "--distributed-nodes",
        type=int,
        default=1000,
        help="model nodes on a Dask LocalCluster against in process (0 skips)",
    )
    parser.add_argument(
        "--server-runs",
        type=int,
        default=50,
        help="concurrent gated runs through the SDK (0 skips them)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="skip the three-node body, memory and persistence runs"
    )
    parser.add_argument(
        "--repetitions",
        type=int,
        default=3,
        help="rounds of the whole-process runs (min and median are reported)",
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="skip the peer engines (LangGraph, Ray, ...)"
    )
    parser.add_argument(
        "--peer-max",
        type=int,
        default=None,
        help="run no peer above this size (default: each at the size it finishes in minutes)",
    )
    parser.add_argument("--plot", type=Path, default=None, help="write the scaling plot (PNG) here")
    parser.add_argument(
        "--scaling-max",
        type=int,
        default=None,
        help="the largest size of the scaling plot (powers of ten from 1,000; default: "
        "--iterations)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable results")
    options = parser.parse_args(argv)
    results = run_suite(
        options.iterations,
        chain=options.chain,
        latency_nodes=options.latency_nodes,
        persistence=not options.quick,
        heavy=not options.quick,
        distributed_nodes=options.distributed_nodes,
        repetitions=options.repetitions,
        peer_sizes=None if options.no_peers else peer_sizes(options.peer_max),
    )
    if options.server_runs:
        results.append(server_load(options.server_runs))
    plotted = None
    if options.plot is not None:
        largest = options.scaling_max or options.iterations
        sizes = [10**k for k in range(3, 8) if 10**k < largest] + [largest]
        series = scaling(sizes)
        if plot_scaling(sizes, series, options.plot):
            plotted = str(options.plot)
    if options.json:
        json.dump(
            {"machine": machine(), "results": [r.to_json() for r in results], "plot": plotted},
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        print(f"machine: {machine()}")
        print(table(results))
        if plotted:
            print(f"scaling plot: {plotted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
