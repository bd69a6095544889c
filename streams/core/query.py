"""Count queries: which dimensions to group by, and which days a window covers. Pure."""

from __future__ import annotations

import datetime as dt
import re

#: dimensions a query can group by, in the order rows are keyed and sorted
DIMENSIONS: tuple[str, ...] = ("force", "category", "disposal", "day", "domestic_abuse")

Row = tuple[str, ...]
#: a window of days: 1 to 99999, in ASCII digits, no leading zero (as the OpenAPI document says)
_WINDOW = re.compile(r"^[1-9][0-9]{0,4}d$")


def parse_group_by(text: str) -> tuple[str, ...]:
    """``"force,category"`` -> ``("force", "category")``; raises ``ValueError`` naming a bad one."""
    dims = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dims if d not in DIMENSIONS]
    if bad:
        raise ValueError(f"cannot group by {', '.join(bad)}; choose from {', '.join(DIMENSIONS)}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"group_by repeats a dimension: {text}")
    return dims


def window_days(window: str, *, at: dt.date, keep_days: int) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of ``window`` (``all`` or ``<N>d``) ending on ``at``.

    A window of N days ending on day D covers days D-N+1 to D; ``all`` covers the retention
    horizon (``keep_days`` before ``at``) to ``at``.
    """
    try:
        if window == "all":
            return at - dt.timedelta(days=keep_days), at
        if _WINDOW.match(window):
            return at - dt.timedelta(days=int(window[:-1]) - 1), at
    except OverflowError:
        raise ValueError(f"window {window!r} ending on {at} would start before the year 1") from None
    raise ValueError(f"window must be 'all' or 1 to 99999 days like '28d', not {window[:40]!r}")


_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def parse_day(text: str, name: str) -> dt.date:
    """``YYYY-MM-DD`` (RFC 3339's full-date, and nothing else ``date.fromisoformat`` also reads)
    -> a date; ``ValueError`` naming the parameter."""
    try:
        if _DAY.match(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f"{name} must be a date as YYYY-MM-DD, not {text[:40]!r}")
