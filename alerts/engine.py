"""Rule evaluation: one ``Evaluation`` per (rule, force, category) in scope.

``evaluate_totals(rules, totals, at=..., forces=...)`` takes each rule's numerator and
denominator per (force, category) over its window ending on ``at`` (``alerts.aggregates``: the
worker keeps them as counts move, summed over every worker) and says for each alert whether its
condition holds, with the evidence. ``evaluate(rules, counts, ...)`` does the same from counts
keyed by (force, category, disposal class, outcome day, domestic-abuse flag). Deciding
transitions (firing -> resolved and back) from successive evaluations is the caller's.

Measures (see alerts/rules.yaml), each with the evidence to fire and the condition to resolve;
statistics from ``alerts.stats``:
- count: fires at numerator >= threshold; resolves below ``resolve_below`` (default the threshold)
- rate:  fires when the Wilson lower bound of numerator / denominator (at the rule's confidence,
         95%) is at or above the threshold, with the denominator >= min_volume; resolves when the
         rate itself is below ``resolve_below`` (default the threshold) or the volume falls short
- spike: the rate over the window against the window just before: fires when it rose by the
         threshold or more (0.5 = +50%) and a one-sided Fisher exact test says the rise is not
         noise (p <= 1 - confidence), with min_volume in both windows; resolves when the rise
         is below ``resolve_below`` (default half the threshold). No rate before: no spike.
- peer:  funnel plot: fires when the force's rate is above the exact binomial limit at z for
         its volume around the pooled rate p0 (widened for over-dispersion); resolves only when
         it is back under the limit at ``resolve_z`` (default the 95% band for 99.8% rules), so
         p0 moving by noise does not flip it. Forces under min_volume never fire but count in p0.
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
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from alerts import funnel, stats
from alerts.aggregates import ZERO, ForceCategory, Totals
from alerts.rules import Rule

#: (force, category, disposal class, outcome day, domestic abuse) -> crimes
CountKey = tuple[str, str, str, dt.date, bool]
Counts = Mapping[CountKey, int]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One alert's condition on one evaluation day, with its evidence.

    ``breached``: the evidence to fire holds; ``cleared``: the condition to resolve holds. Between
    the two (neither) a firing alert stays firing and a resolved one stays resolved: that band is
    what keeps an alert from flapping on noise (``alerts.lifecycle`` adds the hold times)."""

    rule_id: str
    force: str
    category: str
    breached: bool
    cleared: bool
    value: float
    threshold: float
    numerator: int
    denominator: int | None
    window_start: dt.date
    window_end: dt.date
    #: peer: the pooled rate of every force in scope, and the limit at z for this volume
    p0: float | None = None
    limit: float | None = None
    #: the value under which a firing alert resolves (peer: the limit at resolve_z)
    resolve_at: float | None = None
    #: rate: the interval of numerator / denominator at the rule's confidence (Wilson)
    interval: tuple[float, float] | None = None
    #: spike: the previous window's numerator and denominator, and the one-sided Fisher p-value
    baseline_numerator: int | None = None
    baseline_denominator: int | None = None
    p_value: float | None = None


def window(at: dt.date, days: int, *, back: int = 0) -> tuple[dt.date, dt.date]:
    """The ``days``-day window ending on ``at`` (``back`` windows earlier)."""
    end = at - dt.timedelta(days=days * back)
    return end - dt.timedelta(days=days - 1), end


def _rate(num: int, den: int) -> float:
    return num / den if den else 0.0


#: (rule id, force, category) -> the inputs of its last evaluation, and that evaluation
Memo = dict[tuple[str, str, str], tuple[tuple[Any, ...], Evaluation]]


def evaluate_totals(
    rules: Sequence[Rule],
    totals: Mapping[str, Mapping[ForceCategory, Totals]],
    *,
    at: dt.date,
    forces: Iterable[str],
    memo: Memo | None = None,
) -> list[Evaluation]:
    """One evaluation per (rule, force, category) in scope. With ``memo`` (kept by the caller
    from one evaluation to the next), an alert whose inputs (its totals, the window, and for
    peer rules p0 and the over-dispersion factor) are those of its last evaluation gets that
    evaluation back, the same object, without its statistics computed again: an evaluation
    costs in proportion to what changed since the last."""
    all_forces = sorted(forces)
    out: list[Evaluation] = []
    for rule in rules:
        scope = all_forces if rule.forces == "all" else sorted(rule.forces)
        first, last = window(at, rule.window_days)
        mine = totals.get(rule.id, {})
        for category in rule.category:
            sums = {f: mine.get((f, category), ZERO) for f in scope}
            p0, spread = (
                _pooled(rule, sums.values()) if rule.measure == "peer" else (None, funnel.NO_DISPERSION)
            )
            for force in scope:
                t = sums[force]
                inputs = (t, p0, spread, last)
                if memo is not None:
                    hit = memo.get((rule.id, force, category))
                    if hit is not None and hit[0] == inputs:
                        out.append(hit[1])
                        continue
                e = _one(
                    rule,
                    force,
                    category,
                    t.numerator,
                    t.denominator,
                    (t.numerator_before, t.denominator_before),
                    p0,
                    spread,
                    first,
                    last,
                )
                if memo is not None:
                    memo[(rule.id, force, category)] = (inputs, e)
                out.append(e)
    return out


def _pooled(rule: Rule, sums: Collection[Totals]) -> tuple[float | None, funnel.Dispersion]:
    """A peer rule's pooled rate p0 over every force in scope, and the over-dispersion of the
    forces with volume enough around it (none when p0 is unknown, 0 or 1)."""
    return funnel.pooled(
        [t.numerator for t in sums],
        [t.denominator for t in sums],
        min_volume=rule.min_volume,
        method=rule.overdispersion,
    )


@dataclass(frozen=True, slots=True)
class _Alert:
    """What one alert (rule, force, category) is evaluated from."""

    rule: Rule
    #: the force's numerator and denominator over the window, and over the window before
    y: int
    n: int
    y0: int
    n0: int
    #: peer: the pooled rate of every force in scope, and the over-dispersion
    p0: float | None
    spread: funnel.Dispersion
    #: the alert's evaluation with nothing decided yet: each measure replaces what it decides
    base: Evaluation


def _case(a: _Alert) -> Evaluation:
    return replace(
        a.base, breached=a.y >= 1, cleared=a.y == 0, value=float(a.y), threshold=1.0, resolve_at=1.0
    )


def _count(a: _Alert) -> Evaluation:
    threshold, resolve = a.rule.threshold or 0.0, a.rule.resolve_threshold
    return replace(
        a.base, breached=a.y >= threshold, cleared=a.y < resolve, value=float(a.y), threshold=threshold,
        resolve_at=resolve,
    )  # fmt: skip


def _rate_of(a: _Alert) -> Evaluation:
    rule, y, n = a.rule, a.y, a.n
    threshold, resolve = rule.threshold or 0.0, rule.resolve_threshold
    value = _rate(y, n)
    interval = stats.wilson(y, n, rule.confidence)
    enough = n >= max(1, rule.min_volume)
    return replace(
        a.base, breached=enough and interval[0] >= threshold, cleared=not enough or value < resolve,
        value=value, threshold=threshold, denominator=n, resolve_at=resolve, interval=interval,
    )  # fmt: skip


def _spike(a: _Alert) -> Evaluation:
    rule, y, n, y0, n0 = a.rule, a.y, a.n, a.y0, a.n0
    threshold, resolve = rule.threshold or 0.0, rule.resolve_threshold
    r_now, r_before = _rate(y, n), _rate(y0, n0)
    measurable = n >= max(1, rule.min_volume) and n0 >= max(1, rule.min_volume) and r_before > 0
    rise = (r_now - r_before) / r_before if r_before > 0 else 0.0
    p = stats.rise_p_value(y, n, y0, n0)
    return replace(
        a.base, breached=measurable and rise >= threshold and p <= 1 - rule.confidence,
        cleared=not measurable or rise < resolve, value=rise, threshold=threshold, denominator=n,
        resolve_at=resolve, baseline_numerator=y0, baseline_denominator=n0, p_value=p,
    )  # fmt: skip


def _peer(a: _Alert) -> Evaluation:
    rule, n, p0 = a.rule, a.n, a.p0
    assert rule.z is not None
    value = _rate(a.y, n)
    if p0 is None or n == 0 or not 0 < p0 < 1:
        return replace(a.base, cleared=True, value=value, threshold=1.0, denominator=n, p0=p0)
    limit = a.spread.limit(p0, n, rule.z)
    resolve_limit = a.spread.limit(p0, n, rule.resolve_sd)
    enough = n >= rule.min_volume
    return replace(
        a.base, breached=enough and value > limit, cleared=not enough or value <= resolve_limit,
        value=value, threshold=limit, denominator=n, p0=p0, limit=limit, resolve_at=resolve_limit,
    )  # fmt: skip


#: each measure's evaluation (the measures are described in the module docstring)
MEASURES: dict[str, Callable[[_Alert], Evaluation]] = {
    "case": _case,
    "count": _count,
    "rate": _rate_of,
    "spike": _spike,
    "peer": _peer,
}


def _one(
    rule: Rule,
    force: str,
    category: str,
    y: int,
    n: int,
    before: tuple[int, int],
    p0: float | None,
    spread: funnel.Dispersion,
    first: dt.date,
    last: dt.date,
) -> Evaluation:
    base = Evaluation(
        rule_id=rule.id, force=force, category=category, breached=False, cleared=False, value=0.0,
        threshold=0.0, numerator=y, denominator=None, window_start=first, window_end=last,
    )  # fmt: skip
    return MEASURES[rule.measure](_Alert(rule, y, n, before[0], before[1], p0, spread, base))


def breaches(rule: Rule, *, category: str, disposal: str, domestic_abuse: bool) -> bool:
    """Whether a crime's outcome breaches a ``case`` rule (e.g. community resolution on domestic
    abuse, any out-of-court disposal for rape)."""
    if rule.measure != "case" or category not in rule.category or disposal not in rule.disposals:
        return False
    return rule.domestic_abuse is None or domestic_abuse == rule.domestic_abuse
