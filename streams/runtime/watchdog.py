"""The watchdog: a worker that makes no progress while work waits leaves, to be restarted.

It watches commits, not fetches. Every few seconds it asks the broker for the end offsets of the
owned partitions, through a consumer of its own (the loop's consumer may be what hangs), and
compares them with the offsets the loop last committed: records wait when an end offset is past
the committed one. Progress is a committed offset moving, or changelog records being restored.
When records wait and nothing has progressed for ``DW_STALL_EXIT_S``, it logs the loop's state
and exits with code 75 (``streams.runtime.exits``); its supervisor restarts the worker, which
resumes from the last commit. It also sets the lag and last-commit gauges.

``StallDetector`` is the decision, pure; ``Watchdog`` is the task around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from streams import metrics
from streams.clients import ClientFactory, Consumer
from streams.runtime.exits import ExitCode, leave
from streams.runtime.loop import CountingLoop

log = logging.getLogger(__name__)

#: the longest time between two checks
CHECK_S = 5.0
#: the longest a check waits for the broker's answer
ANSWER_S = 5.0


class BrokerState:
    """Whether the brokers answered the last check, and since when they have not: what
    ``/healthz`` reports (``degraded`` while they do not)."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.failing_since: float | None = None

    def answered(self) -> None:
        if self.error is not None:
            log.warning("the brokers answer again after %.0f s", time.monotonic() - (self.failing_since or 0))
        self.error, self.failing_since = None, None
        metrics.BROKER_REACHABLE.set(1)
        metrics.LAG_REFRESHED.set(time.time())

    def failed(self, error: str) -> None:
        if self.error is None:
            self.failing_since = time.monotonic()
            log.warning("the brokers do not answer (%s); /healthz says degraded", error)
        self.error = error
        metrics.BROKER_REACHABLE.set(0)

    def problem(self) -> str | None:
        """None while the brokers answer; else what is wrong, in words."""
        if self.error is None:
            return None
        for_s = time.monotonic() - (self.failing_since or time.monotonic())
        return f"cannot reach Kafka at DW_KAFKA for {for_s:.0f} s ({self.error})"


class StallDetector:
    """How long work has waited with no progress: ``observe`` once per check."""

    def __init__(self) -> None:
        self._progress: int | None = None
        self._since: float | None = None

    def observe(self, now_s: float, *, waiting: bool, progress: int) -> float:
        """Seconds since the last progress, while work waits; 0 when nothing waits or it moved."""
        moved = progress != self._progress
        self._progress = progress
        if not waiting or moved or self._since is None:
            self._since = now_s
            return 0.0
        return now_s - self._since


class Watchdog:
    def __init__(self, loop: CountingLoop, clients: ClientFactory, stall_exit_s: float) -> None:
        self._loop = loop
        self._clients = clients
        self.stall_exit_s = stall_exit_s
        self.check_s = min(CHECK_S, max(0.5, stall_exit_s / 6)) if stall_exit_s else CHECK_S
        self._detector = StallDetector()
        self._probe: Consumer | None = None
        self._lagging: set[int] = set()
        self.brokers = BrokerState()

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.check_s)
                await self.check()
        finally:
            if self._probe is not None:
                with contextlib.suppress(Exception):
                    await self._probe.stop()

    async def _offsets(self, tps: list[TopicPartition]) -> tuple[dict[Any, int], dict[Any, int]]:
        probe = self._probe
        if probe is None:
            # end offsets as the loop sees them (it reads committed records only): the last
            # stable offset, so a transaction still open is not "records waiting"
            probe = self._clients.consumer(enable_auto_commit=False, isolation_level="read_committed")
            try:
                await probe.start()
            except BaseException:  # a broker away, or the check's time out: try afresh next time
                with contextlib.suppress(Exception):
                    await probe.stop()
                raise
            self._probe = probe
        begins = await probe.beginning_offsets(tps)
        ends = await probe.end_offsets(tps)
        return begins, ends

    async def check(self) -> None:
        """One check: the lag of each owned partition from the brokers (no verdict while they do
        not answer), exported; then whether the loop has stalled with records waiting."""
        loop = self._loop
        committed = loop.lag_inputs()
        lags = await self._lags(committed)
        if lags is None:
            return  # the broker is away: no verdict on the worker
        self._export(lags)
        if loop.schemas is not None and loop.schemas.problem():
            return  # the registry is away: records wait for it, no verdict on the worker
        waiting = any(lags.values()) or loop.recovery.restoring is not None
        stalled_s = self._detector.observe(time.monotonic(), waiting=waiting, progress=loop.progress())
        if stalled_s:
            self._stalled(stalled_s, lags, committed)

    async def _lags(self, committed: dict[int, int | None]) -> dict[int, int] | None:
        """Records waiting per owned partition (end offset less the group's committed offset, or
        the beginning when none), or None when the brokers did not answer in time (recorded in
        ``brokers``). Partition 0 is asked too when nothing is owned, so that the brokers are
        still checked."""
        tps = [TopicPartition(self._loop.topic, p) for p in sorted(committed)]
        try:
            asked = tps or [TopicPartition(self._loop.topic, 0)]
            begins, ends = await asyncio.wait_for(self._offsets(asked), min(self.check_s, ANSWER_S))
        except (TimeoutError, KafkaError, OSError) as exc:
            self.brokers.failed(type(exc).__name__ if isinstance(exc, TimeoutError) else repr(exc))
            return None
        self.brokers.answered()
        lags: dict[int, int] = {}
        for tp in tps:
            base = committed[tp.partition]
            lags[tp.partition] = max(0, ends[tp] - (base if base is not None else begins[tp]))
        return lags

    def _export(self, lags: dict[int, int]) -> None:
        """The lag gauges (those of partitions no longer owned removed) and the last commit."""
        for p in self._lagging - set(lags):
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(str(p))
        for p, lag in lags.items():
            metrics.CONSUMER_LAG.labels(str(p)).set(lag)
        self._lagging = set(lags)
        if self._loop.checkpoint.committed_at:
            metrics.LAST_COMMIT.set(self._loop.checkpoint.committed_at)

    def _stalled(self, stalled_s: float, lags: dict[int, int], committed: dict[int, int | None]) -> None:
        """No progress for ``stalled_s`` while records wait: a warning every 30 s, and past
        ``stall_exit_s`` the worker leaves (exit 75) to be restarted."""
        loop = self._loop
        detail = (
            f"no progress for {stalled_s:.0f} s while records wait: lag per partition {lags}, "
            f"committed {committed}, recovering={loop.recovering} restoring={loop.recovery.restoring}, "
            f"records processed {loop.records_processed}, awaiting acknowledgement {len(loop.outbox)}"
        )
        if self.stall_exit_s and stalled_s >= self.stall_exit_s:
            leave(ExitCode.STALLED, detail)
        if stalled_s >= 30 and stalled_s % 30 < self.check_s:
            log.warning("%s", detail)
