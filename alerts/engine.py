"""Rule evaluation over counts: one ``Evaluation`` per (rule, force, category) in scope.

``evaluate(rules, counts, at=..., forces=...)`` takes counts keyed by (force, category,
disposal class, outcome day, domestic-abuse flag), as the worker keeps them, summed over every
partition, and says for each alert whether its condition holds on day ``at``, with the evidence.
Deciding transitions (firing -> resolved and back) from successive evaluations is the caller's.

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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from alerts import funnel
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


def totals(
    rule: Rule, counts: Counts, first: dt.date, last: dt.date
) -> dict[tuple[str, str], tuple[int, int]]:
    """(force, category) -> (numerator, denominator) over days ``first``..``last``."""
    num: dict[tuple[str, str], int] = defaultdict(int)
    den: dict[tuple[str, str], int] = defaultdict(int)
    cats = set(rule.category)
    wanted = set(rule.disposals)
    for (force, category, disposal, day, da), n in counts.items():
        if day < first or day > last or category not in cats:
            continue
        if rule.domestic_abuse is not None and da != rule.domestic_abuse:
            continue
        key = (force, category)
        if disposal in wanted:
            num[key] += n
        if disposal != "pending":
            den[key] += n
    return {k: (num.get(k, 0), den.get(k, 0)) for k in set(num) | set(den)}


def _rate(num: int, den: int) -> float:
    return num / den if den else 0.0


def evaluate(
    rules: Sequence[Rule], counts: Counts, *, at: dt.date, forces: Iterable[str]
) -> list[Evaluation]:
    all_forces = sorted(forces)
    out: list[Evaluation] = []
    for rule in rules:
        scope = all_forces if rule.forces == "all" else sorted(rule.forces)
        first, last = window(at, rule.window_days)
        now = totals(rule, counts, first, last)
        before = (
            totals(rule, counts, *window(at, rule.window_days, back=1)) if rule.measure == "spike" else {}
        )
        for category in rule.category:
            pairs = {f: now.get((f, category), (0, 0)) for f in scope}
            p0 = None
            phi = 1.0
            if rule.measure == "peer":
                p0 = funnel.pooled_rate([y for y, _ in pairs.values()], [n for _, n in pairs.values()])
                if p0 is not None and rule.overdispersion and 0 < p0 < 1:
                    eligible = [(y, n) for y, n in pairs.values() if n >= max(1, rule.min_volume)]
                    phi = funnel.overdispersion([y for y, _ in eligible], [n for _, n in eligible], p0)
            for force in scope:
                y, n = pairs[force]
                out.append(
                    _one(
                        rule,
                        force,
                        category,
                        y,
                        n,
                        before.get((force, category), (0, 0)),
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
