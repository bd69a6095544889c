# ruff: noqa: E501 (HTML templates read better unbroken)
"""The scrutiny sample's page (``streams.dashboard.scrutiny`` draws the sample)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from alerts.evidence import category_words
from streams.dashboard.render import esc, force_name, page, path_segment
from streams.dashboard.scrutiny import Candidate


def neighbours(quarter: str) -> tuple[str, str]:
    """The quarters before and after ``quarter`` (``2026-Q1`` -> ``2025-Q4``, ``2026-Q2``)."""
    year, q = int(quarter[:4]), int(quarter[-1])
    return f"{year - (q == 1)}-Q{4 if q == 1 else q - 1}", f"{year + (q == 4)}-Q{1 if q == 4 else q + 1}"


def scrutiny_page(
    force: str,
    quarter: str,
    sample: Sequence[Candidate],
    refs: Sequence[str],
    sizes: Mapping[str, int],
    *,
    references: bool,
) -> str:
    """``refs``: what identifies each crime of ``sample`` here (pseudonyms, or with
    ``references`` the crime references)."""
    rows = "".join(
        f'<tr data-ref="{esc(ref)}"><td>{i}</td><td>{esc(ref)}</td><td>{esc(category_words(c.category))}</td>'
        f"<td>{esc(c.disposal.replace('-', ' '))}</td><td>{c.day.isoformat()}</td><td>{'yes' if c.domestic_abuse else ''}</td></tr>"
        for i, (c, ref) in enumerate(zip(sample, refs, strict=True), 1)
    )
    population = ", ".join(f"{category_words(k)} {n}" for k, n in sizes.items()) or "none"
    before, after = neighbours(quarter)
    base = f"/force/{path_segment(force)}/scrutiny"
    who = (
        "Crime references are shown: this view is logged."
        if references
        else "Crimes are shown by pseudonym; a token with the reidentify permission sees the references."
    )
    body = f"""<p class="windows"><a href="{base}?quarter={esc(before)}">{esc(before)}</a> · <strong>{esc(quarter)}</strong> · <a href="{base}?quarter={esc(after)}">{esc(after)}</a></p>
<p>{len(sample)} of the force's out-of-court disposals of high-risk crimes with an outcome dated in {esc(quarter)}
(the crime's latest outcome), drawn at random by category in proportion to each, domestic-abuse cases first.
The same quarter always gives the same sample. Disposals in the quarter: {esc(population)}.</p>
<p class="meta">{who}</p>
<p><a href="{base}.csv?quarter={esc(quarter)}" download>Download the sample (CSV)</a></p>
<table id="sample"><thead><tr><th>#</th><th>{"Crime reference" if references else "Pseudonym"}</th><th>Category</th><th>Disposal</th>
<th>Outcome date</th><th>Domestic abuse</th></tr></thead><tbody>{rows}</tbody></table>"""
    return page(f"{force_name(force)}: scrutiny sample, {quarter}", body, f"Quarter {quarter}.")
