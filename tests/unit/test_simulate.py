import datetime as dt
from collections import Counter

from streams.core.classify import category_of
from streams.reference import FORCE_WEIGHTS, OUT_OF_COURT
from streams.simulate import simulate

END = dt.date(2025, 6, 30)


def test_deterministic_and_sized() -> None:
    a = list(simulate(2000, seed=5, end=END))
    assert len(a) == 2000
    assert a == list(simulate(2000, seed=5, end=END))
    assert a != list(simulate(2000, seed=6, end=END))


def test_plausible_mix() -> None:
    events = list(simulate(60000, seed=1, end=END))
    forces = Counter(e.force_id for e in events)
    assert set(forces) == set(FORCE_WEIGHTS)  # all 45 forces
    assert forces["metropolitan"] > 5 * forces["cumbria"] > 5 * forces["city-of-london"] > 0
    # final outcome per crime
    latest = {}
    for e in events:
        latest[e.crime_key] = e
    finals = [e for e in latest.values() if e.disposal != "pending"]
    share = sum(e.disposal in OUT_OF_COURT for e in finals) / len(finals)
    assert 0.04 < share < 0.12  # out-of-court disposals: a few per cent to a tenth
    cr = sum(e.disposal == "community-resolution" for e in finals) / len(finals)
    assert 0.015 < cr < 0.05  # "about 3% of outcomes"
    cats = Counter(category_of(e) for e in latest.values())
    assert cats["stalking"] > cats["knife"] > 0 and cats["sexual"] > 0
    assert all(e.outcome_date <= END and e.outcome_date > END - dt.timedelta(days=365) for e in events)
    rape = [e for e in finals if e.offence_code in {"19C", "19D"}]
    assert sum(e.disposal in OUT_OF_COURT for e in rape) / max(1, len(rape)) < 0.01


def test_crimes_evolve() -> None:
    events = list(simulate(5000, seed=2, end=END))
    per_crime = Counter(e.crime_key for e in events)
    assert max(per_crime.values()) >= 2
    assert any(e.disposal == "pending" for e in events)


def test_the_demo_story_makes_the_default_rules_fire_where_an_analyst_would() -> None:
    """What README's "What the demo shows" promises: on top of the steady national feed, the
    story's two forces, and nothing else but guidance breaches (case rules), fire."""
    import datetime as dt
    from collections import Counter

    from alerts.rules import load_rules
    from streams.resources import DEFAULT_RULES
    from streams.simulate import story
    from tests.evaluate import evaluate

    end = dt.date(2026, 11, 24)
    events = story(end) + list(simulate(60_000, seed=7, end=end))
    assert len({e.crime_key for e in story(end)}) == len(story(end)) == 248
    latest: dict = {}  # type: ignore[type-arg]
    for ev in events:
        if ev.crime_key not in latest or ev.outcome_date >= latest[ev.crime_key].outcome_date:
            latest[ev.crime_key] = ev
    counts = Counter(
        (e.force_id, category_of(e), e.disposal, e.outcome_date, bool(e.domestic_abuse))
        for e in latest.values()
    )
    fired = {
        (e.rule_id, e.force, e.category)
        for e in evaluate(load_rules(DEFAULT_RULES), counts, at=end, forces=FORCE_WEIGHTS)
        if e.breached
    }
    assert {k for k in fired if k[0] not in ("domestic-abuse-community-resolution", "rape-out-of-court")} == {
        ("stalking-cr-rate", "durham", "stalking"),
        ("stalking-cr-spike", "durham", "stalking"),
        ("harassment-oocd-peer", "south-yorkshire", "harassment"),
    }


def test_in_date_order_every_event_comes_by_date_and_crimes_spread_over_the_days() -> None:
    events = list(simulate(30000, seed=4, end=END, days=3 * 365, ordered=True))
    assert len(events) == 30000 and len({e.event_id for e in events}) == 30000
    assert all(a.outcome_date <= b.outcome_date for a, b in zip(events, events[1:], strict=False))
    assert events[0].outcome_date >= END - dt.timedelta(days=3 * 365 - 1) and events[-1].outcome_date <= END
    per_year = Counter((END - e.outcome_date).days // 365 for e in events)
    assert all(8000 < per_year[y] < 12000 for y in range(3)), per_year
    # a crime's events keep their order: first recorded, then its outcome
    first: dict[str, int] = {}
    for i, e in enumerate(events):
        first.setdefault(e.crime_ref, i)
        if e.disposal == "pending":
            assert first[e.crime_ref] == i
    assert events == list(simulate(30000, seed=4, end=END, days=3 * 365, ordered=True))
