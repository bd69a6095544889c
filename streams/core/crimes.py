"""Latest outcome per crime: the state transition one event makes.

``apply(held, digest, cell)`` is the whole rule of the contract's first clause:

- a crime not held yet is counted in the event's cell (``NEW``);
- a redelivered event (its partition offset is not after the offset that last wrote this
  crime's state) or a re-sent copy (an event id already seen for this crime) changes nothing
  (``DUPLICATE``);
- an event whose outcome date is older than the held one changes no count but is remembered,
  so its own redelivery is a duplicate (``SUPERSEDED``);
- an event whose outcome date is equal or newer replaces the held one: the crime's count moves
  from the old cell to the new (``MOVED``), or stays if the cell is the same (``REPLACED``).

Because every transition is decided from the held state alone, and the state remembers the
offset that wrote it, re-applying any suffix of a partition's events to the state they
produced gives the same state: this is what makes the worker exact under redelivery without
Kafka transactions. Re-sent copies are recognised by event id among the last ``KEEP_SEEN``
events of the crime.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import NamedTuple

from streams.core.classify import Cell

#: how many event digests a crime remembers (a crime has a handful of outcomes)
KEEP_SEEN = 32


class Change(StrEnum):
    NEW = "new"
    MOVED = "moved"
    REPLACED = "replaced"
    DUPLICATE = "duplicate"
    SUPERSEDED = "superseded"


class Held(NamedTuple):
    """What the worker keeps per crime: the cell of its latest outcome, and the events seen."""

    cell: Cell
    #: 64-bit digests of the last KEEP_SEEN event ids applied (see ``event_digest``)
    seen: tuple[int, ...]
    #: partition offset of the last event applied to this crime (-1: unknown)
    offset: int = -1


class Applied(NamedTuple):
    """Result of applying one event: the state to store (None: store nothing) and count moves.

    Named tuples (here and ``Held``): one of each is made per event."""

    cell: Cell  # the event's own cell
    state: Held | None
    change: Change
    removed: Cell | None = None
    added: Cell | None = None


def event_digest(event_id: str) -> int:
    """Short stable digest of an event id (64 bits: collisions within one crime are negligible)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")


def apply(
    held: Held | None, digest: int, cell: Cell, *, offset: int = -1, keep_seen: int = KEEP_SEEN
) -> Applied:
    """Apply an event (its ``digest``, ``cell`` and partition ``offset``) to a crime's state."""
    if held is None:
        return Applied(cell, Held(cell, (digest,), offset), Change.NEW, added=cell)
    if digest in held.seen or (offset >= 0 and offset <= held.offset):
        return Applied(cell, None, Change.DUPLICATE)
    seen = (*held.seen, digest)[-keep_seen:]
    if cell.day < held.cell.day:
        return Applied(cell, Held(held.cell, seen, offset), Change.SUPERSEDED)
    if cell == held.cell:
        return Applied(cell, Held(cell, seen, offset), Change.REPLACED)
    return Applied(cell, Held(cell, seen, offset), Change.MOVED, removed=held.cell, added=cell)
