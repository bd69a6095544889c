"""Fuzz targets and input strategies, shared by the bounded run in ``make test``
(``tests/unit/test_fuzz.py``) and the long one (``bench/fuzz.py``).

A target runs one input through a path the worker or ingest runs on outside input, and lets only
the project's own errors for bad input out (``DecodeError``, ``RejectedEvent``, ``InputError``,
``ConfigError``). Anything else that escapes is a crash: a bug."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import strategies as st

from streams.codec import decode_outcome, encode_outcome, outcome_record
from streams.core.buckets import DayCounts
from streams.core.counting import count_event
from streams.errors import ConfigError, DecodeError, EncodeError, InputError, RejectedEvent
from streams.ingest import policeuk_chunk
from streams.model import OutcomeEvent
from streams.policeuk import Tally, events_from_files, open_csv
from streams.reference import FORCE_NAMES, POLICEUK_CRIME_TYPES, POLICEUK_OUTCOMES
from streams.textfile import csv_blocks

TODAY = dt.date(2025, 6, 30)

# --- the worker's per-record path ---------------------------------------------------------------


def record_path(value: bytes) -> str:
    """What the counting loop does with one record's value: 'counted' or the dead-letter reason."""
    try:
        event = decode_outcome(value)
        count_event(event, None, DayCounts(), today=TODAY, latest_day=TODAY, keep_days=400)
    except (DecodeError, RejectedEvent) as exc:
        return exc.reason
    return "counted"


_text = st.text(max_size=40) | st.sampled_from(["", "kent", "8Q", "x" * 300, "\x00", "é", "\ud7ff"])
events = st.builds(
    OutcomeEvent,
    event_id=_text,
    force_id=st.sampled_from(sorted(FORCE_NAMES)) | _text,
    crime_ref=_text,
    disposal=st.sampled_from(["charge", "caution", "community-resolution", "pending", "other"]) | _text,
    outcome_date=st.dates() | st.dates(dt.date(2024, 1, 1), dt.date(2025, 7, 5)),
    recorded_at=st.datetimes(dt.datetime(1970, 1, 2), dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)),  # noqa: DTZ001
    source_system=_text,
    offence_code=st.none() | st.sampled_from(["8Q", "8L", "17A", "10D", "11A", "99"]) | _text,
    crime_type=st.none() | st.sampled_from(sorted(POLICEUK_CRIME_TYPES)) | _text,
    outcome_number=st.none() | st.integers(-5, 30),
    outcome_text=st.none() | _text,
    domestic_abuse=st.none() | st.booleans(),
)


@st.composite
def record_values(draw: st.DrawFn) -> bytes:
    """A record value: an encoded event, as it is or damaged, or arbitrary bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))
    try:
        value = bytearray(encode_outcome(draw(events)))
    except EncodeError:
        return draw(st.binary(max_size=300))
    how = draw(st.sampled_from(["whole", "flip", "cut", "grow", "splice"]))
    if how == "flip" and value:
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(value) - 1))
            value[at] ^= 1 << draw(st.integers(0, 7))
    elif how == "cut":
        value = value[: draw(st.integers(0, len(value)))]
    elif how == "grow":
        value += draw(st.binary(min_size=1, max_size=40))
    elif how == "splice" and len(value) > 10:
        at = draw(st.integers(10, len(value)))
        value[at:at] = draw(st.binary(min_size=1, max_size=20))
    return bytes(value)


# --- the police.uk readers ----------------------------------------------------------------------

STREET = (
    "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,"
    "Crime type,Last outcome category,Context"
)
OUTCOMES = (
    "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Outcome type"
)
_field = (
    st.sampled_from(["", "abc123", "2024-01", "2024-13", "20x4-01", "City of London Police", "Kent Police"])
    | st.sampled_from(sorted(POLICEUK_CRIME_TYPES))
    | st.sampled_from(sorted(POLICEUK_OUTCOMES))
    | st.text(max_size=30)
)


@st.composite
def policeuk_files(draw: st.DrawFn) -> bytes:
    """A police.uk CSV: a real header (sometimes damaged) and rows of plausible and odd values,
    with quotes, line breaks, NULs and bytes that are not UTF-8."""
    header = draw(st.sampled_from([STREET, OUTCOMES]))
    if draw(st.integers(0, 5)) == 0:
        cols = header.split(",")
        del cols[draw(st.integers(0, len(cols) - 1))]
        header = ",".join(cols)
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        values = draw(st.lists(_field, min_size=0, max_size=14))
        rows.append(",".join('"' + v.replace('"', '""') + '"' if draw(st.booleans()) else v for v in values))
    text = "\r\n".join([header, *rows]) + draw(st.sampled_from(["", "\n", "\r\n", '"']))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 6)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


def read_policeuk(data: bytes, name: str) -> int:
    """Both police.uk readers over one file's bytes (the one-process reader, and the ingest's
    blocks); the events they made. Raises only ``ConfigError`` (a file-level problem)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        one = _outcome(lambda: _one_process(path))
        blocked = _outcome(lambda: _blocked(path, size=draw_size(data)))
        # the two readers agree on a street file, row for row, message for message, refusal for
        # refusal (an outcomes file's crime types need street files)
        if kind_of(path) == "street":
            assert blocked == one, (blocked, one)
        if isinstance(one, str):
            raise ConfigError(one)
        return len(one[0])


Read = tuple[list[tuple[bytes, bytes]], list[tuple[str, str]], int]


def _outcome(read: Callable[[], Read]) -> Read | str:
    """What a reader made, or the message it refused the file with."""
    try:
        return read()
    except ConfigError as exc:
        return str(exc)


def _one_process(path: Path) -> Read:
    skips: list[tuple[str, str]] = []
    tally = Tally()
    made = [
        outcome_record(e)
        for e in events_from_files([path], tally, lambda e: skips.append((e.reason, str(e))))
    ]
    return made, skips, tally.rows


def _blocked(path: Path, size: int) -> Read:
    _, kind, header = open_csv(path)
    blocks = csv_blocks(path, size=size)
    next(blocks)  # the header
    chunks = [policeuk_chunk(kind, path, header, block) for block in blocks]
    return (
        [r for c in chunks for r in c.records],
        [s for c in chunks for s in c.skipped if s[1]],
        sum(c.rows for c in chunks),
    )


def kind_of(path: Path) -> str | None:
    try:
        return open_csv(path)[1]
    except ConfigError:
        return None


def draw_size(data: bytes) -> int:
    """A block size from the file's own bytes: blocks of one record up to the whole file."""
    return 1 + sum(data[:8]) % 64


ALLOWED = (DecodeError, RejectedEvent, InputError, ConfigError)
