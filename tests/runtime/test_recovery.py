"""Recovery reads the changelog from the store's position to the end, then derives the counts."""

from __future__ import annotations

import datetime as dt

from streams.codec import encode_held
from streams.core.classify import Cell
from streams.core.clock import StreamClock
from streams.core.crimes import Held
from streams.runtime.recovery import Recovery
from streams.runtime.store import MemoryStore, Positions

from .fakes import FakeReader


def state(disposal: str, day: int) -> bytes:
    return encode_held(Held(Cell("kent", "stalking", disposal, dt.date(2025, 1, day), False), (day,), day), 0)


LOG = [(b"kent/1", state("pending", 1)), (b"kent/2", state("charge", 2)), (b"kent/1", state("caution", 3))]


async def make(logs: dict[int, list[tuple[bytes, bytes | None]]], store: MemoryStore) -> Recovery:
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
