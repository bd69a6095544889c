"""The stall decision: time since the last progress, counted only while work waits."""

from __future__ import annotations

import pytest

from streams.runtime.watchdog import StallDetector


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        # (now, waiting, progress) ... -> seconds stalled after the last one
        ([(0, True, 5), (10, True, 5), (20, True, 5)], 20),
        ([(0, True, 5), (10, True, 6), (20, True, 6)], 10),
        ([(0, True, 5), (10, False, 5), (20, True, 5)], 10),  # nothing waited at 10: counted from there
        ([(0, False, 5), (30, False, 5)], 0),
        ([(0, True, 5)], 0),  # the first look has nothing to compare with
    ],
)
def test_stall_detector(observations: list[tuple[float, bool, int]], expected: float) -> None:
    d = StallDetector()
    got = 0.0
    for now, waiting, progress in observations:
        got = d.observe(now, waiting=waiting, progress=progress)
    assert got == expected


class Probe:
    """A consumer that answers offset questions (``streams.clients.Consumer``, in part)."""

    def __init__(self, fail_start: bool) -> None:
        self.fail_start, self.started, self.stopped = fail_start, False, False

    async def start(self) -> None:
        if self.fail_start:
            raise OSError("no broker")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def beginning_offsets(self, tps: list[object]) -> dict[object, int]:
        return {tp: 0 for tp in tps}

    async def end_offsets(self, tps: list[object]) -> dict[object, int]:
        return {tp: 7 for tp in tps}


async def test_the_watchdog_keeps_one_probe_and_makes_another_when_one_cannot_start() -> None:
    from typing import Any, cast

    from aiokafka import TopicPartition

    from streams.clients import ClientFactory
    from streams.runtime.loop import CountingLoop
    from streams.runtime.watchdog import Watchdog

    made: list[Probe] = []

    class Clients:
        def consumer(self, **options: Any) -> Any:
            made.append(Probe(fail_start=not made))  # the first cannot start: the broker is away
            return made[-1]

        def producer(self, **options: Any) -> Any:
            raise AssertionError("the watchdog produces nothing")

    dog = Watchdog(cast(CountingLoop, None), cast(ClientFactory, Clients()), stall_exit_s=0)
    tp = TopicPartition("disposals", 0)
    with pytest.raises(OSError):
        await dog._offsets([tp])
    assert made[0].stopped  # not left half-open
    assert await dog._offsets([tp]) == ({tp: 0}, {tp: 7})
    assert await dog._offsets([tp]) == ({tp: 0}, {tp: 7})
    assert len(made) == 2 and made[1].started and not made[1].stopped  # one probe, kept
