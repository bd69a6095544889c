"""Rule evaluation: one ``Evaluation`` per (rule, force, category) in scope.

``evaluate_totals(rules, totals, at=..., forces=...)`` takes each rule's numerator and
denominator per (force, category) over its window ending on ``at`` (``alerts.aggregates``: the
worker keeps them as counts move, summed over every worker) and says for each alert whether its
condition holds, with the evidence. ``evaluate(rules, counts, ...)`` does the same from counts
keyed by (force, category, disposal class, outcome day, domestic-abuse flag). Deciding
transitions (firing -> resolved and back) from successive evaluations is the caller's.

Measures (see alerts/rules.yaml):
- count: numerator over the window >= threshold
- rate:  numerator / denominator >= threshold, when the denominator >= min_volume
- spike: rate over the window vs the window just before; (now - before) / before >= threshold,
         with min_volume in both windows; no rate before (0) means no spike can be measured
- peer:  rate above the funnel-plot upper limit for its volume (alerts.funnel); forces under
         min_volume never fire but count towards the pooled rate p0
- case:  at least one crime over the window (default 28 days) whose latest outcome breaches the
         rule: fires within one evaluation of the breach, resolves when the window has moved
         past it (or the crime's outcome changed); ``breaches`` tells the worker, per event,
         that one happened, so it evaluates at once.
The numerator counts crimes whose latest outcome is in the rule's disposal classes; the
denominator all crimes with an outcome other than ``pending``. ``domestic_abuse: true`` limits
both to crimes flagged domestic abuse. ``case`` rules are decided per event (``breaches``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from alerts import funnel
from alerts.aggregates import ZERO, ForceCategory, RuleAggregates, Totals
from alerts.rules import Rule

#: (force, category, disposal class, outcome day, domestic abuse) -> crimes
CountKey = tuple[str, str, str, dt.date, bool]
Counts = Mapping[CountKey, int]


@dataclass(frozen=True, slots=True)
class Evaluation:
    rule_id: str
    force: str
    category: str
    firing: bool
    value: float
    threshold: float
    numerator: int
    denominator: int | None
    window_start: dt.date
    window_end: dt.date
    p0: float | None = None
    limit: float | None = None


def window(at: dt.date, days: int, *, back: int = 0) -> tuple[dt.date, dt.date]:
    """The ``days``-day window ending on ``at`` (``back`` windows earlier)."""
    end = at - dt.timedelta(days=days * back)
    return end - dt.timedelta(days=days - 1), end


def _rate(num: int, den: int) -> float:
    return num / den if den else 0.0


def evaluate(
    rules: Sequence[Rule], counts: Counts, *, at: dt.date, forces: Iterable[str]
) -> list[Evaluation]:
    """Evaluate from counts (aggregated here first)."""
    aggregates = RuleAggregates(rules)
    aggregates.add_all(counts.items())
    return evaluate_totals(rules, aggregates.totals(at), at=at, forces=forces)


def evaluate_totals(
    rules: Sequence[Rule],
    totals: Mapping[str, Mapping[ForceCategory, Totals]],
    *,
    at: dt.date,
    forces: Iterable[str],
) -> list[Evaluation]:
    all_forces = sorted(forces)
    out: list[Evaluation] = []
    for rule in rules:
        scope = all_forces if rule.forces == "all" else sorted(rule.forces)
        first, last = window(at, rule.window_days)
        mine = totals.get(rule.id, {})
        for category in rule.category:
            sums = {f: mine.get((f, category), ZERO) for f in scope}
            p0 = None
            phi = 1.0
            if rule.measure == "peer":
                p0 = funnel.pooled_rate(
                    [t.numerator for t in sums.values()], [t.denominator for t in sums.values()]
                )
                if p0 is not None and rule.overdispersion and 0 < p0 < 1:
                    eligible = [t for t in sums.values() if t.denominator >= max(1, rule.min_volume)]
                    phi = funnel.overdispersion(
                        [t.numerator for t in eligible], [t.denominator for t in eligible], p0
                    )
            for force in scope:
                t = sums[force]
                out.append(
                    _one(
                        rule,
                        force,
                        category,
                        t.numerator,
                        t.denominator,
                        (t.numerator_before, t.denominator_before),
                        p0,
                        phi,
                        first,
                        last,
                    )
                )
    return out


def _one(
    rule: Rule,
    force: str,
    category: str,
    y: int,
    n: int,
    before: tuple[int, int],
    p0: float | None,
    phi: float,
    first: dt.date,
    last: dt.date,
) -> Evaluation:
    threshold = rule.threshold or 0.0
    if rule.measure == "case":
        return Evaluation(rule.id, force, category, y >= 1, float(y), 1.0, y, None, first, last)
    if rule.measure == "count":
        return Evaluation(rule.id, force, category, y >= threshold, float(y), threshold, y, None, first, last)
    if rule.measure == "rate":
        value = _rate(y, n)
        firing = n >= rule.min_volume and n > 0 and value >= threshold
        return Evaluation(rule.id, force, category, firing, value, threshold, y, n, first, last)
    if rule.measure == "spike":
        y0, n0 = before
        r_now, r_before = _rate(y, n), _rate(y0, n0)
        enough = n >= rule.min_volume and n0 >= rule.min_volume and n > 0 and n0 > 0
        rise = (r_now - r_before) / r_before if r_before > 0 else 0.0
        firing = enough and r_before > 0 and rise >= threshold
        return Evaluation(rule.id, force, category, firing, rise, threshold, y, n, first, last)
    # peer
    assert rule.z is not None
    value = _rate(y, n)
    if p0 is None or n == 0 or not 0 < p0 < 1:
        return Evaluation(rule.id, force, category, False, value, 1.0, y, n, first, last, p0, None)
    limit = funnel.upper_limit(p0, n, rule.z, phi)
    firing = n >= rule.min_volume and value > limit
    return Evaluation(rule.id, force, category, firing, value, limit, y, n, first, last, p0, limit)


def breaches(rule: Rule, *, category: str, disposal: str, domestic_abuse: bool) -> bool:
    """Whether a crime's outcome breaches a ``case`` rule (e.g. community resolution on domestic
    abuse, any out-of-court disposal for rape)."""
    if rule.measure != "case" or category not in rule.category or disposal not in rule.disposals:
        return False
    return rule.domestic_abuse is None or domestic_abuse == rule.domestic_abuse
