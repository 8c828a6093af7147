"""The console's page data of a large finished job, built on open (no page prepared).

Runs tests/flows/console-big-loop.json (10,000 iterations, 40,006 nodes) once into a SQLite
store with `flowgraph run`, then, in each of R fresh processes, times one
`engine.server.console.view_bytes(..., live=False)` for it: what `GET /console/api/jobs/ID/view`
does on a server that did not run the job (or after a restart), without the HTTP around it.
The imports the console makes on a page's first request are in the time; the interpreter's
start and the store's opening are not.

`python -m benchmarks.console_cold [--repetitions R] [--db FILE]` (from the repository root;
with `--db`, a file from an earlier run is used again and only timed)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.scenarios import compiled_checkout

ROOT = Path(__file__).resolve().parent.parent
FLOW = ROOT / "tests" / "flows" / "console-big-loop.json"
TIMED = """
import sys, time
from engine.api import Engine
from engine.server.console import Remembered, view_bytes
from engine.server.state import ServerState
from engine.stores import open_store

store = open_store(sys.argv[1])
job_id = store.list_jobs(limit=1)[0][0].job_id
state = ServerState(engine=Engine(store=store), store=store)
started = time.perf_counter()
data = view_bytes(state, Remembered(), job_id, live=False)
print(time.perf_counter() - started, len(data))
"""


def prepare(db: Path) -> None:
    command = [sys.executable, "-m", "engine", "run", str(FLOW), "--db", str(db), "--json"]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def time_once(db: Path) -> tuple[float, int]:
    done = subprocess.run(
        [sys.executable, "-c", TIMED, str(db)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    seconds, size = done.stdout.split()
    return float(seconds), int(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--db", type=Path, help="a store holding the job (made when missing)")
    options = parser.parse_args()
    compiled_checkout()  # the console's modules as a user's second start loads them
    with tempfile.TemporaryDirectory() as folder:
        db = options.db or Path(folder) / "jobs.db"
        if not db.exists():
            prepare(db)
        times = [time_once(db) for _ in range(options.repetitions)]
    seconds = [t for t, _ in times]
    print(
        json.dumps(
            {
                "job": "tests/flows/console-big-loop.json: 10,000 iterations, 40,006 nodes",
                "pageDataBytes": times[0][1],
                "seconds": [round(s, 3) for s in seconds],
                "minSeconds": round(min(seconds), 3),
                "medianSeconds": round(statistics.median(seconds), 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
