"""National figures, a period against the one before: periods in calendar months, sums by
class and force, the change's exact interval, the sentence, and the quarterly series."""

from __future__ import annotations

import datetime as dt

import pytest
from scipy.stats import beta

from alerts.stats import count_ratio
from streams.dashboard.national import (
    Line,
    months_before,
    periods,
    quarterly,
    sentence,
    summarise,
)

AT = dt.date(2026, 11, 30)


def test_periods_are_calendar_months_to_the_day_the_data_runs_to() -> None:
    assert months_before(dt.date(2026, 3, 31), 1) == dt.date(2026, 2, 28)
    assert months_before(dt.date(2024, 2, 29), 12) == dt.date(2023, 2, 28)
    now, before = periods(AT, 12, horizon=AT - dt.timedelta(days=400))
    assert (now.first, now.last, now.complete) == (dt.date(2025, 12, 1), AT, True)
    assert (before.first, before.last, before.complete) == (
        dt.date(2024, 12, 1),
        dt.date(2025, 11, 30),
        False,
    )
    assert periods(AT, 12, horizon=AT - dt.timedelta(days=800))[1].complete


def test_the_change_interval_is_clopper_pearson_on_the_later_share_of_the_total() -> None:
    """Written out: the exact interval of p = now / (now + before) from beta quantiles, then
    R = p / (1 - p)."""
    for now, before in ((132, 100), (3, 9), (19405, 14700), (0, 5)):
        ratio, low, high = count_ratio(now, before)
        total = now + before
        p_low = beta.ppf(0.025, now, before + 1) if now else 0.0
        p_high = beta.ppf(0.975, now + 1, before)
        assert ratio == now / before
        assert low == pytest.approx(p_low / (1 - p_low), rel=1e-9, abs=1e-12)
        assert high == pytest.approx(p_high / (1 - p_high), rel=1e-9)
        assert low <= ratio <= high and total > 0
    with pytest.raises(ValueError):
        count_ratio(4, 0)


ROWS_NOW: dict[tuple[str, ...], int] = {
    ("kent", "stalking", "community-resolution"): 30,
    ("kent", "stalking", "caution"): 5,
    ("kent", "stalking", "charge"): 65,
    ("kent", "stalking", "pending"): 400,  # not an outcome
    ("essex", "stalking", "community-resolution"): 10,
    ("essex", "stalking", "charge"): 90,
    ("essex", "burglary", "caution"): 50,  # not a high-risk category
}
ROWS_BEFORE: dict[tuple[str, ...], int] = {
    ("kent", "stalking", "community-resolution"): 20,
    ("kent", "stalking", "charge"): 80,
    ("essex", "stalking", "community-resolution"): 10,
    ("essex", "stalking", "charge"): 90,
}


def test_lines_sum_by_class_nationally_and_per_force() -> None:
    lines = summarise(ROWS_NOW, ROWS_BEFORE, forces=["essex", "kent"], national=True, comparable=True)
    assert [(x.category, x.force) for x in lines] == [
        ("stalking", None),
        ("stalking", "essex"),
        ("stalking", "kent"),
    ]
    national, _, kent = lines
    assert national.now.by_class == {"community-resolution": 40, "caution": 5}
    assert (national.now.out_of_court, national.now.outcomes) == (45, 200)
    assert (national.before.out_of_court, national.before.outcomes) == (30, 200)
    assert kent.now.share == 35 / 100 and kent.before.share == 20 / 100
    cr = national.changes["community-resolution"]
    assert (cr.now, cr.before, cr.ratio) == (40, 30, 40 / 30)
    assert national.changes["caution"].ratio is None  # none before: no ratio
    scoped = summarise(ROWS_NOW, ROWS_BEFORE, forces=["kent"], national=False, comparable=True)
    assert [x.force for x in scoped] == ["kent"]
    unheld = summarise(ROWS_NOW, ROWS_BEFORE, forces=["kent"], national=True, comparable=False)
    assert all(not x.changes for x in unheld)


def test_the_sentence_reads_as_the_press_writes_it() -> None:
    national = summarise(ROWS_NOW, ROWS_BEFORE, forces=[], national=True, comparable=True)[0]
    ratio, low, high = count_ratio(40, 30)
    assert sentence(national, "community-resolution", 12, AT) == (
        f"Stalking: 40 community resolutions in the 12 months to 2026-11-30, up {(ratio - 1) * 100:.0f}% "
        f"on the 12 months before (95% interval {(low - 1) * 100:+.0f}% to {(high - 1) * 100:+.0f}%)."
    )
    assert (
        sentence(national, "caution", 12, AT)
        == "Stalking: 5 cautions in the 12 months to 2026-11-30, against none in the 12 months before."
    )
    assert sentence(national, "drugs-warning", 12, AT) is None
    unheld: Line = summarise(ROWS_NOW, ROWS_BEFORE, forces=[], national=True, comparable=False)[0]
    assert "not all held" in (sentence(unheld, "out-of-court", 12, AT) or "")


def test_quarters_sum_the_days_and_mark_the_cut_ones() -> None:
    rows: dict[tuple[str, ...], int] = {
        ("stalking", "community-resolution", "2024-12-15"): 2,
        ("stalking", "caution", "2025-02-01"): 3,
        ("stalking", "charge", "2025-03-31"): 10,
        ("stalking", "community-resolution", "2026-11-30"): 4,
        ("stalking", "pending", "2025-01-01"): 99,
    }
    series = quarterly(rows, dt.date(2024, 12, 1), AT)["stalking"]
    assert [q.quarter for q in series][:3] == ["2024 Q4", "2025 Q1", "2025 Q2"] and series[
        -1
    ].quarter == "2026 Q4"
    assert len(series) == 9
    q1 = series[1]
    assert (q1.by_class, q1.outcomes, q1.whole) == ({"caution": 3}, 13, True)
    assert not series[0].whole and not series[-1].whole and series[-1].out_of_court == 4
