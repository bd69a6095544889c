"""Evidence that explains itself: a one-line summary of an alert's transition, in plain English.

"Durham: 12 of 140 stalking outcomes in the 91 days to 2025-06-30 were community resolutions
(8.6%; 95% interval 5.0% to 14.4%); threshold 5.0%." Numbers are rounded for people (rates to
one decimal of a per cent); the record beside the summary keeps them exact. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alerts.engine import Evaluation
from alerts.rules import OUT_OF_COURT, Rule
from alerts.stats import probability_of

#: categories whose slug does not read well on its own
CATEGORY_WORDS = {
    "sexual": "sexual offence (other than rape)",
    "rape": "rape",
    "knife": "knife possession",
    "weapons": "weapons possession",
    "child-cruelty": "child cruelty",
    "controlling-coercive": "controlling or coercive behaviour",
    "other-violence": "violence (other)",
}
DISPOSAL_WORDS = {
    "charge": "charges or summonses",
    "caution": "cautions",
    "penalty-notice": "penalty notices",
    "drugs-warning": "drugs warnings",
    "community-resolution": "community resolutions",
    "diversion": "diversions",
    "no-further-action": "no further action",
    "other": "other outcomes",
    "pending": "still pending",
}


def pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def category_words(category: str) -> str:
    return CATEGORY_WORDS.get(category, category.replace("-", " "))


def disposal_words(disposals: tuple[str, ...]) -> str:
    """What the numerator counts: "settled out of court", "community resolutions", ..."""
    if set(disposals) == set(OUT_OF_COURT):
        return "settled out of court"
    return " or ".join(DISPOSAL_WORDS.get(d, d) for d in disposals)


def band(z: float) -> str:
    """The two-sided coverage of z standard deviations: 1.96 -> "95%", 3.09 -> "99.8%"."""
    return f"{(2 * probability_of(z) - 1) * 100:.3g}%"


@dataclass(frozen=True, slots=True)
class _Said:
    """What a summary's line is made of: the rule, its evaluation, and their words."""

    rule: Rule
    e: Evaluation
    cat: str  # the category, in words
    what: str  # the disposal classes, in words
    days: int
    span: str  # "in the 28 days to 2026-03-01"
    y: int
    n: int


def _rate_line(s: _Said) -> str:
    lo, hi = s.e.interval or (0.0, 1.0)
    return (
        f"{s.y} of {s.n} {s.cat} outcomes {s.span} were {s.what} ({pct(s.e.value)}; "
        f"{s.rule.confidence * 100:.0f}% interval {pct(lo)} to {pct(hi)}); threshold {pct(s.e.threshold)}"
    )


def _peer_line(s: _Said) -> str:
    line = f"{s.y} of {s.n} {s.cat} outcomes {s.span} were {s.what} ({pct(s.e.value)})"
    if s.e.p0 is not None and s.e.limit is not None:
        line += (
            f"; all forces {pct(s.e.p0)}; {band(s.rule.z or 0)} upper limit for this volume {pct(s.e.limit)}"
        )
    return line


def _spike_line(s: _Said) -> str:
    y, n, e = s.y, s.n, s.e
    y0, n0 = e.baseline_numerator or 0, e.baseline_denominator or 0
    before = y0 / n0 if n0 else 0.0
    line = (
        f"{s.cat} outcomes {s.what}: {y} of {n} ({pct(y / n if n else 0.0)}) {s.span}, against {y0} of {n0} "
        f"({pct(before)}) in the {s.days} days before: {e.value * 100:+.0f}%"
    )
    if e.p_value is not None:
        shown = "p < 0.001" if e.p_value < 0.001 else f"p = {e.p_value:.3f}"
        line += f" (one-sided Fisher test {shown})"
    return line


def _count_line(s: _Said) -> str:
    crimes = "crime" if s.y == 1 else "crimes"
    return f"{s.y} {s.cat} {crimes} {s.what} {s.span} (threshold {s.e.threshold:g})"


def _case_line(s: _Said) -> str:
    crimes = "crime" if s.y == 1 else "crimes"
    return f"{s.y} {s.cat} {crimes} {s.span}: {s.rule.description}"


#: each measure's line (the measures are described in ``alerts.engine``)
_LINES: dict[str, Callable[[_Said], str]] = {
    "rate": _rate_line,
    "peer": _peer_line,
    "spike": _spike_line,
    "count": _count_line,
    "case": _case_line,
}


def summary(rule: Rule, e: Evaluation, state: str, force_name: str) -> str:
    """One line that says what was measured against what (see the module docstring)."""
    days = (e.window_end - e.window_start).days + 1
    said = _Said(
        rule,
        e,
        cat=category_words(e.category),
        what=disposal_words(rule.disposals),
        days=days,
        span=f"in the {days} days to {e.window_end.isoformat()}",
        y=e.numerator,
        n=e.denominator or 0,
    )
    prefix = "Resolved: " if state == "resolved" else ""
    return f"{prefix}{force_name}: {_LINES[rule.measure](said)}."
