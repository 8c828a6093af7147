"""One malloc arena for a command's threads (engine/malloc_arenas.py), seen from glibc's own
statistics: `malloc_stats()` lists each arena its process has."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

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
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
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


def test_an_environment_s_own_setting_is_kept() -> None:
    said, count = arenas("shared", MALLOC_ARENA_MAX="3")
    assert said == "False" and 1 < count <= 3
