"""The checkpoint's order: changelog acknowledged, then store, then offsets; nothing after a failure."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from streams.codec import decode_held
from streams.core.buckets import DayCounts
from streams.core.classify import Cell
from streams.core.crimes import Held
from streams.runtime import saved_counts
from streams.runtime.checkpoint import Checkpoint, OffsetWentBack
from streams.runtime.outbox import DeadLetter, Outbox, ProduceFailed
from streams.runtime.partition import PartitionState
from streams.runtime.store import MemoryStore, Positions

from .fakes import FakeProducer

CELL = Cell("kent", "stalking", "caution", dt.date(2025, 1, 2), False)


def held(offset: int) -> Held:
    return Held(CELL, (offset,), offset)


class Harness:
    def __init__(self, fail: bool = False, commit_error: Exception | None = None) -> None:
        self.producer = FakeProducer(capacity=2, fail=fail)
        self.outbox = Outbox(self.producer, "changelog", "dlq")
        self.store = MemoryStore()
        self.commits: list[dict[TopicPartition, int]] = []
        self.seen: list[tuple[str, Any]] = []  # what was durable after each step
        self.commit_error = commit_error
        #: the consumer's position per partition (default: after the last record processed)
        self.positions: dict[int, int] = {}
        self.parts: dict[int, PartitionState] = {}
        self.checkpoint = Checkpoint(
            self.outbox,
            self.store,
            self.commit,
            self.position,
            "disposals",
            interval_s=60,
            max_pending=3,
            after_step=self.after,
        )

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.commit_error is not None:
            raise self.commit_error
        self.commits.append(dict(offsets))

    async def position(self, tp: TopicPartition) -> int:
        if tp.partition in self.positions:
            return self.positions[tp.partition]
        part = self.parts[tp.partition]
        return part.processed if part.processed is not None else part.committed or 0

    async def run(self, parts: dict[int, PartitionState]) -> None:
        self.parts = parts
        await self.checkpoint.commit(parts)

    def after(self, step: str) -> None:
        changelog = sum(len(v) for k, v in self.producer.logs.items() if k[0] == "changelog")
        self.seen.append((step, (changelog, self.store.positions(0), len(self.commits))))


def part(
    p: int, pending: dict[bytes, Held], processed: int | None, committed: int | None = None
) -> PartitionState:
    return PartitionState(p, DayCounts(), 0, dict(pending), processed, committed)


async def test_steps_run_in_order_and_each_makes_its_part_durable() -> None:
    h = Harness()
    parts = {0: part(0, {b"a": held(3), b"b": held(4), b"c": held(5)}, 6), 1: part(1, {}, None)}
    await h.outbox.dead_letters([DeadLetter(b"k", b"v", "undecodable", "e", "disposals", 0, 2)])
    await h.run(parts)
    assert h.seen == [
        ("changelog", (3, None, 0)),  # changelog acknowledged; store and offsets untouched
        ("store", (3, Positions(6, 3), 0)),  # three records in changelog partition 0 (two batches)
        ("commit", (3, Positions(6, 3), 1)),
    ]
    # partition 1 processed nothing; its position is committed once, as the group had none
    assert h.commits == [{TopicPartition("disposals", 0): 6, TopicPartition("disposals", 1): 0}]
    assert decode_held(h.store.reader(0)(b"c") or b"")[0] == held(5)
    assert parts[0].pending == {} and parts[0].committed == 6 and parts[0].changelog_next == 3
    assert [k for k, _, _ in h.producer.logs[("dlq", 0)]] == [b"k"]
    # nothing new: nothing is written or committed again
    await h.run(parts)
    assert len(h.commits) == 1


async def test_an_unacknowledged_record_stops_the_checkpoint_before_store_and_offsets() -> None:
    h = Harness(fail=True)
    parts = {0: part(0, {b"a": held(3)}, 4)}
    with pytest.raises(ProduceFailed, match="changelog\\[0\\] did not acknowledge"):
        await h.run(parts)
    assert h.seen == [] and h.store.positions(0) is None and h.commits == []


async def test_a_refused_commit_leaves_the_work_in_changelog_and_store() -> None:
    h = Harness(commit_error=CommitFailedError("rebalanced"))
    parts = {0: part(0, {b"a": held(3)}, 4, committed=2)}
    await h.run(parts)
    assert h.store.positions(0) == Positions(4, 1) and parts[0].committed == 2


async def test_an_offset_below_the_last_commit_is_a_bug() -> None:
    h = Harness()
    with pytest.raises(OffsetWentBack):
        await h.run({0: part(0, {}, 3, committed=5)})


async def test_the_position_past_a_transaction_marker_is_committed() -> None:
    """A marker after the last record takes an offset: the position covers it, so the partition's
    lag reaches 0 (a commit of "last record + 1" would stay one short forever)."""
    h = Harness()
    h.positions[0] = 7  # the record at 5 was the last; 6 is the commit marker
    parts = {0: part(0, {b"a": held(5)}, 6)}
    await h.run(parts)
    assert h.commits == [{TopicPartition("disposals", 0): 7}] and parts[0].committed == 7
    await h.run(parts)  # a partition whose position moved past a marker alone is committed too
    h.positions[0] = 9
    await h.run(parts)
    assert h.commits[-1] == {TopicPartition("disposals", 0): 9}


def test_due_after_the_interval_or_with_enough_changes() -> None:
    h = Harness()
    assert not h.checkpoint.due({0: part(0, {b"a": held(1)}, 2)})
    assert h.checkpoint.due({0: part(0, {b"a": held(1), b"b": held(2), b"c": held(3)}, 4)})
    h.checkpoint.last_at -= 61
    assert h.checkpoint.due({})


async def test_the_store_write_saves_the_counts_of_the_crimes_it_writes() -> None:
    """With each checkpoint the store holds counts equal to the live ones, and the number of
    crimes stored; a partition whose counts alone changed (a day pruned) is written too."""
    h = Harness()
    parts = {0: part(0, {b"a": held(3), b"b": held(4)}, 5)}
    counts = parts[0].counts
    counts.add(CELL, "kent/a")
    counts.add(CELL._replace(day=dt.date(2025, 1, 1)), "kent/b")
    parts[0].fresh = 2
    await h.run(parts)

    def saved() -> tuple[list[tuple[Cell, int]], int]:
        got = h.store.saved_counts(0)
        assert got is not None
        loaded = saved_counts.load(got, None, 0, h.store.reader(0))
        assert loaded is not None
        return sorted(loaded.counts.cells()), loaded.store_crimes

    assert saved() == (sorted(counts.cells()), 2) and not counts.changed
    counts.prune(dt.date(2025, 1, 2))
    parts[0].processed = None
    await h.run(parts)
    assert saved() == ([(CELL, 1)], 2)
