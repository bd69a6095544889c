"""A partition's counts, saved in its store with every checkpoint, so that a restart on a kept
store reads them back (O(cells)) instead of deriving them from every crime (O(crimes)).

Deriving a partition's counts reads and decodes every crime its store holds: at national volume
(6.6 million crimes within a 400-day horizon) that took 30 s of a 38 s restart. So the counts
are kept in the store beside the crimes they count (``Store.write``, ``Store.saved_counts``):

- one value per combo (force, category, class, flag): its crimes per day and its evidence
  (``DayCounts.take_changes``), marshalled;
- a **head**: the format, the counts' newest day and floor, and the crimes the store holds.

Each checkpoint's store write (``streams.runtime.checkpoint``) carries the combos changed since
the last one and a new head, in the same atomic write as the crimes and positions, so what is
saved always counts exactly the crimes stored: the work is O(changes), and a worker killed at
any moment (SIGKILL, a lost machine) restarts from counts that match its store. A write of
crimes without counts (a recovery reading the changelog into the store) deletes the head, and
counts without a head are never read: the partition's counts are then derived, once, and saved
whole (``whole``). A store written by an older version has no head, so it is derived once too.

``marshal`` reads back dictionaries of numbers and strings at C speed; it is the Python
version's own format, so a value it cannot read (another interpreter) is logged and the counts
derived. Version 2 of its format is written: it shares no references, and takes two thirds of
the time of the default for these small values (a checkpoint encodes thousands). Combo keys are
JSON, which (unlike marshal) gives the same bytes for the same combo, made once per combo.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import marshal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from streams import metrics
from streams.core.buckets import Combo, ComboCounts, CountSink, DayCounts

log = logging.getLogger(__name__)

FORMAT = 2
#: marshal's format version written (any is read)
_MARSHAL = 2


@dataclass(frozen=True, slots=True)
class CountsWrite:
    """What a store write saves of a partition's counts."""

    #: format, newest day, floor (ordinals or None) and the crimes the store holds, marshalled
    head: bytes
    #: combo key -> its counts marshalled, or None: the combo holds nothing now
    combos: dict[bytes, bytes | None]
    #: the combos are every one there is: others saved before are deleted
    whole: bool = False


@dataclass(frozen=True, slots=True)
class SavedCounts:
    """What a store holds of a partition's counts, as written."""

    head: bytes
    combos: Iterator[tuple[bytes, bytes]]


#: combo -> its key: made once (a few thousand combos at most, saved many times)
_KEYS: dict[Combo, bytes] = {}


def combo_key(combo: Combo) -> bytes:
    key = _KEYS.get(combo)
    if key is None:
        key = _KEYS[combo] = json.dumps(combo, separators=(",", ":")).encode()
    return key


def _head(counts: DayCounts, store_crimes: int) -> bytes:
    newest = counts.newest.toordinal() if counts.newest is not None else None
    floor = counts.floor.toordinal() if counts.floor is not None else None
    return marshal.dumps((FORMAT, newest, floor, store_crimes), _MARSHAL)


def changes(counts: DayCounts, store_crimes: int) -> CountsWrite:
    """The combos changed since the last save, and the head (``store_crimes`` after the write)."""
    started = time.perf_counter()
    combos = {
        combo_key(combo): None if value is None else marshal.dumps(value, _MARSHAL)
        for combo, value in counts.take_changes().items()
    }
    metrics.COUNTS_SAVE_SECONDS.inc(time.perf_counter() - started)
    metrics.COUNTS_SAVED.inc(len(combos))
    return CountsWrite(_head(counts, store_crimes), combos)


def whole(counts: DayCounts, store_crimes: int) -> CountsWrite:
    """Every combo and the head: counts just derived."""
    combos: dict[bytes, bytes | None] = {
        combo_key(combo): marshal.dumps(value, _MARSHAL) for combo, value in counts.combos().items()
    }
    return CountsWrite(_head(counts, store_crimes), combos, whole=True)


def load(saved: SavedCounts, sink: CountSink | None, partition: int) -> tuple[DayCounts, int] | None:
    """The counts and store size saved; None (logged) when they cannot be read: derive them."""
    try:
        fmt, newest, floor, store_crimes = marshal.loads(saved.head)
        if fmt != FORMAT:
            raise ValueError(f"format {fmt}, not {FORMAT}")
        combos = list(_combos(saved.combos))
    except (ValueError, EOFError, TypeError) as exc:
        log.warning("partition %d: the saved counts cannot be read (%s); deriving them", partition, exc)
        return None
    day = dt.date.fromordinal
    counts = DayCounts.load(
        combos, day(newest) if newest is not None else None, day(floor) if floor is not None else None, sink
    )
    return counts, int(store_crimes)


def _combos(items: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[Combo, ComboCounts]]:
    for key, value in items:
        force, category, disposal, flag = json.loads(key)
        days, refs = marshal.loads(value)
        if not (isinstance(days, dict) and isinstance(refs, dict) and isinstance(flag, bool)):
            raise TypeError(f"a saved combo {key!r} is not (days, evidence)")
        yield (force, category, disposal, flag), (days, refs)
