"""Rule evaluation, checked against values computed directly from events or by hand."""

import datetime as dt
import math
from collections import Counter

import pytest

from alerts import funnel
from alerts.engine import breaches, evaluate, window
from alerts.rules import OUT_OF_COURT, Rule
from streams.core.classify import category_of
from streams.simulate import simulate

AT = dt.date(2025, 6, 30)
FORCES = ["a", "b", "c"]


def rule(**kw: object) -> Rule:
    base: dict[str, object] = dict(id="r", description="d", severity="high", category=("stalking",))
    base.update(kw)
    return Rule.model_validate(base)


def counts_of(rows: list[tuple[str, str, str, int, bool, int]]) -> Counter:
    """rows: (force, category, disposal, days before AT, domestic abuse, n)."""
    c: Counter = Counter()
    for force, cat, disp, back, da, n in rows:
        c[(force, cat, disp, AT - dt.timedelta(days=back), da)] += n
    return c


def by_force(evals):  # type: ignore[no-untyped-def]
    return {e.force: e for e in evals}


def test_window_of_n_days_ends_on_at() -> None:
    assert window(AT, 28) == (dt.date(2025, 6, 3), AT)
    assert window(AT, 28, back=1) == (dt.date(2025, 5, 6), dt.date(2025, 6, 2))


def test_count_includes_the_window_and_nothing_outside() -> None:
    c = counts_of(
        [
            ("a", "stalking", "caution", 0, False, 2),
            ("a", "stalking", "caution", 27, False, 1),
            ("a", "stalking", "caution", 28, False, 5),
            ("a", "stalking", "charge", 0, False, 9),
            ("a", "harassment", "caution", 0, False, 9),
        ]
    )
    e = by_force(evaluate([rule(measure="count", window="28d", threshold=3)], c, at=AT, forces=FORCES))
    assert (e["a"].numerator, e["a"].firing) == (3, True)
    assert (e["b"].numerator, e["b"].firing) == (0, False)


def test_rate_needs_min_volume_and_excludes_pending() -> None:
    c = counts_of(
        [
            ("a", "stalking", "community-resolution", 1, False, 3),
            ("a", "stalking", "charge", 1, False, 27),
            ("a", "stalking", "pending", 1, False, 100),
            ("b", "stalking", "community-resolution", 1, False, 3),
            ("b", "stalking", "charge", 1, False, 7),
        ]
    )
    r = rule(measure="rate", window="91d", threshold=0.05, min_volume=20, disposals=("community-resolution",))
    e = by_force(evaluate([r], c, at=AT, forces=FORCES))
    assert (e["a"].numerator, e["a"].denominator, e["a"].value, e["a"].firing) == (3, 30, 0.1, True)
    assert (e["b"].denominator, e["b"].firing) == (10, False)  # 30% but under min_volume


def test_domestic_abuse_scope() -> None:
    c = counts_of(
        [
            ("a", "stalking", "community-resolution", 1, True, 1),
            ("a", "stalking", "community-resolution", 1, False, 5),
        ]
    )
    e = by_force(
        evaluate(
            [rule(measure="count", window="7d", threshold=1, domestic_abuse=True)], c, at=AT, forces=FORCES
        )
    )
    assert e["a"].numerator == 1


def test_spike_against_the_previous_window() -> None:
    c = counts_of(
        [
            ("a", "stalking", "caution", 5, False, 6),
            ("a", "stalking", "charge", 5, False, 24),  # now 6/30
            ("a", "stalking", "caution", 40, False, 3),
            ("a", "stalking", "charge", 40, False, 27),  # before 3/30
            ("b", "stalking", "caution", 5, False, 6),
            ("b", "stalking", "charge", 5, False, 24),
        ]
    )  # before: none
    e = by_force(
        evaluate([rule(measure="spike", window="30d", threshold=0.5, min_volume=20)], c, at=AT, forces=FORCES)
    )
    assert e["a"].value == pytest.approx(1.0) and e["a"].firing
    assert not e["b"].firing


def test_peer_funnel_limits_by_hand() -> None:
    # a: 30/100, b: 10/100, c: 2/20 -> p0 = 42/220; c is under min_volume but counts towards p0
    c = counts_of(
        [
            ("a", "stalking", "caution", 1, False, 30),
            ("a", "stalking", "charge", 1, False, 70),
            ("b", "stalking", "caution", 1, False, 10),
            ("b", "stalking", "charge", 1, False, 90),
            ("c", "stalking", "caution", 1, False, 2),
            ("c", "stalking", "charge", 1, False, 18),
        ]
    )
    e = by_force(
        evaluate([rule(measure="peer", window="91d", z=1.96, min_volume=50)], c, at=AT, forces=FORCES)
    )
    p0 = 42 / 220
    limit = p0 + 1.96 * math.sqrt(p0 * (1 - p0) / 100)
    assert e["a"].p0 == pytest.approx(p0) and e["a"].limit == pytest.approx(limit)
    assert e["a"].firing and not e["b"].firing and not e["c"].firing


def test_overdispersion_widens_the_limits() -> None:
    ys, ns = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], [1000] * 10
    p0 = sum(ys) / sum(ns)
    zs = sorted((y / n - p0) / math.sqrt(p0 * (1 - p0) / n) for y, n in zip(ys, ns, strict=True))
    w = [min(max(z, zs[1]), zs[-2]) for z in zs]  # 10% winsorised: one value at each end
    assert funnel.overdispersion(ys, ns, p0) == pytest.approx(sum(z * z for z in w) / 10)
    assert funnel.overdispersion([55] * 10, ns, p0) == 1.0  # under-dispersed: never narrowed
    c = Counter({(f"f{i}", "stalking", "caution", AT, False): y for i, y in enumerate(ys)})
    c.update({(f"f{i}", "stalking", "charge", AT, False): 1000 - y for i, y in enumerate(ys)})
    forces = [f"f{i}" for i in range(10)]
    plain = by_force(evaluate([rule(measure="peer", window="7d", z=3.09)], c, at=AT, forces=forces))
    wide = by_force(
        evaluate([rule(measure="peer", window="7d", z=3.09, overdispersion=True)], c, at=AT, forces=forces)
    )
    assert wide["f9"].limit > plain["f9"].limit
    assert plain["f9"].firing and not wide["f9"].firing


def test_rates_against_simulated_events_computed_directly() -> None:
    """Numerator and denominator of a rate rule equal a direct count over the events' latest outcomes."""
    events = list(simulate(20000, seed=3, end=AT))
    latest = {}
    for ev in events:
        if ev.crime_key not in latest or ev.outcome_date >= latest[ev.crime_key].outcome_date:
            latest[ev.crime_key] = ev
    counts: Counter = Counter()
    for ev in latest.values():
        counts[(ev.force_id, category_of(ev), ev.disposal, ev.outcome_date, bool(ev.domestic_abuse))] += 1
    r = rule(measure="rate", window="91d", threshold=0.05, category=("harassment", "other-violence"))
    first = AT - dt.timedelta(days=90)
    evals = evaluate([r], counts, at=AT, forces=["metropolitan", "kent"])
    assert max(e.denominator or 0 for e in evals) > 100
    for e in evals:
        mine = [
            ev
            for ev in latest.values()
            if ev.force_id == e.force and category_of(ev) == e.category and first <= ev.outcome_date <= AT
        ]
        assert e.numerator == sum(ev.disposal in OUT_OF_COURT for ev in mine)
        assert e.denominator == sum(ev.disposal != "pending" for ev in mine)


@pytest.mark.parametrize(
    ("kw", "hit"),
    [
        (dict(category="other-violence", disposal="community-resolution", domestic_abuse=True), True),
        (dict(category="other-violence", disposal="community-resolution", domestic_abuse=False), False),
        (dict(category="other-violence", disposal="caution", domestic_abuse=True), False),
        (dict(category="stalking", disposal="community-resolution", domestic_abuse=True), False),
    ],
)
def test_case_domestic_abuse_community_resolution(kw: dict, hit: bool) -> None:  # type: ignore[type-arg]
    r = rule(
        measure="case", category=("other-violence",), domestic_abuse=True, disposals=("community-resolution",)
    )
    assert breaches(r, **kw) is hit


def test_case_rape_any_out_of_court() -> None:
    r = rule(measure="case", category=("rape",))
    assert breaches(r, category="rape", disposal="caution", domestic_abuse=False)
    assert breaches(r, category="rape", disposal="community-resolution", domestic_abuse=True)
    assert not breaches(r, category="sexual", disposal="caution", domestic_abuse=False)
    assert not breaches(r, category="rape", disposal="charge", domestic_abuse=False)
    c = counts_of([("a", "rape", "caution", 3, False, 1), ("b", "rape", "charge", 3, False, 4)])
    e = by_force(evaluate([r], c, at=AT, forces=FORCES))
    assert e["a"].firing and not e["b"].firing and e["a"].window_start == AT - dt.timedelta(days=27)
