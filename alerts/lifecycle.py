"""Alert lifecycle: which evaluations are transitions.

One alert per (rule, force, category), identified by a stable fingerprint. It goes
firing -> resolved and back; only changes are transitions. An alert never seen is resolved,
so the first transition of any alert is to firing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerts.engine import Evaluation
from alerts.rules import Rule


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

    def record(self) -> dict[str, object]:
        """The alerts topic's Avro record (disposalwatch.Alert)."""
        e, r = self.evaluation, self.rule
        return {
            "schema_version": 1,
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
        }


def transitions(
    evaluations: Iterable[Evaluation],
    current: Mapping[str, str],
    rules: Mapping[str, Rule],
    *,
    at: dt.datetime,
) -> list[Transition]:
    """Evaluations whose state differs from ``current`` (fingerprint -> state; absent: resolved)."""
    out = []
    for e in evaluations:
        fp = fingerprint(e.rule_id, e.force, e.category)
        state = "firing" if e.firing else "resolved"
        if current.get(fp, "resolved") != state:
            out.append(Transition(fp, state, rules[e.rule_id], e, at))
    return out
