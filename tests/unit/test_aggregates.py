"""Rule aggregates kept as counts move give the same sums as scanning every count cell."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.aggregates import RuleAggregates, Totals, merge
from alerts.engine import window
from alerts.rules import Rule

BASE = dt.date(2025, 1, 1)
FORCES = ("a", "b")
CATEGORIES = ("stalking", "harassment", "other")
DISPOSALS = ("charge", "caution", "community-resolution", "pending")

RULES = [
    Rule(
        id="r-count",
        description="d",
        severity="low",
        category=("stalking",),
        measure="count",
        window="7d",
        threshold=1,
    ),
    Rule(
        id="r-rate",
        description="d",
        severity="low",
        category=("stalking", "harassment"),
        disposals=("community-resolution",),
        measure="rate",
        window="10d",
        threshold=0.5,
    ),
    Rule(
        id="r-spike",
        description="d",
        severity="low",
        category=("harassment",),
        measure="spike",
        window="5d",
        threshold=0.5,
    ),
    Rule(
        id="r-peer",
        description="d",
        severity="low",
        category=("other",),
        measure="peer",
        window="30d",
        z=1.96,
    ),
    Rule(
        id="r-case",
        description="d",
        severity="low",
        category=("stalking", "other"),
        domestic_abuse=True,
        disposals=("community-resolution",),
        measure="case",
    ),
]

Cell = tuple[str, str, str, dt.date, bool]


def reference(
    rule: Rule, counts: Mapping[Cell, int], first: dt.date, last: dt.date
) -> dict[tuple[str, str], tuple[int, int]]:
    """Today's definition, by scanning every cell: (force, category) -> (numerator, denominator)."""
    num: dict[tuple[str, str], int] = defaultdict(int)
    den: dict[tuple[str, str], int] = defaultdict(int)
    for (force, category, disposal, day, da), n in counts.items():
        if day < first or day > last or category not in rule.category:
            continue
        if rule.domestic_abuse is not None and da != rule.domestic_abuse:
            continue
        if disposal in rule.disposals:
            num[(force, category)] += n
        if disposal != "pending":
            den[(force, category)] += n
    return {k: (num.get(k, 0), den.get(k, 0)) for k in set(num) | set(den)}


def expected(counts: Mapping[Cell, int], at: dt.date) -> dict[str, dict[tuple[str, str], Totals]]:
    out: dict[str, dict[tuple[str, str], Totals]] = {}
    for rule in RULES:
        now = reference(rule, counts, *window(at, rule.window_days))
        before = (
            reference(rule, counts, *window(at, rule.window_days, back=1)) if rule.measure == "spike" else {}
        )
        keys = set(now) | set(before)
        out[rule.id] = {k: Totals(*now.get(k, (0, 0)), *before.get(k, (0, 0))) for k in keys}
    return out


def nonzero(
    totals: Mapping[str, Mapping[tuple[str, str], Totals]],
) -> dict[str, dict[tuple[str, str], Totals]]:
    return {r: {k: t for k, t in rows.items() if any(t)} for r, rows in totals.items()}


cells = st.tuples(
    st.sampled_from(FORCES),
    st.sampled_from(CATEGORIES),
    st.sampled_from(DISPOSALS),
    st.integers(15, 45).map(lambda d: BASE + dt.timedelta(days=d)),
    st.booleans(),
)
# a step: a crime enters a cell, a crime leaves a cell it is in, an evaluation on any day, or an
# evaluation a few days from the last one (as the clock moves in a worker)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), cells),
        st.tuples(st.just("remove"), st.integers(0, 10_000)),
        st.tuples(st.just("at"), st.integers(-5, 70)),
        st.tuples(st.just("step"), st.integers(-3, 6)),
    ),
    max_size=150,
)


@settings(max_examples=500, deadline=None)
@given(steps)
def test_aggregates_equal_a_scan_of_the_counts_after_any_moves_and_evaluation_days(
    ops: list[tuple[str, object]],
) -> None:
    aggregates = RuleAggregates(RULES)
    counts: Counter[Cell] = Counter()
    day = 30
    for kind, arg in ops:
        if kind == "add":
            assert isinstance(arg, tuple)
            counts[arg] += 1
            aggregates.move(arg, 1)
        elif kind == "remove" and counts:
            assert isinstance(arg, int)
            cell = sorted(counts)[arg % len(counts)]
            counts[cell] -= 1
            if not counts[cell]:
                del counts[cell]
            aggregates.move(cell, -1)
        elif kind in ("at", "step"):
            assert isinstance(arg, int)
            day = arg if kind == "at" else day + arg
            at = BASE + dt.timedelta(days=day)
            assert nonzero(aggregates.totals(at)) == nonzero(expected(counts, at))
    at = BASE + dt.timedelta(days=61)
    assert nonzero(aggregates.totals(at)) == nonzero(expected(counts, at))


@given(st.lists(st.tuples(cells, st.integers(1, 3)), max_size=40), st.integers(0, 60))
def test_totals_of_parts_merge_to_the_totals_of_the_whole(parts: list[tuple[Cell, int]], day: int) -> None:
    at = BASE + dt.timedelta(days=day)
    halves = [RuleAggregates(RULES), RuleAggregates(RULES)]
    whole = RuleAggregates(RULES)
    for i, (cell, n) in enumerate(parts):
        halves[i % 2].move(cell, n)
        whole.move(cell, n)
    assert nonzero(merge(h.totals(at) for h in halves)) == nonzero(whole.totals(at))


def test_a_cell_counts_only_towards_the_rules_that_read_it() -> None:
    aggregates = RuleAggregates(RULES)
    at = BASE + dt.timedelta(days=10)
    aggregates.move(("a", "stalking", "community-resolution", at, True), 1)
    aggregates.move(("b", "stalking", "pending", at, False), 1)  # in no denominator or numerator
    assert nonzero(aggregates.totals(at)) == {
        "r-count": {("a", "stalking"): Totals(1, 1)},  # out-of-court by default
        "r-rate": {("a", "stalking"): Totals(1, 1)},
        "r-spike": {},
        "r-peer": {},
        "r-case": {("a", "stalking"): Totals(1, 1)},  # domestic abuse only
    }
    later = at + dt.timedelta(days=7)  # r-count's 7-day window has moved past the day
    assert nonzero(aggregates.totals(later))["r-count"] == {}
    assert nonzero(aggregates.totals(later))["r-rate"] == {("a", "stalking"): Totals(1, 1)}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("move"), st.one_of(st.none(), cells), st.one_of(st.none(), cells)),
            st.tuples(st.just("prune"), st.integers(10, 40), st.none()),
        ),
        max_size=80,
    )
)
def test_counts_keep_their_aggregates_equal_to_their_cells(ops: list[tuple[object, ...]]) -> None:
    """DayCounts tells its sink of every add, remove and prune (cells before the floor are
    neither counted nor told), so aggregates kept as it changes equal those of its cells."""
    from streams.core.buckets import DayCounts
    from streams.core.classify import Cell as CountCell

    aggregates = RuleAggregates(RULES)
    counts = DayCounts(aggregates)
    for kind, a, b in ops:
        if kind == "prune":
            assert isinstance(a, int)
            counts.prune(BASE + dt.timedelta(days=a))
            continue
        removed = CountCell(*a) if isinstance(a, tuple) else None
        added = CountCell(*b) if isinstance(b, tuple) else None
        if removed is not None and dict(counts.cells()).get(removed, 0) == 0:
            removed = None  # a crime can only leave a cell it is in
        counts.move(removed, added)
    at = BASE + dt.timedelta(days=40)
    assert nonzero(aggregates.totals(at)) == nonzero(expected(dict(counts.cells()), at))
    # counts saved and loaded (a clean restart) tell a new sink the same
    loaded = RuleAggregates(RULES)
    again = DayCounts.load(counts.combos().items(), counts.newest, counts.floor, loaded)
    assert dict(again.cells()) == dict(counts.cells()) and again.total == counts.total
    assert nonzero(loaded.totals(at)) == nonzero(aggregates.totals(at))
