"""``AlertWriter``: the one writer of the alerts topic.

A Kafka transactional producer whose transactional id (``<DW_APP_ID>-alerts``) is the same in
every worker of a deployment, so at most one of them can write at a time. ``claim`` starts the
producer; the broker then fences the previous holder and aborts its open transaction, so a
worker that lost leadership but does not know it yet (a rebalance in flight, a long pause)
cannot write a transition any more. ``write`` sends one evaluation's transitions in one
transaction. ``release`` closes the producer when this worker stops leading.
"""

from __future__ import annotations

import contextlib

from aiokafka.errors import KafkaError, ProducerFenced

from streams.clients import ClientFactory, Producer
from streams.errors import StreamError


class Fenced(StreamError):
    """Another worker has started writing alerts: this one is no longer the leader."""


class WriteAborted(StreamError):
    """The broker failed the transaction (nothing of it was written), or the producer could not
    be started (the brokers away); the next write takes a fresh producer."""


class AlertWriter:
    def __init__(self, clients: ClientFactory, topic: str, transactional_id: str) -> None:
        self.clients, self.topic, self.transactional_id = clients, topic, transactional_id
        self._producer: Producer | None = None

    @property
    def claimed(self) -> bool:
        return self._producer is not None

    async def claim(self) -> Producer:
        """The transactional producer of the alerts topic, started (and so every earlier
        holder of its id fenced) at the first call."""
        if self._producer is None:
            producer = self.clients.producer(
                transactional_id=self.transactional_id, enable_idempotence=True, acks="all"
            )
            try:
                await producer.start()  # InitProducerId: fences every earlier holder of the id
            except KafkaError as exc:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise WriteAborted(f"cannot start the producer of {self.topic}: {exc!r}") from exc
            self._producer = producer
        return self._producer

    async def write(self, records: list[tuple[bytes, bytes]]) -> list[int]:
        """Send ``(key, value)`` records in one transaction; their offsets once committed.
        Raises ``Fenced`` (nothing was written) if another worker has claimed the topic since."""
        producer = await self.claim()
        try:
            async with producer.transaction():
                sent = [
                    await producer.send(self.topic, value, key=key, partition=0) for key, value in records
                ]
                metas = [await fut for fut in sent]
        except ProducerFenced as exc:
            await self.release()
            raise Fenced(f"another worker now writes {self.topic}") from exc
        except KafkaError as exc:
            await self.release()  # the transaction is aborted; a fresh producer next time
            raise WriteAborted(f"the transaction on {self.topic} failed: {exc!r}") from exc
        return [m.offset for m in metas]

    async def release(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
