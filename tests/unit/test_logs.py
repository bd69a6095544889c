"""Repeated client log lines: the first of a kind per interval, then a count."""

import logging

from streams.logs import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_client_line_is_written_once_per_interval_with_a_count() -> None:
    clock = Clock()
    f = RepeatFilter(interval_s=30, clock=clock)
    shown = []
    for i in range(150 * 60):  # a minute at 150 lines a second
        clock.now = i / 150
        r = record("aiokafka.conn", "Unable connect to node with id %s: %s", i % 3 + 1, "refused")
        if f.filter(r):
            shown.append(r.getMessage())
    assert len(shown) == 2
    assert shown[0] == "Unable connect to node with id 1: refused"
    assert shown[1].endswith("[4499 more like this in the last 30 s]")


def test_kinds_are_apart_and_the_projects_own_lines_are_never_held_back() -> None:
    clock = Clock()
    f = RepeatFilter(interval_s=30, clock=clock)
    assert f.filter(record("aiokafka.conn", "a %s", 1))
    assert f.filter(record("aiokafka.consumer", "a %s", 1))  # another logger: another kind
    assert f.filter(record("aiokafka.conn", "b %s", 1))  # another template: another kind
    assert not f.filter(record("aiokafka.conn", "a %s", 2))
    assert all(f.filter(record("streams.runtime.loop", "dead-lettered %s", i)) for i in range(100))
    assert f.filter(record("aiokafka.conn", "a %s", 3, level=logging.CRITICAL))
