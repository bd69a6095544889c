"""Which day is "today": chosen once, as a strategy object, not tested at each use.

- ``WallClock`` (``DW_CLOCK=wall``, the default): today is the UTC calendar date.
- ``StreamClock`` (``DW_CLOCK=stream``, for replays of history): today is the newest outcome date
  held, so windows and the retention horizon follow the data rather than the calendar.

Either way, a disposal dated after tomorrow by the wall clock is in the future and refused
(``latest_accepted_day``): a replay cannot make the future acceptable.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Literal, Protocol

ClockKind = Literal["wall", "stream"]

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def utc_today(now_s: Callable[[], float] = time.time) -> dt.date:
    """The UTC calendar date of ``now_s()`` (Unix seconds)."""
    return dt.date.fromordinal(_EPOCH_ORDINAL + int(now_s() // 86400))


class Clock(Protocol):
    kind: ClockKind
    #: whether today follows the data (the newest outcome date held, every worker's counted)
    follows_data: bool

    def today(self, newest: dt.date | None) -> dt.date | None:
        """Today, given the newest outcome date held (None: none held yet)."""
        ...


class WallClock:
    kind: ClockKind = "wall"
    follows_data = False

    def __init__(self, now_s: Callable[[], float] = time.time) -> None:
        self._now_s = now_s

    def today(self, newest: dt.date | None = None) -> dt.date:
        return utc_today(self._now_s)


class StreamClock:
    kind: ClockKind = "stream"
    follows_data = True

    def today(self, newest: dt.date | None) -> dt.date | None:
        return newest


def clock_for(kind: ClockKind, now_s: Callable[[], float] = time.time) -> Clock:
    return WallClock(now_s) if kind == "wall" else StreamClock()


def horizon(today: dt.date, keep_days: int) -> dt.date:
    """The oldest outcome date still counted: ``keep_days`` before ``today``."""
    return today - dt.timedelta(days=keep_days)


def latest_accepted_day(wall_today: dt.date) -> dt.date:
    """The newest outcome date accepted: tomorrow by the wall clock (slack for time zones)."""
    return wall_today + dt.timedelta(days=1)
