"""One partition's counting step: an event, the crime's held state, the partition's counts.

``count_event`` validates the event against the contract, applies latest-outcome-wins and
moves the partition's counts; it returns what the caller must store for the crime. The worker's
agent is a thin shell around it (decode, table get/set, dead-letter, metrics).
"""

from __future__ import annotations

import datetime as dt

from streams.buckets import DayCounts
from streams.classify import check_retention, classify
from streams.crimes import Applied, Held, apply, event_digest
from streams.model import OutcomeEvent


def count_event(
    event: OutcomeEvent,
    held: Held | None,
    counts: DayCounts,
    *,
    today: dt.date | None,
    latest_day: dt.date,
    keep_days: int,
    offset: int = -1,
) -> Applied:
    """Apply ``event`` to one crime and the partition's ``counts`` (mutated in place).

        ``today`` is the clock the retention horizon is measured from (None: no event yet under the
        stream clock); ``latest_day`` the newest outcome date accepted; ``offset`` the event's offset
    in its partition (recognises redeliveries). Raises ``RejectedEvent``.
    """
    cell = classify(event, latest_day=latest_day)
    check_retention(cell.day, today=today, keep_days=keep_days)
    applied = apply(held, event_digest(event.event_id), cell, offset=offset)
    counts.move(applied.removed, applied.added)
    return applied


def rebuild(held: list[Held] | tuple[Held, ...]) -> DayCounts:
    """Counts of a partition from the crimes it holds (after recovery or a rebalance)."""
    counts = DayCounts()
    for h in held:
        counts.add(h.cell)
    return counts
