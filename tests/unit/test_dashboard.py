"""The dashboard's pure parts: funnel points and limits as the alert engine has them, monthly
shares, and HTML that escapes what it shows."""

import datetime as dt
import itertools

from alerts import stats
from alerts.rules import Rule
from streams.dashboard import render
from streams.dashboard.funnel import Z998, funnel
from streams.dashboard.trend import monthly
from streams.reference import FORCE_NAMES

PEER = Rule.model_validate(
    {"id": "h-peer", "description": "d", "severity": "low", "category": ["harassment"], "measure": "peer",
     "window": "365d", "z": 3.09}
)  # fmt: skip


def test_funnel_has_one_point_per_force_and_the_engines_limits() -> None:
    counts: dict[tuple[str, ...], int] = {(f, "harassment", "charge"): 90 for f in FORCE_NAMES}
    counts |= {(f, "harassment", "caution"): 10 for f in FORCE_NAMES}
    counts[("kent", "harassment", "caution")] = 60  # far above the others
    counts[("kent", "harassment", "pending")] = 500  # not an outcome: left out
    counts[("essex", "stalking", "caution")] = 999  # another category: left out
    f = funnel(PEER, "harassment", counts, FORCE_NAMES, 365)
    assert [p.force for p in f.points] == sorted(FORCE_NAMES)
    kent = next(p for p in f.points if p.force == "kent")
    assert (kent.numerator, kent.denominator) == (60, 150)
    total_y, total_n = 44 * 10 + 60, 44 * 100 + 150
    assert f.p0 == total_y / total_n
    assert kent.upper998 == stats.funnel_limit(f.p0, 150, Z998)
    assert kent.outside == "99.8"
    assert all(p.outside is None for p in f.points if p.force != "kent")
    n, low998, low95, up95, up998 = f.curve[len(f.curve) // 2]
    assert low998 < low95 < f.p0 < up95 < up998


def test_a_funnel_draws_the_rules_method_and_names_it_with_its_factor() -> None:
    counts: dict[tuple[str, ...], int] = {(f, "harassment", "charge"): 900 for f in FORCE_NAMES}
    counts |= {(f, "harassment", "caution"): 60 + 7 * (i % 9) for i, f in enumerate(sorted(FORCE_NAMES))}
    additive = funnel(
        PEER.model_copy(update={"overdispersion": "additive"}), "harassment", counts, FORCE_NAMES, 365
    )
    assert additive.dispersion.method == "additive" and additive.dispersion.tau > 0
    kent = next(p for p in additive.points if p.force == "kent")
    assert additive.p0 is not None
    assert kent.upper998 == additive.dispersion.limit(additive.p0, kent.denominator, Z998)
    assert "additive random effects, τ = " in render.funnel_figure(additive)
    plain = funnel(PEER, "harassment", counts, FORCE_NAMES, 365)
    assert "no over-dispersion allowance" in render.funnel_figure(plain)
    assert kent.upper998 > next(p for p in plain.points if p.force == "kent").upper998


def test_monthly_shares_of_a_force_and_of_all_forces() -> None:
    counts: dict[tuple[str, ...], int] = {
        ("kent", "stalking", "caution", "2025-01-03"): 2,
        ("kent", "stalking", "charge", "2025-01-20"): 6,
        ("kent", "stalking", "pending", "2025-01-20"): 50,
        ("essex", "stalking", "community-resolution", "2025-01-09"): 4,
        ("essex", "stalking", "charge", "2025-02-01"): 4,
        ("kent", "burglary", "caution", "2025-01-03"): 9,  # not a high-risk category
    }
    got = monthly(counts, "kent")
    assert list(got) == ["stalking"]
    jan, feb = got["stalking"]
    assert (
        jan.month,
        jan.force_out_of_court,
        jan.force_outcomes,
        jan.all_out_of_court,
        jan.all_outcomes,
    ) == (  # noqa: E501
        "2025-01",
        2,
        8,
        6,
        12,
    )
    assert jan.force_share == 0.25 and feb.force_share is None and feb.all_share == 0.0


def test_pages_escape_what_they_show() -> None:
    alert = {
        "fingerprint": "abc", "rule_id": "r", "force_id": "kent", "category": "stalking", "state": "firing",
        "severity": "high", "transition_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC).isoformat(),
        "summary": "<script>alert(1)</script>",
    }  # fmt: skip
    html = render.index_page(
        [alert], [], rule_words={"r": "A rule"}, after=4, window="91d", as_of="Data up to 2025-01-01.",
        scope_note="", category_names={},
    )  # fmt: skip
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-fingerprint="abc"' in html and 'data-after="4"' in html
    assert "Data up to 2025-01-01." in html


def test_axis_ticks_are_round() -> None:
    assert render.nice_ticks(5988) == [0, 1000, 2000, 3000, 4000, 5000]
    assert render.nice_ticks(130) == [0, 50, 100]
    assert render.nice_ticks(7) == [0, 2, 4, 6]


def test_trend_charts_read_at_a_glance() -> None:
    """Round ticks, month labels that leave room, a gap for a month without outcomes, a legend
    with line samples, and words instead of an empty frame."""
    from streams.dashboard.trend import Month

    assert render.share_ticks(0.54) == [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert render.share_ticks(0.13) == [0, 0.05, 0.1, 0.15]
    months = [Month(f"2025-{m:02d}", 1, 10, 5, 50) for m in range(1, 13) if m != 6]
    months.append(Month("2026-01", 2, 10, 6, 50))
    filled = render.all_months(months)
    assert [m.month for m in filled][4:7] == ["2025-05", "2025-06", "2025-07"] and filled[
        5
    ].force_share is None
    labels = render.month_labels(filled, 426)
    xs = [i * 426 / (len(filled) - 1) for i, _, _ in labels]
    assert all(b - a >= render.LABEL_PX for a, b in itertools.pairwise(xs))
    assert [y for _, _, y in labels if y] == ["2025", "2026"] and labels[0][1] == "Jan"
    svg = render.trend_svg("stalking", months, "kent")
    assert svg.count("<polyline") == 4  # each line broken at June
    assert 'class="legend"' in svg and "stroke-dasharray" in svg.split('class="legend"')[1]
    assert "2025-012025" not in svg and ">Jan<" in svg
    assert "No outcomes in this period" in render.trend_svg(
        "stalking", [Month("2025-01", 0, 0, 0, 0)], "kent"
    )
    alone = render.trend_svg("stalking", [Month("2025-01", 0, 0, 3, 9), Month("2025-02", 0, 0, 3, 9)], "kent")
    assert "No outcomes for Kent Police in this period" in alone


def test_case_alerts_of_one_rule_and_force_are_one_item_with_a_count() -> None:
    def alert(fp: str, rule: str, force: str, measure: str, category: str = "stalking") -> dict:  # type: ignore[type-arg]
        return {"fingerprint": fp, "state": "firing", "severity": "high",
                "transition_at": "2025-01-0" + fp[-1], "rule_id": rule, "force_id": force,
                "category": category, "summary": "s", "measure": measure}  # fmt: skip

    alerts = [
        alert("a1", "da-cr", "kent", "case", "stalking"),
        alert("a2", "da-cr", "kent", "case", "harassment"),
        alert("a3", "da-cr", "kent", "case", "sexual"),
        alert("a4", "da-cr", "essex", "case"),
        alert("a5", "peer", "kent", "peer"),
        alert("a6", "peer", "essex", "peer"),
    ]
    html = render.alert_lists(alerts, {"da-cr": "Community resolution on domestic abuse"}, 0)
    assert html.count('data-group="da-cr|kent"') == 1 and '<span class="count">3</span>' in html
    assert html.count("data-fingerprint=") == 6  # every alert is still on the page, once
    assert (
        "data-group" not in html.split('data-group="da-cr|kent"')[1].split("</details>")[1]
    )  # one group only
