"""Latest outcome per crime: the transition table, and properties over random event orders."""

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.buckets import DayCounts
from streams.core.classify import Cell
from streams.core.crimes import Change, Held, apply, event_digest

D1, D2 = dt.date(2025, 1, 1), dt.date(2025, 2, 1)


def cell(disposal: str, day: dt.date = D1) -> Cell:
    return Cell("kent", "stalking", disposal, day, False)


def test_new_crime_is_counted() -> None:
    a = apply(None, 1, cell("charge"))
    assert a.change is Change.NEW and a.added == cell("charge") and a.removed is None
    assert a.state == Held(cell("charge"), (1,), -1)


def test_newer_outcome_moves_the_count() -> None:
    held = Held(cell("pending"), (1,))
    a = apply(held, 2, cell("community-resolution", D2))
    assert a.change is Change.MOVED
    assert (a.removed, a.added) == (cell("pending"), cell("community-resolution", D2))


def test_equal_date_replaces() -> None:
    a = apply(Held(cell("pending"), (1,)), 2, cell("caution"))
    assert a.change is Change.MOVED and a.added == cell("caution")


def test_same_cell_replaces_without_moving() -> None:
    a = apply(Held(cell("caution"), (1,)), 2, cell("caution"))
    assert a.change is Change.REPLACED and a.added is None and a.removed is None
    assert a.state is not None and a.state.seen == (1, 2)


def test_older_outcome_is_superseded_but_remembered() -> None:
    held = Held(cell("charge", D2), (1,))
    a = apply(held, 2, cell("caution", D1))
    assert a.change is Change.SUPERSEDED and a.added is None and a.removed is None
    assert a.state == Held(cell("charge", D2), (1, 2))


def test_seen_event_is_a_duplicate_and_writes_nothing() -> None:
    a = apply(Held(cell("charge", D2), (1, 2)), 1, cell("pending", D2))
    assert a.change is Change.DUPLICATE and a.state is None


def test_redelivered_offset_is_a_duplicate_even_if_its_id_was_forgotten() -> None:
    held = Held(cell("charge", D2), (2,), offset=10)
    assert apply(held, 1, cell("pending", D2), offset=7).change is Change.DUPLICATE
    assert apply(held, 1, cell("pending", D2), offset=10).change is Change.DUPLICATE
    assert apply(held, 1, cell("pending", D2), offset=11).change is Change.MOVED


def test_seen_list_is_bounded() -> None:
    held = Held(cell("charge"), tuple(event_digest(str(i)) for i in range(32)))
    a = apply(held, event_digest("new"), cell("charge"), keep_seen=32)
    assert a.state is not None and len(a.state.seen) == 32 and a.state.seen[-1] == event_digest("new")


def test_digest_is_stable_and_short() -> None:
    assert event_digest("x") == event_digest("x") != event_digest("y")
    assert 0 <= event_digest("x") < 2**64


# --- properties ---------------------------------------------------------------------------

DISPOSALS = ["charge", "caution", "community-resolution", "pending", "no-further-action"]
# an event: (event id, crime, disposal, day offset)
events_st = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 6), st.sampled_from(DISPOSALS), st.integers(0, 20)),
    max_size=60,
)


def run(events: list[tuple[int, int, str, int]]) -> tuple[dict[int, Held], DayCounts]:
    store: dict[int, Held] = {}
    counts = DayCounts()
    for offset, (eid, crime, disposal, off) in enumerate(events):
        c = cell(disposal, D1 + dt.timedelta(days=off))
        a = apply(store.get(crime), event_digest(f"{crime}-{eid}"), c, offset=offset)
        counts.move(a.removed, a.added)
        if a.state is not None:
            store[crime] = a.state
    return store, counts


def oracle(events: list[tuple[int, int, str, int]]) -> dict[Cell, int]:
    """Independent: each crime counts once, in the class of its latest-dated outcome; among
    equal dates the last to arrive wins; a repeated event id is ignored."""
    latest: dict[int, tuple[int, str]] = {}
    seen: set[tuple[int, int]] = set()
    for eid, crime, disposal, off in events:
        if (crime, eid) in seen:
            continue
        seen.add((crime, eid))
        if crime not in latest or off >= latest[crime][0]:
            latest[crime] = (off, disposal)
    out: dict[Cell, int] = {}
    for off, disposal in latest.values():
        c = cell(disposal, D1 + dt.timedelta(days=off))
        out[c] = out.get(c, 0) + 1
    return out


@settings(max_examples=300)
@given(events_st)
def test_each_crime_counted_once_by_latest_outcome(events: list[tuple[int, int, str, int]]) -> None:
    _, counts = run(events)
    assert dict(counts.cells()) == oracle(events)


@settings(max_examples=300)
@given(events_st, st.randoms())
def test_order_does_not_matter_when_dates_differ(events: list[tuple[int, int, str, int]], rnd) -> None:  # type: ignore[no-untyped-def]
    # keep one event per (crime, day) so every crime's outcome dates differ
    by_day = {(crime, off): (crime, d, off) for _, crime, d, off in events}
    unique = [(i, crime, d, off) for i, (crime, d, off) in enumerate(by_day.values())]  # ids unique
    shuffled = unique[:]
    rnd.shuffle(shuffled)
    assert dict(run(unique)[1].cells()) == dict(run(shuffled)[1].cells())


@settings(max_examples=300)
@given(events_st, st.integers(0, 60), st.integers(0, 60))
def test_replaying_a_suffix_after_a_crash_changes_nothing(
    events: list[tuple[int, int, str, int]], crash_at: int, replay_from: int
) -> None:
    """A worker that stored the state of the first `crash_at` events and is then redelivered
    everything from `replay_from` (<= crash_at: the last committed offset) ends where an
    uninterrupted run ends."""
    crash_at = min(crash_at, len(events))
    replay_from = min(replay_from, crash_at)
    store, _ = run(events[:crash_at])
    counts = DayCounts()
    for h in store.values():
        counts.add(h.cell)
    for offset, (eid, crime, disposal, off) in enumerate(events[replay_from:], start=replay_from):
        c = cell(disposal, D1 + dt.timedelta(days=off))
        a = apply(store.get(crime), event_digest(f"{crime}-{eid}"), c, offset=offset)
        counts.move(a.removed, a.added)
        if a.state is not None:
            store[crime] = a.state
    assert dict(counts.cells()) == dict(run(events)[1].cells())


@settings(max_examples=200)
@given(events_st)
def test_producing_everything_twice_changes_nothing(
    events: list[tuple[int, int, str, int]],
) -> None:
    """Copies are recognised by event id among a crime's last KEEP_SEEN events."""
    per_crime: dict[int, int] = {}
    for _, crime, _, _ in events:
        per_crime[crime] = per_crime.get(crime, 0) + 1
    if max(per_crime.values(), default=0) > 32:
        return
    assert dict(run(events + events)[1].cells()) == dict(run(events)[1].cells())


@given(events_st)
def test_inputs_are_not_mutated(events: list[tuple[int, int, str, int]]) -> None:
    held = Held(cell("charge"), (24,))
    before = (held.cell, held.seen)
    apply(held, 25, cell("caution", D2))
    assert (held.cell, held.seen) == before
