"""Statistics that stay sound at small numbers; scipy.stats does the arithmetic.

- ``wilson``: the Wilson score interval of a proportion y/n (Newcombe 1998, "Two-sided confidence
  intervals for the single proportion", method 3): unlike y/n +- z*sd, it never leaves 0..1 and
  keeps its coverage at small n. A rate alert fires when the interval's lower bound is at or
  above the threshold: the data show the rate is above it, not only that it happened to land
  there.
- ``funnel_limit``: the upper control limit of a funnel plot at volume n for a pooled rate p0
  (Spiegelhalter 2005, "Funnel plots for comparing institutional performance", Appendix A.1.1):
  the exact binomial quantile, interpolated between the integers so that the limit is smooth
  in n, as the public sector's funnel plots draw it (z 1.96: the 95% "alert" band, 3.09: the
  99.8% "alarm" band). With over-dispersion phi > 1 the distance from p0 is widened by
  sqrt(phi), as the normal approximation's variance is multiplied by phi.
- ``rise_p_value``: one-sided Fisher exact test that a proportion rose from one window to the
  next: the probability of a rise at least this large if both windows had the same rate.

Pure: numbers in, numbers out, so each is cached on its arguments: an evaluation asks the same
questions as the one before for every (force, category) whose sums did not move (a binomial test
costs about 0.1 ms). scipy is imported by ``preload`` (the worker's evaluator calls it in a
thread as the worker starts, when a rule needs statistics: the import takes most of a second)
or at the first call, so a worker without such rules never loads it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

#: answers kept per function (each a few numbers)
CACHED = 65_536


@functools.cache
def _stats() -> Any:
    from scipy import stats

    return stats


#: the measures whose evaluation uses these statistics
MEASURES = frozenset({"rate", "spike", "peer"})


def preload(measures: set[str] | frozenset[str]) -> bool:
    """Import scipy now if any of ``measures`` needs it; whether it did."""
    if measures & MEASURES:
        _stats()
        return True
    return False


@functools.lru_cache(maxsize=CACHED)
def wilson(y: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval of y/n; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    ci = _stats().binomtest(y, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@functools.lru_cache(maxsize=CACHED)
def probability_of(z: float) -> float:
    """The one-sided probability of a number of standard deviations (1.96 -> 0.975)."""
    return float(_stats().norm.cdf(z))


@functools.lru_cache(maxsize=CACHED)
def funnel_limit(p0: float, n: int, z: float, phi: float = 1.0) -> float:
    """Upper funnel-plot limit for a force of volume ``n`` (see the module docstring)."""
    if n <= 0 or not 0 < p0 < 1:
        return 1.0
    p = probability_of(z)
    binom = _stats().binom
    r = float(binom.ppf(p, n, p0))
    below, at = float(binom.cdf(r - 1, n, p0)), float(binom.cdf(r, n, p0))
    alpha = (at - p) / (at - below) if at > below else 0.0
    exact = (r - alpha) / n
    return min(1.0, p0 + math.sqrt(max(phi, 1.0)) * (exact - p0))


@functools.lru_cache(maxsize=CACHED)
def additive_limit(p0: float, n: int, z: float, tau: float) -> float:
    """The funnel limit at volume ``n`` under additive random effects on the arcsine-square-root
    scale (``alerts.funnel``): sin^2(asin(sqrt(p0)) + z * sqrt(1/(4n) + tau^2)), kept in 0..1."""
    if n <= 0 or not 0 < p0 < 1:
        return 1.0 if z > 0 else 0.0
    theta = math.asin(math.sqrt(p0)) + z * math.sqrt(1 / (4 * n) + tau * tau)
    return math.sin(min(max(theta, 0.0), math.pi / 2)) ** 2


@functools.lru_cache(maxsize=CACHED)
def count_ratio(now: int, before: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """The ratio of two counts over periods of equal length, and its exact interval: conditional
    on their total, ``now`` is binomial with p = R / (1 + R), so the Clopper-Pearson interval of
    p, mapped through p / (1 - p), is the interval of R (the standard exact method for a ratio
    of Poisson counts). ``before`` must be positive."""
    if before <= 0:
        raise ValueError("no ratio to a count of zero")
    ci = _stats().binomtest(now, now + before).proportion_ci(confidence_level=confidence, method="exact")
    low, high = float(ci.low), float(ci.high)
    return now / before, low / (1 - low), (high / (1 - high) if high < 1 else math.inf)


@functools.lru_cache(maxsize=CACHED)
def rise_p_value(y1: int, n1: int, y0: int, n0: int) -> float:
    """One-sided Fisher exact p-value that y1/n1 is above y0/n0 (1.0 when either n is 0)."""
    if n1 <= 0 or n0 <= 0:
        return 1.0
    table = [[y1, n1 - y1], [y0, n0 - y0]]
    return float(_stats().fisher_exact(table, alternative="greater").pvalue)
