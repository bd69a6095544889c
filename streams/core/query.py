"""Count queries: which dimensions to group by, and which days a window covers. Pure."""

from __future__ import annotations

import datetime as dt

#: dimensions a query can group by, in the order rows are keyed and sorted
DIMENSIONS: tuple[str, ...] = ("force", "category", "disposal", "day", "domestic_abuse")

Row = tuple[str, ...]


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
    if window == "all":
        return at - dt.timedelta(days=keep_days), at
    if window.endswith("d") and window[:-1].isdigit() and int(window[:-1]) > 0:
        return at - dt.timedelta(days=int(window[:-1]) - 1), at
    raise ValueError(f"window must be 'all' or a number of days like '28d', not {window!r}")
