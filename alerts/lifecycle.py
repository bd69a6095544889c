"""Alert lifecycle: which evaluations are transitions.

One alert per (rule, force, category), identified by a stable fingerprint. It goes
firing -> resolved and back; only changes are transitions. An alert never seen is resolved,
so the first transition of any alert is to firing.

No flapping, by design, as Prometheus' ``for`` and ``keep_firing_for`` do it:
- a resolved alert fires once its evidence has held (``Evaluation.breached``) on evaluation
  days at least ``for`` apart (default 0d: at once; the statistics already ask for evidence);
- a firing alert resolves only once its resolve condition (``Evaluation.cleared``: a band
  below the firing condition) has held on evaluation days at least ``keep_firing_for`` apart
  (default 7d; case alerts 0d). Between the two conditions nothing changes.
The days are evaluation days (the day the windows end on: the UTC date, or under
``DW_CLOCK=stream`` the newest outcome date), so a replay of history at any speed gives the
alerts the same hold times as the data's own time. ``Holds`` keeps since when each condition
has held; the evaluating worker keeps it in memory (a new leader starts afresh, which can only
delay a transition).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from alerts.engine import Evaluation
from alerts.rules import Rule


@functools.lru_cache(maxsize=1 << 16)
def fingerprint(rule_id: str, force: str, category: str) -> str:
    """Stable id of one alert: the first 16 hex digits of SHA-256 over the three, separated."""
    return hashlib.sha256(f"{rule_id}\x1f{force}\x1f{category}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Transition:
    fingerprint: str
    state: str  # "firing" | "resolved"
    rule: Rule
    evaluation: Evaluation
    at: dt.datetime
    #: up to 10 pseudonymised crime references (count and case alerts)
    crime_refs: tuple[str, ...] = ()
    #: one line in plain English (``alerts.evidence.summary``)
    summary: str = ""

    def record(self) -> dict[str, object]:
        """The alerts topic's Avro record (disposalwatch.Alert)."""
        e, r = self.evaluation, self.rule
        return {
            "schema_version": 2,
            "fingerprint": self.fingerprint,
            "rule_id": r.id,
            "force_id": e.force,
            "category": e.category,
            "state": self.state,
            "severity": r.severity,
            "measure": r.measure,
            "value": float(e.value),
            "threshold": float(e.threshold),
            "numerator": e.numerator,
            "denominator": e.denominator,
            "window_start": e.window_start,
            "window_end": e.window_end,
            "p0": e.p0,
            "limit": e.limit,
            "crime_refs": list(self.crime_refs),
            "transition_at": self.at,
            "description": r.description,
            "summary": self.summary,
            "confidence": r.confidence if r.measure in ("rate", "spike") else None,
            "interval_low": e.interval[0] if e.interval else None,
            "interval_high": e.interval[1] if e.interval else None,
            "resolve_at": e.resolve_at,
            "baseline_numerator": e.baseline_numerator,
            "baseline_denominator": e.baseline_denominator,
            "p_value": e.p_value,
        }


@dataclass
class Holds:
    """Since which evaluation day each alert's firing evidence (while resolved) or its resolve
    condition (while firing) has held."""

    breached_since: dict[str, dt.date] = field(default_factory=dict)
    cleared_since: dict[str, dt.date] = field(default_factory=dict)


def transitions(
    evaluations: Iterable[Evaluation],
    current: Mapping[str, str],
    rules: Mapping[str, Rule],
    *,
    day: dt.date,
    at: dt.datetime,
    holds: Holds | None = None,
) -> list[Transition]:
    """The transitions that the evaluations of ``day`` make, given each alert's ``current``
    state (fingerprint -> state; absent: resolved) and what ``holds`` remembers (updated)."""
    holds = holds if holds is not None else Holds()
    out = []
    for e in evaluations:
        fp = fingerprint(e.rule_id, e.force, e.category)
        rule = rules[e.rule_id]
        if current.get(fp, "resolved") == "firing":
            holds.breached_since.pop(fp, None)
            if _held(holds.cleared_since, fp, e.cleared, day, rule.keep_firing_days):
                out.append(Transition(fp, "resolved", rule, e, at))
        else:
            holds.cleared_since.pop(fp, None)
            if _held(holds.breached_since, fp, e.breached, day, rule.pending_days):
                out.append(Transition(fp, "firing", rule, e, at))
    return out


def _held(since: dict[str, dt.date], fp: str, holds_now: bool, day: dt.date, days: int) -> bool:
    """Whether a condition that holds ``holds_now`` has held for ``days`` evaluation days."""
    if not holds_now:
        since.pop(fp, None)
        return False
    first = since.setdefault(fp, day)
    if (day - first).days >= days:
        del since[fp]
        return True
    return False
