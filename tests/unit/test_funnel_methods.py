"""Funnel limits under each over-dispersion method: DerSimonian and Laird's estimator against
its published worked example, the additive method against a step-by-step computation written
out here, and the rule setting."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from pathlib import Path

import pytest

from alerts import funnel
from alerts.errors import RuleError
from alerts.rules import Rule, load_rules
from alerts.stats import additive_limit, funnel_limit
from tests.evaluate import evaluate

#: BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg): vaccinated TB cases and non-cases,
#: then the controls'
BCG = [(4, 119, 11, 128), (6, 300, 29, 274), (3, 228, 11, 209), (62, 13536, 248, 12619),
       (33, 5036, 47, 5761), (180, 1361, 372, 1079), (8, 2537, 10, 619), (505, 87886, 499, 87892),
       (29, 7470, 45, 7232), (17, 1699, 65, 1600), (186, 50448, 141, 27197), (5, 2493, 3, 2338),
       (27, 16886, 29, 17825)]  # fmt: skip


def test_dersimonian_laird_gives_the_published_tau2_of_the_bcg_trials() -> None:
    """metafor's documented random-effects model of the log risk ratios, method DL:
    Q(df = 12) = 152.2330, tau^2 = 0.3088 (Viechtbauer 2010, the rma() examples)."""
    y = [math.log((a / (a + b)) / (c / (c + d))) for a, b, c, d in BCG]
    w = [1 / (1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)) for a, b, c, d in BCG]
    mean = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
    q = sum(wi * (yi - mean) ** 2 for wi, yi in zip(w, y, strict=True))
    assert q == pytest.approx(152.2330, abs=5e-5)
    assert funnel.tau2_from_q(q, w) == pytest.approx(0.3088, abs=5e-5)
    assert funnel.tau2_from_q(5.0, w) == 0.0  # less spread than chance: no allowance


def by_hand_tau2(ys: list[int], ns: list[int], p0: float) -> float:
    """Spiegelhalter's additive method, one step at a time, nothing shared with alerts.funnel."""
    target = math.asin(math.sqrt(p0))
    z = [
        (math.asin(math.sqrt(y / n)) - target) / (1 / (2 * math.sqrt(n))) for y, n in zip(ys, ns, strict=True)
    ]
    ordered = sorted(z)
    cut = int(0.1 * len(z))  # 10% at each end set to the nearest kept value
    low, high = ordered[cut], ordered[len(z) - 1 - cut]
    phi = sum(min(max(v, low), high) ** 2 for v in z) / len(z)
    w = [4 * n for n in ns]
    return max(0.0, (len(z) * phi - (len(z) - 1)) / (sum(w) - sum(x * x for x in w) / sum(w)))


def forces(seed: int, tau: float, k: int = 45) -> tuple[list[int], list[int]]:
    """``k`` forces of volumes 200..20,000 whose true shares differ by ``tau`` on the arcsine
    scale around 12%."""
    rng = random.Random(seed)
    ns = [rng.randint(200, 20_000) for _ in range(k)]
    theta0 = math.asin(math.sqrt(0.12))
    ys = []
    for n in ns:
        p = math.sin(min(max(rng.gauss(theta0, tau), 0.0), math.pi / 2)) ** 2
        ys.append(sum(1 for _ in range(n) if rng.random() < p))
    return ys, ns


def test_additive_tau_equals_the_step_by_step_computation_and_finds_the_spread_put_in() -> None:
    ys, ns = forces(1, tau=0.05)
    p0 = sum(ys) / sum(ns)
    tau2 = funnel.additive_tau2(ys, ns, p0)
    assert tau2 == pytest.approx(by_hand_tau2(ys, ns, p0), rel=1e-12)
    assert 0.5 * 0.05 < math.sqrt(tau2) < 1.5 * 0.05  # winsorising shrinks it a little
    plain_ys, plain_ns = forces(2, tau=0.0)  # binomial variation only
    plain_p0 = sum(plain_ys) / sum(plain_ns)
    assert math.sqrt(funnel.additive_tau2(plain_ys, plain_ns, plain_p0)) < 0.01


def test_additive_limits_by_hand_and_their_shape() -> None:
    p0, n, z, tau = 0.12, 400, 3.09, 0.03
    theta = math.asin(math.sqrt(p0))
    assert additive_limit(p0, n, z, tau) == pytest.approx(
        math.sin(theta + z * math.sqrt(1 / 1600 + tau**2)) ** 2
    )
    assert additive_limit(p0, n, -z, tau) == pytest.approx(
        math.sin(theta - z * math.sqrt(1 / 1600 + tau**2)) ** 2
    )
    # without tau, at a large volume: the binomial limit (the arcsine is variance-stabilising)
    assert additive_limit(p0, 100_000, z, 0.0) == pytest.approx(funnel_limit(p0, 100_000, z), abs=2e-4)
    # with tau, the largest forces keep a band: multiplicative limits close in on p0
    big = 2_000_000
    assert additive_limit(p0, big, z, tau) - p0 > 0.05
    assert funnel_limit(p0, big, z, 19.86) - p0 < 0.01
    assert additive_limit(0.999, 10, 3.09, 0.5) == 1.0 and additive_limit(0.001, 10, -3.09, 0.5) == 0.0


def test_the_rule_chooses_the_method_and_true_still_means_multiplicative(tmp_path: Path) -> None:
    base = dict(
        id="p", description="d", severity="low", category=("stalking",), measure="peer", window="91d", z=3.09
    )
    assert Rule.model_validate(base).overdispersion == "none"
    assert Rule.model_validate({**base, "overdispersion": True}).overdispersion == "multiplicative"
    assert Rule.model_validate({**base, "overdispersion": "additive"}).overdispersion == "additive"
    f = tmp_path / "rules.yaml"
    f.write_text("rules:\n  - {id: p, description: d, severity: low, category: [stalking], measure: peer,\n"
                 "     window: 91d, z: 3.09, overdispersion: random}\n")  # fmt: skip
    with pytest.raises(RuleError, match="overdispersion"):
        load_rules(f, known_forces={"kent"}, known_categories={"stalking"})


def test_the_engine_uses_the_rules_method() -> None:
    at = dt.date(2025, 6, 30)
    ys, ns = forces(3, tau=0.08)
    names = [f"f{i:02d}" for i in range(len(ns))]
    c: Counter[tuple[str, str, str, dt.date, bool]] = Counter()
    for f, y, n in zip(names, ys, ns, strict=True):
        c[(f, "stalking", "caution", at, False)] += y
        c[(f, "stalking", "charge", at, False)] += n - y
    base = dict(
        id="p", description="d", severity="low", category=("stalking",), measure="peer", window="7d", z=3.09
    )
    got = {
        method: {e.force: e for e in evaluate([rule], c, at=at, forces=names)}
        for method in ("none", "multiplicative", "additive")
        for rule in [Rule.model_validate({**base, "overdispersion": method})]
    }
    p0 = sum(ys) / sum(ns)
    spread = funnel.dispersion("additive", ys, ns, p0)
    for f, n in zip(names, ns, strict=True):
        assert got["additive"][f].limit == pytest.approx(spread.limit(p0, n, 3.09))
        none, additive = got["none"][f].limit, got["additive"][f].limit
        assert none is not None and additive is not None and none <= additive
    fired = {m: sum(e.breached for e in es.values()) for m, es in got.items()}
    assert fired["none"] > fired["additive"] >= 0 and fired["none"] > fired["multiplicative"]
