"""Each measure's one-line summary, word for word: what an analyst reads in the alert."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from alerts.engine import Evaluation
from alerts.evidence import summary
from alerts.rules import Rule, load_rules
from streams.reference import CATEGORIES, FORCE_NAMES

ROOT = Path(__file__).resolve().parents[2]
D0, D1 = dt.date(2026, 9, 1), dt.date(2026, 11, 30)


def rule(measure: str) -> Rule:
    rules = load_rules(ROOT / "alerts" / "rules.yaml", known_forces=FORCE_NAMES, known_categories=CATEGORIES)
    return [r for r in rules if r.measure == measure][-1]  # the last of each measure in the file


def evaluation(category: str, **fields: object) -> Evaluation:
    return Evaluation(
        rule_id="r",
        force="kent",
        category=category,
        window_start=D0,
        window_end=D1,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("measure", "e", "said"),
    [
        (
            "rate",
            evaluation("stalking", breached=True, cleared=False, value=0.3, threshold=0.05, numerator=30,
                       denominator=100, interval=(0.21, 0.4)),
            "Kent: 30 of 100 stalking outcomes in the 91 days to 2026-11-30 were settled out of court "
            "(30.0%; 95% interval 21.0% to 40.0%); threshold 5.0%.",
        ),
        (
            "peer",
            evaluation("harassment", breached=True, cleared=False, value=0.2, threshold=0.15, numerator=20,
                       denominator=100, p0=0.1, limit=0.15),
            "Kent: 20 of 100 harassment outcomes in the 91 days to 2026-11-30 were settled out of court "
            "(20.0%); all forces 10.0%; 99.8% upper limit for this volume 15.0%.",
        ),
        (
            "peer",
            evaluation("harassment", breached=False, cleared=True, value=0.0, threshold=1.0, numerator=0,
                       denominator=0),
            "Kent: 0 of 0 harassment outcomes in the 91 days to 2026-11-30 were settled out of court (0.0%).",
        ),
        (
            "spike",
            evaluation("stalking", breached=True, cleared=False, value=1.5, threshold=0.5, numerator=25,
                       denominator=100, baseline_numerator=10, baseline_denominator=100, p_value=0.0004),
            "Kent: stalking outcomes community resolutions: 25 of 100 (25.0%) in the 91 days to 2026-11-30, "
            "against 10 of 100 (10.0%) in the 91 days before: +150% (one-sided Fisher test p < 0.001).",
        ),
        (
            "spike",
            evaluation("stalking", breached=False, cleared=True, value=0.1, threshold=0.5, numerator=11,
                       denominator=100, baseline_numerator=10, baseline_denominator=100, p_value=0.41),
            "Kent: stalking outcomes community resolutions: 11 of 100 (11.0%) in the 91 days to 2026-11-30, "
            "against 10 of 100 (10.0%) in the 91 days before: +10% (one-sided Fisher test p = 0.410).",
        ),
        (
            "count",
            evaluation("sexual-offences", breached=True, cleared=False, value=1.0, threshold=5, numerator=1,
                       denominator=None),
            "Kent: 1 sexual offences crime settled out of court in the 91 days to 2026-11-30 (threshold 5).",
        ),
        (
            "case",
            evaluation("rape", breached=True, cleared=False, value=3.0, threshold=1.0, numerator=3,
                       denominator=None),
            "Kent: 3 rape crimes in the 91 days to 2026-11-30: any out-of-court disposal for rape (guidance "
            "breach).",
        ),
    ],
)  # fmt: skip
def test_each_measure_says_what_was_measured_against_what(measure: str, e: Evaluation, said: str) -> None:
    assert summary(rule(measure), e, "firing", "Kent") == said
    assert summary(rule(measure), e, "resolved", "Kent") == "Resolved: " + said
