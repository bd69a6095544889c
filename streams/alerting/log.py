"""``AlertLog``: every transition on the alerts topic, in order, and the latest per alert.

The ``alerts`` topic (one partition, keyed by fingerprint) is the source of truth for each
alert's state. Every worker follows it from the beginning, reading committed records only, and
serves the feed (``/api/alerts``, SSE) from what it has read. The leader evaluates against it
(``streams.alerting.evaluator``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from streams.clients import ClientFactory, Consumer
from streams.errors import DecodeError, StreamError
from streams.schema_registry import SINGLE_OBJECT_ALERTS, AlertDecoder
from streams.wire import alert_json

log = logging.getLogger(__name__)


class LogUnavailable(StreamError):
    """The brokers did not say where the alerts topic ends: whether the log is caught up is not
    known (the leader skips that evaluation)."""


class AlertLog:
    def __init__(
        self, clients: ClientFactory, topic: str, decode: AlertDecoder = SINGLE_OBJECT_ALERTS
    ) -> None:
        self.clients, self.topic = clients, topic
        self._decode = decode
        self.entries: list[dict[str, Any]] = []  # feed JSON, in topic order; entry["id"] = offset
        self.current: dict[str, dict[str, Any]] = {}  # fingerprint -> latest feed JSON
        self.position = 0  # next offset to read
        self.changed = asyncio.Condition()
        self._probe: Consumer | None = None

    def state_of(self) -> dict[str, str]:
        return {fp: rec["state"] for fp, rec in self.current.items()}

    def since(self, after: int) -> list[dict[str, Any]]:
        """Entries with id > ``after``."""
        lo, hi = 0, len(self.entries)
        while lo < hi:  # ids are increasing: binary search
            mid = (lo + hi) // 2
            if self.entries[mid]["id"] <= after:
                lo = mid + 1
            else:
                hi = mid
        return self.entries[lo:]

    async def wait_after(self, after: int, timeout_s: float) -> None:
        async with self.changed:
            if self.entries and self.entries[-1]["id"] > after:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout_s)

    async def add(self, offset: int, value: bytes) -> None:
        try:
            record = await self._decode(value)
        except DecodeError:  # not ours to judge: the topic is written only by the leader
            log.error("unreadable record on %s at offset %d; skipped", self.topic, offset)
            return
        entry = alert_json(record, offset)
        self.remember(entry)
        self.entries.append(entry)
        async with self.changed:
            self.changed.notify_all()

    def remember(self, entry: dict[str, Any]) -> None:
        """Make ``entry`` the alert's latest state; ``fired_at`` carries over to its resolution."""
        before = self.current.get(entry["fingerprint"])
        if entry["state"] == "firing":
            entry["fired_at"] = entry["transition_at"]
        else:
            entry["fired_at"] = before.get("fired_at") if before else None
        self.current[entry["fingerprint"]] = entry

    async def follow(self) -> None:
        tp = TopicPartition(self.topic, 0)
        consumer = self.clients.consumer(enable_auto_commit=False, isolation_level="read_committed")
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for msg in batch.get(tp, []):
                    if msg.value is not None:
                        await self.add(msg.offset, msg.value)
                # past the transactions' commit markers too, which are never returned as records
                self.position = await consumer.position(tp)
        finally:
            await consumer.stop()

    async def caught_up(self, timeout_s: float = 5.0) -> bool:
        """Whether everything committed on the topic now has been read, waiting up to
        ``timeout_s`` for the follower. Asks the broker for the end (the last stable offset):
        the follower's own view may be a fetch old, and a previous leader may just have written."""
        tp = TopicPartition(self.topic, 0)
        try:
            probe = self._probe
            if probe is None:  # one long-lived consumer, used only to ask for end offsets
                probe = self.clients.consumer(enable_auto_commit=False, isolation_level="read_committed")
                await probe.start()
                self._probe = probe
            end = (await probe.end_offsets([tp]))[tp]
        except KafkaError as exc:
            raise LogUnavailable(f"the end of {self.topic} cannot be asked: {exc!r}") from exc
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.position < end:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            with contextlib.suppress(Exception):
                await probe.stop()
