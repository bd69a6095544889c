"""Funnel plots: control limits for comparing institutions' rates (Spiegelhalter 2005).

A force with denominator n is compared with the pooled rate p0 of all forces, at z standard
deviations: 1.96 (95%) or 3.09 (99.8%). Forces differ by more than chance alone (case mix,
recording), and a rule says how its limits allow for that (``overdispersion``):

- ``none``: the exact binomial limits (``stats.funnel_limit``).
- ``multiplicative``: the distance from p0 widened by sqrt(phi), where phi is the mean squared
  z-score of the forces after winsorising the z-scores at the 10th and 90th percentiles, so that
  the outliers being looked for do not inflate it; phi < 1 is taken as 1 (Spiegelhalter,
  "Handling over-dispersion of performance indicators", Quality and Safety in Health Care 2005).
  Every limit widens in proportion to its binomial spread, so the largest forces' limits stay
  close to p0 however much forces really differ.
- ``additive``: random effects on the arcsine-square-root scale, as the NHS, the CQC and
  FunnelPlotR do for many institutions (Spiegelhalter 2005 above; Spiegelhalter et al.,
  "Statistical methods for healthcare regulation: rating, screening and surveillance", JRSS A
  2012). A force's share y/n becomes asin(sqrt(y/n)), with variance 1/(4n); its z-score against
  asin(sqrt(p0)) is winsorised as above; phi is their mean square, and the between-force
  variance is DerSimonian and Laird's estimator,
  tau^2 = max(0, (I * phi - (I - 1)) / (sum w - sum w^2 / sum w)), w = 4n, over the I forces.
  The limits are sin^2(asin(sqrt(p0)) +- z * sqrt(1/(4n) + tau^2)): a fixed allowance for real
  differences added to each force's own chance variation, so the funnel keeps its shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from alerts import stats

Method = Literal["none", "multiplicative", "additive"]


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


def tau2_from_q(q: float, weights: Sequence[float]) -> float:
    """DerSimonian and Laird's between-unit variance from Cochran's Q over units of inverse
    variance ``weights``: max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))."""
    k, total = len(weights), sum(weights)
    if k < 2 or total <= 0:
        return 0.0
    spread = total - sum(w * w for w in weights) / total
    return max(0.0, (q - (k - 1)) / spread) if spread > 0 else 0.0


def additive_tau2(numerators: Sequence[int], denominators: Sequence[int], p0: float) -> float:
    """Between-force variance tau^2 on the arcsine-square-root scale (see the module docstring)."""
    target = math.asin(math.sqrt(p0))
    pairs = [(y, n) for y, n in zip(numerators, denominators, strict=True) if n > 0]
    zs = [(math.asin(math.sqrt(y / n)) - target) * 2 * math.sqrt(n) for y, n in pairs]
    if len(zs) < 2:
        return 0.0
    q = sum(z * z for z in winsorise(zs))  # I * phi
    return tau2_from_q(q, [4.0 * n for _, n in pairs])


@dataclass(frozen=True)
class Dispersion:
    """How a funnel's limits allow for forces differing by more than chance."""

    method: Method = "none"
    #: multiplicative: the factor (>= 1) the binomial variance is multiplied by
    phi: float = 1.0
    #: additive: the between-force standard deviation on the arcsine-square-root scale
    tau: float = 0.0

    def limit(self, p0: float, n: int, z: float) -> float:
        """The limit at volume ``n``, ``z`` standard deviations from ``p0`` (negative: below)."""
        if self.method == "additive":
            return stats.additive_limit(p0, n, z, self.tau)
        return stats.funnel_limit(p0, n, z, self.phi)

    def words(self) -> str:
        if self.method == "multiplicative":
            return f"over-dispersion: multiplicative, factor φ = {self.phi:.2f}"
        if self.method == "additive":
            return f"over-dispersion: additive random effects, τ = {self.tau:.4f} (arcsine scale)"
        return "no over-dispersion allowance"


NO_DISPERSION = Dispersion()


def dispersion(
    method: Method, numerators: Sequence[int], denominators: Sequence[int], p0: float
) -> Dispersion:
    """The ``method``'s allowance estimated from the forces eligible for the funnel."""
    if method == "multiplicative":
        return Dispersion(method, phi=overdispersion(numerators, denominators, p0))
    if method == "additive":
        return Dispersion(method, tau=math.sqrt(additive_tau2(numerators, denominators, p0)))
    return NO_DISPERSION


def pooled(
    numerators: Sequence[int], denominators: Sequence[int], *, min_volume: int, method: Method
) -> tuple[float | None, Dispersion]:
    """Every force's pooled rate p0, and the ``method``'s over-dispersion estimated from the
    forces of ``min_volume`` or more around it (none when p0 is unknown, 0 or 1). The funnel's
    inputs, for its alerts (``alerts.engine``) and its chart alike."""
    p0 = pooled_rate(numerators, denominators)
    if p0 is None or not 0 < p0 < 1:
        return p0, NO_DISPERSION
    eligible = [(y, n) for y, n in zip(numerators, denominators, strict=True) if n >= max(1, min_volume)]
    return p0, dispersion(method, [y for y, _ in eligible], [n for _, n in eligible], p0)
