"""The collector pause: objects left alive join the oldest generation unexamined, and garbage
cycles made while paused are still collected afterwards."""

from __future__ import annotations

import gc
import weakref

import pytest

from engine.gc_tuning import quiet_gc


class Cell:
    def __init__(self) -> None:
        self.other: Cell | None = None


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_enabled_after(collector_on):
    with quiet_gc():
        assert not gc.isenabled()
        with quiet_gc():  # nested
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_survivors_join_the_oldest_generation(collector_on):
    gc.collect()
    with quiet_gc():
        kept = [Cell() for _ in range(1000)]
    assert gc.get_count()[0] < 100  # nothing left for the next young collection to walk
    old = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(cell) in old for cell in kept)


def test_garbage_cycles_made_while_paused_are_still_collected(collector_on):
    with quiet_gc():
        a, b = Cell(), Cell()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        del a, b
    assert probe() is not None  # a cycle: reference counting alone cannot free it
    gc.collect()
    assert probe() is None


def test_a_frozen_set_of_the_program_is_left_alone(collector_on):
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with quiet_gc():
            _ = [Cell() for _ in range(100)]
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_many_promoted_objects_are_collected_when_asked_while_idle(collector_on, monkeypatch):
    from engine import gc_tuning

    gc.collect()
    monkeypatch.setattr(gc_tuning, "_promoted", 0)
    monkeypatch.setattr(gc_tuning, "_kept", 0)  # as if no full collection had been made yet
    with quiet_gc():
        probes = []
        for _ in range(gc_tuning.PROMOTED_AT_LEAST // 2):
            a, b = Cell(), Cell()
            a.other, b.other = b, a
            probes.append(weakref.ref(a))
        del a, b
        assert not gc_tuning.collect_promoted()  # not while a block is paused
    assert all(p() is not None for p in probes[:10])  # promoted, not examined
    assert gc_tuning.collect_promoted()
    assert all(p() is None for p in probes)
    assert not gc_tuning.collect_promoted()  # nothing promoted since


def test_a_command_runs_with_the_collector_paused_and_a_server_does_not(
    collector_on, monkeypatch, capsys
):
    """The CLI's imports and its job are made with the collector paused; `serve` keeps it on,
    as a long-lived server collects on its own schedule."""
    import socket

    from conftest import EXAMPLES

    import engine.server
    from engine.cli import app as cli

    enabled: dict[str, bool] = {}
    drive = cli.drive

    def drive_noting(*args, **options):
        enabled["run"] = gc.isenabled()
        drive(*args, **options)

    def serve_noting(state, *, sock):
        enabled["serve"] = gc.isenabled()
        sock.close()

    monkeypatch.setattr(cli, "drive", drive_noting)
    monkeypatch.setattr(engine.server, "serve", serve_noting)
    run = ["run", str(EXAMPLES / "fan-out.json"), "--json", "--db", ":memory:"]
    assert cli.app(run, standalone_mode=False) == 0
    assert '"status":"success"' in capsys.readouterr().out
    assert gc.isenabled()  # on again once the command is done
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cli.app(["serve", "--db", ":memory:", "--port", str(port)], standalone_mode=False)
    assert enabled == {"run": False, "serve": True}
