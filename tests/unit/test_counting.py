from streams.core.counting import pseudonym


def test_pseudonym_is_keyed_stable_and_not_the_reference() -> None:
    a = pseudonym("kent/46/12345/25", b"k" * 16)
    assert a == pseudonym("kent/46/12345/25", b"k" * 16)
    assert a != pseudonym("kent/46/12345/25", b"j" * 16)
    assert a != pseudonym("kent/46/12345/26", b"k" * 16)
    assert len(a) == 16 and "12345" not in a


def test_count_event_moves_the_count_and_its_evidence() -> None:
    import datetime as dt

    from streams.core.buckets import DayCounts
    from streams.core.counting import count_event
    from streams.core.crimes import Change
    from streams.model import OutcomeEvent

    def event(eid: str, disposal: str, day: int) -> OutcomeEvent:
        return OutcomeEvent(
            event_id=eid,
            force_id="kent",
            crime_ref="46/1/25",
            disposal=disposal,
            outcome_date=dt.date(2025, 3, day),
            recorded_at=dt.datetime(2025, 3, day, tzinfo=dt.UTC),
            source_system="test",
            offence_code="8Q",
        )

    counts = DayCounts()
    kw = {"today": dt.date(2025, 3, 31), "latest_day": dt.date(2025, 4, 1), "keep_days": 400}
    first = count_event(event("e1", "pending", 2), None, counts, offset=0, **kw)  # type: ignore[arg-type]
    assert first.change is Change.NEW and first.state is not None
    moved = count_event(event("e2", "caution", 9), first.state, counts, offset=1, **kw)  # type: ignore[arg-type]
    assert moved.change is Change.MOVED and moved.removed == first.cell and moved.added == moved.cell
    assert [(c.disposal, n) for c, n in counts.cells()] == [("caution", 1)]
    # the crime's key moves with its count (pseudonymised only where it leaves the process)
    assert counts.refs(moved.cell) == ["kent/46/1/25"] and counts.refs(first.cell) == []
    again = count_event(event("e2", "caution", 9), moved.state, counts, offset=2, **kw)  # type: ignore[arg-type]
    assert again.change is Change.DUPLICATE and [n for _, n in counts.cells()] == [1]
