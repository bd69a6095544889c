"""Evidence that explains itself: a one-line summary of an alert's transition, in plain English.

"Durham: 12 of 140 stalking outcomes in the 91 days to 2025-06-30 were community resolutions
(8.6%; 95% interval 5.0% to 14.4%); threshold 5.0%." Numbers are rounded for people (rates to
one decimal of a per cent); the record beside the summary keeps them exact. Pure.
"""

from __future__ import annotations

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


def summary(rule: Rule, e: Evaluation, state: str, force_name: str) -> str:
    """One line that says what was measured against what (see the module docstring)."""
    cat, what = category_words(e.category), disposal_words(rule.disposals)
    days = (e.window_end - e.window_start).days + 1
    span = f"in the {days} days to {e.window_end.isoformat()}"
    y, n = e.numerator, e.denominator or 0
    if rule.measure == "rate":
        lo, hi = e.interval or (0.0, 1.0)
        line = (
            f"{y} of {n} {cat} outcomes {span} were {what} ({pct(e.value)}; "
            f"{rule.confidence * 100:.0f}% interval {pct(lo)} to {pct(hi)}); threshold {pct(e.threshold)}"
        )
    elif rule.measure == "peer":
        line = f"{y} of {n} {cat} outcomes {span} were {what} ({pct(e.value)})"
        if e.p0 is not None and e.limit is not None:
            line += (
                f"; all forces {pct(e.p0)}; {band(rule.z or 0)} upper limit for this volume {pct(e.limit)}"
            )
    elif rule.measure == "spike":
        y0, n0 = e.baseline_numerator or 0, e.baseline_denominator or 0
        before = y0 / n0 if n0 else 0.0
        line = (
            f"{cat} outcomes {what}: {y} of {n} ({pct(y / n if n else 0.0)}) {span}, against {y0} of {n0} "
            f"({pct(before)}) in the {days} days before: {e.value * 100:+.0f}%"
        )
        if e.p_value is not None:
            shown = "p < 0.001" if e.p_value < 0.001 else f"p = {e.p_value:.3f}"
            line += f" (one-sided Fisher test {shown})"
    elif rule.measure == "count":
        crimes = "crime" if y == 1 else "crimes"
        line = f"{y} {cat} {crimes} {what} {span} (threshold {e.threshold:g})"
    else:  # case
        crimes = "crime" if y == 1 else "crimes"
        line = f"{y} {cat} {crimes} {span}: {rule.description}"
    prefix = "Resolved: " if state == "resolved" else ""
    return f"{prefix}{force_name}: {line}."
