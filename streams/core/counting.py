"""One partition's counting step: an event, the crime's held state, the partition's counts.

``count_event`` validates the event against the contract, applies latest-outcome-wins and
moves the partition's counts; it returns what the caller must store for the crime. The counting
loop (``streams.runtime.loop``) is the shell around it: decode, read and write the crime's state
in the store, dead-letter, metrics.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from streams.core.buckets import DayCounts
from streams.core.classify import check_retention, classify
from streams.core.crimes import Applied, Held, apply, event_digest
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
    crime_key: str | None = None,
) -> Applied:
    """Apply ``event`` to one crime and the partition's ``counts`` (mutated in place).

    ``today`` is the clock the retention horizon is measured from (None: no event yet under the
    stream clock); ``latest_day`` the newest outcome date accepted; ``offset`` the event's offset
    in its partition (recognises redeliveries). When a count moves, the crime's key moves with
    it, as alert evidence (pseudonymised where it leaves the process: ``pseudonym``); a caller
    that has made ``event.crime_key`` already passes it as ``crime_key``. Raises
    ``RejectedEvent``.
    """
    cell = classify(event, latest_day=latest_day)
    check_retention(cell.day, today=today, keep_days=keep_days)
    applied = apply(held, event_digest(event.event_id), cell, offset=offset)
    if applied.removed is not None or applied.added is not None:
        counts.move(applied.removed, applied.added, crime_key or event.crime_key)
    return applied


def pseudonym(crime_key: str, key: bytes) -> str:
    """A crime reference as it may leave the processor: keyed HMAC-SHA256, 16 hex digits.

    Stable for one key (so an analyst can follow a crime across alerts and ask the force about
    it), not reversible without the key."""
    return hmac.new(key, crime_key.encode(), hashlib.sha256).hexdigest()[:16]
