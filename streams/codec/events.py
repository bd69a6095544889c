"""Events on the hot paths: the written-out Avro writer (ingest) and reader (counting loop).

Both handle one schema, the current ``disposalwatch.OutcomeEvent``, and hand anything else to
fastavro through ``streams.codec.avro.EVENT_CODEC``, which also gives the errors. The reader has
a compiled twin (``streams/codec/_event_reader.c``), used where it was built.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

from streams.codec.avro import EVENT_CODEC, HEADER_LEN, MAGIC, AvroCodec
from streams.errors import InvariantError
from streams.model import OutcomeEvent

_EVENTS_HEADER = MAGIC + EVENT_CODEC.fingerprint

# --- the event writer on the ingest path --------------------------------------------------------
# Writing an event is most of an ingest's cost per row: 7.4 us through fastavro, 3.6 us written
# out here for the one schema (bench/README.md, "Ingest"). Avro binary (spec, "Binary
# encoding"): int and long as zig-zag varints, a string as its UTF-8 length then bytes, a union
# as the branch index then the value, an enum as the symbol's index, date as days and
# timestamp-millis as milliseconds since 1970-01-01 UTC. It is used only while the schema is
# the one it was written for (fingerprint and logical types checked at import) and only for
# values of exactly the expected types; anything else goes through fastavro, which also gives
# the errors. tests/unit/test_codec.py holds it byte-equal to fastavro's writer.

_FAST_FOR = bytes.fromhex("e37e2d19eb988819")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()


def _varint(n: int) -> bytes:
    """Zig-zag varint of a signed 64-bit integer."""
    n = (n << 1) ^ (n >> 63)
    if n < 128:
        return _ONE_BYTE[n]
    out = []
    while n > 127:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_ONE_BYTE = [bytes([i]) for i in range(128)]
_SMALL = [_varint(i) for i in range(1024)]


@functools.lru_cache(maxsize=4096)
def _day(day: dt.date) -> bytes:
    """A date as Avro writes it (days since 1970-01-01); events share few dates."""
    return _varint(day.toordinal() - _EPOCH_DAY)


def _string(text: str) -> bytes:
    data = text.encode()
    n = len(data)
    return (_SMALL[n] if n < 1024 else _varint(n)) + data


def _opt_string(text: str | None) -> bytes:
    return b"\x00" if text is None else b"\x02" + _string(text)


def _fields(codec: AvroCodec) -> dict[str, Any]:
    """Field name -> parsed type, of a record codec's schema."""
    schema: Any = codec.schema
    return {f["name"]: f["type"] for f in schema["fields"]}


#: the written bytes of strings that take few values (force ids, crime types, outcome texts,
#: source systems) and of instants (police.uk's are month starts), up to a bound
_FEW_MAX = 8192
_few_required: dict[str, bytes] = {}
_few_optional: dict[str | None, bytes] = {}
_few_millis: dict[dt.datetime, bytes] = {}


def _few(text: str) -> bytes:
    data = _few_required.get(text)
    if data is None:
        data = _string(text)
        if len(_few_required) < _FEW_MAX:
            _few_required[text] = data
    return data


def _few_opt(text: str | None) -> bytes:
    data = _few_optional.get(text)
    if data is None:
        data = _opt_string(text)
        if len(_few_optional) < _FEW_MAX:
            _few_optional[text] = data
    return data


def _millis(instant: dt.datetime) -> bytes:
    data = _few_millis.get(instant)
    if data is None:
        delta = instant - _EPOCH
        data = _varint((delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000)
        if len(_few_millis) < _FEW_MAX:
            _few_millis[instant] = data
    return data


def _fast_outcome_ok(codec: AvroCodec) -> bool:
    logical = _fields(codec)
    return (
        codec.fingerprint == _FAST_FOR
        and logical["outcome_date"] == {"type": "int", "logicalType": "date"}
        and logical["recorded_at"] == {"type": "long", "logicalType": "timestamp-millis"}
    )


_FAST = _fast_outcome_ok(EVENT_CODEC)
_DISPOSAL_INDEX = {
    s.replace("_", "-"): _SMALL[i] for i, s in enumerate(_fields(EVENT_CODEC)["disposal"]["symbols"])
}
_DOMESTIC = {None: b"\x00", True: b"\x02\x01", False: b"\x02\x00"}
_STR = str


def _fast_encode_outcome(e: OutcomeEvent) -> bytes | None:
    """The event's bytes, or None when a value is not of the type this writer expects.

    complex: the schema's fields written out one by one (a type check and a branch per optional
    field), the only way to write an event in a third of fastavro's time."""
    recorded, number = e.recorded_at, e.outcome_number
    if (
        type(e.event_id) is not _STR
        or type(e.force_id) is not _STR
        or type(e.crime_ref) is not _STR
        or type(e.source_system) is not _STR
        or type(e.schema_version) is not int
        or not (e.offence_code is None or type(e.offence_code) is _STR)
        or not (e.crime_type is None or type(e.crime_type) is _STR)
        or not (e.outcome_text is None or type(e.outcome_text) is _STR)
        or not (number is None or type(number) is int)
        or type(e.outcome_date) is not dt.date
        or type(recorded) is not dt.datetime
        or recorded.tzinfo is None
        or not (e.domestic_abuse is None or type(e.domestic_abuse) is bool)
        or e.disposal not in _DISPOSAL_INDEX
    ):
        return None
    return b"".join(
        (
            _EVENTS_HEADER,
            _SMALL[e.schema_version] if 0 <= e.schema_version < 1024 else _varint(e.schema_version),
            _string(e.event_id),
            _few(e.force_id),
            _string(e.crime_ref),
            _few_opt(e.offence_code),
            _few_opt(e.crime_type),
            b"\x00" if number is None else b"\x02" + _varint(number),
            _DISPOSAL_INDEX[e.disposal],
            _few_opt(e.outcome_text),
            _day(e.outcome_date),
            _millis(recorded),
            _DOMESTIC[e.domestic_abuse],
            _few(e.source_system),
        )
    )


def encode_outcome(event: OutcomeEvent) -> bytes:
    if _FAST:
        data = _fast_encode_outcome(event)
        if data is not None:
            return data
    return EVENT_CODEC.encode(
        {
            "schema_version": event.schema_version,
            "event_id": event.event_id,
            "force_id": event.force_id,
            "crime_ref": event.crime_ref,
            "offence_code": event.offence_code,
            "crime_type": event.crime_type,
            "outcome_number": event.outcome_number,
            "disposal": event.disposal.replace("-", "_"),
            "outcome_text": event.outcome_text,
            "outcome_date": event.outcome_date,
            "recorded_at": event.recorded_at,
            "domestic_abuse": event.domestic_abuse,
            "source_system": event.source_system,
        }
    )


def outcome_record(event: OutcomeEvent) -> tuple[bytes, bytes]:
    """The event as a record of the disposals topic: key ``force_id/crime_ref``, Avro value."""
    return event.crime_key.encode(), encode_outcome(event)


class OutcomeFrame(NamedTuple):
    """An event's value cut around the two strings that differ from crime to crime:
    ``value = before + event_id + between + crime_ref + after``, each string as Avro writes one
    (its UTF-8 length, then the bytes).
    For writers of many events that share every other field (a police.uk file's rows of one
    month, force, outcome and crime type): ``streams.policeuk.RowWriter``."""

    before: bytes
    between: bytes
    after: bytes

    def value(self, event_id: str, crime_ref: str) -> bytes:
        return b"".join((self.before, _string(event_id), self.between, _string(crime_ref), self.after))


def outcome_frame(event: OutcomeEvent) -> OutcomeFrame:
    """The frame of ``event``'s value (``OutcomeFrame``), checked against ``encode_outcome``:
    ``ValueError`` if the event is not written as the frame says (it would be by fastavro, for
    a value of an unexpected type)."""
    value = encode_outcome(event)
    before = _EVENTS_HEADER + _varint(event.schema_version)
    between = _string(event.force_id)
    event_id, crime_ref = _string(event.event_id), _string(event.crime_ref)
    at = len(before) + len(event_id) + len(between) + len(crime_ref)
    frame = OutcomeFrame(before, between, value[at:])
    if frame.value(event.event_id, event.crime_ref) != value:
        raise ValueError(f"event {event.event_id} is not written as its frame says")
    return frame


def decode_outcome(data: bytes) -> OutcomeEvent:
    """Bytes -> event. Raises ``DecodeError`` (reason ``undecodable`` or ``unknown_schema``)."""
    if _FAST and data[2:HEADER_LEN] == _FAST_FOR and data[:2] == MAGIC:
        event = _read_event(data, HEADER_LEN)
        if event is not None:
            return event
    r = EVENT_CODEC.decode(data)
    r["disposal"] = r["disposal"].replace("_", "-")
    return OutcomeEvent(**r)


def decode_outcome_body(data: bytes, start: int) -> OutcomeEvent:
    """An event whose Avro body, written with the current schema, starts at ``start`` (after
    another framing's header: ``streams.framing``). Raises ``DecodeError``."""
    if _FAST:
        event = _read_event(data, start)
        if event is not None:
            return event
    return decode_outcome(_EVENTS_HEADER + data[start:])


# --- the event reader on the counting path ------------------------------------------------------
# Reading an event is the largest cost per record of the counting loop after Kafka's own. Written
# out for the one schema, as the writer above: the same Avro binary, read field by field straight
# into the event. The same reader, compiled (``streams/codec/_event_reader.c``), is used where it was
# built (``EVENT_READER``); this one is the fallback, and the reference the compiled one follows
# line for line. It reads only bytes of the current schema (fingerprint checked by the caller)
# and gives up (None) at anything it does not expect: a length past the end, a union branch or
# enum index out of range, a boolean byte other than 0 or 1, bytes that are not UTF-8, or
# trailing bytes. fastavro then reads the record and gives the error. tests/unit/test_codec.py
# holds it equal to fastavro's reader on the writer's corpus and on generated events.

_DISPOSALS_READ = tuple(s.replace("_", "-") for s in _fields(EVENT_CODEC)["disposal"]["symbols"])
_days_read: dict[int, dt.date] = {}
_millis_read: dict[int, dt.datetime] = {}


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint at ``pos``: (value, position after it)."""
    b = data[pos]
    pos += 1
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _text(data: bytes, pos: int) -> tuple[str, int]:
    """A string at ``pos``: (text, position after it); IndexError past the end."""
    b = data[pos]
    if b < 0x80:
        n, pos = b >> 1, pos + 1
        if b & 1:
            raise IndexError("negative length")
    else:
        n, pos = _long(data, pos)
        if n < 0:
            raise IndexError("negative length")
    end = pos + n
    if end > len(data):
        raise IndexError("string past the end")
    return data[pos:end].decode(), end


def _opt_text(data: bytes, pos: int) -> tuple[str | None, int]:
    branch = data[pos]
    if branch == 0:
        return None, pos + 1
    if branch != 2:
        raise IndexError("union branch")
    return _text(data, pos + 1)


def _fast_decode_outcome(data: bytes, start: int = HEADER_LEN) -> OutcomeEvent | None:
    """The event in ``data`` (of the current schema), or None: fastavro reads it instead.

    complex: the schema's fields read out one by one, with a branch for each union and for
    every way the bytes can be wrong; the reference the compiled reader follows line for line.

    The common cases are read in line, not through ``_long`` and ``_text`` (a call each is a
    fifth of the decoding): a varint of one byte, and a string whose length fits one byte. A
    string cut short leaves ``pos`` past the end, which the final check refuses."""
    try:
        b = data[start]
        if b < 0x80:
            version, pos = (b >> 1) ^ -(b & 1), start + 1
        else:
            version, pos = _long(data, start)
        b = data[pos]
        if b < 0x80 and not b & 1:
            end = pos + 1 + (b >> 1)
            event_id, pos = data[pos + 1 : end].decode(), end
        else:
            event_id, pos = _text(data, pos)
        b = data[pos]
        if b < 0x80 and not b & 1:
            end = pos + 1 + (b >> 1)
            force_id, pos = data[pos + 1 : end].decode(), end
        else:
            force_id, pos = _text(data, pos)
        b = data[pos]
        if b < 0x80 and not b & 1:
            end = pos + 1 + (b >> 1)
            crime_ref, pos = data[pos + 1 : end].decode(), end
        else:
            crime_ref, pos = _text(data, pos)
        offence_code, pos = _opt_text(data, pos)
        crime_type, pos = _opt_text(data, pos)
        branch = data[pos]
        if branch == 0:
            number, pos = None, pos + 1
        elif branch == 2:
            b = data[pos + 1]
            if b < 0x80:
                number, pos = (b >> 1) ^ -(b & 1), pos + 2
            else:
                number, pos = _long(data, pos + 1)
                if not -(1 << 31) <= number < 1 << 31:
                    return None
        else:
            return None
        b = data[pos]
        if b < 0x80:
            index, pos = (b >> 1) ^ -(b & 1), pos + 1
        else:
            index, pos = _long(data, pos)
        if not 0 <= index < len(_DISPOSALS_READ):
            return None
        if data[pos] == 0:
            outcome_text, pos = None, pos + 1
        else:
            outcome_text, pos = _opt_text(data, pos)
        days, pos = _long(data, pos)
        day = _days_read.get(days)
        if day is None:
            day = dt.date.fromordinal(days + _EPOCH_DAY)
            if len(_days_read) < _FEW_MAX:
                _days_read[days] = day
        millis, pos = _long(data, pos)
        recorded = _millis_read.get(millis)
        if recorded is None:
            recorded = _EPOCH + dt.timedelta(milliseconds=millis)
            if len(_millis_read) < _FEW_MAX:
                _millis_read[millis] = recorded
        flag = data[pos]
        if flag == 0:
            domestic, pos = None, pos + 1
        elif flag == 2 and data[pos + 1] <= 1:
            domestic, pos = data[pos + 1] == 1, pos + 2
        else:
            return None
        b = data[pos]
        if b < 0x80 and not b & 1:
            end = pos + 1 + (b >> 1)
            source, pos = data[pos + 1 : end].decode(), end
        else:
            source, pos = _text(data, pos)
    except (IndexError, UnicodeDecodeError, ValueError, OverflowError):
        return None
    if pos != len(data) or not -(1 << 31) <= version < 1 << 31:
        return None
    # the event's slots set directly: a frozen dataclass's __init__ goes through
    # object.__setattr__ for each field, twice the time
    event = _new_event(OutcomeEvent)
    _set_event_id(event, event_id)
    _set_force_id(event, force_id)
    _set_crime_ref(event, crime_ref)
    _set_disposal(event, _DISPOSALS_READ[index])
    _set_outcome_date(event, day)
    _set_recorded_at(event, recorded)
    _set_source_system(event, source)
    _set_offence_code(event, offence_code)
    _set_crime_type(event, crime_type)
    _set_outcome_number(event, number)
    _set_outcome_text(event, outcome_text)
    _set_domestic_abuse(event, domestic)
    _set_schema_version(event, version)
    return event


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    """The setters of ``cls``'s slots ``names``, which must be all its fields, in order: a field
    added to the event and not set by the reader fails here, at import."""
    fields = tuple(f.name for f in dataclasses.fields(cls))
    if fields != names:
        raise InvariantError(f"{cls.__name__} has the fields {fields}; the reader sets {names}")
    return tuple(cls.__dict__[n].__set__ for n in names)


#: the event's fields in the order of its slots, which both readers set (the compiled one by
#: the slots' offsets, given in this order)
_FIELDS = (
    "event_id",
    "force_id",
    "crime_ref",
    "disposal",
    "outcome_date",
    "recorded_at",
    "source_system",
    "offence_code",
    "crime_type",
    "outcome_number",
    "outcome_text",
    "domestic_abuse",
    "schema_version",
)
_new_event = object.__new__
(
    _set_event_id,
    _set_force_id,
    _set_crime_ref,
    _set_disposal,
    _set_outcome_date,
    _set_recorded_at,
    _set_source_system,
    _set_offence_code,
    _set_crime_type,
    _set_outcome_number,
    _set_outcome_text,
    _set_domestic_abuse,
    _set_schema_version,
) = _slot_setters(OutcomeEvent, _FIELDS)


def _compiled_reader() -> Callable[[bytes, int], OutcomeEvent | None] | None:
    """The compiled reader (``streams/codec/_event_reader.c``) set up for the event class, or None
    where it was not built (it is optional: a machine without a C compiler installs without
    it, and reads events at half the speed)."""
    try:
        from streams.codec import _event_reader
    except ImportError:
        return None
    _event_reader.configure(OutcomeEvent, tuple(OutcomeEvent.__dict__[n] for n in _FIELDS), _DISPOSALS_READ)
    return _event_reader.read


_compiled = _compiled_reader()
#: which reader decodes events of the current schema: "compiled" or "python" (logged at start)
EVENT_READER = "compiled" if _compiled is not None else "python"
#: (data, start) -> the event, or None: fastavro reads it instead
_read_event: Callable[[bytes, int], OutcomeEvent | None] = (
    _compiled if _compiled is not None else _fast_decode_outcome
)
