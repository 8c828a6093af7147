"""Start `flowgraph serve` in a subprocess on a free loopback port (for tests and benchmarks)."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cap_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def log_of(db: Path) -> Path:
    """The log of the server last started on `db`."""
    return max(db.parent.glob(f"{db.name}.*.log"), key=lambda p: p.stat().st_mtime)


@contextmanager
def running_server(
    db: Path,
    *args: str,
    env: dict[str, str] | None = None,
    db_url: str | None = None,
    memory_limit: int | None = None,
) -> Iterator[str]:
    """Yield the base url (`http://127.0.0.1:PORT/v1`) of a server that stops afterwards. Its
    store is the SQLite file `db`, or `db_url` when given (`db` then names the log, written to
    `log_of(db)`). With `memory_limit` (bytes), the server's address space is capped there."""
    port = free_port()
    environment = {**os.environ, **(env or {})}
    log_path = db.with_name(f"{db.name}.{port}.log")
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "serve",
            "--port",
            str(port),
            "--db",
            db_url or str(db),
            *args,
        ],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=None if memory_limit is None else partial(_cap_memory, memory_limit),
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {log_path.read_text()}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
