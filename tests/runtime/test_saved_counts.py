"""The counts saved with each checkpoint (a snapshot, then a segment per checkpoint) read back as
the counts were at the last write, through snapshots taken as the segments outgrow the counts;
evidence read back after segments is only of crimes the store holds in that cell."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from streams.codec import encode_held
from streams.core.buckets import DayCounts
from streams.core.classify import Cell
from streams.core.crimes import Held
from streams.runtime import saved_counts
from streams.runtime.saved_counts import SEGMENT, SNAPSHOT, CountsLog, CountsWrite
from streams.runtime.store import MemoryStore, Positions

D = dt.date(2025, 3, 1)


def cell(rng: random.Random) -> Cell:
    return Cell(
        rng.choice(["kent", "essex", "surrey"]),
        rng.choice(["stalking", "harassment"]),
        rng.choice(["caution", "charge", "pending"]),
        D - dt.timedelta(days=rng.randrange(40)),
        rng.random() < 0.3,
    )


def combo_refs(counts: DayCounts, combo: tuple[str, str, str, bool]) -> set[str]:
    """The keys of the crimes kept as evidence of one combo, on any day."""
    force, category, disposal, flag = combo
    return set(counts.refs_matching(force, category, [disposal], dt.date.min, dt.date.max, flag))


def read_back(store: MemoryStore) -> saved_counts.Loaded:
    saved = store.saved_counts(0)
    assert saved is not None
    loaded = saved_counts.load(saved, None, 0, store.reader(0))
    assert loaded is not None
    return loaded


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_write_reads_back_as_the_counts_were_through_snapshots_and_segments(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(saved_counts, "MIN_LOGGED", 50)  # snapshots often
    rng = random.Random(seed)
    store = MemoryStore()
    counts, log = DayCounts(), CountsLog()
    where: dict[str, Cell] = {}
    snapshots = segments = 0
    for step in range(120):
        states: dict[bytes, bytes | None] = {}  # the crimes changed, written with the counts
        for _ in range(rng.randrange(1, 30)):
            key = f"k{rng.randrange(200)}"
            if rng.random() < 0.15 and key in where:
                counts.remove(where.pop(key), key)
                states[key.encode()] = None
            else:
                new = cell(rng)
                counts.move(where.get(key), new, key)
                where[key] = new
                states[key.encode()] = encode_held(Held(new, (step,), step), 0)
        if step % 17 == 16:
            counts.prune(D - dt.timedelta(days=30 - step // 17))
            where = {k: c for k, c in where.items() if counts.floor is None or c.day >= counts.floor}
        write = log.changes(counts, len(where))
        snapshots += write.whole
        segments += any(k.startswith(SEGMENT) for k in write.combos)
        store.write(0, states, Positions(step, step), counts=write)
        loaded = read_back(store)
        assert sorted(loaded.counts.cells()) == sorted(counts.cells()), step
        assert (loaded.counts.total, loaded.counts.newest, loaded.counts.floor) == (
            counts.total,
            counts.newest,
            counts.floor,
        )
        for c in set(where.values()):
            got, live = loaded.counts.refs(c), counts.refs(c)
            if write.whole:  # read back from the snapshot alone: as they were
                assert sorted(got) == sorted(live)
            else:  # checked against the store: crimes held in that cell only
                assert all(where.get(k) == c for k in got), (c, got)
        for combo in {(c.force, c.category, c.disposal, c.domestic_abuse) for c in where.values()}:
            # and never fewer than EVIDENCE_SAVED of the combo's evidence (or all, if it has fewer)
            got_refs, live_refs = combo_refs(loaded.counts, combo), combo_refs(counts, combo)
            assert len(got_refs & live_refs) >= min(len(live_refs), saved_counts.EVIDENCE_SAVED), step
        assert loaded.store_crimes == len(where)
    assert snapshots > 2 and segments > 20
    # a restart goes on with the log it read back: numbering and segments carry on
    loaded = read_back(store)
    again, log2 = loaded.counts, loaded.log
    again.add(cell(rng), "late")
    store.write(0, {}, Positions(999, 999), counts=log2.changes(again, 1))
    assert sorted(read_back(store).counts.cells()) == sorted(again.cells())


def test_the_first_write_of_a_log_is_a_snapshot_and_a_quiet_one_writes_no_segment() -> None:
    counts, log = DayCounts(), CountsLog()
    counts.add(Cell("kent", "stalking", "charge", D, False), "k1")
    first = log.changes(counts, 1)
    assert first.whole and list(first.combos) == [SNAPSHOT]
    quiet = log.changes(counts, 1)
    assert not quiet.whole and quiet.combos == {}
    counts.add(Cell("kent", "stalking", "charge", D, False), "k2")
    assert list(log.changes(counts, 2).combos) == [SEGMENT + (0).to_bytes(8, "big")]


def test_saved_counts_that_cannot_be_read_are_none_to_derive_them() -> None:
    store = MemoryStore()
    counts, log = DayCounts(), CountsLog()
    counts.add(Cell("kent", "stalking", "charge", D, False), "k1")
    store.write(0, {}, Positions(1, 1), counts=log.changes(counts, 1))
    head = read_back(store)
    assert head.counts.total == 1
    for bad in (
        CountsWrite(b"not marshal", {SNAPSHOT: b"x"}, whole=True),
        CountsWrite(store._heads[0], {b"zzz": b"x"}, whole=True),  # neither snapshot nor segment
        CountsWrite(store._heads[0], {SEGMENT + bytes(8): b"x"}, whole=True),  # no snapshot
    ):
        store.save_counts(0, bad)
        saved = store.saved_counts(0)
        assert saved is not None and saved_counts.load(saved, None, 0, store.reader(0)) is None
