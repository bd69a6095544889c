"""A scrutiny panel's sample: a force's out-of-court disposals of high-risk crimes in a quarter,
drawn at random, reproducibly. Pure.

Force scrutiny panels review a sample of each force's out-of-court disposals every quarter. The
sample here is:

- **reproducible**: each crime's place in the draw is a keyed hash of (force, quarter, crime),
  under a key derived from the deployment's master key (``Keys.scrutiny``), so the same (force,
  quarter) gives the same sample on every worker and every day, whatever order the crimes are
  read in; a crime whose outcome changes later leaves or joins only its own place;
- **unpredictable** to anyone without the key: a force cannot tell which of its cases a panel
  will see, and so cannot choose what to settle well;
- **stratified by category**: the sample size is shared between the categories in proportion to
  their disposals (largest remainders), so that a category with few disposals is not left out by
  chance; each category with any gets at least one place while places remain;
- **domestic abuse first**: within a category, domestic-abuse cases are drawn before the others
  (the guidance says community resolution is generally not appropriate for them).

Within a category and a domestic-abuse flag, every crime is equally likely to be drawn: the
keyed hash is uniform (a test draws many keys and checks it with a chi-square test).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streams.dashboard.trend import HIGH_RISK
from streams.reference import OUT_OF_COURT

_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")


@dataclass(frozen=True)
class Candidate:
    """A crime whose latest outcome is an out-of-court disposal of a high-risk category."""

    key: str  # force/crime_ref: never leaves the processor unpseudonymised
    category: str
    disposal: str
    day: dt.date
    domestic_abuse: bool


def quarter_bounds(text: str) -> tuple[dt.date, dt.date]:
    """``2026-Q3`` -> its first and last day; ``ValueError`` naming the form."""
    m = _QUARTER.match(text)
    if not m:
        raise ValueError(f"quarter must be like 2026-Q3, not {text[:20]!r}")
    year, q = int(m.group(1)), int(m.group(2))
    first = dt.date(year, 3 * q - 2, 1)
    last = dt.date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1) - dt.timedelta(days=1)
    return first, last


def quarter_of(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def in_scope(category: str, disposal: str, day: dt.date, first: dt.date, last: dt.date) -> bool:
    return category in HIGH_RISK and disposal in OUT_OF_COURT and first <= day <= last


def place(key: bytes, force: str, quarter: str, crime_key: str) -> bytes:
    """A crime's place in the draw of (force, quarter): lower is drawn first."""
    return hmac.new(key, f"{force}|{quarter}|{crime_key}".encode(), hashlib.sha256).digest()


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Places per stratum: one each while places remain (largest strata first), the rest in
    proportion to the strata's sizes by largest remainders; never more than a stratum holds."""
    total = sum(sizes.values())
    n = min(n, total)
    order = sorted(sizes, key=lambda s: (-sizes[s], s))
    out = {s: 0 for s in sizes}
    for s in order[:n]:
        out[s] = 1
    left = n - sum(out.values())
    while left > 0:
        room = {s: sizes[s] - out[s] for s in sizes if sizes[s] > out[s]}
        share = {s: left * sizes[s] / total for s in room}
        whole = {s: min(room[s], int(share[s])) for s in room}
        if sum(whole.values()) == 0:  # hand out one at a time by largest remainder
            best = max(room, key=lambda s: (share[s] - int(share[s]), sizes[s], s))
            out[best] += 1
            left -= 1
            continue
        for s, k in whole.items():
            out[s] += k
            left -= k
    return out


def draw(candidates: Iterable[Candidate], n: int, key: bytes, force: str, quarter: str) -> list[Candidate]:
    """The sample of ``n`` (see the module docstring), by category, then in the order drawn."""
    strata: dict[str, list[tuple[bool, bytes, Candidate]]] = {}
    for c in candidates:
        strata.setdefault(c.category, []).append((not c.domestic_abuse, place(key, force, quarter, c.key), c))
    places = allocate({s: len(v) for s, v in strata.items()}, n)
    out: list[Candidate] = []
    for category in sorted(strata, key=HIGH_RISK.index):
        ranked = sorted(strata[category], key=lambda t: (t[0], t[1]))
        out += [c for _, _, c in ranked[: places[category]]]
    return out


def sizes_by_category(candidates: Sequence[Candidate]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in candidates:
        out[c.category] = out.get(c.category, 0) + 1
    return out
