"""Counters per force x category x disposal class x outcome day (x domestic-abuse flag).

``DayCounts`` holds one partition's counts, derived from the crimes that partition holds, with
its stream clock (the newest outcome day it holds). Queries select a day range and group by
any subset of the dimensions; ``merge_rows`` adds up the partial results of several
partitions or workers. Plain Python: no Kafka, no Faust.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Protocol

from streams.core.classify import Cell
from streams.core.query import Row

#: crimes kept per cell, as evidence for alerts
REFS_PER_CELL = 10


class CountSink(Protocol):
    """Told of every change of the counts (``alerts.aggregates.RuleAggregates``)."""

    def move(self, cell: tuple[str, str, str, dt.date, bool], delta: int) -> None: ...


class DayCounts:
    """Crime counts per cell for one partition, and its stream clock.

    A ``sink``, when given, is told of every crime that enters or leaves a cell (including cells
    pruned past the retention horizon), so what it derives always equals the counts held."""

    __slots__ = ("_cells", "_refs", "_ref_cells", "_sink", "newest", "floor", "total")

    def __init__(self, sink: CountSink | None = None) -> None:
        self._cells: dict[Cell, int] = defaultdict(int)
        #: up to REFS_PER_CELL keys of crimes counted in each cell (alert evidence). Crime keys
        #: never leave the process: whoever sends them out pseudonymises them first.
        self._refs: dict[Cell, list[str]] = {}
        #: (force, category) -> the cells holding evidence, so one alert's is found directly
        self._ref_cells: dict[tuple[str, str], set[Cell]] = {}
        self._sink = sink
        #: newest outcome day held (the stream clock of this partition), None when empty
        self.newest: dt.date | None = None
        #: cells before this day have been pruned: moves out of them are not counted down
        self.floor: dt.date | None = None
        #: crimes counted (the sum of every cell)
        self.total = 0

    def __len__(self) -> int:
        return len(self._cells)

    def add(self, cell: Cell, ref: str | None = None) -> None:
        if self.floor is not None and cell.day < self.floor:
            return
        self._cells[cell] += 1
        self.total += 1
        if self._sink is not None:
            self._sink.move(cell, 1)
        if ref is not None:
            refs = self._refs.get(cell)
            if refs is None:
                refs = self._refs[cell] = []
                self._ref_cells.setdefault((cell.force, cell.category), set()).add(cell)
            if len(refs) < REFS_PER_CELL:
                refs.append(ref)
        if self.newest is None or cell.day > self.newest:
            self.newest = cell.day

    def remove(self, cell: Cell, ref: str | None = None) -> None:
        if self.floor is not None and cell.day < self.floor:
            return
        refs = self._refs.get(cell)
        if ref is not None and refs and ref in refs:
            refs.remove(ref)
        n = self._cells.get(cell, 0)
        if n <= 0:  # a bug, not bad input: the counts no longer match the crimes held
            raise RuntimeError(f"count of {cell} would go below zero")
        self.total -= 1
        if self._sink is not None:
            self._sink.move(cell, -1)
        if n == 1:
            del self._cells[cell]
            self._forget_refs(cell)
        else:
            self._cells[cell] = n - 1

    def _forget_refs(self, cell: Cell) -> None:
        if self._refs.pop(cell, None) is not None:
            fc = (cell.force, cell.category)
            held = self._ref_cells.get(fc)
            if held is not None:
                held.discard(cell)
                if not held:
                    del self._ref_cells[fc]

    def move(self, removed: Cell | None, added: Cell | None, ref: str | None = None) -> None:
        if removed is not None:
            self.remove(removed, ref)
        if added is not None:
            self.add(added, ref)

    def refs(self, cell: Cell) -> list[str]:
        """Keys of (up to REFS_PER_CELL of) the crimes counted in ``cell``."""
        return list(self._refs.get(cell, ()))

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
        out: list[str] = []
        for cell in sorted(self._ref_cells.get((force, category), ()), key=lambda c: c.day, reverse=True):
            if cell.disposal not in disposals or not first <= cell.day <= last:
                continue
            if domestic_abuse is not None and cell.domestic_abuse != domestic_abuse:
                continue
            out.extend(self._refs[cell])
        return out

    def prune(self, before: dt.date) -> int:
        """Forget cells of days before ``before``; returns how many cells went."""
        old = [c for c in self._cells if c.day < before]
        for c in old:
            n = self._cells.pop(c)
            self.total -= n
            if self._sink is not None:
                self._sink.move(c, -n)
            self._forget_refs(c)
        if self.floor is None or before > self.floor:
            self.floor = before
        return len(old)

    def cells(self) -> Iterable[tuple[Cell, int]]:
        return self._cells.items()

    def rows(
        self, group_by: Sequence[str], first: dt.date | None = None, last: dt.date | None = None
    ) -> dict[Row, int]:
        """Counts grouped by ``group_by`` over days ``first``..``last`` (inclusive, None: open)."""
        out: dict[Row, int] = defaultdict(int)
        key = _row_key(group_by)
        for cell, n in self._cells.items():
            if (first is not None and cell.day < first) or (last is not None and cell.day > last):
                continue
            out[key(cell)] += n
        return dict(out)


def _row_key(group_by: Sequence[str]) -> Callable[[Cell], Row]:
    getters: dict[str, Callable[[Cell], str]] = {
        "force": lambda c: c.force,
        "category": lambda c: c.category,
        "disposal": lambda c: c.disposal,
        "day": lambda c: c.day.isoformat(),
        "domestic_abuse": lambda c: "true" if c.domestic_abuse else "false",
    }
    fs = [getters[d] for d in group_by]
    return lambda c: tuple(f(c) for f in fs)


def merge_rows(parts: Iterable[Mapping[Row, int]]) -> dict[Row, int]:
    """Sum partial results; rows whose count is zero are left out."""
    out: dict[Row, int] = defaultdict(int)
    for part in parts:
        for row, n in part.items():
            out[row] += n
    return {row: n for row, n in out.items() if n}
