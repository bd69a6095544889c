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
