"""The statistics against published and textbook values."""

from __future__ import annotations

import math

import pytest

from alerts.stats import funnel_limit, probability_of, rise_p_value, wilson


@pytest.mark.parametrize(
    ("y", "n", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_interval_matches_newcombe(y: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(y, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_funnel_limit_by_hand_at_small_volume() -> None:
    """n = 10, p0 = 0.2, 95% (z 1.96, p 0.975). Binomial(10, 0.2): F(4) = 0.96721, F(5) =
    0.99363, so r = 5; alpha = (0.99363 - 0.975) / (0.99363 - 0.96721) = 0.70515; the limit is
    (5 - 0.70515) / 10 = 0.42949 (Spiegelhalter 2005, Appendix A.1.1). The normal approximation
    says 0.2 + 1.96 * sqrt(0.016) = 0.4479: too wide here, and below zero on the other side."""
    assert probability_of(1.96) == pytest.approx(0.975, abs=1e-4)
    assert funnel_limit(0.2, 10, 1.96) == pytest.approx(0.42949, abs=2e-4)


@pytest.mark.parametrize("z", [1.96, 3.09])
def test_funnel_limit_meets_the_normal_approximation_at_large_volume(z: float) -> None:
    for n in (10_000, 100_000):
        normal = 0.1 + z * math.sqrt(0.1 * 0.9 / n)
        assert funnel_limit(0.1, n, z) == pytest.approx(normal, rel=0.01)


def test_funnel_limit_is_widened_by_the_root_of_phi() -> None:
    plain, wide = funnel_limit(0.15, 400, 3.09), funnel_limit(0.15, 400, 3.09, phi=4.0)
    assert wide - 0.15 == pytest.approx(2 * (plain - 0.15))
    assert funnel_limit(0.15, 400, 3.09, phi=0.5) == plain  # phi below 1 never narrows


def test_fisher_one_sided_matches_the_lady_tasting_tea() -> None:
    """Fisher (1935): 3 of 4 cups right against 1 of 4: one-sided p = 17/70."""
    assert rise_p_value(3, 4, 1, 4) == pytest.approx(17 / 70)
    assert rise_p_value(1, 4, 3, 4) == pytest.approx(1.0 - 1 / 70)
    assert math.isclose(rise_p_value(0, 0, 1, 4), 1.0)


def test_scipy_is_loaded_only_when_a_statistic_is_asked_or_a_rule_needs_one() -> None:
    import subprocess
    import sys

    code = (
        "import sys, streams.app, alerts.engine, alerts.stats;"
        "assert 'scipy' not in sys.modules;"
        "assert not alerts.stats.preload({'case', 'count'});"
        "assert 'scipy' not in sys.modules;"
        "alerts.stats.wilson(3, 10);"
        "assert 'scipy' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    preload = "import sys, alerts.stats; assert alerts.stats.preload({'peer'}); assert 'scipy' in sys.modules"
    subprocess.run([sys.executable, "-c", preload], check=True)


def test_scipy_is_imported_beside_the_event_loop_not_on_it() -> None:
    """The evaluator's import leaves the event loop free: a ticker beside it keeps ticking while
    scipy loads (in a fresh interpreter, so that it does load)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import asyncio, sys, time
        from alerts.rules import load_rules
        from streams.alerting.evaluator import load_statistics
        from streams.resources import DEFAULT_RULES

        async def main():
            ticks = 0
            async def tick():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.005)
                    ticks += 1
            ticker = asyncio.create_task(tick())
            await asyncio.sleep(0.05)
            assert "scipy" not in sys.modules
            start, before = time.monotonic(), ticks
            await load_statistics(load_rules(DEFAULT_RULES))
            took, during = time.monotonic() - start, ticks - before
            ticker.cancel()
            assert "scipy.stats" in sys.modules
            # the loop ran through the import: a tick is 5 ms of sleep and a wait for the
            # interpreter (the import thread gives it up every 5 ms); on the loop, none would come
            assert during >= took / 0.005 / 10, (during, took)

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_woken_evaluations_leave_the_counting_loop_most_of_the_time() -> None:
    from streams.alerting.evaluator import (
        BUSY_SHARE,
        CATCH_UP_GAP_S,
        CATCH_UP_SHARE,
        CATCHING_UP,
        MAX_GAP_S,
        MIN_GAP_S,
        gap,
    )

    assert gap(0.001) == MIN_GAP_S  # cheap evaluations: no closer than the least gap
    spent = 0.1
    assert spent / (spent + gap(spent)) == pytest.approx(BUSY_SHARE)
    # a loop catching up on a backlog: at most one a second, and a smaller share
    assert gap(0.001, backlog=CATCHING_UP - 1) == MIN_GAP_S
    assert gap(0.001, backlog=CATCHING_UP) == CATCH_UP_GAP_S
    spent = 0.08
    assert spent / (spent + gap(spent, backlog=10 * CATCHING_UP)) == pytest.approx(CATCH_UP_SHARE)
    # one slow evaluation (a pause, a first call) does not hold alerts back for long
    assert gap(5.0) == gap(5.0, backlog=10 * CATCHING_UP) == MAX_GAP_S
