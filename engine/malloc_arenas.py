"""One malloc arena for the threads of a `flowgraph` command (glibc).

glibc gives a thread that allocates while another holds an arena an arena of its own (up to
eight per core), and memory freed in one arena serves only later allocations there. A large
job is written by threads beside the one running it: the store's writer, and the thread that
deflates a large document (engine/deflated.py), each allocating and freeing megabytes a piece
at a time. Their arenas held memory no live object used: about 7 MB of a 100,000-iteration
run's peak (161 MB against 154) and about 40 MB of a million-iteration one's.

A command's process therefore keeps one arena for all its threads (`M_ARENA_MAX` 1, what
MALLOC_ARENA_MAX=1 does), set before it starts any: its other threads run Python under the
GIL most of the time, and the time of a 100,000-iteration run did not change. Only the
commands whose jobs write a store from a thread of their own ask (`JOB_COMMANDS` in
cli/app.py: the others would pay its 1–4 ms of start-up for nothing). An environment that
sets MALLOC_ARENA_MAX (or glibc's tunable `glibc.malloc.arena_max`) keeps its own choice;
another C library, or a Python without ctypes, is left as it is. The server keeps glibc's
default: its threads serve requests at the same time.
"""

from __future__ import annotations

import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def share_one_arena() -> bool:
    """Ask glibc for one malloc arena from now on; True when it agreed."""
    if (
        not sys.platform.startswith("linux")
        or "MALLOC_ARENA_MAX" in os.environ
        or "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", "")
    ):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):  # no ctypes (a Python built without
        return False  # libffi), no C library to ask, or one without mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, 1))
