"""Recovery reads the changelog from the store's position to the end, then derives the counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from streams.codec import encode_held
from streams.core.classify import Cell
from streams.core.clock import StreamClock
from streams.core.crimes import Held
from streams.runtime import saved_counts
from streams.runtime.recovery import Recovery
from streams.runtime.store import MemoryStore, Positions

from .fakes import FakeReader


def state(disposal: str, day: int) -> bytes:
    return encode_held(Held(Cell("kent", "stalking", disposal, dt.date(2025, 1, day), False), (day,), day), 0)


LOG = [(b"kent/1", state("pending", 1)), (b"kent/2", state("charge", 2)), (b"kent/1", state("caution", 3))]


async def make(logs: Mapping[int, Sequence[tuple[bytes, bytes | None]]], store: MemoryStore) -> Recovery:
    r = Recovery(store, StreamClock(), keep_days=400)
    r._reader = FakeReader(logs)  # type: ignore[assignment]
    return r


async def test_empty_store_reads_everything_and_counts_each_crime_once() -> None:
    store = MemoryStore()
    r = await make({0: LOG}, store)
    part = await r.restore(0, None)
    assert store.positions(0) == Positions(0, 3) and r.records_read == 3
    assert sorted((c.disposal, n) for c, n in part.counts.cells()) == [("caution", 1), ("charge", 1)]
    assert part.changelog_next == 3 and part.counts.newest == dt.date(2025, 1, 3)


async def test_a_whole_partition_is_read_into_an_empty_store_latest_state_once_tombstones_gone() -> None:
    store = MemoryStore()
    store.load(0, {b"kent/9": state("charge", 9)})  # a load cut short: states, no positions
    log = [*LOG, (b"kent/4", state("charge", 4)), (b"kent/2", None)]
    r = await make({0: log}, store)
    part = await r.restore(0, None)
    assert r.records_read == 5 and store.positions(0) == Positions(0, 5)
    assert sorted(store.items(0)) == [(b"kent/1", state("caution", 3)), (b"kent/4", state("charge", 4))]
    cells = sorted((c.disposal, c.day.day, n) for c, n in part.counts.cells())
    assert cells == [("caution", 3, 1), ("charge", 4, 1)]
    assert part.store_crimes == 2
    # the expiry index holds the states loaded, under their days
    assert [e[4:] for e in store.expiring(0, dt.date(2025, 2, 1).toordinal(), 10)] == [b"kent/1", b"kent/4"]


async def test_a_store_reads_only_what_follows_its_position() -> None:
    store = MemoryStore()
    store.write(0, dict(LOG[:2]), Positions(9, 2))
    r = await make({0: LOG}, store)
    part = await r.restore(0, None)
    assert r.records_read == 1 and store.positions(0) == Positions(9, 3)
    assert sorted(c.disposal for c, _ in part.counts.cells()) == ["caution", "charge"]


async def test_a_kept_partition_with_nothing_new_keeps_its_counts() -> None:
    store = MemoryStore()
    r = await make({0: LOG}, store)
    first = await r.restore(0, None)
    again = await r.restore(0, first)
    assert again is first and r.records_read == 3


async def test_a_store_past_the_changelog_end_is_dropped_and_read_again() -> None:
    store = MemoryStore()
    store.write(0, {b"kent/9": state("charge", 9)}, Positions(50, 40))  # a changelog made anew since
    r = await make({0: LOG}, store)
    part = await r.restore(0, None)
    assert store.reader(0)(b"kent/9") is None and store.positions(0) == Positions(0, 3)
    assert part.counts.total == 2


async def test_counts_are_saved_whole_when_derived_then_loaded_not_derived() -> None:
    store = MemoryStore()
    r = await make({0: LOG}, store)
    first = await r.restore(0, None)
    assert not first.counts.changed  # all saved, with the crimes they count
    # counts that the store's crimes would not give, saved as a checkpoint would: to tell
    # loaded from derived
    first.counts.add(Cell("kent", "stalking", "charge", dt.date(2025, 1, 3), False), "marker")
    store.write(0, {}, Positions(0, 3), counts=first.saved.changes(first.counts, 2))
    again = await (await make({0: LOG}, store)).restore(0, None)
    assert (
        again.counts.total == 3
        and again.store_crimes == 2
        # evidence after segments is kept only for crimes the store holds in that cell
        and again.counts.refs(Cell("kent", "stalking", "charge", dt.date(2025, 1, 3), False)) == []
        and again.counts.newest == dt.date(2025, 1, 3)
    )
    store.write(0, {b"kent/1": state("caution", 3)}, Positions(0, 3))  # crimes written without counts
    derived = await (await make({0: LOG}, store)).restore(0, None)
    assert derived.counts.total == 2


async def test_saved_counts_move_with_the_changelog_records_read_and_unreadable_ones_are_derived() -> None:
    store = MemoryStore()
    part = await (await make({0: LOG[:2]}, store)).restore(0, None)
    assert store.saved_counts(0) is not None and part.counts.total == 2
    marker = Cell("essex", "stalking", "charge", dt.date(2025, 1, 1), False)
    part.counts.add(marker, "marker")  # saved, to tell counts moved from counts derived
    store.write(0, {}, Positions(0, 2), counts=part.saved.changes(part.counts, 2))
    log = [*LOG, (b"kent/2", None), (b"kent/5", state("charge", 5))]  # moved, gone, new
    r = await make({0: log}, store)
    moved = await r.restore(0, None)
    assert r.records_read == 3 and moved.store_crimes == 2
    cells = sorted((c.force, c.disposal, c.day.day, n) for c, n in moved.counts.cells())
    assert cells == [("essex", "charge", 1, 1), ("kent", "caution", 3, 1), ("kent", "charge", 5, 1)]
    assert moved.counts.refs(Cell("kent", "stalking", "charge", dt.date(2025, 1, 5), False)) == ["kent/5"]
    again = await (await make({0: log}, store)).restore(0, None)  # as the moves were saved
    assert sorted(again.counts.cells()) == sorted(moved.counts.cells()) and again.store_crimes == 2
    store.save_counts(0, saved_counts.CountsWrite(b"not marshal", {}, whole=True))
    derived = await (await make({0: log}, store)).restore(0, None)
    assert derived.counts.total == 2 and derived.store_crimes == 2


def test_a_changelog_record_without_a_key_is_a_state_error_for_either_way_of_restoring() -> None:
    """No worker writes one: the reader refuses it before the store or the counts see it."""
    from types import SimpleNamespace
    from typing import Any

    import pytest

    from streams.errors import StateError
    from streams.runtime.recovery import _keyed

    good: Any = SimpleNamespace(partition=3, offset=7, key=b"kent/1", value=None)
    assert _keyed([good]) == [good]
    with pytest.raises(StateError, match="offset 8 of partition 3 has no key"):
        _keyed([good, SimpleNamespace(partition=3, offset=8, key=None, value=b"x")])
