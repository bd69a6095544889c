"""On assignment: bring a partition's store up to the changelog, then derive its counts.

For each assigned partition (``Recovery.restore``):

1. read the store's positions: the next changelog offset it does not hold yet. None (a new or
   wiped store, ``DW_STORE=memory``): the beginning of the changelog;
2. if that position is past the changelog's end, the changelog is not the one the store was
   built from (the topic was deleted and made again): the partition's store is dropped and the
   whole changelog read;
3. read the changelog from there to its end (the end asked for at the start: the previous owner
   has stopped writing, its partitions having been revoked):
   - from a stored position: each chunk of records and the position after it in one atomic
     store write;
   - from the beginning (an empty store, the common case after a lost disk or a move to a new
     worker): the whole partition into memory, the latest state per crime, then into the store
     in bulk, and the position last, once the states are durable (``_read_whole``);
4. counts: kept as they were if the worker owned the partition in the previous generation and
   nothing was read; else, if nothing was read, loaded as the last checkpoint saved them with
   the crimes (``streams.runtime.saved_counts``); else derived from the states just read (a
   whole partition) or from every crime in the store, and saved whole for the next restart.

The loop then consumes the partition from the group's committed offset; what it replays is
ignored per crime (``streams.core.crimes``). Recovery is kept apart from the store, as Quix
Streams keeps ``state/recovery.py`` apart from its stores.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import operator
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Protocol, cast

from aiokafka import TopicPartition

from streams import metrics
from streams.clients import ClientFactory, Consumer, Record
from streams.codec import held_combo
from streams.core.buckets import CountSink, DayCounts
from streams.core.classify import Cell
from streams.core.clock import Clock, horizon
from streams.errors import StateError, started
from streams.runtime import saved_counts
from streams.runtime.partition import PartitionState
from streams.runtime.store import Positions, Store

log = logging.getLogger(__name__)

_KEY = operator.attrgetter("key")
_VALUE = operator.attrgetter("value")

#: records read from the changelog per fetch, and written to the store per atomic write
CHUNK = 20_000


class ChangelogReader:
    """Reads changelog partitions with a consumer of its own (no group: it commits nothing)."""

    def __init__(self, clients: ClientFactory, topic: str) -> None:
        self.topic = topic
        self._clients = clients
        self._made: Consumer | None = None

    @property
    def _consumer(self) -> Consumer:
        consumer: Consumer = started(self._made, "the changelog reader's consumer")
        return consumer

    async def start(self) -> None:
        self._made = self._clients.consumer(
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

    async def read(self, partition: int, start: int, end: int) -> AsyncIterator[list[StateRecord]]:
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
                    yield _keyed(records)
        finally:
            self._consumer.unsubscribe()  # no idle fetches in the way of the next questions


class StateRecord(Protocol):
    """A changelog record: a crime's key, and its state (None: the crime left the store)."""

    partition: int
    offset: int
    key: bytes
    value: bytes | None


def _keyed(records: list[Record]) -> list[StateRecord]:
    """``records``, every one with a key (``StateError`` for one without: no worker writes
    one), for both ways of restoring a partition."""
    for r in records:
        if r.key is None:
            raise StateError(f"changelog record at offset {r.offset} of partition {r.partition} has no key")
    return cast(list[StateRecord], records)


#: crimes derived between two yields to the event loop (about 20 ms)
YIELD_EVERY = 10_000


async def derive_counts(
    states: Iterable[tuple[bytes, bytes]], clock: Clock, keep_days: int, sink: CountSink | None = None
) -> tuple[DayCounts, int]:
    """Counts of the crimes ``states`` (crime key, stored state: a partition's store, or what a
    recovery read), before the retention horizon left out, and how many crimes there are;
    ``sink`` is told of them all, then of every later change. Reads only each state's cell
    (``held_combo``), and yields to the event loop every YIELD_EVERY crimes: heartbeats and HTTP
    requests go on while millions are derived."""
    counts = DayCounts()
    held = 0
    items = iter(states)
    while True:
        chunk = [(*held_combo(value), key) for key, value in itertools.islice(items, YIELD_EVERY)]
        if not chunk:
            break
        counts.count_all(chunk)
        held += len(chunk)
        await asyncio.sleep(0)
    prune_to_horizon(counts, clock, keep_days)
    if sink is not None:
        counts.attach(sink)
    return counts, held


def prune_to_horizon(counts: DayCounts, clock: Clock, keep_days: int) -> None:
    """Leave out the days before the retention horizon of the counts' own clock."""
    today = clock.today(counts.newest)
    if today is not None:
        counts.prune(horizon(today, keep_days))


class Followed:
    """A partition's saved counts, moved with the changelog records a recovery writes to its
    store, so that they go on counting exactly the crimes stored."""

    def __init__(self, loaded: saved_counts.Loaded) -> None:
        self.counts = loaded.counts
        #: crimes the store holds
        self.held = loaded.store_crimes
        self.log = loaded.log

    def move(
        self, stored: Callable[[bytes], bytes | None], states: Mapping[bytes, bytes | None]
    ) -> saved_counts.CountsWrite:
        """Move the counts from each crime's stored state to its state in ``states`` (None:
        gone); what to save with the write of ``states``."""
        counts = self.counts
        for key, value in states.items():
            old = stored(key)
            ref = key.decode()
            if old is not None:
                counts.remove(_cell(old), ref)
                self.held -= 1
            if value is not None:
                counts.add(_cell(value), ref)
                self.held += 1
        return self.log.changes(counts, self.held)


def _how(followed: Followed | None, whole: object, read: int) -> str:
    """How a restore came by its counts, for its log line."""
    if followed is not None:
        return "loaded and moved" if read else "loaded as saved"
    return "derived from the changelog" if whole is not None else "derived from the store"


def _cell(state: bytes) -> Cell:
    (force, category, disposal, domestic_abuse), day = held_combo(state)
    return Cell(force, category, disposal, dt.date.fromordinal(day), domestic_abuse)


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
            read, whole, followed = await self._catch_up(partition, follow=kept is None)
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
            kept.counts.forget()
        if not self._store.indexed(partition):  # a store from before the expiry index
            log.info(
                "partition %d: %d stored crimes indexed by day", partition, self._store.index_all(partition)
            )
        if followed is not None:
            counts, held, counts_log = followed.counts, followed.held, followed.log
            if self._sink is not None:
                counts.attach(self._sink)
            prune_to_horizon(counts, self._clock, self._keep_days)
        else:
            states = whole if whole is not None else self._store.items(partition)
            counts, held = await derive_counts(states, self._clock, self._keep_days, self._sink)
            counts_log = saved_counts.CountsLog()
            self._store.save_counts(partition, counts_log.whole(counts, held))
        how = _how(followed, whole, read)
        metrics.RESTORE_SECONDS.observe(time.monotonic() - started)
        metrics.RESTORES.labels(how.replace(" ", "_")).inc()
        log.info(
            "partition %d: %d changelog records read, %d cells of counts %s, in %.2f s",
            partition,
            read,
            len(counts),
            how,
            time.monotonic() - started,
        )
        return PartitionState(partition, counts, changelog_next, store_crimes=held, saved=counts_log)

    def save(self, parts: Iterable[PartitionState]) -> None:
        """A snapshot of the counts of each partition with nothing pending, after the last
        checkpoint before a stop or a hand-over: the next restore reads it alone."""
        started = time.monotonic()
        n = 0
        for part in parts:
            if not part.pending and not part.expired:
                self._store.save_counts(part.partition, part.saved.whole(part.counts, part.store_crimes))
                n += 1
        if n:
            log.info("counts of %d partitions saved whole in %.2f s", n, time.monotonic() - started)

    async def _catch_up(
        self, partition: int, follow: bool
    ) -> tuple[int, list[tuple[bytes, bytes]] | None, Followed | None]:
        """Changelog records read into the store; when the whole partition was read into an
        empty store, the states read (the counts are derived from them, not from the store);
        else, if ``follow`` and the store holds saved counts, those counts, moved with every
        record read, in the same atomic writes (O(records read), not O(crimes))."""
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
        if start == begin < end:  # nothing of the changelog stored yet
            read, whole = await self._read_whole(partition, begin, end)
            return read, whole, None
        saved = self._store.saved_counts(partition) if follow else None
        stored = self._store.reader(partition)
        loaded = saved_counts.load(saved, None, partition, stored) if saved is not None else None
        followed = Followed(loaded) if loaded is not None else None
        read = 0
        if start < end:
            async for records in self._reader.read(partition, start, end):
                states = {r.key: r.value for r in records}  # the latest record of a crime wins
                moved = followed.move(stored, states) if followed else None
                self._store.write(
                    partition, states, Positions(source_next, records[-1].offset + 1), counts=moved
                )
                read += len(records)
                self.records_read += len(records)
        # the end may lie past the last record read (records removed by compaction)
        if positions is None or positions.changelog_next != end:
            self._store.write(partition, {}, Positions(source_next, end))
        return read, None, followed

    async def _read_whole(
        self, partition: int, begin: int, end: int
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Read a whole changelog partition into memory, the latest state of each crime, then
        into an empty store: every crime is written once, in key order and in bulk
        (``Store.load``), and the positions only once the states are durable
        (``Store.loaded``); the counts are then derived from the states in memory, not read
        back from the store. Compaction leaves several records of many crimes (1.6 per crime
        at national volume), which the chunk-by-chunk path wrote to the store each time.

        The partition's states are held in memory meanwhile, about 100 bytes per crime: a
        restore of 6.6 million crimes over 8 partitions peaked at 530 MB, and took 47-52 s
        where the chunk-by-chunk path took 77 s (bench/restore.py). A deployment with more
        crimes per partition than memory allows should have more partitions."""
        self._store.drop(partition)  # what a load cut short left
        latest: dict[bytes, bytes | None] = {}
        read = 0
        async for records in self._reader.read(partition, begin, end):
            latest.update(zip(map(_KEY, records), map(_VALUE, records), strict=True))
            read += len(records)
            self.records_read += len(records)
        # in key order: the store takes it faster (``RocksStore.load``), and so do the counts
        # (the crimes of a force together)
        states = sorted((k, v) for k, v in latest.items() if v is not None)
        del latest
        for i in range(0, len(states), CHUNK):
            self._store.load(partition, dict(states[i : i + CHUNK]))
            await asyncio.sleep(0)
        self._store.loaded(partition, Positions(0, end))
        return read, states
