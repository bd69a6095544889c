"""Rule aggregates: what each rule needs of the counts, kept up to date as the counts move.

A rule reads, per (force, category), a numerator (crimes whose latest outcome is in the rule's
disposal classes) and a denominator (crimes with an outcome other than ``pending``) over its
window of W days ending on the evaluation day; a spike rule also reads the W days before.
``RuleAggregates`` keeps these sums for every rule as count cells move (``move``) and moves each
window when the evaluation day advances (``totals(at)``). So an evaluation costs in proportion to
rules x forces x categories, not to the crimes held or the days kept.

Each (rule, force, category) is a ``Series``: its numerator and denominator per day (keyed by
the day's ordinal) and the running sums over the current window and, for spikes, the window
before. A count move adds to its day, and to a running sum when the day lies in that window.
When the window's end moves, the days that leave and enter are subtracted and added: one by one
when the move is short, from the series' days when it is long.

Pure: values in, values out. The worker feeds it from its counts (``DayCounts`` calls ``move``
for every cell it adds, removes or prunes), so the aggregates always equal the counts held.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from alerts.rules import Rule

#: a count cell: force, category, disposal class, outcome day, domestic-abuse flag
CellKey = tuple[str, str, str, dt.date, bool]
#: (force, category)
ForceCategory = tuple[str, str]


class Totals(NamedTuple):
    """A rule's sums for one (force, category): this window, and the one before (spikes)."""

    numerator: int = 0
    denominator: int = 0
    numerator_before: int = 0
    denominator_before: int = 0


def plus(a: Totals, b: Totals) -> Totals:
    return Totals(*(x + y for x, y in zip(a, b, strict=True)))


#: rule id -> (force, category) -> totals
RuleTotals = dict[str, dict[ForceCategory, Totals]]

ZERO = Totals()


def _range_sum(days: Mapping[int, list[int]], lo: int, hi: int) -> tuple[int, int]:
    """Sums of the days in (lo, hi]: stepping day by day or scanning the days, whichever is
    fewer lookups."""
    num = den = 0
    if hi <= lo:
        return 0, 0
    if hi - lo <= len(days):
        for o in range(lo + 1, hi + 1):
            d = days.get(o)
            if d is not None:
                num += d[0]
                den += d[1]
    else:
        for o, d in days.items():
            if lo < o <= hi:
                num += d[0]
                den += d[1]
    return num, den


class Series:
    """One rule's numerator and denominator per day for one (force, category), and its sums
    over the window (``end - window``, ``end``] and the one before it."""

    __slots__ = ("days", "num", "den", "num0", "den0")

    def __init__(self) -> None:
        self.days: dict[int, list[int]] = {}
        self.num = self.den = self.num0 = self.den0 = 0

    def add(self, day: int, dn: int, dd: int, end: int | None, window: int, spike: bool) -> None:
        d = self.days.get(day)
        if d is None:
            self.days[day] = [dn, dd]
        else:
            d[0] += dn
            d[1] += dd
            if not d[0] and not d[1]:
                del self.days[day]
        if end is None:
            return
        if end - window < day <= end:
            self.num += dn
            self.den += dd
        elif spike and end - 2 * window < day <= end - window:
            self.num0 += dn
            self.den0 += dd

    def add_days(
        self, days: Mapping[int, int], dn: int, dd: int, end: int | None, window: int, spike: bool
    ) -> None:
        """``add`` for every day (ordinal) -> n of ``days``, with steps ``dn`` and ``dd`` per crime."""
        mine = self.days
        for o, n in days.items():
            d = mine.get(o)
            if d is None:
                mine[o] = [dn * n, dd * n]
            else:
                d[0] += dn * n
                d[1] += dd * n
                if not d[0] and not d[1]:
                    del mine[o]
        if end is None:
            return
        n_now = sum(n for o, n in days.items() if end - window < o <= end)
        self.num += dn * n_now
        self.den += dd * n_now
        if spike:
            n_before = sum(n for o, n in days.items() if end - 2 * window < o <= end - window)
            self.num0 += dn * n_before
            self.den0 += dd * n_before

    def shift(self, old: int | None, new: int, window: int, spike: bool) -> None:
        """Move the window's end from ``old`` (None: not placed yet) to ``new``."""
        if old is None:
            self.num, self.den = _range_sum(self.days, new - window, new)
            if spike:
                self.num0, self.den0 = _range_sum(self.days, new - 2 * window, new - window)
            return
        self.num, self.den = self._moved(self.num, self.den, old, new, window)
        if spike:
            self.num0, self.den0 = self._moved(self.num0, self.den0, old - window, new - window, window)

    def _moved(self, num: int, den: int, old: int, new: int, window: int) -> tuple[int, int]:
        """Sums of the window (``new - window``, ``new``] from those of (``old - window``, ``old``]."""
        if abs(new - old) >= window:  # no overlap: the new window alone
            return _range_sum(self.days, new - window, new)
        if new > old:
            gone = _range_sum(self.days, old - window, new - window)
            came = _range_sum(self.days, old, new)
        else:
            gone = _range_sum(self.days, new, old)
            came = _range_sum(self.days, new - window, old - window)
        return num - gone[0] + came[0], den - gone[1] + came[1]

    def totals(self) -> Totals:
        return Totals(self.num, self.den, self.num0, self.den0)


def routes(
    rules: Sequence[Rule], category: str, disposal: str, domestic_abuse: bool
) -> tuple[tuple[int, int, int], ...]:
    """For a cell of this category, disposal and flag: (rule index, numerator step, denominator
    step) for every rule it counts towards."""
    out = []
    for i, r in enumerate(rules):
        if category not in r.category:
            continue
        if r.domestic_abuse is not None and domestic_abuse != r.domestic_abuse:
            continue
        dn = int(disposal in r.disposals)
        dd = int(disposal != "pending")
        if dn or dd:
            out.append((i, dn, dd))
    return tuple(out)


class RuleAggregates:
    """Every rule's sums per (force, category), kept as cells move (see the module docstring)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        self._windows = [r.window_days for r in self.rules]
        self._spikes = [r.measure == "spike" for r in self.rules]
        self._series: list[dict[ForceCategory, Series]] = [{} for _ in self.rules]
        self._routes: dict[tuple[str, str, bool], tuple[tuple[int, int, int], ...]] = {}
        #: the day (ordinal) the running sums end on; None until the first ``totals``
        self._end: int | None = None

    def _route(self, category: str, disposal: str, domestic_abuse: bool) -> tuple[tuple[int, int, int], ...]:
        key = (category, disposal, domestic_abuse)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = routes(self.rules, category, disposal, domestic_abuse)
        return found

    def hears(self, combo: tuple[str, str, str, bool]) -> bool:
        """Whether a rule counts the cells of ``combo`` (force, category, class, flag): the
        counts tell only of moves that are."""
        return bool(self._route(combo[1], combo[2], combo[3]))

    def move(self, cell: CellKey, delta: int) -> None:
        """``delta`` crimes entered (or, negative, left) ``cell``."""
        force, category, disposal, day, domestic_abuse = cell
        found = self._route(category, disposal, domestic_abuse)
        if not found:
            return
        o = day.toordinal()
        fc = (force, category)
        end = self._end
        for i, dn, dd in found:
            series = self._series[i]
            s = series.get(fc)
            if s is None:
                s = series[fc] = Series()
            s.add(o, dn * delta, dd * delta, end, self._windows[i], self._spikes[i])

    def move_days(self, combo: tuple[str, str, str, bool], days: Mapping[int, int], sign: int) -> None:
        """``sign`` x n crimes entered every day (ordinal) -> n of ``days`` in the cells of
        ``combo`` (force, category, disposal class, flag)."""
        force, category, disposal, domestic_abuse = combo
        fc = (force, category)
        for i, dn, dd in self._route(category, disposal, domestic_abuse):
            series = self._series[i]
            s = series.get(fc)
            if s is None:
                s = series[fc] = Series()
            s.add_days(days, dn * sign, dd * sign, self._end, self._windows[i], self._spikes[i])

    def add_all(self, cells: Iterable[tuple[CellKey, int]], sign: int = 1) -> None:
        """Add (or, with ``sign=-1``, take away) many cells with their counts."""
        for cell, n in cells:
            self.move(cell, sign * n)

    def totals(self, at: dt.date) -> RuleTotals:
        """Every rule's totals per (force, category) for windows ending on ``at``."""
        end = at.toordinal()
        if end != self._end:
            for i, series in enumerate(self._series):
                for s in series.values():
                    s.shift(self._end, end, self._windows[i], self._spikes[i])
            self._end = end
        return {
            rule.id: {fc: s.totals() for fc, s in self._series[i].items()}
            for i, rule in enumerate(self.rules)
        }


def merge(parts: Iterable[Mapping[str, Mapping[ForceCategory, Totals]]]) -> RuleTotals:
    """Sum the totals of several workers."""
    out: RuleTotals = {}
    for part in parts:
        for rule_id, rows in part.items():
            mine = out.setdefault(rule_id, {})
            for fc, t in rows.items():
                mine[fc] = plus(mine.get(fc, ZERO), t)
    return out
