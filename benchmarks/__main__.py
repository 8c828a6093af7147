"""`python -m benchmarks [--iterations N] [--json]`: print the benchmark table."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from .scenarios import run_suite, server_load


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument(
        "--persistence-iterations",
        type=int,
        default=100_000,
        help="size of the SQLite-versus-memory run (0 skips it)",
    )
    parser.add_argument(
        "--server-runs",
        type=int,
        default=50,
        help="concurrent gated runs through the SDK against one server (0 skips them)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable results")
    options = parser.parse_args()
    results = run_suite(options.iterations, options.persistence_iterations)
    if options.server_runs:
        results.append(server_load(options.server_runs))
    machine = (
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"
    )
    if options.json:
        json.dump(
            {"machine": machine, "results": [r.to_json() for r in results]}, sys.stdout, indent=2
        )
        sys.stdout.write("\n")
        return
    print(f"machine: {machine}")
    print(f"{'scenario':<48} {'nodes':>8} {'seconds':>9} {'µs/node':>9}  ratio")
    for r in results:
        ratio = f"{r.ratio:.2f}x {r.baseline}" if r.ratio is not None else "-"
        if r.name.startswith("server:"):
            ratio = f"{r.nodes / r.seconds:.1f} runs/s"
        print(f"{r.name:<48} {r.nodes:>8} {r.seconds:>9.3f} {r.micros_per_node:>9.1f}  {ratio}")


if __name__ == "__main__":
    main()
