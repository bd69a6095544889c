"""A partition's counts, saved in its store with every checkpoint, so that a restart on a kept
store reads them back (O(cells)) instead of deriving them from every crime (O(crimes)).

Deriving a partition's counts reads and decodes every crime its store holds: at national volume
(6.6 million crimes within a 400-day horizon) that took 30 s of a 38 s restart. So the counts
are kept in the store beside the crimes they count (``Store.write``, ``Store.saved_counts``), as
a log (``CountsLog``):

- a **snapshot** (key ``s``): every cell's count and every combo's evidence;
- a **segment** per checkpoint since (key ``l`` + sequence number): the count now of each cell
  that changed (0: gone; ``DayCounts.take_changes``), read back after the snapshot in order, the
  last value winning; and the evidence (up to 10 crimes kept per combo) of the changed combos
  whose evidence as last saved has fallen behind: fewer than ``EVIDENCE_SAVED`` of the crimes
  it names (or all the combo has, if fewer) are still its evidence. Saving every change of
  evidence cost more than the cells (a replay changes nearly every combo's at every
  checkpoint); saving none, a combo whose crimes all came after the snapshot read back with
  none after a SIGKILL, and an alert on it fired with no crime to show (found by
  tests/integration/test_alerts.py). Read back after segments, the evidence is checked against
  the store (a point read per crime kept): a crime is kept only if the store holds it in that
  cell, on a day the counts have not pruned, so evidence is only ever of crimes counted in its
  cell, at least ``EVIDENCE_SAVED`` of those it had at the last checkpoint (or all, if fewer),
  though maybe not the newest until new crimes arrive. A clean stop and a hand-over write a
  snapshot (``Recovery.save``), so a restart after them reads no segment and checks nothing;
- a **head** (in ``meta``): the format, the counts' newest day and floor, the crimes the store
  holds, and the next segment's number.

Each checkpoint's store write (``streams.runtime.checkpoint``) carries its segment and a new
head in the same atomic write as the crimes and positions, so what is saved always counts
exactly the crimes stored: a worker killed at any moment (SIGKILL, a lost machine) restarts
from counts that match its store. A segment costs O(cells changed): its numbers go into arrays
encoded in C, one value per checkpoint (saving each changed combo whole cost a replay of
1,000,000 simulated events 0.7 us an event at its start and 2.5 us at its end, as the combos
filled with days). Once the segments hold twice the cells of the counts (or ``MAX_SEGMENTS``), the
next checkpoint writes a snapshot instead and deletes them (``LOG_OVER_CELLS``): a restart reads
O(cells), and the snapshots cost O(1) a change, amortised.

A write of crimes without counts (a recovery reading the changelog into the store) deletes the
head, and counts without a head are never read: the partition's counts are then derived, once,
and saved as a snapshot (``CountsLog.whole``). A store written by an older version has no head
of this format, so it is derived once too.

Values are ``marshal``led (version 2 of its format: no shared references), which reads them
back at C speed; it is the Python version's own format, so a value it cannot read (another
interpreter) is logged and the counts derived. Combos are numbered in the log (a segment names
the combos new to it), so a cell is three integers.
"""

from __future__ import annotations

import datetime as dt
import logging
import marshal
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from streams import metrics
from streams.codec import held_combo
from streams.core.buckets import Combo, ComboCounts, CountSink, DayCounts

log = logging.getLogger(__name__)

FORMAT = 4
#: marshal's format version written (any is read)
_MARSHAL = 2
SNAPSHOT = b"s"
SEGMENT = b"l"
#: segments at most between two snapshots (a quiet partition's checkpoints change few cells)
MAX_SEGMENTS = 2000
#: a snapshot is written once the segments hold this many times the cells the counts hold: a
#: restart reads at most (1 + this) x cells, and snapshots cost less than a change each
LOG_OVER_CELLS = 2
#: ... and not for fewer cells logged than this (small partitions)
MIN_LOGGED = 20_000
#: a combo's evidence is saved again in a segment once fewer than this many of the crimes its
#: saved evidence names are still its evidence (or all it has, if fewer)
EVIDENCE_SAVED = 3


@dataclass(frozen=True, slots=True)
class CountsWrite:
    """What a store write saves of a partition's counts."""

    #: format, newest day, floor (ordinals or None), crimes the store holds, next segment
    head: bytes
    #: key -> value (None: delete)
    combos: dict[bytes, bytes | None]
    #: the values are every one there is: others saved before are deleted
    whole: bool = False


@dataclass(frozen=True, slots=True)
class SavedCounts:
    """What a store holds of a partition's counts, as written (keys in order)."""

    head: bytes
    combos: Iterator[tuple[bytes, bytes]]


class CountsLog:
    """How one partition's counts are saved: a snapshot, then a segment per checkpoint (see the
    module docstring). One per owned partition, made when the partition is restored."""

    def __init__(
        self,
        cids: dict[Combo, int] | None = None,
        next_seq: int = 0,
        logged: int = 0,
        saved_refs: dict[Combo, dict[str, int]] | None = None,
    ) -> None:
        #: combo -> its number in the log
        self._cids: dict[Combo, int] = cids if cids is not None else {}
        self._next_seq = next_seq
        #: cells written in segments since the snapshot
        self._logged = logged
        #: segments since the snapshot
        self._segments = 0
        #: no snapshot yet: the first write is one
        self._snapshot_due = cids is None
        #: per combo, the evidence last saved that is still its evidence (crime key -> day)
        self._saved_refs: dict[Combo, dict[str, int]] = saved_refs if saved_refs is not None else {}

    def whole(self, counts: DayCounts, store_crimes: int) -> CountsWrite:
        """A snapshot of ``counts`` (and the changes taken): every cell and every evidence."""
        self._logged = self._segments = 0
        self._snapshot_due = False
        combos = counts.combos()
        self._saved_refs = {combo: dict(refs) for combo, (_, refs) in combos.items() if refs}
        value = self._value(combos, every=True)
        metrics.COUNTS_SAVED.inc(len(counts))
        return CountsWrite(self._head(counts, store_crimes), {SNAPSHOT: value}, whole=True)

    def changes(self, counts: DayCounts, store_crimes: int) -> CountsWrite:
        """The segment of the changes since the last write, and the head (``store_crimes``
        after the write); a snapshot instead once the segments outgrow the counts."""
        started = time.perf_counter()
        if (
            self._snapshot_due
            or self._segments >= MAX_SEGMENTS
            or self._logged > max(LOG_OVER_CELLS * len(counts), MIN_LOGGED)
        ):
            out = self.whole(counts, store_crimes)
        else:
            taken = counts.take_changes()
            values: dict[bytes, bytes | None] = {}
            if taken:
                values[SEGMENT + self._next_seq.to_bytes(8, "big")] = self._value(taken, every=False)
                self._next_seq += 1
                self._segments += 1
                cells = sum(len(days) for days, _ in taken.values())
                self._logged += cells
                metrics.COUNTS_SAVED.inc(cells)
            out = CountsWrite(self._head(counts, store_crimes), values)
        metrics.COUNTS_SAVE_SECONDS.inc(time.perf_counter() - started)
        return out

    def _value(self, taken: dict[Combo, ComboCounts], *, every: bool) -> bytes:
        """(combos new to the log, or every one: [(number, combo)]; cells as three arrays of
        numbers: combo, day, count; evidence by combo number: every combo's in a snapshot, those
        fallen behind in a segment), marshalled."""
        cids = self._cids
        named: list[tuple[int, Combo]] = []
        of, days_of, counts_of = array("I"), array("I"), array("I")
        refs_by: dict[int, dict[str, int]] = {}
        saved_refs = self._saved_refs
        for combo, (days, refs) in taken.items():
            cid = cids.get(combo)
            if cid is None:
                cid = cids[combo] = len(cids)
                named.append((cid, combo))
            of.extend([cid] * len(days))
            days_of.extend(days.keys())
            counts_of.extend(days.values())
            if not every and refs:
                saved = saved_refs.get(combo)
                still = {k: o for k, o in saved.items() if refs.get(k) == o} if saved else {}
                if len(still) < min(len(refs), EVIDENCE_SAVED):
                    refs_by[cid] = saved_refs[combo] = dict(refs)
                elif saved is not None and len(still) < len(saved):
                    saved_refs[combo] = still
        if every:
            named = [(cid, combo) for combo, cid in cids.items()]
            refs_by = {cids[combo]: refs for combo, (_, refs) in taken.items() if refs}
        return marshal.dumps((named, of.tobytes(), days_of.tobytes(), counts_of.tobytes(), refs_by), _MARSHAL)

    def _head(self, counts: DayCounts, store_crimes: int) -> bytes:
        newest = counts.newest.toordinal() if counts.newest is not None else None
        floor = counts.floor.toordinal() if counts.floor is not None else None
        return marshal.dumps((FORMAT, newest, floor, store_crimes, self._next_seq), _MARSHAL)


@dataclass(frozen=True, slots=True)
class Loaded:
    """Counts read back, the crimes the store holds, and the log to go on writing."""

    counts: DayCounts
    store_crimes: int
    log: CountsLog


def load(
    saved: SavedCounts, sink: CountSink | None, partition: int, stored: Callable[[bytes], bytes | None]
) -> Loaded | None:
    """The counts saved; None (logged) when they cannot be read: derive them. Evidence is read
    from the snapshot: when segments followed it, only the crimes ``stored`` (the partition's
    store, which the counts describe) holds in the cell they are kept for are kept."""
    try:
        fmt, newest, floor, store_crimes, next_seq = marshal.loads(saved.head)
        if fmt != FORMAT:
            raise ValueError(f"format {fmt}, not {FORMAT}")
        combos, cids, logged = _replay(saved.combos)
    except (ValueError, EOFError, TypeError) as exc:
        log.warning("partition %d: the saved counts cannot be read (%s); deriving them", partition, exc)
        return None
    if logged:  # evidence of crimes counted in its cell only: held there, and not pruned
        lowest = floor if floor is not None else 0
        for combo, (_, refs) in combos.items():
            for key in [
                k for k, o in refs.items() if o < lowest or not _held_in(stored(k.encode()), combo, o)
            ]:
                del refs[key]
    day = dt.date.fromordinal
    counts = DayCounts.load(
        combos.items(),
        day(newest) if newest is not None else None,
        day(floor) if floor is not None else None,
        sink,
    )
    saved_refs = {combo: dict(refs) for combo, (_, refs) in combos.items() if refs}  # as read back
    return Loaded(counts, int(store_crimes), CountsLog(cids, int(next_seq), logged, saved_refs))


def _held_in(state: bytes | None, combo: Combo, o: int) -> bool:
    return state is not None and held_combo(state) == (combo, o)


def _replay(items: Iterable[tuple[bytes, bytes]]) -> tuple[dict[Combo, ComboCounts], dict[Combo, int], int]:
    """The snapshot, then every segment in order: each combo's days and evidence, the combos'
    numbers, and the cells the segments hold."""
    snapshot: bytes | None = None
    segments: list[bytes] = []
    for key, value in items:
        if key == SNAPSHOT:
            snapshot = value
        elif key.startswith(SEGMENT) and len(key) == 9:
            segments.append(value)
        else:
            raise ValueError(f"a saved count's key {key!r} is neither the snapshot nor a segment")
    if snapshot is None:
        raise ValueError("no snapshot")
    combo_of: dict[int, Combo] = {}
    state: dict[int, ComboCounts] = {}
    _apply(snapshot, combo_of, state)
    logged = sum(_apply(value, combo_of, state) for value in segments)
    combos = {combo_of[cid]: st for cid, st in state.items() if st[0] or st[1]}
    return combos, {combo: cid for cid, combo in combo_of.items()}, logged


def _apply(value: bytes, combo_of: dict[int, Combo], state: dict[int, ComboCounts]) -> int:
    """Apply one snapshot or segment; returns the cells it holds."""
    named, of_b, days_b, counts_b, refs_by = marshal.loads(value)
    for cid, combo in named:
        force, category, disposal, flag = combo
        combo_of[cid] = (str(force), str(category), str(disposal), bool(flag))
    of, days, counts = array("I"), array("I"), array("I")
    of.frombytes(of_b)
    days.frombytes(days_b)
    counts.frombytes(counts_b)
    if not len(of) == len(days) == len(counts):
        raise ValueError("a saved segment's arrays differ in length")
    for cid, o, n in zip(of, days, counts, strict=True):
        st = state.get(cid)
        if st is None:
            if cid not in combo_of:
                raise ValueError(f"a saved cell names combo {cid}, which the log never named")
            st = state[cid] = ({}, {})
        if n:
            st[0][o] = n
        else:
            st[0].pop(o, None)
    for cid, refs in refs_by.items():
        if cid not in combo_of or not isinstance(refs, dict):
            raise ValueError(f"saved evidence of combo {cid} is not readable")
        st = state.get(cid)
        if st is None:
            st = state[cid] = ({}, {})
        state[cid] = (st[0], dict(refs))
    return len(of)
