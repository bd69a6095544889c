"""On assignment: bring a partition's store up to the changelog, then derive its counts.

For each assigned partition (``Recovery.restore``):

1. read the store's positions: the next changelog offset it does not hold yet. None (a new or
   wiped store, ``DW_STORE=memory``): the beginning of the changelog;
2. if that position is past the changelog's end, the changelog is not the one the store was
   built from (the topic was deleted and made again): the partition's store is dropped and the
   whole changelog read;
3. read the changelog from there to its end (the end asked for at the start: the previous owner
   has stopped writing, its partitions having been revoked), writing each chunk of records and
   the position after it in one atomic store write;
4. counts: kept as they were if the worker owned the partition in the previous generation and
   nothing was read; else derived from every crime in the store.

The loop then consumes the partition from the group's committed offset; what it replays is
ignored per crime (``streams.core.crimes``). Recovery is kept apart from the store, as Quix
Streams keeps ``state/recovery.py`` apart from its stores.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import TopicPartition

from streams import metrics
from streams.clients import KafkaClients
from streams.codec import decode_held
from streams.core.buckets import CountSink, DayCounts
from streams.core.clock import Clock, horizon
from streams.runtime.partition import PartitionState
from streams.runtime.store import Positions, Store

log = logging.getLogger(__name__)

#: records read from the changelog per fetch, and written to the store per atomic write
CHUNK = 20_000


class ChangelogReader:
    """Reads changelog partitions with a consumer of its own (no group: it commits nothing)."""

    def __init__(self, clients: KafkaClients, topic: str) -> None:
        self.topic = topic
        self._clients = clients
        self._consumer: Any = None

    async def start(self) -> None:
        self._consumer = self._clients.consumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # what a fenced or crashed worker left in an open or aborted transaction never counts;
            # the end asked for is the last stable offset
            isolation_level="read_committed",
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            # requests on a connection are answered in order: a fetch held up to 500 ms for
            # data (the default) would delay the offset requests of the next partition
            fetch_max_wait_ms=50,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def bounds(self, partition: int) -> tuple[int, int]:
        """First and end offset (one past the last record) of a changelog partition."""
        tp = TopicPartition(self.topic, partition)
        begin = (await self._consumer.beginning_offsets([tp]))[tp]
        end = (await self._consumer.end_offsets([tp]))[tp]
        return begin, end

    async def read(self, partition: int, start: int, end: int) -> AsyncIterator[list[Any]]:
        """Chunks of records from ``start`` up to ``end`` (exclusive)."""
        tp = TopicPartition(self.topic, partition)
        self._consumer.assign([tp])
        self._consumer.seek(tp, start)
        try:
            while await self._consumer.position(tp) < end:
                # short: a fetch that returns only a transaction marker moves the position on
                # without records, and a long wait for records would follow it for nothing
                got = await self._consumer.getmany(tp, timeout_ms=100, max_records=CHUNK)
                records = [r for r in got.get(tp, ()) if r.offset < end]
                if records:
                    yield records
        finally:
            self._consumer.unsubscribe()  # no idle fetches in the way of the next questions


#: crimes derived between two yields to the event loop (about 30 ms)
YIELD_EVERY = 10_000


async def derive_counts(
    store: Store, partition: int, clock: Clock, keep_days: int, sink: CountSink | None = None
) -> tuple[DayCounts, int]:
    """Counts of every crime the store holds for ``partition``, before the retention horizon
    left out, and how many crimes it holds; ``sink`` is told of each, as of every later change.
    Yields to the event loop every YIELD_EVERY crimes: heartbeats and HTTP requests go on while
    millions are derived."""
    counts = DayCounts(sink)
    held_count = 0
    for held_count, (key, value) in enumerate(store.items(partition), 1):
        held, _ = decode_held(value)
        counts.add(held.cell, key.decode())
        if held_count % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    today = clock.today(counts.newest)
    if today is not None:
        counts.prune(horizon(today, keep_days))
    return counts, held_count


def forget(counts: DayCounts, sink: CountSink | None) -> None:
    """Tell ``sink`` that every crime of ``counts`` has gone (its partition is no longer ours)."""
    if sink is not None:
        for cell, n in counts.cells():
            sink.move(cell, -n)


class Recovery:
    def __init__(self, store: Store, clock: Clock, keep_days: int, sink: CountSink | None = None) -> None:
        self._store = store
        self._sink = sink
        self._reader: ChangelogReader
        self._clock = clock
        self._keep_days = keep_days
        #: changelog records read since start (the watchdog counts this as progress)
        self.records_read = 0
        #: the partition being restored now, if any
        self.restoring: int | None = None

    async def start(self, reader: ChangelogReader) -> None:
        self._reader = reader
        await reader.start()

    async def stop(self) -> None:
        await self._reader.stop()

    async def restore(self, partition: int, kept: PartitionState | None) -> PartitionState:
        """The partition's state, its store brought up to the end of the changelog."""
        started = time.monotonic()
        self.restoring = partition
        try:
            read = await self._catch_up(partition)
        finally:
            self.restoring = None
        metrics.RESTORED.inc(read)
        positions = self._store.positions(partition)
        changelog_next = positions.changelog_next if positions is not None else 0
        if kept is not None and read == 0:
            kept.changelog_next = changelog_next
            kept.pending.clear()
            kept.processed = None
            return kept
        if kept is not None:  # its counts are derived again below: take the old ones out first
            forget(kept.counts, self._sink)
        if not self._store.indexed(partition):  # a store from before the expiry index
            log.info(
                "partition %d: %d stored crimes indexed by day", partition, self._store.index_all(partition)
            )
        counts, held = await derive_counts(self._store, partition, self._clock, self._keep_days, self._sink)
        metrics.RESTORE_SECONDS.observe(time.monotonic() - started)
        log.info(
            "partition %d: %d changelog records read, %d cells of counts derived, in %.2f s",
            partition,
            read,
            len(counts),
            time.monotonic() - started,
        )
        return PartitionState(partition, counts, changelog_next, store_crimes=held)

    async def _catch_up(self, partition: int) -> int:
        begin, end = await self._reader.bounds(partition)
        positions = self._store.positions(partition)
        start = positions.changelog_next if positions is not None else begin
        source_next = positions.source_next if positions is not None else 0
        if start > end:
            log.warning(
                "partition %d: the store stands at changelog offset %d, past the changelog's end %d "
                "(the changelog was made anew?): dropping the partition's store and reading it all",
                partition,
                start,
                end,
            )
            self._store.drop(partition)
            start, source_next = begin, 0
        start = max(start, begin)
        read = 0
        if start < end:
            async for records in self._reader.read(partition, start, end):
                states = {r.key: r.value for r in records}  # the latest record of a crime wins
                self._store.write(partition, states, Positions(source_next, records[-1].offset + 1))
                read += len(records)
                self.records_read += len(records)
        # the end may lie past the last record read (records removed by compaction)
        if positions is None or positions.changelog_next != end:
            self._store.write(partition, {}, Positions(source_next, end))
        return read
