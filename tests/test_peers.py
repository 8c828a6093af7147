"""The peer rows of the benchmark suite work end to end (tiny sizes; no time or ratio is
asserted): every installed peer gives a timed row and the floor is measured beside them."""

from __future__ import annotations

from benchmarks.peers import FLOOR, PEERS, measure_peers, table


def test_every_installed_peer_and_the_floor_give_a_row() -> None:
    rows = measure_peers({name: 20 for name in PEERS}, repetitions=1)
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {FLOOR, *PEERS}
    assert by_name[FLOOR]["min"] > 0
    assert by_name[FLOOR]["ratio_min"] == 1.0
    for name in PEERS:
        row = by_name[name]
        assert row["n"] == 20
        if row["seconds"] is None:
            assert row["note"] == "skipped: not installed", (name, row["note"])
        else:
            assert row["min"] > 0 and row["peak_rss_bytes"] > 0
            assert row["ratio_min"] > 0 and row["ratio_median"] > 0
    assert FLOOR in table(rows)
