"""Counters per force x category x disposal class x outcome day (x domestic-abuse flag).

``DayCounts`` holds one partition's counts, derived from the crimes that partition holds, with
its stream clock (the newest outcome day it holds). Queries select a day range and group by
any subset of the dimensions; ``merge_rows`` adds up the partial results of several
partitions or workers. Plain Python: no Kafka, no Faust.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Protocol, cast

from streams.core.classify import Cell
from streams.core.query import Row
from streams.errors import InvariantError

#: a cell without its day: force, category, disposal class, domestic-abuse flag
Combo = tuple[str, str, str, bool]

#: crimes kept per force x category x disposal class x flag, as evidence for alerts (the newest
#: by outcome day, as they arrive)
REFS_PER_COMBO = 10

#: one combo's counts as plain values (``streams.runtime.saved_counts`` writes them with each
#: checkpoint): crimes per day ordinal, and the evidence kept (crime key -> day ordinal)
ComboCounts = tuple[dict[int, int], dict[str, int]]


class CountSink(Protocol):
    """Told of every change of the counts (``alerts.aggregates.RuleAggregates``)."""

    def move(self, cell: tuple[str, str, str, dt.date, bool], delta: int) -> None: ...

    def hears(self, combo: Combo) -> bool:
        """Whether moves in the cells of ``combo`` matter to the sink (asked once per combo:
        those that do not are never told, which spares a call per crime moved)."""
        ...

    def move_days(self, combo: Combo, days: Mapping[int, int], sign: int) -> None:
        """``sign`` x n crimes entered every day (ordinal) -> n of ``days`` in the cells of
        ``combo`` (a partition's counts, all at once)."""
        ...


class DayCounts:
    """Crime counts per cell for one partition, and its stream clock.

    Kept per combo (force, category, class, flag), then per day ordinal: a few thousand combos
    hold every cell, so the counts of millions of crimes take megabytes, are saved and loaded
    whole in milliseconds (``combos``, ``load``), and are pruned a day at a time. The cells and
    evidence changed since they were last taken (``take_changes``) are tracked, so that each
    checkpoint saves only those. A ``sink``, when given, is told of every crime that enters or leaves a cell
    (including cells pruned past the retention horizon), so what it derives always equals the
    counts held."""

    __slots__ = (
        "_days", "_by_day", "_refs", "_ref_combos", "_changed", "_sink", "_hears", "newest", "floor",
        "total", "_n",
    )  # fmt: skip

    def __init__(self, sink: CountSink | None = None) -> None:
        self._days: dict[Combo, dict[int, int]] = {}
        #: day ordinal -> the combos with a cell on that day (pruning reads only the days it drops)
        self._by_day: dict[int, set[Combo]] = {}
        #: up to REFS_PER_COMBO keys of crimes counted in each combo, with their day (alert
        #: evidence). Crime keys never leave the process: whoever sends them out pseudonymises
        #: them first.
        self._refs: dict[Combo, dict[str, int]] = {}
        #: (force, category) -> the combos holding evidence, so one alert's is found directly
        self._ref_combos: dict[tuple[str, str], set[Combo]] = {}
        #: combo -> day (ordinal) -> its count now (0: gone), for the days whose count changed
        #: since ``take_changes`` (or ``combos``); a combo whose evidence alone changed has none
        self._changed: dict[Combo, dict[int, int]] = {}
        self._sink = sink
        #: combo -> whether the sink hears of its moves (``CountSink.hears``)
        self._hears: dict[Combo, bool] = {}
        #: newest outcome day held (the stream clock of this partition), None when empty
        self.newest: dt.date | None = None
        #: cells before this day have been pruned: moves out of them are not counted down
        self.floor: dt.date | None = None
        #: crimes counted (the sum of every cell)
        self.total = 0
        self._n = 0  # cells

    def __len__(self) -> int:
        return self._n

    def add(self, cell: Cell, ref: str | None = None) -> None:
        force, category, disposal, day, domestic_abuse = cell
        if self.floor is not None and day < self.floor:
            return
        combo = (force, category, disposal, domestic_abuse)
        days = self._days.get(combo)
        if days is None:
            days = self._days[combo] = {}
        o = day.toordinal()
        n = days.get(o, 0)
        if not n:
            self._n += 1
            self._on_day(o, combo)
        days[o] = n + 1
        changed = self._changed.get(combo)
        if changed is None:
            self._changed[combo] = {o: n + 1}
        else:
            changed[o] = n + 1
        self.total += 1
        sink = self._sink
        if sink is not None:
            hears = self._hears.get(combo)
            if hears is None:
                hears = self._hears[combo] = sink.hears(combo)
            if hears:
                sink.move(cell, 1)
        if ref is not None:
            refs = self._refs.get(combo)
            if refs is not None and len(refs) < REFS_PER_COMBO:
                refs[ref] = o  # ``_keep``'s commonest case, without its call
            else:
                self._keep(combo, ref, o)
        if self.newest is None or day > self.newest:
            self.newest = day

    def count_all(self, crimes: Iterable[tuple[Combo, int, bytes]]) -> None:
        """Add crimes read from the store, as (combo, day ordinal, key): ``add`` without a date
        made or a sink told per crime (``attach`` tells the sink of them all at once)."""
        if self._sink is not None:
            raise ValueError("count_all before attach")
        newest = self.newest.toordinal() if self.newest is not None else 0
        days_of, refs_of = self._days, self._refs
        cells = total = 0
        for combo, o, key in crimes:
            total += 1
            days = days_of.get(combo)
            if days is None:
                days = days_of[combo] = {}
            n = days.get(o, 0)
            days[o] = n + 1
            if not n:
                cells += 1
                self._on_day(o, combo)
            if _admits(refs_of.get(combo), o):  # before the key is decoded: most are not kept
                self._keep(combo, key.decode(), o)
            if o > newest:
                newest = o
        self.total += total
        self._n += cells
        if newest:
            self.newest = dt.date.fromordinal(newest)

    def attach(self, sink: CountSink) -> None:
        """Tell ``sink`` of every crime counted, and of every change from now on."""
        self._sink = sink
        for combo, days in self._days.items():
            sink.move_days(combo, days, 1)

    def _on_day(self, o: int, combo: Combo) -> None:
        """Index a new cell of ``combo`` by its day."""
        on_day = self._by_day.get(o)
        if on_day is None:
            self._by_day[o] = {combo}
        else:
            on_day.add(combo)

    def _keep(self, combo: Combo, ref: str, o: int) -> None:
        """Keep ``ref`` as evidence for ``combo`` if ``_admits`` it; when full, in place of the
        one kept longest."""
        refs = self._refs.get(combo)
        if not _admits(refs, o):
            return
        if refs is None:
            refs = self._refs[combo] = {}
            self._ref_combos.setdefault((combo[0], combo[1]), set()).add(combo)
        elif len(refs) >= REFS_PER_COMBO:
            del refs[next(iter(refs))]
        refs[ref] = o

    def remove(self, cell: Cell, ref: str | None = None) -> None:
        """A crime (``ref``, when given, if kept as evidence) left ``cell``.

        complex: a step of every crime's move, written out (the change marked, the sink told,
        the cell and the evidence updated) rather than a call per part."""
        force, category, disposal, day, domestic_abuse = cell
        if self.floor is not None and day < self.floor:
            return
        combo = (force, category, disposal, domestic_abuse)
        days = self._days.get(combo)
        o = day.toordinal()
        n = days.get(o, 0) if days is not None else 0
        if days is None or n <= 0:  # a bug, not bad input: the counts no longer match the crimes held
            raise InvariantError(f"count of {cell} would go below zero")
        changed = self._changed.get(combo)
        if changed is None:
            self._changed[combo] = {o: n - 1}
        else:
            changed[o] = n - 1
        self.total -= 1
        sink = self._sink
        if sink is not None:
            hears = self._hears.get(combo)
            if hears is None:
                hears = self._hears[combo] = sink.hears(combo)
            if hears:
                sink.move(cell, -1)
        refs = self._refs.get(combo)
        if n == 1:
            self._drop_cell(combo, days, o)
        else:
            days[o] = n - 1
        if refs is None:
            return
        if ref is not None:
            # evidence is only ever of crimes counted in its cell, so when this was the cell's
            # last crime it is the only one of its day that can be kept: no scan
            if refs.get(ref) == o:
                del refs[ref]
                if not refs:
                    self._unkeep(combo)
        elif n == 1:
            self._forget_refs(combo, refs, lambda d: d == o)

    def _drop_cell(self, combo: Combo, days: dict[int, int], o: int) -> int:
        self._changed.setdefault(combo, {})[o] = 0
        n = days.pop(o)
        if not days:
            del self._days[combo]
        on_day = self._by_day[o]
        on_day.discard(combo)
        if not on_day:
            del self._by_day[o]
        self._n -= 1
        return n

    def _forget_refs(self, combo: Combo, refs: dict[str, int], gone: Callable[[int], bool]) -> None:
        forgotten = [k for k, d in refs.items() if gone(d)]
        if forgotten:
            self._changed.setdefault(combo, {})
        for k in forgotten:
            del refs[k]
        if not refs:
            self._unkeep(combo)

    def _unkeep(self, combo: Combo) -> None:
        """Drop a combination whose evidence is now empty, and its index entry."""
        del self._refs[combo]
        fc = (combo[0], combo[1])
        held = self._ref_combos[fc]
        held.discard(combo)
        if not held:
            del self._ref_combos[fc]

    def move(self, removed: Cell | None, added: Cell | None, ref: str | None = None) -> None:
        if removed is not None:
            self.remove(removed, ref)
        if added is not None:
            self.add(added, ref)

    def refs(self, cell: Cell) -> list[str]:
        """Keys of the crimes kept as evidence in ``cell``."""
        force, category, disposal, day, domestic_abuse = cell
        o = day.toordinal()
        refs = self._refs.get((force, category, disposal, domestic_abuse), {})
        return [k for k, d in refs.items() if d == o]

    def refs_matching(
        self,
        force: str,
        category: str,
        disposals: Collection[str],
        first: dt.date,
        last: dt.date,
        domestic_abuse: bool | None,
    ) -> list[str]:
        """Keys of crimes kept as evidence in the cells of one force and category with one of
        ``disposals``, dated ``first``..``last`` (and flagged so, when ``domestic_abuse`` is set);
        newest day first."""
        lo, hi = first.toordinal(), last.toordinal()
        found: list[tuple[int, str]] = []
        for combo in self._ref_combos.get((force, category), ()):
            if combo[2] not in disposals or (domestic_abuse is not None and combo[3] != domestic_abuse):
                continue
            found += [(d, k) for k, d in self._refs[combo].items() if lo <= d <= hi]
        found.sort(key=lambda dk: -dk[0])
        return [k for _, k in found]

    def prune(self, before: dt.date) -> int:
        """Forget cells of days before ``before``; returns how many cells went."""
        b = before.toordinal()
        gone = 0
        for o in sorted(d for d in self._by_day if d < b):
            day = dt.date.fromordinal(o)
            for combo in list(self._by_day[o]):
                n = self._drop_cell(combo, self._days[combo], o)
                self.total -= n
                if self._sink is not None:
                    self._sink.move((combo[0], combo[1], combo[2], day, combo[3]), -n)
                gone += 1
        if gone:
            for combo, refs in list(self._refs.items()):
                self._forget_refs(combo, refs, lambda d: d < b)
        if self.floor is None or before > self.floor:
            self.floor = before
        return gone

    def cells(self) -> Iterator[tuple[Cell, int]]:
        day = dt.date.fromordinal
        for (force, category, disposal, domestic_abuse), days in self._days.items():
            for o, n in days.items():
                yield Cell(force, category, disposal, day(o), domestic_abuse), n

    def forget(self) -> None:
        """Tell the sink that every crime counted has gone (the partition is no longer ours)."""
        if self._sink is not None:
            for combo, days in self._days.items():
                self._sink.move_days(combo, days, -1)

    @property
    def changed(self) -> bool:
        """Whether a combo changed since the changes were last taken."""
        return bool(self._changed)

    def take_changes(self) -> dict[Combo, ComboCounts]:
        """What changed since the last call (or ``combos``): per combo, the count now of each
        day that changed (0: the cell is gone), kept as the counts moved, and the combo's
        evidence now (empty: none). O(combos changed). The evidence dictionaries are the
        counts' own: encode them before the counts change again."""
        refs_of = self._refs
        out = {combo: (changed, refs_of.get(combo, {})) for combo, changed in self._changed.items()}
        self._changed = {}
        return out

    def combos(self) -> dict[Combo, ComboCounts]:
        """Every combo with its counts and evidence (as ``take_changes``, and taking them)."""
        self._changed = {}
        return {combo: (days, self._refs.get(combo, {})) for combo, days in self._days.items()}

    @classmethod
    def load(
        cls,
        combos: Iterable[tuple[Combo, ComboCounts]],
        newest: dt.date | None,
        floor: dt.date | None,
        sink: CountSink | None = None,
    ) -> DayCounts:
        """Counts as ``combos`` gives them (each combo's days and evidence, as ``combos`` takes
        them), with their clock and floor, the sink told of every cell."""
        counts = cls(sink)
        for combo, (days, refs) in combos:
            if days:
                counts._days[combo] = days
                for o in days:
                    counts._on_day(o, combo)
                counts._n += len(days)
                counts.total += sum(days.values())
                if sink is not None:
                    sink.move_days(combo, days, 1)
            if refs:
                counts._refs[combo] = refs
                counts._ref_combos.setdefault((combo[0], combo[1]), set()).add(combo)
        counts.newest, counts.floor = newest, floor
        return counts

    def rows(
        self,
        group_by: Sequence[str],
        first: dt.date | None = None,
        last: dt.date | None = None,
        force: str | None = None,
    ) -> dict[Row, int]:
        """Counts grouped by ``group_by`` over days ``first``..``last`` (inclusive, None: open),
        of one force only if ``force`` is given.

        complex: the pages' one query, written for speed: each combo's key is made once, and
        its days added up per key in plain dictionaries before any row with a day is made."""
        lo = first.toordinal() if first is not None else 0
        hi = last.toordinal() if last is not None else dt.date.max.toordinal()
        base_of = _base_key(tuple(d for d in group_by if d != "day"))
        days_of: Iterable[tuple[Combo, dict[int, int]]] = self._days.items()
        if force is not None:
            days_of = [(c, d) for c, d in days_of if c[0] == force]
        if "day" not in group_by:
            out: dict[Row, int] = defaultdict(int)
            for combo, days in days_of:
                total = 0
                for o, n in days.items():
                    if lo <= o <= hi:
                        total += n
                if total:
                    out[base_of(combo)] += total
            return dict(out)
        per_base: dict[Row, dict[int, int]] = {}
        for combo, days in days_of:
            base = base_of(combo)
            acc = per_base.get(base)
            if acc is None:
                acc = per_base[base] = {}
            for o, n in days.items():
                if lo <= o <= hi:
                    acc[o] = acc.get(o, 0) + n
        at = list(group_by).index("day")
        rows: dict[Row, int] = {}
        for base, acc in per_base.items():
            head, tail = base[:at], base[at:]
            for o, n in acc.items():
                rows[(*head, _iso(o), *tail)] = n
        return rows


def _admits(refs: Mapping[str, int] | None, o: int) -> bool:
    """Whether a crime of day ``o`` is kept as evidence beside ``refs``: while there is room,
    or in place of the one kept longest unless that one is of a later day."""
    return refs is None or len(refs) < REFS_PER_COMBO or o >= refs[next(iter(refs))]


#: where each dimension but the day is in a combo
_AT = {"force": 0, "category": 1, "disposal": 2, "domestic_abuse": 3}
_FLAG = ("false", "true")


def _base_key(dims: Sequence[str]) -> Callable[[Combo], Row]:
    """A combo's part of a row's key: its values of ``dims`` (no day), the flag as text."""
    at = [_AT[d] for d in dims]
    if 3 in at:
        return lambda c: tuple(_FLAG[c[3]] if i == 3 else cast(str, c[i]) for i in at)
    if len(at) > 1:
        key: Callable[[Combo], Row] = operator.itemgetter(*at)
        return key
    if at:
        i = at[0]
        return lambda c: (cast(str, c[i]),)
    return lambda c: ()


@functools.lru_cache(maxsize=4096)
def _iso(o: int) -> str:
    return dt.date.fromordinal(o).isoformat()


def merge_rows(parts: Iterable[Mapping[Row, int]]) -> dict[Row, int]:
    """Sum partial results; rows whose count is zero are left out."""
    out: dict[Row, int] = defaultdict(int)
    for part in parts:
        for row, n in part.items():
            out[row] += n
    return {row: n for row, n in out.items() if n}
