"""Exactly-once writes that fence a paused worker (``DW_PROCESSING_GUARANTEE=exactly_once``, the
default): one transactional producer per owned source partition.

**The problem.** A worker stopped past its session timeout (a long GC pause, a frozen VM,
``SIGSTOP``) loses its partitions to another worker, but does not know it until it wakes. It
then finishes the batch in hand: with plain producers its changelog records land after the new
owner's, the compacted changelog keeps the older state of those crimes, and a later restore
counts them in their old cells. Its offset commit is refused by the group coordinator (a
stale generation), but the changelog has no such check.

**The mechanism** (Kafka Streams' exactly-once v1 shape, as aiokafka has no KIP-447 group
metadata for the v2 shape, and the one Faust uses):

- partition ``p`` is written only through a producer whose transactional id is
  ``<DW_APP_ID>-counting-<p>``: the same in every worker of the deployment;
- a worker that is assigned ``p`` starts that producer **before** it reads anything of ``p``
  (``claim``). Starting it is Kafka's ``InitProducerId``: the transaction coordinator bumps
  the id's epoch, aborts any transaction the previous holder left open (and waits until the
  abort markers are written), and from then on refuses every request of the previous epoch.
  The paused worker's sends, its ``AddPartitionsToTxn``, offsets and ``EndTxn`` all fail with
  ``ProducerFenced``, so nothing it does after the new owner's claim becomes visible;
- each checkpoint writes, per partition and in one transaction: the crimes changed in the
  partition (changelog partition ``p``), the dead letters of records from ``p``, and the
  consumer's position in ``p`` (``send_offsets_to_transaction``); then commits. Changelog and
  offsets therefore become visible together or not at all;
- every reader of the changelog reads ``read_committed`` (``streams.runtime.recovery``), and
  the new owner reads the changelog's end and the committed offset only after its claim, when
  no earlier transaction is still open: it starts from exactly what the previous owner
  committed, and nothing of what it did not.

A partition whose producer is fenced (or whose transaction the coordinator aborted on timeout)
is **lost** to this worker: its uncommitted changes are dropped without touching the store,
its counts are forgotten, and the worker asks its group to rebalance
(``CountingLoop.lose``). Whoever owns the partition next (this worker again, or another) restores
it from the store and the committed changelog, and consumes from the committed offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTxnState,
    KafkaError,
    ProducerFenced,
    TransactionCoordinatorFenced,
)

from streams.clients import ClientFactory
from streams.runtime.outbox import DeadLetter, Outbox, ProduceFailed

log = logging.getLogger(__name__)

#: errors that mean the partition's transaction is gone: another worker claimed the partition,
#: or the coordinator aborted the transaction (it outlived ``transaction_timeout_ms``)
FENCING_ERRORS = (
    ProducerFenced,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTxnState,
    TransactionCoordinatorFenced,
)

#: a transaction stays open at most one checkpoint interval; this is how long the coordinator
#: waits before it aborts one whose worker went quiet (a new owner's claim aborts it at once)
TRANSACTION_TIMEOUT_MS = 120_000


def transactional_id(app_id: str, partition: int) -> str:
    return f"{app_id}-counting-{partition}"


class TransactionalOutbox:
    """The counting loop's writes under exactly-once: per owned partition, one transactional
    producer, written through an ``Outbox`` of its own, and at most one open transaction (begun
    at the partition's first write after a commit)."""

    def __init__(
        self, clients: ClientFactory, app_id: str, changelog_topic: str, dlq_topic: str, source_topic: str
    ) -> None:
        self._clients = clients
        self.app_id = app_id
        self.changelog_topic = changelog_topic
        self.dlq_topic = dlq_topic
        self.source_topic = source_topic
        #: owned partition -> the outbox of its transactional producer
        self._outboxes: dict[int, Outbox] = {}
        self._open: set[int] = set()
        #: partitions whose transaction failed with a fencing error since their claim
        self.fenced: set[int] = set()

    def __len__(self) -> int:
        return sum(len(out) for out in self._outboxes.values())

    # --- ownership ------------------------------------------------------------------------------

    async def claim(self, partitions: Iterable[int]) -> None:
        """Start a producer for each partition: from here no earlier holder can write to it."""
        wanted = [p for p in partitions if p not in self._outboxes]
        made = {
            p: self._clients.producer(
                client_id=transactional_id(self.app_id, p),
                transactional_id=transactional_id(self.app_id, p),
                transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
                max_batch_size=1024 * 1024,
                max_request_size=2 * 1024 * 1024,
            )
            for p in wanted
        }
        results = await asyncio.gather(*(pr.start() for pr in made.values()), return_exceptions=True)
        failed = [(p, r) for p, r in zip(made, results, strict=True) if isinstance(r, BaseException)]
        self._outboxes.update(
            (p, Outbox(producer, self.changelog_topic, self.dlq_topic)) for p, producer in made.items()
        )
        if failed:
            p, exc = failed[0]
            raise ProduceFailed(f"cannot claim {self.source_topic}[{p}] for transactions: {exc!r}") from exc

    async def release(self, partitions: Iterable[int] | None = None) -> None:
        """Close the producers of ``partitions`` (all if None); an open transaction is aborted by
        the broker when the next owner claims the partition."""
        held = list(self._outboxes)
        chosen = held if partitions is None else [p for p in partitions if p in held]
        outboxes = [self._outboxes.pop(p) for p in chosen]
        for p in chosen:
            self._open.discard(p)
            self.fenced.discard(p)
        for out in outboxes:
            with contextlib.suppress(Exception):  # a fenced producer's sender has already failed
                await out.close()

    async def close(self) -> None:
        await self.release()

    # --- writes ---------------------------------------------------------------------------------

    async def _transaction(self, partition: int) -> Outbox | None:
        """The outbox of ``partition``, its producer inside a transaction; None once fenced."""
        if partition in self.fenced:
            return None
        out = self._outboxes.get(partition)
        if out is None:
            raise ProduceFailed(f"{self.source_topic}[{partition}] written before it was claimed")
        if partition not in self._open:
            if out.producer._txn_manager.is_fatal_error():  # its sender stopped on a fencing error
                self.fenced.add(partition)
                return None
            await out.producer.begin_transaction()
            self._open.add(partition)
        return out

    def _fenced(self, partition: int, exc: ProduceFailed) -> None:
        """A send or acknowledgement of ``partition`` failed: fenced, or a failure to raise."""
        if not isinstance(exc.__cause__, FENCING_ERRORS):
            raise exc
        self.fenced.add(partition)

    async def changelog(self, partition: int, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Send ``(crime key, state)`` records to changelog partition ``partition``, in the
        transaction of source partition ``partition``."""
        out = await self._transaction(partition)
        if out is None:
            return
        try:
            await out.changelog(partition, records)
        except ProduceFailed as exc:
            self._fenced(partition, exc)

    async def dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        """Each dead letter in the transaction of the source partition its record came from: a
        record replayed after a crash is dead-lettered once. A fenced partition's are not sent:
        the new owner consumes those records again and dead-letters them."""
        by_partition: dict[int, list[DeadLetter]] = {}
        for d in letters:
            by_partition.setdefault(d.partition, []).append(d)
        for partition, mine in by_partition.items():
            out = await self._transaction(partition)
            if out is None:
                continue
            try:
                await out.dead_letters(mine)
            except ProduceFailed as exc:
                self._fenced(partition, exc)

    async def acknowledged(self) -> dict[int, int]:
        """Wait for every record sent so far; changelog partition -> offset after its last record.
        A partition fenced meanwhile is added to ``fenced`` instead."""
        after: dict[int, int] = {}
        for partition, out in self._outboxes.items():
            try:
                after.update(await out.acknowledged())
            except ProduceFailed as exc:
                self._fenced(partition, exc)
        for p in self.fenced:
            after.pop(p, None)
        return after

    async def commit(self, offsets: dict[int, int]) -> set[int]:
        """Per partition: add its source offset to its transaction and commit. Returns the
        partitions that are fenced (nothing of their transaction is visible)."""
        partitions = sorted((self._open | set(offsets)) - self.fenced)
        await asyncio.gather(*(self._commit_one(p, offsets.get(p)) for p in partitions))
        return set(self.fenced)

    async def _commit_one(self, partition: int, offset: int | None) -> None:
        try:
            out = await self._transaction(partition)
            if out is None:
                return
            if offset is not None:
                tp = TopicPartition(self.source_topic, partition)
                await out.producer.send_offsets_to_transaction({tp: offset}, self.app_id)
            await out.producer.commit_transaction()
        except FENCING_ERRORS as exc:
            log.warning("%s[%d]: transaction not committed: %r", self.source_topic, partition, exc)
            self.fenced.add(partition)
        except KafkaError as exc:
            where = f"{self.source_topic}[{partition}]"
            raise ProduceFailed(f"cannot commit the transaction of {where}: {exc!r}") from exc
        finally:
            self._open.discard(partition)
