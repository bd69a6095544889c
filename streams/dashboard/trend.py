"""A force's monthly out-of-court share in the high-risk categories, against all forces.

From counts keyed (force, category, disposal, day): for each high-risk category with any outcome
in the window, and each calendar month, the force's crimes settled out of court over its crimes
with an outcome (``pending`` left out, as in the alert rules), and the same over all forces.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from streams.reference import OUT_OF_COURT

#: the categories the product watches (README, "What it is"); police.uk data has only the coarse
#: "violence and sexual offences" and "possession of weapons"
HIGH_RISK: tuple[str, ...] = (
    "stalking",
    "harassment",
    "controlling-coercive",
    "rape",
    "sexual",
    "knife",
    "child-cruelty",
    "violence-and-sexual-offences",
    "possession-of-weapons",
)


@dataclass(frozen=True)
class Month:
    month: str  # YYYY-MM
    force_out_of_court: int
    force_outcomes: int
    all_out_of_court: int
    all_outcomes: int

    @property
    def force_share(self) -> float | None:
        return self.force_out_of_court / self.force_outcomes if self.force_outcomes else None

    @property
    def all_share(self) -> float | None:
        return self.all_out_of_court / self.all_outcomes if self.all_outcomes else None


def monthly(counts: Mapping[tuple[str, ...], int], force: str) -> dict[str, list[Month]]:
    """Category -> months in order, for the high-risk categories with outcomes in ``counts``."""
    sums: dict[str, dict[str, list[int]]] = {}
    for (f, category, disposal, day), n in counts.items():
        if category not in HIGH_RISK or disposal == "pending":
            continue
        month = dt.date.fromisoformat(day).isoformat()[:7]
        cell = sums.setdefault(category, {}).setdefault(month, [0, 0, 0, 0])
        ooc = disposal in OUT_OF_COURT
        cell[3] += n
        cell[2] += n if ooc else 0
        if f == force:
            cell[1] += n
            cell[0] += n if ooc else 0
    return {
        category: [Month(m, *cells[m]) for m in sorted(cells)]
        for category, cells in sorted(sums.items(), key=lambda kv: HIGH_RISK.index(kv[0]))
    }
