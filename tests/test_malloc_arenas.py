"""One malloc arena for a command's threads (engine/malloc_arenas.py), seen from glibc's own
statistics: `malloc_stats()` lists each arena its process has."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from engine.server.launcher import ROOT

# threads that each allocate while the others do (zlib and large bytes, as a document's
# deflating does), then glibc's arenas, counted from malloc_stats' report on stderr
THREADS = """
import ctypes, sys, threading, zlib
if sys.argv[1] == "shared":
    from engine.malloc_arenas import share_one_arena
    print(share_one_arena())
start = threading.Barrier(4)
def work():
    start.wait()
    for _ in range(200):
        zlib.compress(bytes(1 << 18), 1)
threads = [threading.Thread(target=work) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.stdout.flush()
ctypes.CDLL(None).malloc_stats()
"""

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's"
)


def arenas(mode: str, **env: str) -> tuple[str, int]:
    own = ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")
    environment = {k: v for k, v in os.environ.items() if k not in own} | env
    done = subprocess.run(
        [sys.executable, "-c", THREADS, mode],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    return done.stdout.strip(), done.stderr.count("Arena ")


def test_a_command_s_threads_share_one_arena() -> None:
    said, count = arenas("shared")
    assert said == "True" and count == 1
    _, default = arenas("default")
    assert default > 1  # what glibc does otherwise: an arena for a thread that meets another


@pytest.mark.parametrize(
    "setting",
    [{"MALLOC_ARENA_MAX": "3"}, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=3"}],
    ids=["variable", "tunable"],
)
def test_an_environment_s_own_setting_is_kept(setting: dict[str, str]) -> None:
    said, count = arenas("shared", **setting)
    assert said == "False" and 1 < count <= 3


# a command run with the arena request watched: when it came, and how many threads were alive
WATCHED = """
import sys, threading
import engine.cli.app as cli
from engine import malloc_arenas
calls = []
def watched():
    calls.append(threading.active_count())
    return malloc_arenas.share_one_arena()
cli.share_one_arena = watched
try:
    cli.app(sys.argv[1:], standalone_mode=False)
finally:
    print("asked", calls, "interval", sys.getswitchinterval(), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("args", "asked"),
    [
        (
            ["run", "examples/fan-out.json", "--json", "--db", ":memory:"],
            "asked [1] interval 0.0005",
        ),
        (["validate", "examples/fan-out.json"], "asked [] interval 0.005"),
        (["serve", "--help"], "asked [] interval 0.005"),
    ],
)
def test_commands_that_run_jobs_ask_before_any_thread_starts(args: list[str], asked: str) -> None:
    """A run asks for the one arena while its thread is the only one (an arena a thread got
    before would stay its own), and shortens the interpreter's switch interval (the store's
    writer thread waits less for the lock: see JOB_SWITCH_INTERVAL); a command that runs no
    job does neither."""
    done = subprocess.run(
        [sys.executable, "-c", WATCHED, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert done.stderr.strip().splitlines()[-1] == asked, done.stderr
