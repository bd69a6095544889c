"""Funnel plots: every force's share against its volume, the pooled share and the control limits.

Numerator and denominator are those of the alert engine (``alerts.engine``): crimes whose latest
outcome is in the rule's disposal classes, over crimes with any outcome but ``pending``, in the
rule's categories, over the chosen window. The limits are the engine's too (``alerts.stats``:
exact binomial, Spiegelhalter 2005), at 95% and 99.8%, widened by the over-dispersion factor when
the rule says so; so a point above the rule's limit is exactly a force the rule would flag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from alerts import funnel as stats_funnel
from alerts.rules import Rule

Z95, Z998 = 1.959964, 3.090232


@dataclass(frozen=True)
class Point:
    force: str
    numerator: int
    denominator: int
    upper95: float
    upper998: float

    @property
    def share(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def outside(self) -> str | None:
        """``"99.8"`` or ``"95"``: the highest upper limit the share is above; None inside both."""
        share = self.share
        if share is None:
            return None
        if share > self.upper998:
            return "99.8"
        return "95" if share > self.upper95 else None


@dataclass(frozen=True)
class Funnel:
    rule: Rule
    category: str
    window_days: int
    p0: float | None
    #: how the limits allow for forces differing by more than chance (the rule's method)
    dispersion: stats_funnel.Dispersion
    points: tuple[Point, ...]
    #: (volume, lower 99.8%, lower 95%, upper 95%, upper 99.8%) along the volume axis
    curve: tuple[tuple[int, float, float, float, float], ...]


def funnel(
    rule: Rule,
    category: str,
    counts: Mapping[tuple[str, ...], int],
    forces: Iterable[str],
    window_days: int,
) -> Funnel:
    """The funnel of one peer rule's category from counts keyed (force, category, disposal)."""
    scope = sorted(forces) if rule.forces == "all" else sorted(rule.forces)
    sums = {f: [0, 0] for f in scope}
    for (force, cat, disposal), n in counts.items():
        if cat != category or force not in sums or disposal == "pending":
            continue
        sums[force][1] += n
        if disposal in rule.disposals:
            sums[force][0] += n
    p0, spread = stats_funnel.pooled(
        [s[0] for s in sums.values()],
        [s[1] for s in sums.values()],
        min_volume=rule.min_volume,
        method=rule.overdispersion,
    )

    def upper(n: int, z: float) -> float:
        return spread.limit(p0, n, z) if p0 is not None else 1.0

    points = tuple(Point(f, y, n, upper(n, Z95), upper(n, Z998)) for f, (y, n) in sums.items())
    top = max((p.denominator for p in points), default=0)
    curve = _curve(top, upper) if p0 is not None and 0 < p0 < 1 and top > 0 else ()
    return Funnel(rule, category, window_days, p0, spread, points, curve)


def _curve(
    top: int, upper: Callable[[int, float], float]
) -> tuple[tuple[int, float, float, float, float], ...]:
    """The four limits at 60 volumes up to 110% of the largest force's (``upper(n, z)``: the
    exact limit at z; below the rate, z negative)."""
    volumes = sorted({max(1, round(top * 1.1 * i / 60)) for i in range(1, 61)})
    return tuple(
        (n, max(0.0, upper(n, -Z998)), max(0.0, upper(n, -Z95)), upper(n, Z95), upper(n, Z998))
        for n in volumes
    )
