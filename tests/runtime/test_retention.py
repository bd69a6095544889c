"""The expiry index of both stores, and the retention sweep over it: crimes whose latest outcome
has left the horizon expire; stale index entries go; pending changes decide for their crimes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from streams.codec import encode_held, held_day
from streams.core.buckets import DayCounts
from streams.core.classify import Cell
from streams.core.crimes import Held
from streams.runtime.partition import PartitionState
from streams.runtime.retention import SWEEP_PER_CHECKPOINT, behind, sweep, sweep_budget
from streams.runtime.store import (
    Deployment,
    MemoryStore,
    Positions,
    RocksStore,
    Store,
    index_entry,
)

DAY0 = dt.date(2024, 1, 1)


def held(day: int, offset: int = 0) -> Held:
    return Held(Cell("kent", "stalking", "caution", DAY0 + dt.timedelta(days=day), False), (offset,), offset)


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return RocksStore(tmp_path / "store", Deployment("app", "changelog", 1))


def put(store: Store, states: dict[bytes, Held | None], unindex: tuple[bytes, ...] = ()) -> None:
    encoded = {k: None if h is None else encode_held(h, 0) for k, h in states.items()}
    store.write(0, encoded, Positions(0, 0), unindex)


def test_held_day_reads_the_day_without_decoding() -> None:
    assert held_day(encode_held(held(40), 3)) == (DAY0 + dt.timedelta(days=40)).toordinal()


def test_the_index_lists_states_by_day_up_to_a_bound(store: Store) -> None:
    put(store, {b"c": held(5), b"a": held(1), b"b": held(1), b"d": held(9)})
    before = (DAY0 + dt.timedelta(days=6)).toordinal()
    entries = store.expiring(0, before, 10)
    assert [index_entry(e)[1] for e in entries] == [b"a", b"b", b"c"]
    assert store.expiring(0, before, 2) == entries[:2]
    assert store.expiring(0, before, 10, start=entries[1]) == entries[1:]
    # an entry removed in the write that writes its crime again stays
    put(store, {b"a": held(1, 1)}, unindex=(entries[0], entries[2]))
    assert [index_entry(e)[1] for e in store.expiring(0, before, 10)] == [b"a", b"b"]
    assert store.indexed(0)


def test_a_store_from_before_the_index_is_indexed_once(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "store", Deployment("app", "changelog", 1))
    put(store, {b"a": held(1), b"b": held(2)})
    store._drop_family("x0")  # as a store written by the previous version
    store._cfs["meta"].delete(b"x0")
    assert not store.indexed(0)
    assert store.index_all(0) == 2
    assert store.indexed(0)
    assert len(store.expiring(0, (DAY0 + dt.timedelta(days=3)).toordinal(), 10)) == 2


def partition(store: Store, floor_day: int) -> PartitionState:
    counts = DayCounts()
    counts.prune(DAY0 + dt.timedelta(days=floor_day))
    return PartitionState(0, counts, 0, store_crimes=sum(1 for _ in store.items(0)))


def test_the_sweep_expires_crimes_past_the_horizon_and_drops_stale_entries(store: Store) -> None:
    put(store, {b"old": held(1), b"moved": held(2), b"new": held(30), b"changing": held(3)})
    put(store, {b"moved": held(25)})  # its day-2 entry is stale now
    part = partition(store, floor_day=10)
    part.pending[b"changing"] = held(28)  # changed since: its pending state decides
    part.pending[b"late"] = held(4)  # new since, and the horizon has passed it meanwhile
    part.fresh = 1
    read = sweep({0: part}, store)
    assert read == 3  # old; moved (stale); changing (stale: its pending state decides)
    assert sorted(part.expired) == [b"late", b"old"]
    assert b"late" not in part.pending and b"changing" in part.pending
    assert part.gone == 1 and part.fresh == 0  # "late" never reached the store
    assert part.swept_to == (DAY0 + dt.timedelta(days=10)).toordinal()
    # the checkpoint's write: tombstones and index entries in one
    store.write(0, dict.fromkeys(part.expired), Positions(0, 0), part.unindex)
    assert store.reader(0)(b"old") is None and store.reader(0)(b"moved") is not None
    assert store.expiring(0, (DAY0 + dt.timedelta(days=10)).toordinal(), 10) == []
    # the horizon has not moved: nothing is read again
    part.unindex.clear()
    assert sweep({0: part}, store) == 0


def test_the_sweep_keeps_to_its_budget_and_goes_on_at_the_next_checkpoint(store: Store) -> None:
    put(store, {f"c{i:03d}".encode(): held(i % 5) for i in range(50)})
    part = partition(store, floor_day=5)
    assert sweep({0: part}, store, budget=20) == 20
    assert part.swept_to == 0 and len(part.expired) == 20
    store.write(0, dict.fromkeys(part.expired), Positions(0, 0), part.unindex)
    part.expired.clear()
    part.unindex.clear()
    assert sweep({0: part}, store, budget=40) == 30
    assert part.swept_to == (DAY0 + dt.timedelta(days=5)).toordinal()
    store.write(0, dict.fromkeys(part.expired), Positions(0, 0), part.unindex)
    assert list(store.items(0)) == []


def test_a_sweep_behind_its_horizon_shows_and_its_budget_follows_the_records_processed(store: Store) -> None:
    put(store, {f"c{i:03d}".encode(): held(i % 5) for i in range(50)})
    part = partition(store, floor_day=5)
    assert behind({0: part})
    sweep({0: part}, store, budget=20)
    assert behind({0: part})  # 30 entries before the horizon are left for the next checkpoint
    sweep({0: part}, store, budget=40)
    assert not behind({0: part})
    assert not behind({0: PartitionState(0, DayCounts(), 0)})  # no horizon yet: nothing to sweep
    assert sweep_budget(0) == sweep_budget(SWEEP_PER_CHECKPOINT // 2) == SWEEP_PER_CHECKPOINT
    assert sweep_budget(100_000) == 200_000  # a record writes one entry at most: twice keeps pace


def test_a_crime_with_two_entries_before_the_horizon_expires_once(store: Store) -> None:
    put(store, {b"twice": held(1)})
    put(store, {b"twice": held(3)})  # its day-1 entry is stale, and also before the horizon
    part = partition(store, floor_day=10)
    assert sweep({0: part}, store) == 2
    assert part.expired == [b"twice"] and part.gone == 1
