"""Alert evaluation straight from cell counts, for tests: the worker keeps the rule sums as
counts move (``alerts.aggregates.RuleAggregates``) and evaluates those; this aggregates first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TypeVar

from alerts.aggregates import RuleAggregates
from alerts.engine import Counts, Evaluation, evaluate_totals
from alerts.rules import Rule

T = TypeVar("T")


def evaluate(
    rules: Sequence[Rule], counts: Counts, *, at: dt.date, forces: Iterable[str]
) -> list[Evaluation]:
    """Every evaluation of ``rules`` over ``counts`` on day ``at``."""
    aggregates = RuleAggregates(rules)
    aggregates.add_all(counts.items())
    return evaluate_totals(rules, aggregates.totals(at), at=at, forces=forces)


def some(value: T | None) -> T:
    """An evaluation's optional figure that the test expects to be there."""
    assert value is not None
    return value
