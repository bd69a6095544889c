"""Small fakes for Kafka I/O, so the runtime is tested without a broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from streams.clients import Batch
from streams.codec import encode_outcome
from streams.kafka_local import free_port
from streams.model import OutcomeEvent


class FakeBatch:
    """A ``streams.clients.Batch`` that holds ``capacity`` records."""

    def __init__(self, capacity: int) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []
        self.capacity = capacity

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: int | None) -> object | None:
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    """A ``streams.clients.Producer`` without transactions: topics as lists; ``fail`` makes every
    acknowledgement an error."""

    _txn_manager: Any = None

    def __init__(self, capacity: int = 3, fail: bool = False) -> None:
        self.logs: dict[tuple[str, int], list[tuple[bytes | None, bytes | None, Any]]] = {}
        self.capacity = capacity
        self.fail = fail
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def begin_transaction(self) -> None:
        raise NotImplementedError("the fake producer has no transactions")

    async def commit_transaction(self) -> None:
        raise NotImplementedError("the fake producer has no transactions")

    async def abort_transaction(self) -> None:
        raise NotImplementedError("the fake producer has no transactions")

    async def send_offsets_to_transaction(self, offsets: Mapping[Any, int], group_id: str) -> None:
        raise NotImplementedError("the fake producer has no transactions")

    def transaction(self) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError("the fake producer has no transactions")

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    def _ack(self, base: int) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail:
            fut.set_exception(RuntimeError("broker said no"))
        else:
            fut.set_result(SimpleNamespace(offset=base))
        return fut

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert isinstance(batch, FakeBatch), "a batch of this producer's create_batch"
        log = self.logs.setdefault((topic, partition), [])
        base = len(log)
        log.extend((k, v, None) for k, v in batch.records)
        return self._ack(base)

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        log = self.logs.setdefault((topic, partition or 0), [])
        log.append((key, value, headers))
        return self._ack(len(log) - 1)


class FakeReader:
    """A changelog as a dict partition -> list of (key, value); offsets are list indices."""

    def __init__(self, logs: Mapping[int, Sequence[tuple[bytes, bytes | None]]], begin: int = 0) -> None:
        self.logs = logs
        self.begin = begin

    async def bounds(self, partition: int) -> tuple[int, int]:
        return self.begin, len(self.logs.get(partition, []))

    async def read(self, partition: int, start: int, end: int) -> AsyncIterator[list[Any]]:
        log = self.logs.get(partition, [])
        for i in range(start, end, 2):  # chunks of two, to cover more than one store write
            yield [
                SimpleNamespace(offset=j, key=log[j][0], value=log[j][1]) for j in range(i, min(i + 2, end))
            ]


def record(event: OutcomeEvent | None, offset: int, partition: int = 0, value: bytes | None = None) -> Any:
    """A consumer record of the disposals topic."""
    if event is not None:
        value = encode_outcome(event)
    key = event.crime_key.encode() if event is not None else b"bad"
    return SimpleNamespace(topic="disposals", partition=partition, offset=offset, key=key, value=value)


class FakeTxnProducer(FakeProducer):
    """A transactional producer: what a transaction sends is kept aside until it commits;
    ``fence`` makes its next commit fail as a newer holder of its transactional id would."""

    def __init__(self, logs: dict[tuple[str, int], list[Any]], transactional_id: str) -> None:
        super().__init__(capacity=2)
        self.logs = logs
        self.transactional_id = transactional_id
        self.in_txn = False
        self.fenced = False
        self.offsets: list[dict[Any, int]] = []
        self.committed_offsets: list[dict[Any, int]] = []
        self._txn_manager = SimpleNamespace(is_fatal_error=lambda: self.fenced)
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def begin_transaction(self) -> None:
        assert not self.in_txn
        self.in_txn = True

    async def send_offsets_to_transaction(self, offsets: Mapping[Any, int], group_id: str) -> None:
        assert self.in_txn
        self.offsets.append(dict(offsets))

    async def commit_transaction(self) -> None:
        from aiokafka.errors import ProducerFenced

        assert self.in_txn
        self.in_txn = False
        if self.fenced:
            raise ProducerFenced()
        self.committed_offsets.extend(self.offsets)
        self.offsets = []


class FakeClients:
    """``KafkaClients`` for a ``TransactionalOutbox``: one ``FakeTxnProducer`` per id."""

    def __init__(self) -> None:
        self.logs: dict[tuple[str, int], list[Any]] = {}
        self.producers: dict[str, FakeTxnProducer] = {}

    def producer(self, **options: Any) -> FakeTxnProducer:
        p = self.producers[options["transactional_id"]] = FakeTxnProducer(
            self.logs, options["transactional_id"]
        )
        return p


async def local_server(app: web.Application) -> tuple[web.AppRunner, str]:
    """``app`` served on a free local port: its runner (``cleanup()`` when done) and base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"
