"""Keeping the cyclic garbage collector out of the way while jobs run.

A large job keeps hundreds of thousands of objects alive, all of them containers: each
collection walks the young ones, which all survive, and the cost adds up to a large part of a
run (measured: 1.6 s of an 8.4 s 100,000-node run). Reference counting frees almost everything
a run drops, so while at least one job runs (or a document is read or compiled) the cyclic
collector is paused, and a run that goes on for long collects the young generations now and
then (`collect_if_due`).

When the last paused block ends, the objects it left alive have survived by construction: they
are a compiled plan, a job's instances, a parsed document. Re-enabling the collector as is
would make its next young collection walk every one of them once more (0.6 s for a
100,000-node flow) only to find them alive. Instead they join the oldest generation directly
(`gc.freeze()` then `gc.unfreeze()`, two constant-time list moves), where they are examined at
the interpreter's next full collection, on its own schedule: garbage cycles among them are still
collected, only later. A program that froze objects itself (`gc.freeze()` before forking, say)
keeps its frozen set: the collector is then simply switched back on.

The interpreter collects its oldest generation when the objects that reached it since its last
full collection exceed a quarter of those it kept then; promoted objects do not count there. A
long-lived process that runs job after job (the server) calls `collect_promoted()` when it has
nothing running: it applies the same rule, counting the promoted objects too.

The `flowgraph` command runs in one such pause from the moment it knows which command it runs
(all but `serve`): its imports (typer, networkx, pydantic, the engine) are objects that live as
long as the process, and collecting while they were made cost about 0.1 s of a small run.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

COLLECT_EVERY = 30.0  # seconds of continuous running between two collections
PROMOTED_AT_LEAST = 100_000  # promoted objects before `collect_promoted` considers collecting

_lock = threading.Lock()
_depth = 0
_paused = False
_promote = False
_last_collect = 0.0
_promoted = 0  # objects promoted since the last full collection `collect_promoted` made
_kept = 0  # objects alive after it


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Pause the cyclic collector while the block runs (nesting and concurrency allowed)."""
    global _depth, _paused, _promote, _last_collect
    with _lock:
        if _depth == 0 and gc.isenabled():
            gc.disable()
            _paused = True
            _promote = gc.get_freeze_count() == 0
            _last_collect = time.monotonic()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _paused:
                if _promote:
                    promote_survivors()
                gc.enable()
                _paused = False


def promote_survivors() -> None:
    """Move every object of the young generations into the oldest one, without examining them."""
    global _promoted
    _promoted += gc.get_count()[0]  # while paused: the objects allocated and still alive
    gc.freeze()
    gc.unfreeze()


def collect_promoted() -> bool:
    """A full collection, if no block is paused and the objects promoted since the last one
    exceed a quarter of those it kept (and PROMOTED_AT_LEAST); True when it collected."""
    global _promoted, _kept
    with _lock:
        if _depth or _promoted < max(PROMOTED_AT_LEAST, _kept // 4):
            return False
        gc.collect()
        _kept = len(gc.get_objects())
        _promoted = 0
        return True


def collect_if_due() -> None:
    """While paused, collect the young generations at most every COLLECT_EVERY seconds."""
    global _last_collect
    if _paused and time.monotonic() - _last_collect > COLLECT_EVERY:
        _last_collect = time.monotonic()
        gc.collect(1)
