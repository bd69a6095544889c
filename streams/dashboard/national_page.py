# ruff: noqa: E501 (HTML templates read better unbroken)
"""The national page's HTML: per high-risk category, the plain-English lines, a quarterly chart
and the table of every force, a period against the one before (``streams.dashboard.national``).
Server-rendered SVG and tables, as the other pages (``streams.dashboard.render``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from alerts.evidence import category_words
from streams.dashboard.national import CLASS_WORDS, CLASSES, Change, Line, Period, Quarter, sentence
from streams.dashboard.render import BLUE, esc, force_name, methods_note, nice_ticks, page, path_segment, pct

#: how the interval of a change is computed, as the page and the API state it
METHOD = (
    "Change: the ratio of the two periods' counts; 95% interval exact, conditional on their total "
    "(Clopper-Pearson for the share of that total in the later period)."
)


def change_text(change: Change | None) -> str:
    if change is None:
        return "not all held"
    if change.ratio is None:
        return "none before"
    assert change.low is not None and change.high is not None
    return f"{(change.ratio - 1) * 100:+.0f}% ({(change.low - 1) * 100:+.0f}% to {(change.high - 1) * 100:+.0f}%)"


def quarterly_svg(category: str, quarters: Sequence[Quarter], width: int = 480, height: int = 220) -> str:
    """Bars: the national out-of-court disposals of each quarter; a quarter cut by the periods'
    ends is drawn pale and marked, as its count covers part of it."""
    left, right, top, bottom = 52, 10, 10, 40
    w, h = width - left - right, height - top - bottom
    peak = max([q.out_of_court for q in quarters] + [1])
    ticks = nice_ticks(peak * 1.1, most=5)
    y_max = max(ticks[-1], 1) if ticks[-1] >= peak else peak
    slot = w / max(1, len(quarters))

    def y(v: float) -> float:
        return top + h * (1 - v / y_max)

    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="quarterly out-of-court disposals, {esc(category_words(category))}">'
    ]
    for t in ticks:
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{y(t) + 4:.1f}" text-anchor="end">{t:,}</text>')
    for i, q in enumerate(quarters):
        x = left + i * slot + slot * 0.15
        fill = BLUE if q.whole else "#9ecae1"
        label = f"{q.quarter}: {q.out_of_court:,} out of court of {q.outcomes:,} outcomes" + (
            "" if q.whole else " (part of the quarter)"
        )
        parts.append(
            f'<rect class="bar" data-quarter="{esc(q.quarter)}" x="{x:.1f}" y="{y(q.out_of_court):.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h * q.out_of_court / y_max:.1f}" fill="{fill}"><title>{esc(label)}</title></rect>'
        )
        year, _, part = q.quarter.partition(" ")
        parts.append(
            f'<text class="tick" x="{x + slot * 0.35:.1f}" y="{top + h + 14}" text-anchor="middle">{esc(part)}{"" if q.whole else "*"}</text>'
        )
        if i == 0 or part == "Q1":
            parts.append(
                f'<text class="tick" x="{x + slot * 0.35:.1f}" y="{top + h + 28}" text-anchor="middle">{esc(year)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _figures_cells(line: Line) -> str:
    a, b = line.now, line.before
    return (
        f"<td>{a.out_of_court:,}</td><td>{a.outcomes:,}</td><td>{pct(a.share)}</td>"
        f"<td>{b.out_of_court:,}</td><td>{b.outcomes:,}</td><td>{pct(b.share)}</td>"
        f"<td>{esc(change_text(line.changes.get('out-of-court')))}</td>"
    )


def category_table(lines: Sequence[Line]) -> str:
    body = "".join(
        f'<tr data-force="{esc(line.force or "all")}"><th scope="row">'
        + (
            "All forces"
            if line.force is None
            else f'<a href="/force/{path_segment(line.force)}">{esc(force_name(line.force))}</a>'
        )
        + f"</th>{_figures_cells(line)}</tr>"
        for line in lines
    )
    return (
        "<table><thead><tr><th>Force</th><th>Out of court</th><th>Outcomes</th><th>Share</th>"
        "<th>Before: out of court</th><th>Outcomes</th><th>Share</th><th>Change in out of court (95% interval)</th>"
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def class_table(line: Line) -> str:
    rows = "".join(
        f"<tr><th scope=row>{esc(CLASS_WORDS[c][1].capitalize())}</th><td>{line.now.count(c):,}</td>"
        f"<td>{line.before.count(c):,}</td><td>{esc(change_text(line.changes.get(c)))}</td></tr>"
        for c in (*CLASSES, "out-of-court")
    )
    return (
        "<table class=classes><thead><tr><th>All forces</th><th>This period</th><th>Before</th>"
        f"<th>Change (95% interval)</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def national_page(
    lines: Sequence[Line],
    quarters: Mapping[str, Sequence[Quarter]],
    *,
    months: int,
    now: Period,
    before: Period,
    as_of: str,
    scope_note: str,
    csv_link: str,
    methods: Sequence[str] = (),
) -> str:
    sections = []
    for category in dict.fromkeys(line.category for line in lines):
        mine = [line for line in lines if line.category == category]
        national = next((line for line in mine if line.force is None), None)
        said = ""
        chart = ""
        if national is not None:
            sentences = [sentence(national, c, months, now.last) for c in (*CLASSES, "out-of-court")]
            said = "".join(f"<li>{esc(s)}</li>" for s in sentences if s is not None)
            said = f'<ul class="sentences">{said}</ul>{class_table(national)}'
            if category in quarters:
                chart = f"<figure><figcaption>All forces: out-of-court disposals by quarter</figcaption>{quarterly_svg(category, quarters[category])}</figure>"
        sections.append(
            f'<section data-category="{esc(category)}"><h2>{esc(category_words(category).capitalize())}</h2>'
            f"{said}{chart}<details open><summary>By force</summary>{category_table(mine)}</details></section>"
        )
    body = (
        f'<p class="meta">{esc(scope_note)}</p>'
        f"<p>The {months} months from {now.first} to {now.last}, against the {months} months from {before.first} to {before.last}."
        + (
            ""
            if before.complete
            else " The earlier period reaches before the retention horizon: its counts are partial and no change is given."
        )
        + f'</p>{methods_note(methods)}<p class="meta">{esc(METHOD)} Outcomes: crimes with an outcome other than pending; each crime counted once, in its latest outcome.</p>'
        f'<p><a href="{esc(csv_link)}" download>Download these figures (CSV)</a></p>'
        + ("".join(sections) or "<p>No outcomes in the high-risk categories in these periods.</p>")
    )
    return page("National figures: high-risk crimes settled out of court", body, as_of)
