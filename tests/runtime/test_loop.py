"""One batch of the counting loop, without a broker: decode, dead letters, pending states, counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import cast

from aiokafka import TopicPartition

from streams.clients import Consumer
from streams.codec import encode_held
from streams.core.buckets import DayCounts
from streams.core.clock import StreamClock
from streams.core.crimes import event_digest
from streams.model import OutcomeEvent
from streams.runtime.loop import CountingLoop
from streams.runtime.partition import PartitionState
from streams.runtime.store import MemoryStore, Positions
from streams.settings import load_settings

from .fakes import record

TP = TopicPartition("disposals", 0)
BASE = OutcomeEvent(
    event_id="e1",
    force_id="kent",
    crime_ref="46/1/25",
    disposal="pending",
    outcome_date=dt.date(2025, 3, 1),
    recorded_at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
    source_system="test",
    offence_code="8Q",
)


def loop_with(store: MemoryStore, breaches: list[object], partitions: int = 1) -> CountingLoop:
    """A loop owning partition 0 of a topic of ``partitions`` (1: every crime belongs to it)."""
    loop = CountingLoop(
        load_settings(clock="stream", retention_days=400, partitions=partitions),
        store,
        StreamClock(),
        is_breach=lambda cell: cell.disposal == "community-resolution",
        on_breach=lambda: breaches.append(1),
    )
    loop.partitions[0] = PartitionState(0, DayCounts(), 0)
    loop.recovering = False
    return loop


def test_a_batch_moves_counts_keeps_states_pending_and_dead_letters_the_bad() -> None:
    breaches: list[object] = []
    store = MemoryStore()
    loop = loop_with(store, breaches)
    e2 = dataclasses.replace(
        BASE, event_id="e2", disposal="community-resolution", outcome_date=dt.date(2025, 3, 9)
    )
    batch = {
        TP: [
            record(BASE, 10),
            record(None, 11, value=b"garbage"),
            record(e2, 12),
            record(e2, 13),  # a re-sent copy
            record(dataclasses.replace(BASE, event_id="e3", force_id="gotham"), 14),
        ]
    }
    loop._process(batch)
    part = loop.partitions[0]
    assert part.processed == 15 and loop.records_processed == 5
    assert [(c.disposal, n) for c, n in part.counts.cells()] == [("community-resolution", 1)]
    assert part.pending[b"kent/46/1/25"].offset == 12
    assert [(d.reason, d.offset) for d in loop._dead] == [("undecodable", 11), ("unknown_force", 14)]
    assert breaches == [1]


def test_a_crime_on_a_partition_its_key_does_not_pick_is_dead_lettered_not_counted() -> None:
    """kent/46/1/25 belongs to partition 4 of 8 (murmur2): a record of it on partition 0, as a
    producer with another partitioner would put it, must not count there."""
    store = MemoryStore()
    loop = loop_with(store, [], partitions=8)
    loop.partitions[4] = PartitionState(4, DayCounts(), 0)
    elsewhere = dataclasses.replace(BASE, event_id="e2", crime_ref="46/7/25")  # belongs to 0
    loop._process({TP: [record(BASE, 10), record(elsewhere, 11)]})
    loop._process({TopicPartition("disposals", 4): [record(BASE, 3, partition=4)]})
    assert [(d.reason, d.partition, d.offset) for d in loop._dead] == [("wrong_partition", 0, 10)]
    assert "belongs to partition 4, not 0" in loop._dead[0].error
    assert list(loop.partitions[0].pending) == [b"kent/46/7/25"]
    assert list(loop.partitions[4].pending) == [b"kent/46/1/25"]
    assert loop.partitions[0].counts.total == loop.partitions[4].counts.total == 1


def test_a_crime_in_the_store_is_read_and_a_redelivery_ignored() -> None:
    store = MemoryStore()
    loop = loop_with(store, [])
    loop._process({TP: [record(BASE, 10)]})
    held = loop.partitions[0].pending.pop(b"kent/46/1/25")
    assert held.seen == (event_digest("e1"),)
    # as after a checkpoint and a restart: the crime is in the store, the record comes again
    store.write(0, {b"kent/46/1/25": encode_held(held, 0)}, Positions(11, 1))
    loop.partitions[0] = PartitionState(0, DayCounts(), 1)
    loop.partitions[0].counts.add(held.cell, "kent/46/1/25")
    loop._process({TP: [record(BASE, 10)]})
    assert loop.partitions[0].pending == {} and loop.partitions[0].counts.total == 1
    later = dataclasses.replace(BASE, event_id="e2", disposal="charge", outcome_date=dt.date(2025, 3, 2))
    loop._process({TP: [record(later, 11)]})
    assert [(c.disposal, n) for c, n in loop.partitions[0].counts.cells()] == [("charge", 1)]


def test_the_backlog_is_what_the_last_fetches_saw_past_the_last_record_processed() -> None:
    class Watermarks:
        """As aiokafka's consumer: ``highwater`` of a partition not assigned is an error."""

        def assignment(self) -> set[TopicPartition]:
            return {TopicPartition("disposals", 0), TopicPartition("disposals", 1)}

        def highwater(self, tp: TopicPartition) -> int | None:
            assert tp in self.assignment()
            return {0: 9_000, 1: None}[tp.partition]

    loop = loop_with(MemoryStore(), [])
    assert loop.backlog() == 0  # no consumer yet
    loop._made_consumer = cast(Consumer, Watermarks())  # the two calls backlog() makes
    assert loop.backlog() == 0  # nothing processed since the assignment: not known
    loop.partitions[0].processed = 1_000
    loop.partitions[1] = PartitionState(1, DayCounts(), 0)
    loop.partitions[1].processed = 50  # no fetch seen for it yet
    assert loop.backlog() == 8_000
    # a partition the loop holds while the consumer no longer has it (a rebalance under way)
    loop.partitions[2] = PartitionState(2, DayCounts(), 0)
    loop.partitions[2].processed = 10
    assert loop.backlog() == 8_000
