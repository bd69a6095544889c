"""A checkpoint: what makes the counting loop exact under failure.

The loop applies records to the in-memory view (changed crimes pending, counts moved) and, at
each checkpoint, makes them durable in this order (``Checkpoint.commit``):

1. **changelog acknowledged**: every crime changed since the last checkpoint is written to the
   compacted changelog, one record per crime, on the changelog partition of the same number;
   every dead letter is written too; and every acknowledgement is awaited;
2. **store written**: per partition, the changed crimes and the positions (next source offset,
   next changelog offset) in one atomic write;
3. **offsets committed**: the consumer's position in each partition, which is after the last
   record processed and after any transaction marker that followed it (a marker takes an offset
   too: committing "last record + 1" would leave every transactionally written partition one
   short of its end forever).

Why any crash leaves the counts exact (the argument ``streams.core.crimes`` completes):

- a crash before step 1 completes: nothing of the checkpoint is in the store or committed. The
  next owner restores the store from the changelog from its stored position to the end (picking
  up whatever of step 1 did land) and consumes from the last commit: each record replayed is
  either ignored (its crime's state already holds an offset at or after it) or applied once;
- a crash between 1 and 2: the same, with all of step 1 in the changelog;
- a crash between 2 and 3: the store is ahead of the commit; the replay from the commit is
  ignored record by record, for the same reason;
- after 3: nothing is replayed.

The changelog is written before the store so that the store never holds a state the changelog
lacks: a store lost later (a new machine, a deleted data directory) is rebuilt from the
changelog alone. Committed offsets never run ahead of the changelog, so a record is never
committed before its effect is durable. Offsets only move forward: a position below the last
commit, or below the last record processed, is a bug (``OffsetWentBack``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from streams.codec import encode_held
from streams.errors import StreamError
from streams.runtime.outbox import Outbox
from streams.runtime.partition import PartitionState
from streams.runtime.store import Positions, Store

log = logging.getLogger(__name__)

Commit = Callable[[dict[TopicPartition, int]], Awaitable[None]]
Position = Callable[[TopicPartition], Awaitable[int]]


class OffsetWentBack(StreamError):
    """A commit below the last committed offset: a bug in the loop."""


class Checkpoint:
    def __init__(
        self,
        outbox: Outbox,
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
        #: called with "changelog", "store", "commit" after each step (faults for tests)
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

    async def commit(self, parts: Mapping[int, PartitionState]) -> None:
        """Steps 1-3 of the module docstring, for every partition in ``parts``."""
        self.last_at = time.monotonic()
        # 1. changelog and dead letters, every acknowledgement awaited. Tens of thousands of
        # crimes take a few hundred milliseconds to encode, send and write: yield between
        # partitions so that the web server is not held up (the loop's lock keeps the state still)
        encoded: dict[int, dict[bytes, bytes]] = {}
        for p, part in parts.items():
            if part.pending:
                encoded[p] = {key: encode_held(held, p) for key, held in part.pending.items()}
                await self._outbox.changelog(p, encoded[p].items())
                await asyncio.sleep(0)
        after = await self._outbox.acknowledged()
        self._after_step("changelog")
        # 2. store: changed crimes and positions, one atomic write per partition
        for p, part in parts.items():
            if p in after:
                part.changelog_next = after[p]
            if p in encoded or part.processed is not None:
                source_next = part.processed if part.processed is not None else part.committed or 0
                self._store.write(p, encoded.get(p, {}), Positions(source_next, part.changelog_next))
            part.pending.clear()
            await asyncio.sleep(0)
        self._after_step("store")
        # 3. source offsets: every record the consumer has returned has been processed
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
        if not offsets:
            return
        try:
            await self._commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # the group has moved on (a rebalance) or the coordinator is away: the changelog and
            # the store hold the work, so whoever consumes these records next ignores them
            log.warning("offsets not committed (%r); the next owner replays them harmlessly", exc)
            return
        self.committed_at = time.time()
        for tp, offset in offsets.items():
            parts[tp.partition].committed = offset
        self._after_step("commit")
