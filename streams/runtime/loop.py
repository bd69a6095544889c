"""The counting loop: one task per worker owns the source topic.

One batch (``CountingLoop.run``):

    fetch (aiokafka ``getmany``, at most ``DW_BATCH_RECORDS``)
      -> decode and validate each record; a bad one becomes a dead letter
      -> apply each event to its crime (``streams.core.counting.count_event``: pure), keeping the
         changed crime pending and moving the partition's counts
      -> send the batch's dead letters
      -> when a checkpoint is due (every ``DW_COMMIT_INTERVAL_S``, or sooner with many changes):
         crimes past the retention horizon marked to expire (``streams.runtime.retention``)
         -> changelog and offsets committed in one transaction per partition -> store written
         (``Checkpoint.commit``, whose docstring holds the exactness argument)

Under ``DW_PROCESSING_GUARANTEE=exactly_once`` (the default) each owned partition is written by
a transactional producer of its own, claimed before the partition is restored: a worker that
was paused while its partitions moved is fenced, loses them (``lose``) and rejoins the group
(``streams.runtime.transactions`` holds the argument). ``at_least_once`` writes through one
producer and commits offsets with the consumer.

Nothing is awaited per record: the I/O is per batch and per checkpoint. A lookup of a crime reads
the pending changes first, then the store.

Rebalances (aiokafka's eager protocol: every partition is revoked, then the new set assigned) go
through ``on_revoked`` and ``on_assigned``, which take the same lock as a batch: a revocation
waits for the batch in hand, checkpoints everything processed, and only then lets go; an
assignment restores each partition (``streams.runtime.recovery``) before any of its records is
processed. A batch fetched under an earlier assignment is dropped unprocessed (the consumer has
been reset to the committed offsets, so those records come again).

An unexpected error (a bug, not bad input, which is dead-lettered) ends the process with code 70
before anything past the last checkpoint is committed; a broker that does not acknowledge ends
it with code 75 (``streams.runtime.exits``). aiokafka would log and swallow an error raised in a
rebalance listener, so the listener leaves the process itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NoReturn

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError

from streams import metrics
from streams.clients import ClientFactory, Consumer, KafkaClients, Record
from streams.codec import decode_held, decode_outcome
from streams.core.buckets import CountSink
from streams.core.classify import Cell
from streams.core.clock import Clock, horizon, latest_accepted_day, utc_today
from streams.core.counting import count_event
from streams.core.crimes import Change
from streams.core.partitioner import partition_of
from streams.errors import DecodeError, NotStarted, RejectedEvent, StorageError, started
from streams.runtime.assignor import MembershipAssignor
from streams.runtime.checkpoint import Checkpoint
from streams.runtime.exits import ExitCode, leave
from streams.runtime.faults import Faults
from streams.runtime.outbox import DeadLetter, Outbox, ProduceFailed
from streams.runtime.partition import PartitionState
from streams.runtime.recovery import ChangelogReader, Recovery
from streams.runtime.retention import behind, sweep, sweep_budget
from streams.runtime.store import Store
from streams.runtime.transactions import TransactionalOutbox
from streams.schema_registry import RegistryUnavailable, Schemas
from streams.settings import Settings
from streams.wire import MemberInfo, Membership

log = logging.getLogger(__name__)

#: how long one fetch waits for records
FETCH_TIMEOUT_MS = 200


#: seconds between full collections of everything frozen (see ``LongLived``)
FULL_COLLECTION_EVERY_S = 600.0


class LongLived:
    """Keeps the cyclic garbage collector off the worker's long-lived state.

    What survives a checkpoint is mostly the worker's state (counts, cells, the store's handles):
    it lives on, and reference counting frees it when it goes. Left to the collector, each full
    collection rescans all of it to free almost nothing: 70-260 ms with the event loop stopped,
    every second or two during a replay (the p99 of a `/metrics` scrape, bench/scrape.py), and
    a third of a replay's time at a million crimes (bench/restart.py). So ``after_checkpoint``
    freezes everything alive (``gc.freeze``): a collection then scans only what was made since.
    Cyclic garbage among frozen objects (a future and its callback, say) would never be freed,
    so every ``FULL_COLLECTION_EVERY_S`` everything is unfrozen and collected once, which bounds
    it; that one collection is the pause the freezing saves, once in ten minutes.
    """

    def __init__(self, every_s: float = FULL_COLLECTION_EVERY_S) -> None:
        self.every_s = every_s
        self.last_full = time.monotonic()

    def after_checkpoint(self) -> None:
        now = time.monotonic()
        if now - self.last_full >= self.every_s:
            self.last_full = now
            gc.unfreeze()
            t = time.perf_counter()
            freed = gc.collect()
            took_ms = (time.perf_counter() - t) * 1000
            log.info("full garbage collection: %d objects freed in %.0f ms", freed, took_ms)
        gc.freeze()

    @contextlib.contextmanager
    def restoring(self) -> Iterator[None]:
        """No collection while partitions are restored, then all of it frozen. A restore makes
        millions of objects that live on (the states read, the counts) and no cyclic garbage;
        each full collection during it rescanned them all, and everything the worker already
        held (a fifth of a restore's time, bench/restore.py)."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            gc.freeze()
            if enabled:
                gc.enable()


#: records processed between two yields to the event loop (about 8 ms of work)
SLICE = 256


class CountingLoop:
    """Owns the source topic: consumer, producer, changelog reader, store, owned partitions."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        is_breach: Callable[[Cell], bool] = lambda cell: False,
        on_breach: Callable[[], None] = lambda: None,
        sink: CountSink | None = None,
        clients: ClientFactory | None = None,
        schemas: Schemas | None = None,
    ) -> None:
        self.settings = settings
        #: how the loop's Kafka clients connect (DW_KAFKA, security, DW_CONSUMER_*, DW_PRODUCER_*)
        self.clients: ClientFactory = (
            clients if clients is not None else KafkaClients.plain(settings.kafka.split(","))
        )
        self.store = store
        self.clock = clock
        self._is_breach = is_breach
        self._on_breach = on_breach
        self.topic = settings.disposals_topic
        #: the registry's writer schemas (DW_SCHEMA_REGISTRY_URL), learnt before records are read
        self.schemas = schemas
        self._decode = schemas.events.decode if schemas is not None else decode_outcome
        self._assignor = MembershipAssignor(self._me, self._on_membership)
        #: told of every change of the owned partitions' counts (the alert rules' aggregates)
        self.sink = sink
        self.recovery = Recovery(store, clock, settings.retention_days, sink)
        # Kafka clients bind to the running event loop: made in ``start`` (before, ``NotStarted``)
        self._made_consumer: Consumer | None = None
        self._made_outbox: Outbox | TransactionalOutbox | None = None
        self._made_checkpoint: Checkpoint | None = None
        self.partitions: dict[int, PartitionState] = {}
        self.membership = Membership()
        #: True from a revocation until every assigned partition is restored
        self.recovering = True
        #: records taken from the source topic since start (accepted or rejected)
        self.records_processed = 0
        self._swept_at = 0  # records_processed at the last sweep
        self._generation = 0
        self._lock = asyncio.Lock()
        self._stopping = False
        self._dead: list[DeadLetter] = []
        self._faults = Faults(settings.fault_hang_file, settings.fault_kill_after)
        self._long_lived = LongLived()
        self._started = False
        self._done = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def _consumer(self) -> Consumer:
        """The group's consumer of the source topic."""
        return started(self._made_consumer, "the counting loop's consumer")

    @property
    def outbox(self) -> Outbox | TransactionalOutbox:
        """Where changelog records and dead letters go, and their acknowledgements."""
        outbox = self._made_outbox
        if outbox is None:  # not through ``started``: mypy cannot solve its type for a union
            raise NotStarted("the counting loop's outbox is made when the worker starts, and was used before")
        return outbox

    @property
    def checkpoint(self) -> Checkpoint:
        """When and how the loop's progress is made durable."""
        return started(self._made_checkpoint, "the counting loop's checkpoint")

    async def start(self) -> None:
        settings, clients = self.settings, self.clients
        consumer = clients.consumer(
            group_id=settings.app_id,
            client_id=f"{settings.app_id}-counting",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # events of an aborted transaction (a failed ingest that wrote transactionally) never count
            isolation_level="read_committed",
            partition_assignment_strategy=(self._assignor,),
            # a worker that dies is noticed in 10 s (Kafka's default is 45 s)
            session_timeout_ms=10_000,
            # a rebalance is noticed at the next heartbeat
            heartbeat_interval_ms=1_000,
            # restoring a partition inside the rebalance listener does not poll: allow long ones
            max_poll_interval_ms=900_000,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        outbox: Outbox | TransactionalOutbox
        if settings.processing_guarantee == "exactly_once":
            outbox = TransactionalOutbox(
                clients, settings.app_id, settings.changelog_topic, settings.dlq_topic, self.topic
            )
        else:
            producer = clients.producer(
                client_id=f"{settings.app_id}-counting",
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                max_batch_size=1024 * 1024,
                max_request_size=2 * 1024 * 1024,
            )
            await producer.start()
            outbox = Outbox(producer, settings.changelog_topic, settings.dlq_topic)
        checkpoint = Checkpoint(
            outbox,
            self.store,
            consumer.commit,
            consumer.position,
            self.topic,
            interval_s=settings.commit_interval_s,
            max_pending=settings.checkpoint_max_pending,
            after_step=self._faults.after,
        )
        self._made_consumer, self._made_outbox, self._made_checkpoint = consumer, outbox, checkpoint
        await self.recovery.start(ChangelogReader(clients, settings.changelog_topic))
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Listener(self))
        self._started = True

    async def run(self) -> None:
        """Until ``stop``: fetch, process, checkpoint; then a last checkpoint."""
        try:
            while not self._stopping:
                batch = await self._consumer.getmany(
                    timeout_ms=FETCH_TIMEOUT_MS, max_records=self.settings.batch_records
                )
                # aiokafka returns only records of the assignment active when getmany returns
                if not await self._take(batch, self._generation) and batch:
                    await asyncio.sleep(FETCH_TIMEOUT_MS / 1000)  # a rebalance is under way
            async with self._lock:
                await self.lose(await self.checkpoint.commit(self.partitions), rejoin=False)
                self.recovery.save(self.partitions.values())
            self._done.set()
        except Exception as exc:
            leave_on(exc, "in the counting loop")

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Let ``run`` finish the batch in hand and checkpoint; then leave the group and close."""
        self._stopping = True
        if not self._started:
            return
        try:
            await asyncio.wait_for(self._done.wait(), timeout_s)
        except TimeoutError:
            log.warning(
                "the counting loop did not finish within %.0f s; the last batch is replayed", timeout_s
            )
        await self._consumer.stop()
        await self.recovery.stop()
        await self.outbox.close()
        self.store.close()

    # --- one batch --------------------------------------------------------------------------------

    async def _take(self, batch: Mapping[TopicPartition, Sequence[Record]], generation: int) -> bool:
        """Process a fetched batch, send its dead letters, checkpoint when due. False: the batch
        was put back, as the assignment is being restored or partitions were lost."""
        async with self._lock:
            if generation != self._generation:
                return True  # a rebalance since: the consumer restarts from the committed offsets
            if self.recovering or not await self._schemas_learnt(batch):
                self._fetch_again(batch)
                return False
            # a batch is tens of milliseconds of work, and getmany returns at once while records
            # are buffered: process it in slices and yield between them, so that the web server
            # (metrics, API, feed) answers under load (bench/scrape.py)
            for tp, records in batch.items():
                for i in range(0, len(records), SLICE):
                    self._process({tp: records[i : i + SLICE]})
                    await asyncio.sleep(0)
            if self._dead:
                dead, self._dead = self._dead, []
                await self.outbox.dead_letters(dead)
            if self.checkpoint.due(self.partitions) or (not batch and behind(self.partitions)):
                # crimes past the horizon go with the checkpoint
                sweep(self.partitions, self.store, sweep_budget(self.records_processed - self._swept_at))
                self._swept_at = self.records_processed
                await self.lose(await self.checkpoint.commit(self.partitions))
                self._long_lived.after_checkpoint()
            await self._faults.maybe_hang()
        return True

    async def _schemas_learnt(self, batch: Mapping[TopicPartition, Sequence[Record]]) -> bool:
        """Learn from the registry the writer schemas of registry ids in ``batch`` not seen yet.
        False: the registry cannot be reached, and the batch is read again later (nothing is
        dead-lettered for it; the watchdog gives no verdict while it lasts)."""
        if self.schemas is None:
            return True
        readers = self.schemas.events.readers
        missing = readers.missing(msg.value for records in batch.values() for msg in records)
        if not missing:
            return True
        try:
            await self.schemas.learn(missing, readers)
        except RegistryUnavailable:
            return False
        return True

    def _fetch_again(self, batch: Mapping[TopicPartition, Sequence[Record]]) -> None:
        """Put the consumer back before records it returned but the loop did not process: its
        position has moved past them, and a commit would otherwise skip them."""
        for tp, records in batch.items():
            if records:
                with contextlib.suppress(IllegalStateError):  # no longer assigned: not ours
                    self._consumer.seek(tp, records[0].offset)

    def _process(self, batch: Mapping[TopicPartition, Sequence[Record]]) -> None:
        """Decode, look up and count each record of ``batch``, keeping changed crimes pending.

        complex: the per-record path, written out in one loop on purpose (a call per step per
        record was a measurable share of the worker's time); each step it takes is a function
        of the core (``count_event``) or the codec."""
        # the forces and changes of accepted events, tallied once per slice (Counter over a
        # list counts in C, where ``+= 1`` on a Counter is a dict lookup and a call per event)
        forces: list[str] = []
        changes: list[Change] = []
        breach = False
        wall_today = utc_today()
        latest_day = latest_accepted_day(wall_today)
        keep_days = self.settings.retention_days
        today_of = self.clock.today
        decode, partitions = self._decode, self.settings.partitions
        for tp, records in batch.items():
            if not records:
                continue
            partition = tp.partition
            part = self.partitions[tp.partition]  # a record of a partition not restored: a bug
            stored = self.store.reader(tp.partition)
            pending, counts = part.pending, part.counts
            fresh = 0
            for msg in records:
                value = msg.value
                try:
                    if value is None:
                        raise DecodeError("record has no value (tombstone)")
                    event = decode(value)
                    crime_key = event.crime_key
                    key = crime_key.encode()
                    held = pending.get(key)
                    if held is None:
                        raw = stored(key)
                        if raw is not None:
                            held = decode_held(raw)[0]
                        elif partition_of(key, partitions) != partition:  # checked once per crime
                            raise RejectedEvent(
                                f"crime {crime_key!r} belongs to partition "
                                f"{partition_of(key, partitions)}, not {partition} (the producer's "
                                "partitioner is not murmur2 of the key force_id/crime_ref)",
                                reason="wrong_partition",
                            )
                    applied = count_event(
                        event,
                        held,
                        counts,
                        today=today_of(counts.newest),
                        latest_day=latest_day,
                        keep_days=keep_days,
                        offset=msg.offset,
                        crime_key=crime_key,
                    )
                except (DecodeError, RejectedEvent) as exc:
                    self._reject(msg, exc.reason, str(exc))
                    continue
                if applied.state is not None:
                    if held is None:  # in neither the pending changes nor the store
                        fresh += 1
                    pending[key] = applied.state
                forces.append(event.force_id)
                changes.append(applied.change)
                if applied.added is not None and self._is_breach(applied.added):
                    breach = True
            part.processed = records[-1].offset + 1
            part.fresh += fresh
            self.records_processed += len(records)
            today = today_of(counts.newest)
            if today is not None:
                floor = horizon(today, keep_days)
                if counts.floor is None or floor > counts.floor:
                    counts.prune(floor)
        metrics.count_accepted(Counter(forces), Counter(changes), time.time())
        if breach:
            self._on_breach()

    def _reject(self, msg: Record, reason: str, error: str) -> None:
        log.warning("dead-lettered %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, reason, error)
        metrics.REJECTED.labels(reason).inc()
        self._dead.append(DeadLetter(msg.key, msg.value, reason, error, msg.topic, msg.partition, msg.offset))

    # --- membership and rebalances ----------------------------------------------------------------

    def _me(self) -> MemberInfo:
        return MemberInfo(
            self.settings.web_url, tuple(sorted(self.partitions)), tuple(self.store.partitions())
        )

    def _on_membership(self, membership: Membership) -> None:
        self.membership = membership

    async def lose(self, lost: set[int], *, rejoin: bool = True) -> None:
        """Give up partitions whose transaction was fenced (``streams.runtime.transactions``):
        their uncommitted changes and counts are dropped, the store keeps what was committed,
        and the group is asked to rebalance, after which whoever owns them restores them."""
        if not lost:
            return
        for p in lost:
            part = self.partitions.pop(p, None)
            if part is not None:
                part.counts.forget()
        await self.outbox.release(lost)
        self.recovering = True
        metrics.PARTITIONS.set(len(self.partitions))
        metrics.FENCED.inc(len(lost))
        log.warning(
            "partitions %s of %s fenced (claimed by another worker, or their transaction timed out): "
            "their uncommitted changes are dropped%s",
            sorted(lost),
            self.topic,
            "; rejoining the group" if rejoin else "",
        )
        if rejoin:
            self._consumer._coordinator.request_rejoin()  # aiokafka has no public call for it

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            self.recovering = True
            await self.lose(await self.checkpoint.commit(self.partitions), rejoin=False)
            self.recovery.save(self.partitions.values())
            # every producer goes: the next assignment claims its partitions afresh (a partition
            # kept may have had another owner in between, during a long pause)
            await self.outbox.release()

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            mine = sorted(tp.partition for tp in assigned if tp.topic == self.topic)
            # first: from here no earlier owner can write to these partitions (exactly-once)
            await self.outbox.claim(mine)
            for p in set(self.partitions) - set(mine):
                # its counts go (and leave the aggregates); its store stays, for a later assignment
                self.partitions.pop(p).counts.forget()
            with self._long_lived.restoring():
                for p in mine:
                    part = await self.recovery.restore(p, self.partitions.get(p))
                    committed = await self._consumer.committed(TopicPartition(self.topic, p))
                    part.committed = committed
                    self.partitions[p] = part
            self.recovering = False
            metrics.PARTITIONS.set(len(mine))
            log.info("owning partitions %s of %s", mine, self.topic)

    # --- what others read -------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """The alert leader is the owner of partition 0 of the source topic."""
        return 0 in self.partitions

    def newest(self) -> dt.date | None:
        days = [p.counts.newest for p in self.partitions.values() if p.counts.newest is not None]
        return max(days) if days else None

    def backlog(self) -> int:
        """Records of the owned partitions not processed yet, by the high watermarks of the last
        fetches (no broker round trip): 0 when none is known."""
        consumer = self._made_consumer
        if consumer is None:
            return 0  # not started: nothing fetched
        assigned = consumer.assignment()  # during a rebalance, partitions may not match it
        total = 0
        for p, part in self.partitions.items():
            tp = TopicPartition(self.topic, p)
            if tp not in assigned or part.processed is None:
                continue
            end = consumer.highwater(tp)  # asserts that ``tp`` is assigned
            if end is not None:
                total += max(0, end - part.processed)
        return total

    def caught_up(self) -> bool:
        """Whether the loop owns partitions, restored, has fetched from each (so knows its end),
        and has processed every record up to those ends."""
        consumer = self._made_consumer
        if consumer is None or not self.partitions or self.recovering:
            return False
        assigned = consumer.assignment()
        for p, part in self.partitions.items():
            tp = TopicPartition(self.topic, p)
            end = consumer.highwater(tp) if tp in assigned else None
            # the next record to process: past the last processed, else the last committed
            at = part.processed if part.processed is not None else part.committed or 0
            if end is None or at < end:
                return False
        return True

    def lag_inputs(self) -> dict[int, int | None]:
        """Owned partition -> the group's committed offset (None: none yet)."""
        return {p: part.committed for p, part in self.partitions.items()}

    def progress(self) -> int:
        """A number that grows whenever the loop commits or restores anything."""
        return sum(part.committed or 0 for part in self.partitions.values()) + self.recovery.records_read


def leave_on(exc: Exception, doing: str) -> NoReturn:
    """End the worker for ``exc``, raised ``doing`` something: the one mapping of the counting
    loop's and both rebalance callbacks' errors to exit codes (``streams.runtime.exits``).
    Call it from the ``except`` block, so that the traceback is logged."""
    if isinstance(exc, StorageError):
        leave(ExitCode.STORAGE, f"{exc}; free space and start the worker again")
    if isinstance(exc, ProduceFailed):
        leave(ExitCode.STALLED, f"{doing}: the broker did not take what the worker produced: {exc}")
    if isinstance(exc, KafkaError):
        leave(ExitCode.STALLED, f"Kafka error {doing}: {exc!r}", exc_info=True)
    leave(ExitCode.BUG, f"bug {doing}; nothing past the last checkpoint is committed", exc_info=True)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's rebalance callbacks; an error here would be swallowed, so it ends the worker."""

    def __init__(self, loop: CountingLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            await self._loop.on_revoked(revoked)
        except Exception as exc:
            leave_on(exc, "while partitions were revoked")

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        started = time.monotonic()
        try:
            await self._loop.on_assigned(assigned)
        except Exception as exc:
            leave_on(exc, "while restoring assigned partitions")
        log.info("assignment ready in %.2f s", time.monotonic() - started)
