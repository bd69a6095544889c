"""Funnel plots: control limits for comparing institutions' rates (Spiegelhalter 2005).

A force with denominator n is compared with the pooled rate p0 of all forces; its upper limit is
p0 + z * sqrt(phi * p0 * (1 - p0) / n), where z is 1.96 (95%) or 3.09 (99.8%) and phi is the
over-dispersion factor (1 when not adjusting).

Over-dispersion (Spiegelhalter, "Funnel plots for comparing institutional performance",
Statistics in Medicine 2005, and "Handling over-dispersion of performance indicators", Quality
and Safety in Health Care 2005): phi is the mean squared z-score of the institutions, after
winsorising the z-scores at the 10th and 90th percentiles so that the outliers being looked for
do not inflate it; phi < 1 is taken as 1 (limits are only ever widened).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def pooled_rate(numerators: Sequence[int], denominators: Sequence[int]) -> float | None:
    total = sum(denominators)
    return sum(numerators) / total if total else None


def z_score(y: int, n: int, p0: float) -> float:
    """Standardised difference of a rate y/n from p0 under the binomial."""
    sd = math.sqrt(p0 * (1 - p0) / n)
    return (y / n - p0) / sd if sd > 0 else 0.0


def winsorise(values: Sequence[float], share: float = 0.1) -> list[float]:
    """Values below the ``share`` quantile (or above 1 - share) replaced by that quantile."""
    if not values:
        return []
    ordered = sorted(values)
    k = int(math.floor(share * len(ordered)))
    lo, hi = ordered[k], ordered[len(ordered) - 1 - k]
    return [min(max(v, lo), hi) for v in values]


def overdispersion(numerators: Sequence[int], denominators: Sequence[int], p0: float) -> float:
    """Multiplicative over-dispersion factor phi (>= 1) from winsorised z-scores."""
    zs = [z_score(y, n, p0) for y, n in zip(numerators, denominators, strict=True) if n > 0]
    if not zs:
        return 1.0
    phi = sum(z * z for z in winsorise(zs)) / len(zs)
    return max(1.0, phi)


def upper_limit(p0: float, n: int, z: float, phi: float = 1.0) -> float:
    return p0 + z * math.sqrt(phi * p0 * (1 - p0) / n)
