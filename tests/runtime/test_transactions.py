"""The exactly-once checkpoint: per partition, changelog and offsets in one transaction, then the
store; a fenced partition is lost and nothing of it reaches the store."""

from __future__ import annotations

import datetime as dt

from aiokafka import TopicPartition

from streams.core.buckets import DayCounts
from streams.core.classify import Cell
from streams.core.crimes import Held
from streams.runtime.checkpoint import Checkpoint
from streams.runtime.outbox import DeadLetter
from streams.runtime.partition import PartitionState
from streams.runtime.store import MemoryStore, Positions
from streams.runtime.transactions import TransactionalOutbox

from .fakes import FakeClients

CELL = Cell("kent", "stalking", "caution", dt.date(2025, 1, 2), False)


def held(offset: int) -> Held:
    return Held(CELL, (offset,), offset)


async def harness() -> tuple[FakeClients, TransactionalOutbox, MemoryStore, Checkpoint, list[str]]:
    clients = FakeClients()
    outbox = TransactionalOutbox(clients, "dw", "changelog", "dlq", "disposals")  # type: ignore[arg-type]
    store = MemoryStore()
    steps: list[str] = []

    async def never(offsets: dict[TopicPartition, int]) -> None:
        raise AssertionError("under exactly-once the consumer commits nothing")

    async def position(tp: TopicPartition) -> int:
        return {0: 7, 1: 3}[tp.partition]

    checkpoint = Checkpoint(
        outbox, store, never, position, "disposals", interval_s=60, max_pending=10, after_step=steps.append
    )
    await outbox.claim([0, 1])
    return clients, outbox, store, checkpoint, steps


def part(p: int, pending: dict[bytes, Held], processed: int | None) -> PartitionState:
    return PartitionState(p, DayCounts(), 0, dict(pending), processed, None)


async def test_changelog_dead_letters_and_offsets_commit_together_per_partition() -> None:
    clients, outbox, store, checkpoint, steps = await harness()
    parts = {0: part(0, {b"a": held(3), b"b": held(4), b"c": held(5)}, 6), 1: part(1, {b"d": held(2)}, 3)}
    await outbox.dead_letters([DeadLetter(b"k", b"v", "undecodable", "e", "disposals", 1, 1)])
    assert await checkpoint.commit(parts) == set()
    assert steps == ["changelog", "commit", "store"]
    p0, p1 = clients.producers["dw-counting-0"], clients.producers["dw-counting-1"]
    assert p0.committed_offsets == [{TopicPartition("disposals", 0): 7}]
    assert p1.committed_offsets == [{TopicPartition("disposals", 1): 3}]
    assert len(clients.logs[("changelog", 0)]) == 3 and len(clients.logs[("dlq", 0)]) == 1
    # the store's changelog position is past the commit marker that follows the last record
    assert store.positions(0) == Positions(6, 4) and store.positions(1) == Positions(3, 2)
    assert parts[0].committed == 7 and parts[1].committed == 3


async def test_a_fenced_partition_is_lost_and_its_changes_reach_no_store() -> None:
    clients, outbox, store, checkpoint, steps = await harness()
    parts = {0: part(0, {b"a": held(3)}, 6), 1: part(1, {b"d": held(2)}, 3)}
    clients.producers["dw-counting-1"].fenced = True  # another worker claimed partition 1
    assert await checkpoint.commit(parts) == {1}
    assert store.positions(1) is None and store.reader(1)(b"d") is None and parts[1].committed is None
    assert store.positions(0) == Positions(6, 2) and parts[0].committed == 7
    # once fenced, nothing more is sent for it; a new claim after the rebalance starts afresh
    await outbox.changelog(1, [(b"e", b"x")])
    assert ("changelog", 1) not in clients.logs
    await outbox.release({1})
    await outbox.claim([1])
    assert not clients.producers["dw-counting-1"].fenced and outbox.fenced == set()


async def test_release_closes_every_producer() -> None:
    clients, outbox, *_ = await harness()
    await outbox.release()
    assert not any(p.started for p in clients.producers.values())
