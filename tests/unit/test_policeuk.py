import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.errors import ConfigError, InputError
from streams.policeuk import Tally, events_from_files

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "policeuk"
OLD = SHARED / "city-of-london-2016-2017"
NEW = SHARED / "city-of-london-2024-2025"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


STREET_HEADER = (
    "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,"
    "Crime type,Last outcome category,Context\n"
)
OUTCOMES_HEADER = (
    "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Outcome type\n"
)


def test_street_rows_become_events_dated_first_of_month(tmp_path: Path) -> None:
    f = write(
        tmp_path / "s.csv",
        STREET_HEADER
        + "abc,2024-03,Kent Police,Kent Police,,,,,,Violence and sexual offences,Local resolution,\n"
        + ",2024-03,Kent Police,Kent Police,,,,,,Anti-social behaviour,,\n",
    )
    tally = Tally()
    events = list(events_from_files([f], tally))
    assert len(events) == 1
    ev = events[0]
    assert (ev.force_id, ev.crime_ref, ev.disposal, ev.outcome_date) == (
        "kent",
        "abc",
        "community-resolution",
        dt.date(2024, 3, 1),
    )
    assert ev.crime_type == "Violence and sexual offences" and ev.offence_code is None
    assert tally.rows == 2 and tally.skipped == {"no_crime_id_or_outcome": 1}


def test_outcomes_join_street_crime_type_and_keep_their_own_month(tmp_path: Path) -> None:
    s = write(
        tmp_path / "s.csv",
        STREET_HEADER + "abc,2024-03,Kent Police,,,,,,,Public order,Under investigation,\n",
    )
    o = write(
        tmp_path / "o.csv",
        OUTCOMES_HEADER
        + "abc,2024-06,Kent Police,,,,,,,Offender given a caution\n"
        + "zzz,2024-06,Kent Police,,,,,,,Offender given a caution\n",
    )
    tally = Tally()
    events = list(events_from_files([o, s], tally))  # order of arguments does not matter
    assert [(e.source_system, e.disposal, e.outcome_date, e.crime_type) for e in events] == [
        ("policeuk-street", "pending", dt.date(2024, 3, 1), "Public order"),
        ("policeuk-outcomes", "caution", dt.date(2024, 6, 1), "Public order"),
    ]
    assert tally.skipped == {"no_crime_type": 1}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("abc,2024-03,Gotham Police,,,,,,,Drugs,Local resolution,", "unknown_force"),
        ("abc,2024-03,Kent Police,,,,,,,Drugs,Sent to the moon,", "unknown_outcome"),
        ("abc,March 2024,Kent Police,,,,,,,Drugs,Local resolution,", "bad_month"),
        ("abc,2024-03,Kent Police,,,,,,,Piracy,Local resolution,", "unknown_crime_type"),
    ],
)
def test_bad_rows_are_skipped_with_a_reason_naming_the_row(tmp_path: Path, row: str, reason: str) -> None:
    f = write(tmp_path / "s.csv", STREET_HEADER + row + "\n")
    tally = Tally()
    seen: list[InputError] = []
    assert list(events_from_files([f], tally, on_skip=seen.append)) == []
    assert tally.skipped == {reason: 1}
    assert f"{f}:2" in str(seen[0])


def test_missing_columns_stop_before_anything_is_read(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.csv", "Crime ID,Month,Crime type\nabc,2024-01,Drugs\n")
    with pytest.raises(
        ConfigError,
        match=r"bad.csv: street file is missing column\(s\): Reported by, Last outcome category",
    ):
        list(events_from_files([f], Tally()))


def test_not_a_policeuk_file(tmp_path: Path) -> None:
    f = write(tmp_path / "x.csv", "a,b\n1,2\n")
    with pytest.raises(ConfigError, match="not a police.uk street or outcomes file"):
        list(events_from_files([f], Tally()))


def test_real_samples_parse_completely() -> None:
    files = sorted(OLD.glob("*.csv"))
    assert files, f"police.uk samples missing under {OLD}"
    tally = Tally()
    events = list(events_from_files(files, tally))
    assert tally.events == len(events) > 10000
    assert {e.force_id for e in events} == {"city-of-london"}
    # every outcome string in the real files is mapped; only benign or join skips remain
    assert set(tally.skipped or {}) <= {"no_crime_id_or_outcome", "no_crime_type"}
    # ids are one per distinct (file kind, crime, month, outcome): police.uk repeats a few rows
    # verbatim ("a few Crime IDs repeat within a month"), which are the same event
    distinct = {(e.source_system, e.crime_ref, e.outcome_date, e.outcome_text) for e in events}
    assert len({e.event_id for e in events}) == len(distinct) < len(events)
    assert [e.event_id for e in events_from_files(files, Tally())][:100] == [e.event_id for e in events][:100]


def test_new_street_samples_parse() -> None:
    tally = Tally()
    events = list(events_from_files(sorted(NEW.glob("*.csv")), tally))
    assert len(events) > 5000
    assert min(e.outcome_date for e in events) == dt.date(2024, 1, 1)


def test_event_ids_are_those_earlier_versions_made() -> None:
    """Re-ingesting files counts nothing twice only if a row's event id never changes: a digest
    of every event id of the samples, as the version before the parallel ingest made them."""
    import hashlib

    files = sorted((Path(__file__).resolve().parents[3] / "shared" / "data" / "policeuk").rglob("*.csv"))
    assert files
    h = hashlib.sha256()
    for e in events_from_files(files, Tally()):
        h.update(e.event_id.encode())
    assert h.hexdigest() == "f0773f57c2cc66958d7ad74411e7769cfccc9f6d9f704f2875d162c5cee96865"


_MONTHS = ["2024-03", " 2024-03", "2024-3", "2024-13", "", "2016-11 "]
_FORCES = ["Kent Police", "Kent Police ", "City of London Police", "Nowhere Police", ""]
_OUTCOMES = [
    "Local resolution",
    " Local resolution",
    "Suspect charged",
    "Unknown outcome",
    "",
    "Under investigation",
]
_TYPES = ["Burglary", "Violence and sexual offences", " Shoplifting", "Not a crime type", "", None]


@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["street", "outcomes"]),
            st.sampled_from(["abc", " abc ", "", "e7b720d0é", "x" * 64]),
            st.sampled_from(_MONTHS),
            st.sampled_from(_FORCES),
            st.sampled_from(_OUTCOMES),
            st.sampled_from(_TYPES),
            st.integers(-2, 1),  # values missing (negative) or extra
        ),
        max_size=60,
    )
)
@settings(max_examples=300, deadline=None)
def test_the_row_writer_writes_what_row_event_makes(
    rows: list[tuple[str, str, str, str, str, str | None, int]],
) -> None:
    """Row by row, in any order: the same record bytes, the same None, the same InputError."""
    from streams.codec import outcome_record
    from streams.policeuk import RowWriter, row_event

    headers = {
        kind: h.strip().split(",") for kind, h in (("street", STREET_HEADER), ("outcomes", OUTCOMES_HEADER))
    }
    writers = {kind: RowWriter(kind, header) for kind, header in headers.items()}
    path = Path("f.csv")
    for line, (kind, crime_id, month, force, outcome, crime_type, width) in enumerate(rows, start=2):
        header = headers[kind]
        values = dict.fromkeys(header, "")
        values.update({"Crime ID": crime_id, "Month": month, "Reported by": force})
        values["Last outcome category" if kind == "street" else "Outcome type"] = outcome
        if kind == "street":
            values["Crime type"] = crime_type or ""
        row = list(values.values())
        row = row[: len(row) + width] if width < 0 else row + ["extra"] * width
        typed = None if kind == "street" else crime_type
        try:
            event = row_event((kind, path, header, line, row, typed))
            want: object = None if event is None else outcome_record(event)
        except InputError as exc:
            want = (exc.reason, str(exc))
        try:
            got: object = writers[kind].record(path, line, row, typed)
        except InputError as exc:
            got = (exc.reason, str(exc))
        assert got == want


def test_the_row_writer_writes_most_rows_into_frames() -> None:
    """On the samples, a frame per shape of row, and every record as row_event makes it."""
    from streams.codec import outcome_record
    from streams.policeuk import RowWriter, read_values, row_event

    rows = 0
    for path in sorted(OLD.glob("*-street.csv")):
        kind, header, values = read_values(path)
        writer = RowWriter(kind, header)
        for line, row in values:
            rows += 1
            try:
                event = row_event((kind, path, header, line, row, None))
            except InputError:
                continue
            assert writer.record(path, line, row, None) == (None if event is None else outcome_record(event))
        assert 0 < writer.frames < 400
    assert rows > 10_000
