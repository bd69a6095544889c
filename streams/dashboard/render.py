# ruff: noqa: E501 (HTML, CSS and script templates read better unbroken)
"""The dashboard's HTML: server-rendered pages with inline SVG charts and one small script.

Why server-rendered SVG rather than a charting library: the charts are few (a funnel plot, quarterly bars on the national page
and a monthly line), all drawn from numbers the worker already has; SVG elements can carry the
attributes the tests and screen readers need (``data-force``, ``<title>``, ``tabindex``); and
nothing has to be built or fetched (no CDN, no npm step). The script only keeps the alert list
live from the SSE feed.

Accessibility: every chart has a table equivalent; colours are from the Okabe-Ito palette (safe
for colour blindness) and outliers are also marked by shape and by words; points take keyboard
focus and show their numbers. Every view states the date its data runs to.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from alerts.evidence import category_words, disposal_words
from streams.dashboard.funnel import Funnel, Point
from streams.dashboard.trend import Month
from streams.reference import FORCE_NAMES

WINDOWS = ("28d", "91d", "365d")
BLUE, ORANGE, VERMILLION, GREY = "#0072B2", "#E69F00", "#D55E00", "#6b6b6b"

#: JSON embedded in a page: characters that could end the element or a line of script are
#: written as escapes (JSON.parse reads them back unchanged)
_SCRIPT_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def esc(value: object) -> str:
    """``value`` as HTML text or a quoted attribute value."""
    return html.escape(str(value), quote=True)


def script_json(value: object) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element: no ``</script>``, ``<!--``
    or ``]]>`` can form, and U+2028/U+2029 cannot end a line of script."""
    return json.dumps(value, ensure_ascii=False).translate(_SCRIPT_ESCAPES)


def path_segment(value: str) -> str:
    """``value`` as one segment of a URL path (percent-encoded, then escaped for an attribute)."""
    return esc(quote(value, safe=""))


def pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}%"


def force_name(force: str) -> str:
    return FORCE_NAMES.get(force, force)


def page(title: str, body: str, as_of: str, *, words: Mapping[str, Any] | None = None) -> str:
    """A whole page. No inline script or style (the CSP forbids both): the script and style sheet
    are served from ``/static/``, and ``words`` travel as a JSON data block the script parses."""
    data = f'<script type="application/json" id="dw-words">{script_json(words)}</script>' if words else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · disposal-watch</title><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><header><h1>{esc(title)}</h1>
<nav aria-label="views"><a href="/">Alerts and funnel plots</a> · <a href="/national">National figures</a></nav>
<p class="asof" id="as-of">{esc(as_of)}</p></header>
<main>{body}</main>{data}<script src="/static/dashboard.js"></script></body></html>"""


def as_of_text(day: str | None, clock: str) -> str:
    if day is None:
        return "No outcomes counted yet."
    if clock == "stream":
        return f"Data up to {day} (the newest outcome date counted)."
    return f"Data up to {day} (today, UTC)."


#: what an alert's state reads as in its item (the page's script is given the same words)
STATE_WORDS = {"firing": "firing since", "resolved": "resolved"}


def _item(fingerprint: str | None, cls: str, href: str, f: Mapping[str, str]) -> str:
    """An alert's list item, its text in ``data-field`` elements. The one template of an alert
    item: the page holds it empty (``item_template``), and its script fills a copy for each alert
    that arrives live, field by field, as text."""
    named = "" if fingerprint is None else f' data-fingerprint="{esc(fingerprint)}"'
    return (
        f'<li{named} class="{esc(cls)}">'
        f'<strong><span data-field="rule">{esc(f["rule"])}</span> · </strong>'
        f'<a data-field="force" href="{esc(href)}">{esc(f["force"])}</a>'
        f'<div class="meta"><span data-field="category">{esc(f["category"])}</span> · '
        f'<span data-field="severity">{esc(f["severity"])}</span> severity · '
        f'<span data-field="state">{esc(f["state"])}</span> <span data-field="when">{esc(f["when"])}</span> UTC</div>'
        f'<p data-field="summary">{esc(f["summary"])}</p></li>'
    )


def alert_item(a: Mapping[str, Any], rule_words: Mapping[str, str]) -> str:
    firing = a["state"] == "firing"
    fields = {
        "rule": rule_words.get(a["rule_id"], a["rule_id"]),
        "force": force_name(a["force_id"]),
        "category": category_words(a["category"]),
        "severity": str(a["severity"]),
        "state": STATE_WORDS["firing" if firing else "resolved"],
        "when": str(a["transition_at"])[:16].replace("T", " "),
        "summary": a.get("summary") or "",
    }
    cls = f"sev-{a['severity']}" if firing else "resolved"
    return _item(a["fingerprint"], cls, f"/force/{path_segment(a['force_id'])}", fields)


def item_template() -> str:
    """The alert item, empty, for the page's script to fill (``static/dashboard.js``)."""
    empty = dict.fromkeys(("rule", "force", "category", "severity", "state", "when", "summary"), "")
    return f'<template id="alert-item">{_item(None, "", "", empty)}</template>'


def grouped_items(alerts: Sequence[Mapping[str, Any]], rule_words: Mapping[str, str]) -> str:
    """The alerts as list items, newest first, with the case alerts of one rule and force (one
    per category that has such a crime) folded into one item that gives their count."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for a in alerts:
        if a.get("measure") == "case":
            groups.setdefault((a["rule_id"], a["force_id"]), []).append(a)
    out, done = [], set()
    for a in alerts:
        key = (a["rule_id"], a["force_id"])
        members = groups.get(key, [])
        if len(members) < 2:
            out.append(alert_item(a, rule_words))
        elif key not in done:
            done.add(key)
            inner = "".join(alert_item(m, rule_words) for m in members)
            title = f"{rule_words.get(key[0], key[0])} · {force_name(key[1])}"
            out.append(
                f'<li class="group {"sev-" + str(a["severity"]) if a["state"] == "firing" else "resolved"}" '
                f'data-group="{esc(key[0])}|{esc(key[1])}"><details><summary><strong>{esc(title)}</strong>: '
                f'<span class="count">{len(members)}</span> alerts</summary><ul class="alerts">{inner}</ul></details></li>'
            )
    return "".join(out)


def alert_lists(alerts: Sequence[Mapping[str, Any]], rule_words: Mapping[str, str], after: int) -> str:
    newest = sorted(alerts, key=lambda a: (str(a["transition_at"]), a["fingerprint"]), reverse=True)
    firing = [a for a in newest if a["state"] == "firing"]
    resolved = [a for a in newest if a["state"] != "firing"]
    return f"""<section aria-labelledby="alerts-h"><h2 id="alerts-h">Firing alerts
<span class="meta" id="live" aria-live="polite">connecting…</span></h2>
<p id="none-firing" {"hidden" if firing else ""}>No alert is firing.</p>
<ul class="alerts" id="firing" data-after="{after}" aria-live="polite">
{grouped_items(firing, rule_words)}</ul>
<label><input type="checkbox" id="show-resolved"> Show resolved alerts ({len(resolved)})</label>
<ul class="alerts" id="resolved" hidden>{grouped_items(resolved, rule_words)}</ul>
{item_template()}</section>"""


def window_links(current: str, base: str) -> str:
    links = [
        f'<a href="{esc(base)}?window={w}"{" aria-current=page" if w == current else ""}>'
        f"{'last ' + w[:-1] + ' days'}</a>"
        for w in WINDOWS
    ]
    return f'<p class="windows">Window: {"".join(links)}</p>'


def _point_label(p: Point) -> str:
    if not p.denominator:
        return f"{force_name(p.force)}: no outcomes in the window"
    where = {
        "99.8": "above the 99.8% limit",
        "95": "above the 95% limit",
        None: "within the limits",
    }[p.outside]
    return (
        f"{force_name(p.force)}: {p.numerator} of {p.denominator} ({pct(p.share)}); "
        f"{where} (95% limit {pct(p.upper95)}, 99.8% limit {pct(p.upper998)})"
    )


def nice_ticks(top: float, most: int = 6) -> list[int]:
    """Round tick values (1, 2 or 5 times a power of ten apart) from 0 to ``top``."""
    i = 0
    while top / ((1, 2, 5)[i % 3] * 10 ** (i // 3)) > most:
        i += 1
    return list(range(0, int(top) + 1, (1, 2, 5)[i % 3] * 10 ** (i // 3)))


def funnel_svg(f: Funnel, width: int = 480, height: int = 300) -> str:
    left, right, top, bottom = 44, 10, 10, 34
    w, h = width - left - right, height - top - bottom
    n_max = max([p.denominator for p in f.points] + [c[0] for c in f.curve] + [1])
    shares = [p.share for p in f.points if p.share is not None]
    y_max = min(1.0, max(shares + [c[4] for c in f.curve] + [0.05]) * 1.1)

    def x(n: float) -> float:
        return left + w * n / n_max

    def y(s: float) -> float:
        return top + h * (1 - min(s, y_max) / y_max)

    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="funnel plot, '
        f'{esc(category_words(f.category))}">'
    ]
    for i in range(5):  # axes and gridlines
        s = y_max * i / 4
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(s):.1f}" y2="{y(s):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{y(s) + 4:.1f}" text-anchor="end">{s * 100:.0f}%</text>')
    for n in nice_ticks(n_max):
        parts.append(f'<text x="{x(n):.1f}" y="{top + h + 14}" text-anchor="middle">{n:,}</text>')
    parts.append(
        f'<text x="{left + w / 2}" y="{height - 4}" text-anchor="middle">crimes with an outcome</text>'
    )
    parts += _funnel_limits(f, x, y)
    if f.p0 is not None:
        parts.append(
            f'<line x1="{left}" x2="{left + w}" y1="{y(f.p0):.1f}" y2="{y(f.p0):.1f}" stroke="{BLUE}" stroke-width="1.5"/>'
        )
    parts += [_funnel_point(p, x, y) for p in f.points]
    parts.append("</svg>")
    return "".join(parts)


def _funnel_limits(f: Funnel, x: Callable[[float], float], y: Callable[[float], float]) -> list[str]:
    """The four limit curves: 99.8% (red, long dashes) and 95% (orange, short), above and below."""
    return [
        f'<polyline points="{" ".join(f"{x(c[0]):.1f},{y(c[idx]):.1f}" for c in f.curve)}" fill="none" '
        f'stroke="{colour}" stroke-dasharray="{dash}"/>'
        for idx, dash, colour in (
            (1, "6 4", VERMILLION),
            (2, "2 3", ORANGE),
            (3, "2 3", ORANGE),
            (4, "6 4", VERMILLION),
        )
        if f.curve
    ]


def _funnel_point(p: Point, x: Callable[[float], float], y: Callable[[float], float]) -> str:
    """One force: filled and larger outside a limit (orange 95%, red 99.8%), labelled for
    screen readers and on hover."""
    outside = p.outside
    colour = VERMILLION if outside == "99.8" else ORANGE if outside == "95" else BLUE
    radius = 6 if outside else 4
    return (
        f'<circle data-force="{esc(p.force)}" data-outside="{outside or ""}" cx="{x(p.denominator):.1f}" '
        f'cy="{y(p.share if p.share is not None else 0.0):.1f}" r="{radius}" fill="{colour if outside else "#fff"}" '
        f'stroke="{colour}" stroke-width="2" tabindex="0" aria-label="{esc(_point_label(p))}">'
        f"<title>{esc(_point_label(p))}</title></circle>"
    )


def funnel_table(f: Funnel) -> str:
    rows = sorted(f.points, key=lambda p: (-(p.share or 0), p.force))
    body = "".join(
        f"<tr><td>{esc(force_name(p.force))}</td><td>{p.numerator}</td><td>{p.denominator}</td>"
        f"<td>{pct(p.share)}</td><td>{pct(p.upper95) if p.denominator else '–'}</td>"
        f"<td>{pct(p.upper998) if p.denominator else '–'}</td>"
        f"<td>{ {'99.8': 'above 99.8%', '95': 'above 95%', None: ''}[p.outside]}</td></tr>"
        for p in rows
    )
    return (
        "<table><caption class=meta>The numbers behind the plot</caption><thead><tr><th>Force</th>"
        "<th>Settled</th><th>Outcomes</th><th>Share</th><th>95% limit</th><th>99.8% limit</th>"
        f"<th>Outlier</th></tr></thead><tbody>{body}</tbody></table>"
    )


def funnel_figure(f: Funnel) -> str:
    what = disposal_words(f.rule.disposals)
    pooled = pct(f.p0)
    adjust = f" Limits: {f.dispersion.words()}."
    outliers = sum(1 for p in f.points if p.outside)
    return f"""<figure data-rule="{esc(f.rule.id)}" data-category="{esc(f.category)}">
<figcaption>{esc(category_words(f.category).capitalize())}: share {esc(what)}, last {f.window_days} days</figcaption>
<p class="meta">{esc(f.rule.description)}. All forces in scope: {pooled}; {outliers} above a limit.{esc(adjust)}</p>
<p class="legend meta"><span>● filled: outside a limit (orange 95%, red 99.8%)</span>
<span>○ open: within</span><span>— blue: all forces</span><span>dashed: 95% and 99.8% limits</span></p>
{funnel_svg(f)}
<details><summary>Table</summary>{funnel_table(f)}</details></figure>"""


def index_page(
    alerts: Sequence[Mapping[str, Any]],
    funnels: Iterable[Funnel],
    *,
    rule_words: Mapping[str, str],
    after: int,
    window: str,
    as_of: str,
    scope_note: str,
    category_names: Mapping[str, str],
) -> str:
    figures = "".join(funnel_figure(f) for f in funnels) or "<p>No peer rule is configured.</p>"
    body = f"""<p class="meta">{esc(scope_note)}</p>
{alert_lists(alerts, rule_words, after)}
<section aria-labelledby="funnels-h"><h2 id="funnels-h">Forces against their peers</h2>
<p>Each point is a force: its share against how many crimes had an outcome. Points above the
dashed limits are further from all forces than chance explains at that volume.</p>
{window_links(window, "/")}<div class="charts">{figures}</div></section>"""
    words = {
        "rules": dict(rule_words),
        "forces": FORCE_NAMES,
        "categories": dict(category_names),
        "states": STATE_WORDS,
    }
    return page("Out-of-court disposals: oversight", body, as_of, words=words)


MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: the least room a month label takes on the x axis ("Sep" at the chart's font size, and a gap)
LABEL_PX = 34


def all_months(months: Sequence[Month]) -> list[Month]:
    """``months`` with the months between them that had no outcome put in, as empty months: a
    line must break there, not join across."""
    if not months:
        return []
    have = {m.month: m for m in months}
    y, mo = int(months[0].month[:4]), int(months[0].month[5:7])
    out = []
    while True:
        key = f"{y:04d}-{mo:02d}"
        out.append(have.get(key, Month(key, 0, 0, 0, 0)))
        if key >= months[-1].month:
            return out
        y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)


def share_ticks(top: float, most: int = 7) -> list[float]:
    """Round percentage ticks from 0 covering ``top`` (a share): 0, 5, 10, 15% ... ."""
    top_pct = max(top * 100, 1.0)
    for step in (1, 2, 5, 10, 20, 25, 50):
        if top_pct / step <= most - 1:
            break
    n = int(-(-top_pct // step))  # ceil
    return [min(1.0, i * step / 100) for i in range(n + 1)]


def month_labels(months: Sequence[Month], width: float) -> list[tuple[int, str, str | None]]:
    """(index, month name, year or None) of the months labelled: every k-th, so that no two
    labels are closer than LABEL_PX; the year under the first label and under each January."""
    k = max(1, -(-len(months) * LABEL_PX // max(1, int(width))))
    out = []
    last_year = None
    for i in range(0, len(months), k):
        year, mo = months[i].month[:4], int(months[i].month[5:7])
        out.append((i, MONTH_NAMES[mo - 1], year if year != last_year else None))
        last_year = year
    return out


def trend_svg(category: str, months: Sequence[Month], force: str, width: int = 480, height: int = 240) -> str:
    months = all_months(months)
    if not any(m.all_outcomes for m in months):
        return '<p class="empty">No outcomes in this period.</p>'
    left, right, top, bottom = 44, 10, 26, 44
    w, h = width - left - right, height - top - bottom
    shares = [s for m in months for s in (m.force_share, m.all_share) if s is not None]
    ticks = share_ticks(max(shares + [0.01]))
    y_max = ticks[-1]
    step = w / max(1, len(months) - 1)

    def y(s: float) -> float:
        return top + h * (1 - s / y_max)

    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="monthly share, {esc(category_words(category))}">'
    ]
    for s in ticks:
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(s):.1f}" y2="{y(s):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{y(s) + 4:.1f}" text-anchor="end">{s * 100:.0f}%</text>')
    parts += _month_axis(months, left, step, top + h, w)
    parts += _share_lines(months, left, step, y)
    if not any(m.force_outcomes for m in months):
        parts.append(
            f'<text x="{left + w / 2:.1f}" y="{top + h / 2:.1f}" text-anchor="middle">No outcomes for {esc(force_name(force))} in this period</text>'
        )
    # the legend: a sample of each line, then its name
    parts.append(
        f'<g class="legend"><line x1="{left}" x2="{left + 24}" y1="10" y2="10" stroke="{BLUE}" stroke-width="2"/>'
        f'<text x="{left + 30}" y="14">{esc(force_name(force))}</text>'
        f'<line x1="{left + 240}" x2="{left + 264}" y1="10" y2="10" stroke="{GREY}" stroke-width="2" stroke-dasharray="5 4"/>'
        f'<text x="{left + 270}" y="14">all forces</text></g></svg>'
    )
    return "".join(parts)


def _month_axis(months: Sequence[Month], left: float, step: float, base: float, width: float) -> list[str]:
    """The month labels under the chart (thinned to fit ``width``), with the year under January
    and the first month."""
    parts = []
    for i, name, year in month_labels(months, width):
        x = left + i * step
        parts.append(f'<text class="tick" x="{x:.1f}" y="{base + 14}" text-anchor="middle">{name}</text>')
        if year is not None:
            parts.append(
                f'<text class="tick year" x="{x:.1f}" y="{base + 28}" text-anchor="middle">{year}</text>'
            )
    return parts


def _share_lines(months: Sequence[Month], left: float, step: float, y: Callable[[float], float]) -> list[str]:
    """The two lines of monthly shares: all forces (grey, dashed) and the force (blue, with its
    points); a month without outcomes breaks a line."""
    parts = []
    for attr, colour, dash in (("all_share", GREY, "5 4"), ("force_share", BLUE, "")):
        runs: list[list[tuple[float, float]]] = [[]]
        for i, m in enumerate(months):
            share = getattr(m, attr)
            if share is None:
                runs.append([])
            else:
                runs[-1].append((left + i * step, share))
        for run in runs:
            if len(run) > 1:
                line = " ".join(f"{px:.1f},{y(s):.1f}" for px, s in run)
                parts.append(
                    f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>'
                )
            if attr == "force_share":
                parts += [f'<circle cx="{px:.1f}" cy="{y(s):.1f}" r="3" fill="{colour}"/>' for px, s in run]
    return parts


def trend_table(months: Sequence[Month], force: str) -> str:
    body = "".join(
        f"<tr><td>{m.month}</td><td>{m.force_out_of_court}</td><td>{m.force_outcomes}</td>"
        f"<td>{pct(m.force_share)}</td><td>{m.all_out_of_court}</td><td>{m.all_outcomes}</td>"
        f"<td>{pct(m.all_share)}</td></tr>"
        for m in months
    )
    return (
        f"<table><thead><tr><th>Month</th><th>{esc(force_name(force))}: out of court</th><th>outcomes</th>"
        "<th>share</th><th>All forces: out of court</th><th>outcomes</th><th>share</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def peer_methods(rules: Iterable[Any]) -> list[str]:
    """Each peer rule's funnel method, in words, for a page to state (``alerts.funnel``)."""
    words = {
        "none": "exact binomial limits, no over-dispersion allowance",
        "multiplicative": "limits widened by Spiegelhalter's multiplicative over-dispersion factor",
        "additive": "limits with an additive random-effects over-dispersion allowance (arcsine scale)",
    }
    return [f"{r.id}: {words[r.overdispersion]}" for r in rules if r.measure == "peer"]


def methods_note(methods: Sequence[str]) -> str:
    if not methods:
        return ""
    return f'<p class="meta methods">Funnel limits of the peer rules: {esc("; ".join(methods))}.</p>'


def force_page(
    force: str,
    trends: Mapping[str, Sequence[Month]],
    current: Sequence[Mapping[str, Any]],
    past: Sequence[Mapping[str, Any]],
    *,
    rule_words: Mapping[str, str],
    as_of: str,
    methods: Sequence[str] = (),
) -> str:
    charts = (
        "".join(
            f"""<figure data-category="{esc(c)}"><figcaption>{esc(category_words(c).capitalize())}:
monthly share settled out of court</figcaption>{trend_svg(c, months, force)}
<details><summary>Table</summary>{trend_table(months, force)}</details></figure>"""
            for c, months in trends.items()
        )
        or "<p>No outcome in the high-risk categories in the last year.</p>"
    )
    firing = "".join(alert_item(a, rule_words) for a in current) or "<li>None firing.</li>"
    history = "".join(
        f"<tr><td>{esc(str(a['transition_at'])[:16].replace('T', ' '))}</td><td>{esc(a['state'])}</td>"
        f"<td>{esc(rule_words.get(a['rule_id'], a['rule_id']))}</td><td>{esc(category_words(a['category']))}</td>"
        f"<td>{esc(a.get('summary') or '')}</td></tr>"
        for a in past
    )
    body = f"""{methods_note(methods)}<p><a href="/force/{path_segment(force)}/counts.csv" download>Download the counts behind these charts (CSV)</a></p>
<section><h2>Monthly out-of-court share, high-risk categories, against all forces</h2>
<div class="charts">{charts}</div></section>
<section><h2>Alerts</h2><ul class="alerts" id="force-alerts">{firing}</ul>
<details><summary>Every change, newest first ({len(past)})</summary><table><thead><tr><th>When (UTC)</th>
<th>State</th><th>Rule</th><th>Category</th><th>Summary</th></tr></thead><tbody>{history}</tbody></table></details>
</section>"""
    return page(force_name(force), body, as_of)


def signin_page(message: str = "") -> str:
    note = f'<p role="alert">{esc(message)}</p>' if message else ""
    body = f"""{note}<form class="signin" method="post" action="/signin">
<p>Sign in with the access token you were given. It is kept for this browser session only.</p>
<label for="token">Access token</label><input id="token" name="token" type="password" autocomplete="off" required>
<p><button type="submit">Sign in</button></p></form>"""
    return page("Sign in", body, "")
