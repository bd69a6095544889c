"""A checkpoint: what makes the counting loop exact under failure.

The loop applies records to the in-memory view (changed crimes pending, counts moved) and, at
each checkpoint, makes them durable. Under ``DW_PROCESSING_GUARANTEE=exactly_once`` (the
default; ``Checkpoint.commit``, transactional branch):

1. **changelog sent**: per partition, in that partition's transaction
   (``streams.runtime.transactions``): every crime changed since the last checkpoint, one record
   per crime, on the changelog partition of the same number (dead letters of the partition's
   records are already in the same transaction); every acknowledgement is awaited;
2. **committed**: per partition, the consumer's position (after the last record processed and
   after any transaction marker that followed it) joins the transaction, which is committed:
   the changed crimes and the offset become visible together, or neither does;
3. **store written**: per partition, the changed crimes, the positions (next source offset,
   next changelog offset) and the counts changed (``streams.runtime.saved_counts``) in one
   atomic write.

Under ``at_least_once`` the order is changelog acknowledged, store written, offsets committed by
the consumer (steps 1, 3, 2, with no transaction).

Why any crash leaves the counts exact (the argument ``streams.core.crimes`` completes). The next
owner of a partition claims it first (exactly-once: which aborts a transaction left open), then
restores the store from the changelog from its stored position to the end (``read_committed``),
then consumes from the group's committed offset:

- a crash before the commit (exactly-once) or before step 1 completes (at-least-once): nothing
  of the checkpoint is committed; at-least-once, whatever of step 1 landed is read back. Each
  record replayed from the last commit is either ignored (its crime's state already holds an
  offset at or after it) or applied once;
- a crash after the commit and before the store write (exactly-once), or between steps 1 and 3
  (at-least-once): the store is behind the changelog, and recovery reads what it lacks;
- a crash between the store write and the offset commit (at-least-once): the store is ahead of
  the commit; the replay from the commit is ignored record by record, for the same reason;
- after all steps: nothing is replayed.

The changelog is written before the store so that the store never holds a state the changelog
lacks: a store lost later (a new machine, a deleted data directory) is rebuilt from the
changelog alone. Committed offsets never run ahead of the changelog, so a record is never
committed before its effect is durable. Offsets only move forward: a position below the last
commit, or below the last record processed, is a bug (``OffsetWentBack``).

A paused worker (exactly-once): the new owner's claim fences it, so its commit fails and the
checkpoint returns the partition as **lost**; its changes never reach the changelog, the
offsets or the store. At-least-once has no such fence: a worker that wakes after its partitions
moved can still append stale crime states to the changelog, after the new owner's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from streams.codec import encode_held
from streams.errors import StreamError
from streams.runtime.outbox import Outbox
from streams.runtime.partition import PartitionState
from streams.runtime.store import Positions, Store
from streams.runtime.transactions import TransactionalOutbox

log = logging.getLogger(__name__)

Commit = Callable[[dict[TopicPartition, int]], Awaitable[None]]
Position = Callable[[TopicPartition], Awaitable[int]]


class OffsetWentBack(StreamError):
    """A commit below the last committed offset: a bug in the loop."""


class Checkpoint:
    def __init__(
        self,
        outbox: Outbox | TransactionalOutbox,
        store: Store,
        commit: Commit,
        position: Position,
        source_topic: str,
        *,
        interval_s: float,
        max_pending: int,
        after_step: Callable[[str], None] = lambda step: None,
    ) -> None:
        self._outbox = outbox
        self._store = store
        self._commit = commit
        self._position = position
        self._source_topic = source_topic
        self.interval_s = interval_s
        self.max_pending = max_pending
        #: called with "changelog", "commit", "store" after each step (faults for tests)
        self._after_step = after_step
        self.last_at = time.monotonic()
        #: when the last commit of offsets succeeded (Unix time; 0: never)
        self.committed_at = 0.0

    def due(self, parts: Mapping[int, PartitionState]) -> bool:
        """Whether to checkpoint now: the interval has passed, or enough changes are pending."""
        pending = sum(len(p.pending) for p in parts.values())
        if pending >= self.max_pending:
            return True
        return time.monotonic() - self.last_at >= self.interval_s

    async def commit(self, parts: Mapping[int, PartitionState]) -> set[int]:
        """The steps of the module docstring for every partition in ``parts``; returns the
        partitions lost to a fence (their changes are in neither the changelog nor the store)."""
        self.last_at = time.monotonic()
        encoded = await self._send_changelog(parts)
        after = await self._outbox.acknowledged()
        self._after_step("changelog")
        if isinstance(self._outbox, TransactionalOutbox):
            return await self._commit_then_store(self._outbox, parts, encoded, after)
        await self._store_then_commit(parts, encoded, after)
        return set()

    async def _commit_then_store(
        self,
        outbox: TransactionalOutbox,
        parts: Mapping[int, PartitionState],
        encoded: Mapping[int, Mapping[bytes, bytes | None]],
        after: Mapping[int, int],
    ) -> set[int]:
        """Exactly-once, steps 2 and 3: the source offsets committed in each partition's
        transaction (with its changelog records), then the store written for the partitions
        whose transaction committed; returns those lost to a fence."""
        offsets = await self._source_offsets(parts)
        lost = await outbox.commit({tp.partition: o for tp, o in offsets.items()})
        self._committed(parts, {tp: o for tp, o in offsets.items() if tp.partition not in lost})
        # the commit marker follows a transaction's last record at once (the partition's
        # producer is its only writer): the store's position goes past it, so a restart
        # finds nothing left to read
        await self._write_store(parts, encoded, {p: o + 1 for p, o in after.items()}, skip=lost)
        self._after_step("store")
        return lost

    async def _store_then_commit(
        self,
        parts: Mapping[int, PartitionState],
        encoded: Mapping[int, Mapping[bytes, bytes | None]],
        after: Mapping[int, int],
    ) -> None:
        """At-least-once, steps 2 and 3: the store written, then the source offsets committed
        with the consumer (a failed commit only means the next owner replays, harmlessly)."""
        await self._write_store(parts, encoded, after)
        self._after_step("store")
        offsets = await self._source_offsets(parts)
        if not offsets:
            return
        try:
            await self._commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # the group has moved on (a rebalance) or the coordinator is away: the changelog and
            # the store hold the work, so whoever consumes these records next ignores them
            log.warning("offsets not committed (%r); the next owner replays them harmlessly", exc)
            return
        self._committed(parts, offsets)

    async def _send_changelog(
        self, parts: Mapping[int, PartitionState]
    ) -> dict[int, dict[bytes, bytes | None]]:
        """Step 1: every pending crime, encoded, and a tombstone for every crime the retention
        sweep expired (``streams.runtime.retention``), sent. Tens of thousands of crimes take a
        few hundred milliseconds to encode, send and write: yield between partitions so that the
        web server is not held up (the loop's lock keeps the state still)."""
        encoded: dict[int, dict[bytes, bytes | None]] = {}
        for p, part in parts.items():
            if part.pending or part.expired:
                states: dict[bytes, bytes | None] = {
                    key: encode_held(held, p) for key, held in part.pending.items()
                }
                states.update(dict.fromkeys(part.expired))
                encoded[p] = states
                await self._outbox.changelog(p, states.items())
                await asyncio.sleep(0)
        return encoded

    async def _write_store(
        self,
        parts: Mapping[int, PartitionState],
        encoded: Mapping[int, Mapping[bytes, bytes | None]],
        after: Mapping[int, int],
        skip: Collection[int] = (),
    ) -> None:
        """The store step: changed and expired crimes, the expiry index entries the sweep read,
        positions and the counts that changed, one atomic write per partition. The counts then
        count exactly the crimes stored (the loop's lock keeps them still meanwhile)."""
        for p, part in parts.items():
            if p in skip:
                continue
            if p in after:
                part.changelog_next = after[p]
            part.store_crimes += part.fresh - part.gone
            part.fresh = part.gone = 0
            if p in encoded or part.processed is not None or part.unindex or part.counts.changed:
                source_next = part.processed if part.processed is not None else part.committed or 0
                self._store.write(
                    p,
                    encoded.get(p, {}),
                    Positions(source_next, part.changelog_next),
                    part.unindex,
                    part.saved.changes(part.counts, part.store_crimes),
                )
            part.pending.clear()
            part.expired.clear()
            part.unindex.clear()
            await asyncio.sleep(0)

    async def _source_offsets(self, parts: Mapping[int, PartitionState]) -> dict[TopicPartition, int]:
        """The consumer's position in each partition that moved since its last commit: every
        record the consumer has returned has been processed."""
        offsets: dict[TopicPartition, int] = {}
        for p, part in parts.items():
            tp = TopicPartition(self._source_topic, p)
            try:
                position = await self._position(tp)
            except IllegalStateError:  # revoked meanwhile: whoever owns it now replays harmlessly
                continue
            behind = [o for o in (part.processed, part.committed) if o is not None and position < o]
            if behind:
                raise OffsetWentBack(
                    f"{self._source_topic}[{p}]: position {position} behind {max(behind)} "
                    f"(processed {part.processed}, committed {part.committed})"
                )
            if position != part.committed:
                offsets[tp] = position
        return offsets

    def _committed(self, parts: Mapping[int, PartitionState], offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            self.committed_at = time.time()
        for tp, offset in offsets.items():
            parts[tp.partition].committed = offset
        self._after_step("commit")
