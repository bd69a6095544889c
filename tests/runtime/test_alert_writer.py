"""The alert writer's producer, when the brokers cannot be reached."""

from __future__ import annotations

from typing import Any, cast

import pytest
from aiokafka.errors import KafkaConnectionError

from streams.alerting.writer import AlertWriter, WriteAborted
from streams.clients import ClientFactory


class Unreachable:
    """A producer whose start finds no broker."""

    def __init__(self) -> None:
        self.stopped = False

    async def start(self) -> None:
        raise KafkaConnectionError("no broker")

    async def stop(self) -> None:
        self.stopped = True


async def test_a_producer_that_cannot_start_is_write_aborted_closed_and_made_afresh_next_time() -> None:
    """The evaluator catches ``WriteAborted`` and tries again next interval; a broker error from
    the producer's start used to reach it raw and end the worker."""
    made: list[Unreachable] = []

    class Clients:
        def producer(self, **options: Any) -> Any:
            made.append(Unreachable())
            return made[-1]

        def consumer(self, **options: Any) -> Any:
            raise AssertionError("the writer consumes nothing")

    writer = AlertWriter(cast(ClientFactory, Clients()), "alerts", "app-alerts")
    for _ in range(2):
        with pytest.raises(WriteAborted, match="cannot start the producer of alerts"):
            await writer.write([(b"k", b"v")])
    assert len(made) == 2 and all(p.stopped for p in made) and not writer.claimed
