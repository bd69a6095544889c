"""Log lines that repeat: at most one per kind per interval, then one line saying how many were
held back. A broker that is away makes the Kafka clients log each failed connection (about 150
lines a second); an operator needs the first, and a count.

``RepeatFilter`` goes on the root logger's handlers (``streams.runtime.host``), so it sees every
logger's records; a kind is the logger's name and the message's template (not its arguments).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: seconds in which one kind of line is written once
INTERVAL_S = 30.0
#: loggers whose lines are thinned: the Kafka clients'; the project's own are never held back
THINNED = ("aiokafka", "kafka", "faust", "mode")


class RepeatFilter(logging.Filter):
    def __init__(self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        #: kind -> (when its line was last let through, lines held back since)
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(THINNED) or record.levelno >= logging.CRITICAL:
            return True
        kind = (record.name, str(record.msg))
        now = self._clock()
        shown = self._seen.get(kind)
        if shown is not None and now - shown[0] < self.interval_s:
            self._seen[kind] = (shown[0], shown[1] + 1)
            return False
        held = shown[1] if shown is not None else 0
        self._seen[kind] = (now, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {now - shown[0]:.0f} s]"  # type: ignore[index]
        return True
