"""The scrutiny panel's sample: reproducible, within scope, strata honoured, domestic abuse
first, and uniform within a stratum (chi-square over many keys)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest
from scipy.stats import chisquare

from streams.dashboard.scrutiny import Candidate, allocate, draw, quarter_bounds, quarter_of

KEY = b"k" * 32


def crimes(n: int, category: str, da_every: int = 0, start: int = 0) -> list[Candidate]:
    return [
        Candidate(
            f"kent/{category}/{i}",
            category,
            "community-resolution",
            dt.date(2026, 8, 1 + i % 28),
            bool(da_every) and i % da_every == 0,
        )  # fmt: skip
        for i in range(start, start + n)
    ]


def test_quarters() -> None:
    assert quarter_bounds("2026-Q3") == (dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    assert quarter_bounds("2026-Q4") == (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert quarter_of(dt.date(2026, 11, 30)) == "2026-Q4"
    with pytest.raises(ValueError, match="like 2026-Q3"):
        quarter_bounds("2026-Q5")


def test_the_same_force_and_quarter_give_the_same_sample_whatever_the_order() -> None:
    pool = crimes(300, "stalking") + crimes(100, "harassment")
    first = draw(pool, 20, KEY, "kent", "2026-Q3")
    shuffled = pool[:]
    random.Random(1).shuffle(shuffled)
    assert draw(shuffled, 20, KEY, "kent", "2026-Q3") == first and len(first) == 20
    assert set(first) <= set(pool)
    assert draw(pool, 20, KEY, "kent", "2026-Q2") != first  # another quarter, another draw
    assert draw(pool, 20, b"x" * 32, "kent", "2026-Q3") != first  # another deployment's key


def test_strata_share_the_places_and_domestic_abuse_comes_first() -> None:
    assert allocate({"stalking": 300, "harassment": 100, "sexual": 2}, 20) == {
        "stalking": 14,
        "harassment": 5,
        "sexual": 1,
    }
    assert allocate({"a": 3, "b": 1}, 10) == {"a": 3, "b": 1}
    pool = crimes(300, "stalking", da_every=50) + crimes(100, "harassment") + crimes(2, "sexual")
    sample = draw(pool, 20, KEY, "kent", "2026-Q3")
    assert Counter(c.category for c in sample) == {"stalking": 14, "harassment": 5, "sexual": 1}
    stalking = [c for c in sample if c.category == "stalking"]
    assert sum(c.domestic_abuse for c in stalking) == 6  # every domestic-abuse case, before the rest
    assert [c.domestic_abuse for c in stalking] == sorted((c.domestic_abuse for c in stalking), reverse=True)


def test_the_draw_is_uniform_within_a_stratum() -> None:
    """2,000 deployments' keys, a stratum of 40 crimes of which 5 are drawn: each crime's count of
    draws is compatible with equal chances (chi-square, p > 0.001)."""
    pool = crimes(40, "stalking")
    hits: Counter[str] = Counter()
    for seed in range(2000):
        for c in draw(pool, 5, seed.to_bytes(8, "big") * 4, "kent", "2026-Q3"):
            hits[c.key] += 1
    observed = [hits[c.key] for c in pool]
    assert sum(observed) == 10_000
    assert chisquare(observed).pvalue > 0.001
    # and a draw that favoured the first crimes would fail the same test
    biased = [hits[c.key] + (60 if i < 5 else 0) for i, c in enumerate(pool)]
    assert chisquare(biased).pvalue < 0.001
