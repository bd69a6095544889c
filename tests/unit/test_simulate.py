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
