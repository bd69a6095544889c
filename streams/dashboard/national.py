"""National and per-force figures, a period against the one before: what FOI answers and press
stories in this field are built on. Pure: counts in, figures out.

From counts keyed (force, category, disposal) over each period: for each high-risk category,
nationally and per force, the crimes settled out of court by class, the crimes with an outcome
(``pending`` left out, as in the alert rules), the share, and the change of each count on the
period before as a ratio with a 95% interval (``alerts.stats.count_ratio``: exact, conditional
on the two periods' total).

Periods are calendar months ending on the day the data runs to: the 12 months to 2026-11-30 are
2025-12-01 to 2026-11-30, the 12 before 2024-12-01 to 2025-11-30. A period reaching before the
retention horizon is not all held: its figures are marked incomplete and no change is given.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from alerts import stats
from alerts.evidence import category_words
from streams.dashboard.trend import HIGH_RISK
from streams.reference import OUT_OF_COURT

#: the classes of out-of-court disposal, in the order tables show them
CLASSES: tuple[str, ...] = ("community-resolution", "caution", "penalty-notice", "drugs-warning")
#: periods a summary can cover, in months
PERIODS = {"3m": 3, "6m": 6, "12m": 12}
#: the words of a class in a sentence, one and many
CLASS_WORDS = {
    "community-resolution": ("community resolution", "community resolutions"),
    "caution": ("caution", "cautions"),
    "penalty-notice": ("penalty notice", "penalty notices"),
    "drugs-warning": ("drugs warning", "drugs warnings"),
    "out-of-court": ("out-of-court disposal", "out-of-court disposals"),
}
if set(CLASSES) != OUT_OF_COURT:  # a class added to the reference must be shown here too
    raise ImportError(f"national.CLASSES {CLASSES} differ from the reference's out-of-court classes")


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier (the month's last day when it is shorter)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


@dataclass(frozen=True)
class Period:
    first: dt.date
    last: dt.date
    #: whether every day of it is within the retention horizon (its counts are whole)
    complete: bool = True


def periods(at: dt.date, months: int, horizon: dt.date) -> tuple[Period, Period]:
    """The ``months`` months to ``at`` and the as many before; ``horizon``: the first day held."""
    first = months_before(at, months) + dt.timedelta(days=1)
    before_last = first - dt.timedelta(days=1)
    before_first = months_before(before_last, months) + dt.timedelta(days=1)
    return (
        Period(first, at, first >= horizon),
        Period(before_first, before_last, before_first >= horizon),
    )


@dataclass(frozen=True)
class Figures:
    """One category's outcomes over one period, of one force or all."""

    by_class: Mapping[str, int] = field(default_factory=dict)
    outcomes: int = 0

    @property
    def out_of_court(self) -> int:
        return sum(self.by_class.values())

    @property
    def share(self) -> float | None:
        return self.out_of_court / self.outcomes if self.outcomes else None

    def count(self, what: str) -> int:
        return self.out_of_court if what == "out-of-court" else self.by_class.get(what, 0)


@dataclass(frozen=True)
class Change:
    """A count now against the count before: their ratio and its 95% interval (None: nothing
    before, so no ratio)."""

    now: int
    before: int
    ratio: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, now: int, before: int) -> Change:
        if before == 0:
            return cls(now, before, None, None, None)
        ratio, low, high = stats.count_ratio(now, before)
        return cls(now, before, ratio, low, high)


@dataclass(frozen=True)
class Line:
    """One category, nationally (``force`` None) or of one force."""

    category: str
    force: str | None
    now: Figures
    before: Figures
    #: class (and "out-of-court") -> change; empty when the period before is not all held
    changes: Mapping[str, Change]


def _figures(rows: Mapping[tuple[str, ...], int]) -> dict[tuple[str | None, str], Figures]:
    """(force or None for all, category) -> figures, from rows keyed (force, category, disposal)."""
    sums: dict[tuple[str | None, str], tuple[dict[str, int], list[int]]] = {}
    for (force, category, disposal), n in rows.items():
        if category not in HIGH_RISK or disposal == "pending":
            continue
        for who in (force, None):
            by_class, outcomes = sums.setdefault((who, category), ({}, [0]))
            outcomes[0] += n
            if disposal in CLASSES:
                by_class[disposal] = by_class.get(disposal, 0) + n
    return {k: Figures(by_class, outcomes[0]) for k, (by_class, outcomes) in sums.items()}


def summarise(
    now_rows: Mapping[tuple[str, ...], int],
    before_rows: Mapping[tuple[str, ...], int],
    *,
    forces: Iterable[str],
    national: bool,
    comparable: bool,
) -> list[Line]:
    """Lines for every high-risk category with an outcome in either period: the national line
    first (when ``national``), then each of ``forces`` with an outcome. ``comparable``: whether
    the period before is all held (else no change is given)."""
    now, before = _figures(now_rows), _figures(before_rows)
    categories = [c for c in HIGH_RISK if any(k[1] == c for k in (*now, *before))]
    who: list[str | None] = ([None] if national else []) + sorted(forces)
    out = []
    for category in categories:
        for force in who:
            a, b = now.get((force, category), Figures()), before.get((force, category), Figures())
            if not a.outcomes and not b.outcomes:
                continue
            changes = (
                {c: Change.of(a.count(c), b.count(c)) for c in (*CLASSES, "out-of-court")}
                if comparable
                else {}
            )
            out.append(Line(category, force, a, b, changes))
    return out


def sentence(line: Line, what: str, months: int, last: dt.date) -> str | None:
    """``Stalking: 412 community resolutions in the 12 months to 2026-11-30, up 32% on the 12
    months before (95% interval 14% to 53%).`` None when there is nothing to say."""
    n = line.now.count(what)
    one, many = CLASS_WORDS[what]
    words = one if n == 1 else many
    head = f"{category_words(line.category).capitalize()}: {n:,} {words} in the {months} months to {last}"
    change = line.changes.get(what)
    if change is None:
        return f"{head}; the {months} months before are not all held (retention), so no change is given."
    if change.ratio is None:
        return f"{head}, against none in the {months} months before." if n else None
    assert change.low is not None and change.high is not None
    if change.ratio == 1:
        direction = "the same as"
    else:
        direction = f"{'up' if change.ratio > 1 else 'down'} {abs(change.ratio - 1) * 100:.0f}% on"
    return (
        f"{head}, {direction} the {months} months before "
        f"(95% interval {(change.low - 1) * 100:+.0f}% to "
        f"{(change.high - 1) * 100:+.0f}%)."
    )


def quarter_of(day: dt.date) -> str:
    return f"{day.year} Q{(day.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class Quarter:
    quarter: str
    by_class: Mapping[str, int]
    outcomes: int
    #: whether every day of the quarter is within the periods summarised and held
    whole: bool

    @property
    def out_of_court(self) -> int:
        return sum(self.by_class.values())


def quarters_between(first: dt.date, last: dt.date) -> list[tuple[str, bool]]:
    """The quarters from ``first`` to ``last``, each with whether it lies whole between them."""
    out = []
    start = dt.date(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
    while start <= last:
        end = months_before(start, -3) - dt.timedelta(days=1)
        out.append((quarter_of(start), first <= start and end <= last))
        start = end + dt.timedelta(days=1)
    return out


def quarterly(rows: Mapping[tuple[str, ...], int], first: dt.date, last: dt.date) -> dict[str, list[Quarter]]:
    """Category -> national quarters from ``first`` to ``last``, from rows keyed (category,
    disposal, day); a quarter cut by either end is marked not whole."""
    sums: dict[str, dict[str, tuple[dict[str, int], list[int]]]] = {}
    for (category, disposal, day), n in rows.items():
        if category not in HIGH_RISK or disposal == "pending":
            continue
        q = quarter_of(dt.date.fromisoformat(day))
        by_class, outcomes = sums.setdefault(category, {}).setdefault(q, ({}, [0]))
        outcomes[0] += n
        if disposal in CLASSES:
            by_class[disposal] = by_class.get(disposal, 0) + n
    spans = quarters_between(first, last)
    out = {}
    for category in sorted(sums, key=HIGH_RISK.index):
        by_q = sums[category]
        out[category] = [
            Quarter(q, dict(by_q[q][0]) if q in by_q else {}, by_q[q][1][0] if q in by_q else 0, whole)
            for q, whole in spans
        ]
    return out
