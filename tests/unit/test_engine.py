"""Rule evaluation, checked against values computed directly from events or by hand."""

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable

import pytest

from alerts import funnel
from alerts.aggregates import RuleAggregates
from alerts.engine import Evaluation, Memo, breaches, evaluate_totals, window
from alerts.rules import OUT_OF_COURT, Rule
from alerts.stats import funnel_limit, rise_p_value, wilson
from streams.core.classify import category_of
from streams.model import OutcomeEvent
from streams.simulate import simulate
from tests.evaluate import evaluate, some

AT = dt.date(2025, 6, 30)
FORCES = ["a", "b", "c"]


def rule(**kw: object) -> Rule:
    base: dict[str, object] = dict(id="r", description="d", severity="high", category=("stalking",))
    base.update(kw)
    return Rule.model_validate(base)


Key = tuple[str, str, str, dt.date, bool]


def counts_of(rows: list[tuple[str, str, str, int, bool, int]]) -> Counter[Key]:
    """rows: (force, category, disposal, days before AT, domestic abuse, n)."""
    c: Counter[Key] = Counter()
    for force, cat, disp, back, da, n in rows:
        c[(force, cat, disp, AT - dt.timedelta(days=back), da)] += n
    return c


def by_force(evals: Iterable[Evaluation]) -> dict[str, Evaluation]:
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
    assert (e["a"].numerator, e["a"].breached, e["a"].cleared) == (3, True, False)
    assert (e["b"].numerator, e["b"].breached, e["b"].cleared) == (0, False, True)


def test_rate_fires_on_evidence_and_needs_min_volume_and_excludes_pending() -> None:
    c = counts_of(
        [
            ("a", "stalking", "community-resolution", 1, False, 3),
            ("a", "stalking", "charge", 1, False, 27),
            ("a", "stalking", "pending", 1, False, 100),
            ("b", "stalking", "community-resolution", 1, False, 3),
            ("b", "stalking", "charge", 1, False, 7),
            ("c", "stalking", "community-resolution", 1, False, 12),
            ("c", "stalking", "charge", 1, False, 48),
        ]
    )
    r = rule(measure="rate", window="91d", threshold=0.05, min_volume=20, disposals=("community-resolution",))
    e = by_force(evaluate([r], c, at=AT, forces=FORCES))
    # a: 3 of 30 is 10%, but the 95% Wilson interval starts at 3.5%: no evidence it is above 5%;
    # it is not below 5% either, so a firing alert would stay firing (the band between the two)
    assert (e["a"].numerator, e["a"].denominator, e["a"].value) == (3, 30, 0.1)
    assert e["a"].interval == pytest.approx(wilson(3, 30)) and round(some(e["a"].interval)[0], 4) == 0.0346
    assert (e["a"].breached, e["a"].cleared) == (False, False)
    # b: 30%, but under min_volume: never fires, and a firing alert resolves
    assert (e["b"].denominator, e["b"].breached, e["b"].cleared) == (10, False, True)
    # c: 12 of 60, 20%: the interval starts at 11.8%, above 5%
    assert (e["c"].breached, e["c"].cleared) == (True, False) and some(e["c"].interval)[0] > 0.05


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


def test_spike_against_the_previous_window_needs_a_rise_that_is_not_noise() -> None:
    c = counts_of(
        [
            ("a", "stalking", "caution", 5, False, 6),
            ("a", "stalking", "charge", 5, False, 24),  # now 6/30
            ("a", "stalking", "caution", 40, False, 3),
            ("a", "stalking", "charge", 40, False, 27),  # before 3/30
            ("b", "stalking", "caution", 5, False, 6),
            ("b", "stalking", "charge", 5, False, 24),  # before: none
            ("c", "stalking", "caution", 5, False, 30),
            ("c", "stalking", "charge", 5, False, 70),  # now 30/100
            ("c", "stalking", "caution", 40, False, 10),
            ("c", "stalking", "charge", 40, False, 90),  # before 10/100
        ]
    )
    e = by_force(
        evaluate([rule(measure="spike", window="30d", threshold=0.5, min_volume=20)], c, at=AT, forces=FORCES)
    )
    # a doubled (+100%), but 6 of 30 against 3 of 30 is well within chance (Fisher p ~ 0.24)
    assert e["a"].value == pytest.approx(1.0) and e["a"].p_value == pytest.approx(rise_p_value(6, 30, 3, 30))
    assert some(e["a"].p_value) > 0.2 and not e["a"].breached and not e["a"].cleared
    assert (e["a"].baseline_numerator, e["a"].baseline_denominator) == (3, 30)
    assert not e["b"].breached and e["b"].cleared  # no rate before: no spike can be measured
    # c tripled on a hundred outcomes a window: evidence (p < 0.001)
    assert e["c"].value == pytest.approx(2.0) and some(e["c"].p_value) < 0.001 and e["c"].breached


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
    assert e["a"].p0 == pytest.approx(p0) and e["a"].limit == pytest.approx(funnel_limit(p0, 100, 1.96))
    # the exact limit is close to the normal approximation at this volume
    assert e["a"].limit == pytest.approx(p0 + 1.96 * math.sqrt(p0 * (1 - p0) / 100), abs=0.01)
    assert e["a"].breached and not e["b"].breached and not e["c"].breached
    # 95% rules resolve half a standard deviation inside their band
    assert e["a"].resolve_at == pytest.approx(funnel_limit(p0, 100, 1.46))


def test_peer_does_not_flip_when_only_p0_moves() -> None:
    """South Yorkshire, 14 of 80 (17.5%), against a 99.8% limit that p0's noise moves across it:
    once firing it stays firing until the force is back inside the 95% band."""
    r = rule(measure="peer", window="365d", z=3.09, min_volume=50)
    for others in (400, 410, 390, 405):  # other forces' out-of-court numbers, out of 4,000
        c = counts_of(
            [
                ("a", "stalking", "caution", 1, False, 14),
                ("a", "stalking", "charge", 1, False, 66),
                ("b", "stalking", "caution", 1, False, others),
                ("b", "stalking", "charge", 1, False, 4000 - others),
            ]
        )
        e = by_force(evaluate([r], c, at=AT, forces=FORCES))["a"]
        assert e.resolve_at is not None and e.limit is not None and e.resolve_at < e.value
        assert not e.cleared  # 17.5% stays above the 95% band whichever way p0 moved


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
    assert some(wide["f9"].limit) > some(plain["f9"].limit)
    assert plain["f9"].breached and not wide["f9"].breached


def test_rates_against_simulated_events_computed_directly() -> None:
    """Numerator and denominator of a rate rule equal a direct count over the events' latest outcomes."""
    events = list(simulate(20000, seed=3, end=AT))
    latest: dict[str, OutcomeEvent] = {}
    for ev in events:
        if ev.crime_key not in latest or ev.outcome_date >= latest[ev.crime_key].outcome_date:
            latest[ev.crime_key] = ev
    counts: Counter[Key] = Counter()
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
    assert e["a"].breached and not e["b"].breached and e["a"].window_start == AT - dt.timedelta(days=27)


def test_a_memo_gives_back_the_last_evaluation_while_its_inputs_stay_and_recomputes_on_change() -> None:
    rules = [
        rule(id="p", measure="peer", window="91d", z=3.09, overdispersion=True),
        rule(id="s", measure="spike", window="28d", threshold=0.5),
    ]
    rows = [("a", "stalking", "caution", 1, False, 9), ("a", "stalking", "charge", 1, False, 20)]
    rows += [("b", "stalking", "caution", 1, False, 2), ("b", "stalking", "charge", 30, False, 30)]
    aggregates = RuleAggregates(rules)
    aggregates.add_all(counts_of(rows).items())
    memo: Memo = {}
    first = evaluate_totals(rules, aggregates.totals(AT), at=AT, forces=FORCES, memo=memo)
    assert first == evaluate_totals(rules, aggregates.totals(AT), at=AT, forces=FORCES)  # as without
    again = evaluate_totals(rules, aggregates.totals(AT), at=AT, forces=FORCES, memo=memo)
    assert all(x is y for x, y in zip(first, again, strict=True))
    # one more caution in force c: c's evaluations, and every peer one (p0 moved), are new
    aggregates.move(("c", "stalking", "caution", AT, False), 1)
    moved = evaluate_totals(rules, aggregates.totals(AT), at=AT, forces=FORCES, memo=memo)
    assert moved == evaluate_totals(rules, aggregates.totals(AT), at=AT, forces=FORCES)
    reused = {(e.rule_id, e.force) for e, old in zip(moved, first, strict=True) if e is old}
    assert reused == {("s", "a"), ("s", "b")}
    # the next day: every window moved, nothing is reused
    later = AT + dt.timedelta(days=1)
    nxt = evaluate_totals(rules, aggregates.totals(later), at=later, forces=FORCES, memo=memo)
    assert not any(e is old for e, old in zip(nxt, moved, strict=True))
