"""Offsets are committed only after every message produced before them is acknowledged.

The worker's exactness rests on one ordering: a source offset is committed only once the table
changelog records written while processing the records before it are on the broker. Faust
means to do this (it flushes its producer before committing), but in faust-streaming 0.15.3
the flush of its send-soon buffer (``ProducerBuffer.flush_atmost``) gives up as soon as one
message takes longer than 100 ms to leave the buffer, and it counts a message as gone once it
has left the queue, before it reaches the Kafka client. Under load a commit can then run ahead
of the changelog; a crash just after it loses the state change of an already-committed event.

``guard(buffer)`` wraps that buffer: every future put into it is remembered until it completes
(acknowledged by the broker, or failed), and ``flush`` waits for all those put before it began
(the commit's offsets are chosen before it flushes, so they cover every record they need). A flush that
cannot finish within ``timeout_s`` raises ``FlushTimeout`` rather than let the commit proceed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 120.0
#: a flush still waiting after this long is logged (a broker that does not acknowledge)
SLOW_S = 5.0


class FlushTimeout(RuntimeError):
    """Produced messages were not acknowledged in time: committing now could lose them."""


class UnackedMessages:
    """The futures of messages handed to a producer and not yet acknowledged."""

    def __init__(self) -> None:
        self._futures: set[asyncio.Future[Any]] = set()

    def __len__(self) -> int:
        return len(self._futures)

    def add(self, fut: asyncio.Future[Any]) -> None:
        self._futures.add(fut)
        fut.add_done_callback(self._futures.discard)

    async def wait(self, timeout_s: float) -> None:
        """Until every message added so far has completed. Messages added meanwhile are not
        waited for: they belong to records after the offsets being committed, and under a steady
        stream waiting for them too would never end."""
        pending = list(self._futures)
        if not pending:
            return
        _, not_done = await asyncio.wait(pending, timeout=min(SLOW_S, timeout_s))
        if not_done and timeout_s > SLOW_S:
            log.warning(
                "commit waiting: %d produced messages not acknowledged after %.0f s", len(not_done), SLOW_S
            )
            _, not_done = await asyncio.wait(not_done, timeout=timeout_s - SLOW_S)
        if not_done:
            raise FlushTimeout(f"{len(not_done)} produced messages not acknowledged in {timeout_s}s")


def guard(buffer: Any, timeout_s: float = FLUSH_TIMEOUT_S) -> UnackedMessages:
    """Make ``buffer.flush()`` (a Faust ``ProducerBuffer``) wait for every message put into it."""
    unacked = UnackedMessages()
    put, flush_as_faust = buffer.put, buffer.flush

    def put_and_remember(fut: asyncio.Future[Any]) -> None:
        unacked.add(fut)
        put(fut)

    async def flush() -> None:
        if buffer.state != "running":  # stopping: nothing sends any more, do as Faust does
            await flush_as_faust()
            return
        await unacked.wait(timeout_s)

    buffer.put = put_and_remember
    buffer.flush = flush
    return unacked
