"""police.uk CSV files -> disposal events.

Street files (``*-street.csv``) give one row per crime with its *last* outcome at download
time; outcomes files (``*-outcomes.csv``) give one row per outcome, dated by the month it was
given, but no crime type. How the two combine when both are given:

1. every street file is read first: a row becomes an event if it has a Crime ID and a last
   outcome, dated the first day of its Month (police.uk gives no day), and its crime type is
   remembered by Crime ID;
2. then every outcomes file: a row becomes an event dated the first of *its* Month, with the
   crime type of the street row of the same Crime ID. A row whose crime is in no street file
   given is skipped (``no_crime_type``): its offence category is unknown.

Both kinds of event go through the worker's latest-outcome rule, so for a crime present in both
the outcome with the newest month counts (outcomes-file rows are never older than the crime's
month), and a crime that only the street file has counts by its last outcome.

Event ids are a hash of file kind, Crime ID, month and outcome, so ingesting the same files
twice produces the same events, which the worker counts once.

Pure functions over rows: reading files is ``read_values``; nothing here talks to Kafka.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from streams.codec import OutcomeFrame, outcome_frame, outcome_record
from streams.errors import ConfigError, InputError
from streams.model import OutcomeEvent
from streams.reference import FORCE_IDS, POLICEUK_CRIME_TYPES, POLICEUK_OUTCOMES
from streams.textfile import TextLines

#: skip reasons that real, well-formed police.uk data produces: rows with nothing to count
#: (anti-social behaviour has no Crime ID), and outcomes of crimes recorded in months whose
#: street file was not given. Reported in the summary; not errors.
EXPECTED_SKIPS = frozenset({"no_crime_id_or_outcome", "no_crime_type"})

STREET_COLUMNS: tuple[str, ...] = ("Crime ID", "Month", "Reported by", "Crime type", "Last outcome category")
OUTCOMES_COLUMNS: tuple[str, ...] = ("Crime ID", "Month", "Reported by", "Outcome type")


class Row(NamedTuple):  # a NamedTuple: made once per row, and cheaper than a frozen dataclass
    file: Path
    line: int  # 1-based line number in the file (the header is line 1)
    fields: dict[str, str]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def file_kind(path: Path, header: list[str]) -> str:
    """``street`` or ``outcomes``, from the header; ``ConfigError`` naming missing columns."""
    cols = set(header)
    if "Outcome type" in cols:
        kind, need = "outcomes", OUTCOMES_COLUMNS
    elif "Last outcome category" in cols or "Crime type" in cols:
        kind, need = "street", STREET_COLUMNS
    else:
        raise ConfigError(
            f"{path}: not a police.uk street or outcomes file: the header has neither "
            f"'Last outcome category' nor 'Outcome type' (found: {', '.join(header) or 'nothing'})"
        )
    missing = [c for c in need if c not in cols]
    if missing:
        raise ConfigError(f"{path}: {kind} file is missing column(s): {', '.join(missing)}")
    return kind


def csv_records(lines: Iterable[str], path: Path, first: int) -> Iterator[tuple[int, list[str]]]:
    """(record number, values) of CSV ``lines``, numbered from ``first``; a line the csv module
    cannot read (an over-long field, a stray carriage return) is ``ConfigError`` naming the file
    and record, not a traceback."""
    reader = csv.reader(lines)
    number = first - 1
    try:
        for number, values in enumerate(reader, first):  # noqa: B007 (number is read after the loop)
            yield number, values
    except csv.Error as exc:
        raise ConfigError(f"{path}: record {number + 1}: not readable as CSV ({exc})") from None


def open_csv(path: Path) -> tuple[TextLines, str, list[str]]:
    """Open a police.uk CSV and read its header: (the file's lines, positioned after the header,
    its kind, the header). ``ConfigError`` for a file that cannot be read, is not UTF-8, or is
    not police.uk's."""
    f = TextLines(path)
    header = next(csv_records(f, path, 1), (1, []))[1]
    try:
        return f, file_kind(path, header), header
    except ConfigError:
        f.close()
        raise


def read_values(path: Path) -> tuple[str, list[str], Iterator[tuple[int, list[str]]]]:
    """Open a police.uk CSV; returns its kind, its header and an iterator over (line number,
    values) of its data rows (the header is line 1)."""
    f, kind, header = open_csv(path)

    def rows() -> Iterator[tuple[int, list[str]]]:
        with f:
            yield from csv_records(f, path, 2)

    return kind, header, rows()


@functools.lru_cache(maxsize=256)
def _month(text: str) -> tuple[dt.date, dt.datetime] | None:
    """``YYYY-MM`` -> its first day, and midnight UTC of it (a file holds a month or two)."""
    try:
        day = dt.date.fromisoformat(text + "-01")
    except ValueError:
        return None
    return day, dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _month_start(row: Row) -> tuple[dt.date, dt.datetime]:
    text = row.fields.get("Month", "").strip()
    found = _month(text)
    if found is None:
        raise InputError(f"{row.where}: Month {text!r} is not YYYY-MM", reason="bad_month")
    return found


def _force(row: Row) -> str:
    name = row.fields.get("Reported by", "").strip()
    try:
        return FORCE_IDS[name]
    except KeyError:
        raise InputError(
            f"{row.where}: unknown force {name!r} in 'Reported by'", reason="unknown_force"
        ) from None


def _disposal(row: Row, text: str) -> str:
    try:
        return POLICEUK_OUTCOMES[text]
    except KeyError:
        raise InputError(f"{row.where}: unknown outcome {text!r}", reason="unknown_outcome") from None


def _event_id(kind: str, crime_id: str, month: dt.date, outcome: str) -> str:
    h = hashlib.blake2b(f"{kind}|{crime_id}|{month.isoformat()[:7]}|{outcome}".encode(), digest_size=16)
    return "pu-" + h.hexdigest()


def _event(row: Row, kind: str, crime_id: str, outcome: str, crime_type: str) -> OutcomeEvent:
    """The event of a row of either kind: dated the first of its Month (police.uk gives no day)."""
    month, midnight = _month_start(row)
    return OutcomeEvent(
        event_id=_event_id(kind, crime_id, month, outcome),
        force_id=_force(row),
        crime_ref=crime_id,
        disposal=_disposal(row, outcome),
        outcome_date=month,
        recorded_at=midnight,
        source_system=f"policeuk-{kind}",
        crime_type=crime_type,
        outcome_text=outcome,
    )


def street_event(row: Row) -> OutcomeEvent | None:
    """Event of a street row; None if it has no Crime ID or no outcome (not an error)."""
    f = row.fields
    crime_id = f.get("Crime ID", "").strip()
    outcome = f.get("Last outcome category", "").strip()
    if not crime_id or not outcome:
        return None
    crime_type = f.get("Crime type", "").strip()
    if crime_type not in POLICEUK_CRIME_TYPES:
        raise InputError(f"{row.where}: unknown crime type {crime_type!r}", reason="unknown_crime_type")
    return _event(row, "street", crime_id, outcome, crime_type)


def outcome_event(row: Row, crime_types: dict[str, str]) -> OutcomeEvent:
    """Event of an outcomes-file row; needs the crime type from a street row of the same crime."""
    f = row.fields
    crime_id = f.get("Crime ID", "").strip()
    outcome = f.get("Outcome type", "").strip()
    if not crime_id:
        raise InputError(f"{row.where}: no Crime ID", reason="no_crime_id")
    if not outcome:
        raise InputError(f"{row.where}: no Outcome type", reason="no_outcome")
    crime_type = crime_types.get(crime_id)
    if crime_type is None:
        raise InputError(
            f"{row.where}: crime {crime_id[:12]}... is in no street file given, so its crime type is unknown",
            reason="no_crime_type",
        )
    return _event(row, "outcomes", crime_id, outcome, crime_type)


@dataclass
class Tally:
    """What an ingestion did: rows read, events made, rows skipped by reason."""

    rows: int = 0
    events: int = 0
    skipped: dict[str, int] | None = None

    def skip(self, reason: str) -> None:
        if self.skipped is None:
            self.skipped = {}
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


#: a data row as read: kind, file, the file's header, line number, values, and (outcomes rows) the
#: crime type of its Crime ID. Plain values, cheap to send to another process; ``row_event``
#: makes a ``Row`` of it.
RawRow = tuple[str, Path, list[str], int, list[str], "str | None"]


def street_crime_type(values: list[str], id_at: int, type_at: int) -> tuple[str, str] | None:
    """(Crime ID, crime type) a street row gives its crime's outcomes rows; None if it has no
    Crime ID or no known crime type."""
    if len(values) > max(id_at, type_at):
        crime_id, crime_type = values[id_at].strip(), values[type_at].strip()
        if crime_id and crime_type in POLICEUK_CRIME_TYPES:
            return crime_id, crime_type
    return None


def outcomes_crime_id(values: list[str], id_at: int) -> str:
    return values[id_at].strip() if len(values) > id_at else ""


def typed_rows(paths: Iterable[Path]) -> Iterator[RawRow]:
    """Every data row: street files first (their crime type is in the row: None), then outcomes
    files, each row with the crime type of the first street row of its Crime ID (None: no street
    file gave it). Each file's header is checked before any row comes out, so a file with missing
    columns stops the run before anything is sent."""
    opened = [(p, *read_values(p)) for p in paths]
    crime_types: dict[str, str] = {}
    for path, kind, header, rows in opened:
        if kind != "street":
            continue
        id_at, type_at = header.index("Crime ID"), header.index("Crime type")
        for line, values in rows:
            known = street_crime_type(values, id_at, type_at)
            if known is not None:
                crime_types.setdefault(*known)
            yield kind, path, header, line, values, None
    for path, kind, header, rows in opened:
        if kind != "outcomes":
            continue
        id_at = header.index("Crime ID")
        for line, values in rows:
            yield kind, path, header, line, values, crime_types.get(outcomes_crime_id(values, id_at))


def row_event(raw: RawRow) -> OutcomeEvent | None:
    """The event of a row (None: a street row with no Crime ID or outcome); raises ``InputError``
    for a row that cannot become one."""
    kind, path, header, line, values, crime_type = raw
    row = Row(path, line, dict(zip(header, values, strict=False)))
    if kind == "street":
        return street_event(row)
    crime_id = row.fields.get("Crime ID", "").strip()
    return outcome_event(row, {crime_id: crime_type} if crime_type else {})


class RowWriter:
    """The records of police.uk rows of one kind and header: what ``outcome_record(row_event(...))``
    makes of each, or the same ``InputError`` or None, without an event per row.

    Rows that share a month, force, outcome and crime type differ in their records only by the
    Crime ID and the event id hashed from it. So the first such row goes through ``row_event``,
    and its value's frame (``streams.codec.OutcomeFrame``) is kept, with the key's force and the
    event id's month and outcome, if the frame writes that row's record exactly; the next rows
    are written into it. A row of any other shape (fewer values than the header, no Crime ID, a
    value ``row_event`` refuses) goes through ``row_event`` every time, so the messages and
    skips are its. tests/unit/test_policeuk.py holds the two equal, byte for byte.
    """

    #: frames kept, at most (a year of one force: a few thousand)
    MAX_FRAMES = 20_000

    def __init__(self, kind: str, header: list[str]) -> None:
        self.kind, self.header = kind, header
        at = {name: i for i, name in enumerate(header)}  # a repeated name: its last, as row_event reads it
        self._width = len(header)
        self._id_at = at["Crime ID"]
        self._month_at, self._force_at = at["Month"], at["Reported by"]
        self._outcome_at = at["Last outcome category" if kind == "street" else "Outcome type"]
        self._type_at = at["Crime type"] if kind == "street" else -1
        self._id_head = f"{kind}|"
        #: (Month, Reported by, outcome, crime type) as read -> (frame, key's head, event id's tail)
        self._frames: dict[tuple[str, str, str, str | None], tuple[OutcomeFrame, str, str]] = {}

    def record(
        self, path: Path, line: int, values: list[str], crime_type: str | None
    ) -> tuple[bytes, bytes] | None:
        """The record of the row ``values`` (record ``line`` of ``path``; for an outcomes row
        ``crime_type`` is its crime's, from a street row, or None), as ``row_event`` and
        ``outcome_record`` make it; raises the ``InputError`` ``row_event`` raises."""
        if len(values) >= self._width:
            crime_id = values[self._id_at].strip()
            if crime_id:
                shape = (
                    values[self._month_at],
                    values[self._force_at],
                    values[self._outcome_at],
                    values[self._type_at] if self._type_at >= 0 else crime_type,
                )  # as _shape makes it, written out: this is per row
                found = self._frames.get(shape)
                if found is not None:
                    return self._written(found, crime_id)
        event = row_event((self.kind, path, self.header, line, values, crime_type))
        if event is None:
            return None
        record = outcome_record(event)
        if len(values) >= self._width and len(self._frames) < self.MAX_FRAMES:
            self._keep(values, crime_type, event, record)
        return record

    def _shape(self, values: list[str], crime_type: str | None) -> tuple[str, str, str, str | None]:
        kind_type = values[self._type_at] if self._type_at >= 0 else crime_type
        return values[self._month_at], values[self._force_at], values[self._outcome_at], kind_type

    def _keep(
        self, values: list[str], crime_type: str | None, event: OutcomeEvent, record: tuple[bytes, bytes]
    ) -> None:
        """Keep the frame of ``event``'s shape if it writes ``record`` exactly."""
        try:
            frame = outcome_frame(event)
        except ValueError:
            return
        found = (frame, f"{event.force_id}/", f"|{event.outcome_date.isoformat()[:7]}|{event.outcome_text}")
        if self._written(found, event.crime_ref) == record:
            self._frames[self._shape(values, crime_type)] = found

    def _written(self, found: tuple[OutcomeFrame, str, str], crime_id: str) -> tuple[bytes, bytes]:
        """The record of crime ``crime_id`` in a kept frame (frame, key's head, event id's tail)."""
        frame, key_head, id_tail = found
        event_id = hashlib.blake2b((self._id_head + crime_id + id_tail).encode(), digest_size=16).hexdigest()
        return (key_head + crime_id).encode(), frame.value("pu-" + event_id, crime_id)

    @property
    def frames(self) -> int:
        """Frames kept (a test's view of whether rows are written into them)."""
        return len(self._frames)


def events_from_files(paths: Iterable[Path], tally: Tally, on_skip: object = None) -> Iterator[OutcomeEvent]:
    """Events of police.uk files, in one process (``streams.ingest`` does the same in several):
    street files first, then outcomes files (see the module doc). ``on_skip(error)`` is called
    for each skipped row."""
    for raw in typed_rows(paths):
        tally.rows += 1
        try:
            ev = row_event(raw)
        except InputError as exc:
            tally.skip(exc.reason)
            if callable(on_skip):
                on_skip(exc)
            continue
        if ev is None:
            tally.skip("no_crime_id_or_outcome")
            continue
        tally.events += 1
        yield ev
