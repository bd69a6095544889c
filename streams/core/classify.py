"""Classification: which counter cell an event belongs to, or why it is rejected.

Pure functions over values. Every rejection is a ``RejectedEvent`` whose ``reason`` is one of
``REASONS`` (the dead-letter topic and metrics use it).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import NamedTuple

from streams.errors import RejectedEvent
from streams.model import OutcomeEvent
from streams.reference import (
    DISPOSAL_CLASSES,
    FORCE_NAMES,
    HOME_OFFICE_OUTCOMES,
    OFFENCE_CATEGORIES,
    POLICEUK_CRIME_TYPES,
)

#: category of a coded event whose Home Office code is not in offences.yaml
OTHER_CATEGORY = "other"

#: every reason a record can be rejected for, across decode and classification
REASONS: tuple[str, ...] = (
    "undecodable",
    "unknown_schema",
    "schema_invalid",
    "unknown_force",
    "unknown_outcome",
    "unknown_crime_type",
    "future_outcome",
    "beyond_retention",
)


_new = tuple.__new__


class Cell(NamedTuple):
    """One counter cell: force x category x disposal class x outcome day x domestic-abuse flag.

    A named tuple rather than a frozen dataclass: one is made per event and used as a dict key
    several times, and a tuple is made, hashed and compared in half the time."""

    force: str
    category: str
    disposal: str
    day: dt.date
    domestic_abuse: bool


def category_of(event: OutcomeEvent) -> str:
    """Offence category: from the Home Office code if given, else the police.uk crime type's slug."""
    if event.offence_code is not None:
        return OFFENCE_CATEGORIES.get(event.offence_code.strip().upper(), OTHER_CATEGORY)
    if event.crime_type is not None:
        try:
            return POLICEUK_CRIME_TYPES[event.crime_type]
        except KeyError:
            raise RejectedEvent(
                f"unknown police.uk crime type {event.crime_type!r}", reason="unknown_crime_type"
            ) from None
    raise RejectedEvent("event has neither offence_code nor crime_type", reason="schema_invalid")


def classify(event: OutcomeEvent, *, latest_day: dt.date) -> Cell:
    """The counter cell of ``event``; raises ``RejectedEvent`` if it breaks the contract.

    ``latest_day`` is the newest outcome date accepted (today by the wall clock, plus slack for
    time zones): a disposal cannot be given in the future.
    """
    if not event.event_id or not event.crime_ref:
        raise RejectedEvent("event_id and crime_ref must not be empty", reason="schema_invalid")
    if event.force_id not in FORCE_NAMES:
        raise RejectedEvent(f"unknown force id {event.force_id!r}", reason="unknown_force")
    if event.disposal not in DISPOSAL_CLASSES:
        raise RejectedEvent(f"unknown disposal class {event.disposal!r}", reason="unknown_outcome")
    if event.outcome_number is not None:
        expected = HOME_OFFICE_OUTCOMES.get(event.outcome_number)
        if expected is None:
            raise RejectedEvent(
                f"unknown Home Office outcome number {event.outcome_number}",
                reason="unknown_outcome",
            )
        if expected != event.disposal:
            raise RejectedEvent(
                f"outcome number {event.outcome_number} is {expected}, event says {event.disposal}",
                reason="unknown_outcome",
            )
    if event.outcome_date > latest_day:
        raise RejectedEvent(
            f"outcome date {event.outcome_date} is after {latest_day}", reason="future_outcome"
        )
    # Cell(force, category, disposal, day, domestic_abuse), without the named tuple's Python
    # __new__ (one is made per event; see ``streams.core.crimes.apply``)
    return _new(
        Cell,
        (
            event.force_id,
            category_of(event),
            event.disposal,
            event.outcome_date,
            bool(event.domestic_abuse),
        ),
    )


def check_retention(day: dt.date, *, today: dt.date | None, keep_days: int) -> None:
    """Raise ``RejectedEvent(beyond_retention)`` if ``day`` is older than ``keep_days`` before ``today``.

    ``today`` is None before the stream clock has seen any event: nothing is too old yet.
    """
    if today is None:
        return
    horizon = _horizon(today, keep_days)
    if day < horizon:
        raise RejectedEvent(
            f"outcome date {day} is before the retention horizon {horizon} ({keep_days} days before {today})",
            reason="beyond_retention",
        )


@functools.lru_cache(maxsize=16)
def _horizon(today: dt.date, keep_days: int) -> dt.date:
    """``keep_days`` before ``today``: asked once per event, changing once a day (a date made
    per event was a tenth of classifying it)."""
    return today - dt.timedelta(days=keep_days)
