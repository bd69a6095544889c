import datetime as dt
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.buckets import REFS_PER_COMBO, Combo, ComboCounts, DayCounts, merge_rows
from streams.core.classify import Cell
from streams.core.query import parse_group_by, window_days
from streams.errors import InvariantError

D = dt.date(2025, 3, 31)


@pytest.mark.parametrize(
    ("window", "at", "first", "last"),
    [
        ("1d", D, D, D),
        ("28d", D, dt.date(2025, 3, 4), D),
        ("91d", D, dt.date(2024, 12, 31), D),
        ("all", D, dt.date(2024, 2, 25), D),  # keep_days=400
    ],
)
def test_window_days(window: str, at: dt.date, first: dt.date, last: dt.date) -> None:
    assert window_days(window, at=at, keep_days=400) == (first, last)


@pytest.mark.parametrize("bad", ["0d", "-3d", "d", "28", "week", "2.5d"])
def test_bad_windows(bad: str) -> None:
    with pytest.raises(ValueError, match="window must be"):
        window_days(bad, at=D, keep_days=400)


def test_group_by() -> None:
    assert parse_group_by("force, category") == ("force", "category")
    with pytest.raises(ValueError, match="cannot group by crime_ref"):
        parse_group_by("force,crime_ref")
    with pytest.raises(ValueError, match="repeats"):
        parse_group_by("force,force")


def c(force: str = "kent", disposal: str = "caution", day: int = 0, da: bool = False) -> Cell:
    return Cell(force, "stalking", disposal, D - dt.timedelta(days=day), da)


def test_rows_group_and_filter_by_day() -> None:
    counts = DayCounts()
    for cell in [c(), c(), c(day=5), c(force="essex"), c(disposal="charge", da=True)]:
        counts.add(cell)
    assert counts.rows(("force",)) == {("kent",): 4, ("essex",): 1}
    assert counts.rows(("force",), first=D - dt.timedelta(days=1)) == {("kent",): 3, ("essex",): 1}
    assert counts.rows(("disposal", "domestic_abuse")) == {
        ("caution", "false"): 4,
        ("charge", "true"): 1,
    }
    assert counts.rows(()) == {(): 5}
    assert counts.rows(("disposal",), force="essex") == {("caution",): 1}  # one force's page
    assert counts.rows(("force",), force="kent", first=D) == {("kent",): 3}
    assert counts.newest == D


def test_remove_below_zero_is_a_bug() -> None:
    with pytest.raises(InvariantError):
        DayCounts().remove(c())


def test_prune_forgets_old_days_and_ignores_moves_out_of_them() -> None:
    counts = DayCounts()
    counts.add(c(day=10))
    counts.add(c(day=1))
    assert counts.prune(D - dt.timedelta(days=5)) == 1
    counts.move(c(day=10), c(day=0))  # the crime moved out of a pruned day: no underflow
    assert counts.rows(("day",)) == {
        ((D - dt.timedelta(days=1)).isoformat(),): 1,
        (D.isoformat(),): 1,
    }


rows_st = st.dictionaries(
    st.tuples(st.sampled_from("abc"), st.sampled_from("xy")), st.integers(1, 9), max_size=6
)


@given(rows_st, rows_st, rows_st)
def test_merge_is_commutative_and_associative(a, b, d) -> None:  # type: ignore[no-untyped-def]
    assert merge_rows([a, b]) == merge_rows([b, a])
    assert merge_rows([merge_rows([a, b]), d]) == merge_rows([a, merge_rows([b, d])])
    before = dict(a)
    merge_rows([a, b])
    assert a == before


def test_crime_keys_follow_their_crimes_and_the_newest_are_kept() -> None:
    counts = DayCounts()
    for i in range(12):
        counts.add(c(), ref=f"r{i}")
    # ten per force x category x class x flag: the ones kept longest make way
    assert counts.refs(c()) == [f"r{i}" for i in range(2, 12)]
    counts.add(c(day=3), ref="older")  # of an earlier day than all kept: not kept
    assert counts.refs(c(day=3)) == []
    counts.move(c(), c(disposal="charge"), ref="r3")
    assert "r3" not in counts.refs(c()) and counts.refs(c(disposal="charge")) == ["r3"]
    counts.add(c(day=3), ref="older")  # room again
    assert counts.refs(c(day=3)) == ["older"]
    counts.remove(c(day=3))  # the cell's last crime leaves: its keys go, even unnamed
    counts.remove(c(day=3))
    assert counts.refs(c(day=3)) == [] and len(counts.refs(c())) == 9
    counts.prune(D + dt.timedelta(days=1))
    assert counts.refs(c()) == [] and counts.refs(c(disposal="charge")) == []


def test_combos_load_back_with_evidence_clock_and_floor_and_tell_the_sink() -> None:
    from alerts.aggregates import RuleAggregates
    from alerts.rules import load_rules
    from streams.resources import DEFAULT_RULES

    rules = load_rules(DEFAULT_RULES)
    live = RuleAggregates(rules)
    counts = DayCounts(live)
    for i, cell in enumerate(
        [c(), c(), c(day=5), c(force="essex"), c(disposal="charge", da=True), c(day=30)]
    ):
        counts.add(cell, ref=f"k{i}")
    counts.prune(D - dt.timedelta(days=20))
    loaded_into = RuleAggregates(rules)
    again = DayCounts.load(counts.combos().items(), counts.newest, counts.floor, loaded_into)
    assert sorted(again.cells()) == sorted(counts.cells())
    assert (again.total, len(again), again.newest, again.floor) == (5, 4, D, D - dt.timedelta(days=20))
    assert again.refs(c()) == ["k0", "k1"] and again.refs(c(force="essex")) == ["k3"]
    assert loaded_into.totals(D) == live.totals(D)
    again.add(c(day=1), ref="new")  # the loaded counts go on as any
    again.remove(c(), ref="k0")
    assert again.rows(("day",)) == {(D.isoformat(),): 3, ((D - dt.timedelta(days=1)).isoformat(),): 1,
                                    ((D - dt.timedelta(days=5)).isoformat(),): 1}  # fmt: skip
    again.forget()
    assert all(
        not t.numerator and not t.denominator for r in loaded_into.totals(D).values() for t in r.values()
    )


def test_evidence_for_one_alert_is_found_without_scanning_every_cell() -> None:
    c = DayCounts()
    c.add(Cell("kent", "stalking", "caution", D, False), "kent/1")
    c.add(Cell("kent", "stalking", "caution", D - dt.timedelta(days=1), True), "kent/2")
    c.add(Cell("kent", "stalking", "charge", D, False), "kent/3")
    c.add(Cell("essex", "stalking", "caution", D, False), "essex/1")
    c.add(Cell("kent", "stalking", "caution", D - dt.timedelta(days=40), False), "kent/old")
    first = D - dt.timedelta(days=27)
    assert c.refs_matching("kent", "stalking", ("caution",), first, D, None) == ["kent/1", "kent/2"]
    assert c.refs_matching("kent", "stalking", ("caution",), first, D, True) == ["kent/2"]
    c.remove(Cell("kent", "stalking", "caution", D, False), "kent/1")
    assert c.refs_matching("kent", "stalking", ("caution",), first, D, None) == ["kent/2"]
    c.prune(D)
    assert c.refs_matching("kent", "stalking", ("caution", "charge"), first, D, None) == ["kent/3"]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 11),  # crime
            st.sampled_from(["kent", "essex"]),
            st.sampled_from(["caution", "charge"]),
            st.integers(1, 4),  # day
            st.booleans(),  # prune after
        ),
        max_size=80,
    )
)
def test_evidence_is_only_ever_of_crimes_counted_in_its_cell(
    moves: list[tuple[int, str, str, int, bool]],
) -> None:
    """Crimes move between cells as their outcomes change, and days are pruned: every crime kept
    as evidence is counted in the cell it is kept for, and every combo with evidence is indexed
    (a cell's last crime leaving takes its evidence along without a scan)."""
    counts = DayCounts()
    where: dict[str, Cell] = {}
    for crime, force, disposal, day, prune in moves:
        key, cell = f"k{crime}", c(force=force, disposal=disposal, day=day)
        counts.move(where.get(key), cell, key)  # a move out of a pruned day is not counted down
        where[key] = cell
        if prune:
            counts.prune(D - dt.timedelta(days=day))
        where = {k: v for k, v in where.items() if counts.floor is None or v.day >= counts.floor}
        held = {(cell, k) for k, cell in where.items()}
        for cell in set(where.values()):
            for ref in counts.refs(cell):
                assert (cell, ref) in held
        for force_ in ("kent", "essex"):
            found = counts.refs_matching(
                force_, "stalking", ("caution", "charge"), dt.date.min, dt.date.max, None
            )
            assert all(where[k].force == force_ for k in found)
            assert len(found) == len(set(found))


@given(
    st.lists(
        st.tuples(
            st.integers(0, 24),  # crime: more than a combo keeps as evidence
            st.sampled_from(["kent", "essex"]),
            st.sampled_from(["caution", "charge"]),
            st.integers(1, 4),  # day: cells of several crimes
            st.sampled_from(["move", "move", "move", "leave", "prune", "take"]),
        ),
        min_size=10,
        max_size=200,
    )
)
@settings(max_examples=300)
def test_the_changes_taken_rebuild_the_counts_exactly(moves: list[tuple[int, str, str, int, str]]) -> None:
    """What each checkpoint saves (``take_changes``: the days that changed, and the evidence),
    applied in turn, is at every point the counts as they are: cells, evidence and total."""
    counts = DayCounts()
    saved: dict[Combo, ComboCounts] = {}
    where: dict[str, Cell] = {}

    def save() -> None:
        for combo, (days, refs) in counts.take_changes().items():
            kept_days, _ = saved.setdefault(combo, ({}, {}))
            for o, n in days.items():  # the days that changed only
                if n:
                    kept_days[o] = n
                else:
                    kept_days.pop(o, None)
            saved[combo] = (kept_days, dict(refs))  # copied, as the store's bytes are
            if not kept_days and not refs:
                del saved[combo]

    for crime, force, disposal, day, what in moves:
        key, cell = f"k{crime}", c(force=force, disposal=disposal, day=day)
        if what == "move":
            counts.move(where.get(key), cell, key)
            where[key] = cell
        elif what == "leave" and key in where:
            counts.remove(where.pop(key), key)
        elif what == "prune":
            counts.prune(D - dt.timedelta(days=day))
        else:
            save()
        where = {k: v for k, v in where.items() if counts.floor is None or v.day >= counts.floor}
    save()
    assert not counts.changed
    again = DayCounts.load(saved.items(), counts.newest, counts.floor)
    assert sorted(again.cells()) == sorted(counts.cells()) and again.total == counts.total
    assert saved == {k: v for k, v in counts.combos().items()}
    for cell in {*where.values()}:
        assert sorted(again.refs(cell)) == sorted(counts.refs(cell))


def test_a_pruned_day_without_evidence_still_changes_its_combo() -> None:
    """A full combo keeps its newest crimes as evidence: pruning a day none of them is on changes
    the combo's counts, not its evidence, and the change is taken all the same."""
    counts = DayCounts()
    counts.add(c(day=9), "old")
    for i in range(REFS_PER_COMBO):
        counts.add(c(day=1), f"new{i}")
    assert counts.refs(c(day=9)) == []  # evicted by the newer ones
    counts.take_changes()
    counts.prune(D - dt.timedelta(days=5))
    new = {f"new{i}": (D - dt.timedelta(days=1)).toordinal() for i in range(REFS_PER_COMBO)}
    gone = (D - dt.timedelta(days=9)).toordinal()
    assert counts.take_changes() == {("kent", "stalking", "caution", False): ({gone: 0}, new)}


DIMS = ("force", "category", "disposal", "day", "domestic_abuse")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["kent", "essex", "surrey"]),
            st.sampled_from(["stalking", "harassment"]),
            st.sampled_from(["caution", "charge"]),
            st.integers(0, 9),
            st.booleans(),
        ),
        max_size=60,
    ),
    st.permutations(DIMS).flatmap(lambda dims: st.integers(0, 5).map(lambda k: tuple(dims[:k]))),
    st.one_of(st.none(), st.integers(0, 9)),
    st.one_of(st.none(), st.integers(0, 9)),
    st.one_of(st.none(), st.sampled_from(["kent", "essex", "wales"])),
)
def test_rows_are_the_cells_grouped_whatever_the_dimensions_window_or_force(
    cells: list[tuple[str, str, str, int, bool]],
    group_by: tuple[str, ...],
    first: int | None,
    last: int | None,
    force: str | None,
) -> None:
    counts = DayCounts()
    for f, cat, disposal, day, da in cells:
        counts.add(Cell(f, cat, disposal, D - dt.timedelta(days=day), da))
    lo = D - dt.timedelta(days=first) if first is not None else None
    hi = D - dt.timedelta(days=last) if last is not None else None
    want: dict[tuple[str, ...], int] = {}
    for cell, n in counts.cells():
        if (lo and cell.day < lo) or (hi and cell.day > hi) or (force and cell.force != force):
            continue
        values = {
            "force": cell.force,
            "category": cell.category,
            "disposal": cell.disposal,
            "day": cell.day.isoformat(),
            "domestic_abuse": "true" if cell.domestic_abuse else "false",
        }
        row = tuple(values[d] for d in group_by)
        want[row] = want.get(row, 0) + n
    assert counts.rows(group_by, lo, hi, force) == want


def test_the_sink_is_told_only_of_moves_in_combos_it_hears_and_asked_once_per_combo() -> None:
    class Sink:
        def __init__(self) -> None:
            self.asked: list[Combo] = []
            self.moves: list[tuple[tuple[str, str, str, dt.date, bool], int]] = []

        def hears(self, combo: Combo) -> bool:
            self.asked.append(combo)
            return combo[0] == "kent"

        def move(self, cell: tuple[str, str, str, dt.date, bool], delta: int) -> None:
            self.moves.append((cell, delta))

        def move_days(self, combo: Combo, days: Mapping[int, int], sign: int) -> None:
            pass

    sink = Sink()
    counts = DayCounts(sink)
    for cell in [c(), c(), c(force="essex"), c(force="essex", day=3)]:
        counts.add(cell)
    counts.move(c(), c(force="essex"))
    assert sink.moves == [(c(), 1), (c(), 1), (c(), -1)]
    assert sink.asked == [("kent", "stalking", "caution", False), ("essex", "stalking", "caution", False)]
