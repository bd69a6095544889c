"""Bytes on the wire <-> values: Avro events and alerts, and the worker's per-crime state.

Framing: Avro single-object encoding (Avro spec, "Single object encoding"): the two bytes
``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's parsing
canonical form, then the Avro binary body. A reader
looks the fingerprint up among the schemas it knows (every ``*.avsc`` under ``streams/schemas``
and ``streams/schemas/history``) and resolves that writer schema to its own, so records written
with an older schema stay readable after fields are added (with defaults).

fastavro does the encoding and decoding; its parser validates the schema files at import.
Decoding is on the worker's per-record path, and fastavro's public ``schemaless_reader`` walks
the whole schema again at every call to collect its named types (about 11 of its 17 us for an
event), and its ``schemaless_writer`` does the same (17 us to write one). ``AvroCodec`` collects
them once per schema and calls what lies behind, ``fastavro._read._read_data`` (6 us) and
``fastavro._write.write_data`` (7 us): the one place the project touches fastavro's internals,
pinned by ``pyproject.toml`` and held equal to the public reader and writer by
``tests/unit/test_codec.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import json
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import fastavro
import fastavro._read
import fastavro._write
import fastavro.schema
import orjson

from streams.core.classify import Cell
from streams.core.crimes import KEEP_SEEN, Held
from streams.errors import DecodeError, EncodeError, InvariantError, StateError
from streams.model import OutcomeEvent
from streams.resources import SCHEMAS

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8
SCHEMA_DIR = SCHEMAS


def fingerprint(parsed_schema: Any) -> bytes:
    """8-byte CRC-64-AVRO fingerprint of a parsed schema's parsing canonical form."""
    canonical = fastavro.schema.to_parsing_canonical_form(parsed_schema)
    return bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))


def _inline_named_types(schema: Any, schema_dir: Path, skip: str) -> Any:
    """``schema`` (JSON) with references to named types defined in ``schema_dir``'s files
    replaced by their definition at first use, as ``load_schema`` does for current files."""
    raw = {f.stem: json.loads(f.read_text()) for f in schema_dir.glob("*.avsc") if f.stem != skip}
    defined: set[str] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            if node in raw and node not in defined:
                defined.add(node)
                return walk(raw[node])
            return node
        if isinstance(node, list):
            return [walk(n) for n in node]
        if isinstance(node, dict):
            if "name" in node and node.get("type") in ("record", "enum", "fixed"):
                ns = node.get("namespace")
                defined.add(f"{ns}.{node['name']}" if ns and "." not in node["name"] else node["name"])
            return {
                k: (walk(v) if k in ("type", "fields", "items", "values") else v) for k, v in node.items()
            }
        return node

    return walk(schema)


#: fastavro's reader and writer behind ``schemaless_reader`` and ``schemaless_writer`` (not in
#: its type stubs)
_read_data: Any = fastavro._read._read_data  # type: ignore[attr-defined]
_write_data: Any = fastavro._write.write_data  # type: ignore[attr-defined]
_WRITE_OPTIONS = {"strict": False, "strict_allow_default": False, "disable_tuple_notation": False}

#: fastavro's reader options, as its public ``schemaless_reader`` passes them by default
READ_OPTIONS = {
    "return_record_name": False,
    "return_record_name_override": False,
    "handle_unicode_errors": "strict",
    "return_named_type": False,
    "return_named_type_override": False,
}


class AvroCodec:
    """Encodes and decodes one record type with single-object framing."""

    def __init__(self, name: str, schema_dir: Path = SCHEMA_DIR) -> None:
        path = schema_dir / f"{name}.avsc"
        if not path.exists():
            raise FileNotFoundError(f"schema file {path} is missing")
        self.name = name
        self.schema = fastavro.schema.load_schema(str(path), _write_hint=False)
        self.fingerprint = fingerprint(self.schema)
        self._header = MAGIC + self.fingerprint
        #: fingerprint -> how to read a body that writer wrote: (writer schema, named types of
        #: writer and reader, reader schema or None when the writer is the reader's own schema)
        self._own = self._reader(self.schema, None)
        self._readers: dict[bytes, tuple[Any, dict[str, dict[str, Any]], Any]] = {self.fingerprint: self._own}
        history = schema_dir / "history"
        if history.is_dir():
            for old in sorted(history.glob(f"{name}.*.avsc")):
                old_json = _inline_named_types(json.loads(old.read_text()), schema_dir, skip=name)
                parsed = fastavro.schema.parse_schema(old_json, _write_hint=False)
                self._readers.setdefault(fingerprint(parsed), self._reader(parsed, self.schema))

    @staticmethod
    def _reader(writer: Any, reader: Any) -> tuple[Any, dict[str, dict[str, Any]], Any]:
        named: dict[str, dict[str, Any]] = {"writer": {}, "reader": {}}
        writer = fastavro.schema.parse_schema(writer, named["writer"], _write_hint=False)
        if reader is not None:
            reader = fastavro.schema.parse_schema(reader, named["reader"], _write_hint=False)
        return writer, named, reader

    @property
    def writer_fingerprints(self) -> list[bytes]:
        """Fingerprints of every writer schema this codec reads (its own first)."""
        return list(self._readers)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        buf = bytearray(self._header)
        try:
            _write_data(buf, record, self._own[0], self._own[1]["writer"], "", _WRITE_OPTIONS)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise EncodeError(f"cannot encode {self.name}: {exc}") from exc
        return bytes(buf)

    def decode(self, data: bytes) -> dict[str, Any]:
        if len(data) < HEADER_LEN or data[:2] != MAGIC:
            raise DecodeError(
                f"not an Avro single-object record ({len(data)} bytes, starts {data[:4].hex() or 'empty'})",
                reason="undecodable",
            )
        fp = data[2:HEADER_LEN]
        try:
            writer, named, reader = self._readers[fp]
        except KeyError:
            raise DecodeError(
                f"unknown writer schema fingerprint {fp.hex()} for {self.name}",
                reason="unknown_schema",
            ) from None
        buf = io.BytesIO(data)
        buf.seek(HEADER_LEN)
        try:
            record = _read_data(buf, writer, named, reader, READ_OPTIONS)
        except Exception as exc:  # fastavro raises many types on bad bytes; all mean the same here
            raise DecodeError(
                f"malformed {self.name} body: {type(exc).__name__}: {exc}", reason="undecodable"
            ) from exc
        if buf.tell() != len(data):
            raise DecodeError(
                f"{len(data) - buf.tell()} trailing bytes after the {self.name} body",
                reason="undecodable",
            )
        if not isinstance(record, dict):
            raise DecodeError(f"{self.name} body is not a record", reason="undecodable")
        return record


_EVENTS = AvroCodec("disposalwatch.OutcomeEvent")
EVENT_CODEC = _EVENTS
_EVENTS_HEADER = MAGIC + _EVENTS.fingerprint


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


_FAST = _fast_outcome_ok(_EVENTS)
_DISPOSAL_INDEX = {
    s.replace("_", "-"): _SMALL[i] for i, s in enumerate(_fields(_EVENTS)["disposal"]["symbols"])
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
            _EVENTS._header,
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
    return _EVENTS.encode(
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


def decode_outcome(data: bytes) -> OutcomeEvent:
    """Bytes -> event. Raises ``DecodeError`` (reason ``undecodable`` or ``unknown_schema``)."""
    if _FAST and data[2:HEADER_LEN] == _FAST_FOR and data[:2] == MAGIC:
        event = _read_event(data, HEADER_LEN)
        if event is not None:
            return event
    r = _EVENTS.decode(data)
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
# into the event. The same reader, compiled (``streams/_event_reader.c``), is used where it was
# built (``EVENT_READER``); this one is the fallback, and the reference the compiled one follows
# line for line. It reads only bytes of the current schema (fingerprint checked by the caller)
# and gives up (None) at anything it does not expect: a length past the end, a union branch or
# enum index out of range, a boolean byte other than 0 or 1, bytes that are not UTF-8, or
# trailing bytes. fastavro then reads the record and gives the error. tests/unit/test_codec.py
# holds it equal to fastavro's reader on the writer's corpus and on generated events.

_DISPOSALS_READ = tuple(s.replace("_", "-") for s in _fields(_EVENTS)["disposal"]["symbols"])
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
) = _slot_setters(
    OutcomeEvent,
    (
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
    ),
)


def _compiled_reader() -> Callable[[bytes, int], OutcomeEvent | None] | None:
    """The compiled reader (``streams/_event_reader.c``) set up for the event class, or None
    where it was not built (it is optional: a machine without a C compiler installs without
    it, and reads events at half the speed)."""
    try:
        from streams import _event_reader
    except ImportError:
        return None
    fields = tuple(f.name for f in dataclasses.fields(OutcomeEvent))
    _event_reader.configure(OutcomeEvent, tuple(OutcomeEvent.__dict__[n] for n in fields), _DISPOSALS_READ)
    return _event_reader.read


_compiled = _compiled_reader()
#: which reader decodes events of the current schema: "compiled" or "python" (logged at start)
EVENT_READER = "compiled" if _compiled is not None else "python"
#: (data, start) -> the event, or None: fastavro reads it instead
_read_event: Callable[[bytes, int], OutcomeEvent | None] = (
    _compiled if _compiled is not None else _fast_decode_outcome
)


_ALERTS = AvroCodec("disposalwatch.Alert")
ALERT_CODEC = _ALERTS


def encode_alert(record: Mapping[str, Any]) -> bytes:
    """An alert transition (``alerts.lifecycle.Transition.record()``) -> alerts-topic bytes."""
    return _ALERTS.encode(record)


def decode_alert(data: bytes) -> dict[str, Any]:
    """Alerts-topic bytes -> the record; raises ``DecodeError``."""
    return _ALERTS.decode(data)


# --- per-crime state, as the store and its changelog hold it --------------------------------
# One table value per crime, kept in memory (or RocksDB) and in the changelog, so it is packed:
#   format (1) | flags (1: bit 0 domestic abuse) | partition (u32) | offset (i64) |
#   day ordinal (u32) | number of digests n (1) | n event digests (u64) | force US category US
#   disposal (UTF-8, US = \x1f)
# about 70 bytes for a crime with one outcome. The partition lets counters be rebuilt per
# partition. (This was an orjson array until 0.3: orjson >= 3.12 returns every small result in
# a 4 KiB buffer, which made the memory store cost 4 KiB per crime. Those values still decode.)

_HELD_FORMAT = 1
_HELD_HEAD = struct.Struct("<BBIqIB")
#: the head followed by n digests, one Struct per n (a crime keeps at most KEEP_SEEN)
_HELD_STRUCTS = [struct.Struct(f"<BBIqIB{n}Q") for n in range(KEEP_SEEN + 1)]


def encode_held(held: Held, partition: int) -> bytes:
    c = held.cell
    head = _HELD_STRUCTS[len(held.seen)].pack(
        _HELD_FORMAT, c.domestic_abuse, partition, held.offset, c.day.toordinal(), len(held.seen), *held.seen
    )
    return head + f"{c.force}\x1f{c.category}\x1f{c.disposal}".encode()


_HELD_DAY = struct.Struct("<I")
#: where the day of a crime's latest outcome sits in its packed state (after format, flags,
#: partition and offset)
_HELD_DAY_AT = 14


def held_day(data: bytes) -> int:
    """The ordinal day of a stored state's cell, without decoding the rest (the retention sweep
    and the store's expiry index read it for every state they touch)."""
    if data[:1] == b"[":
        return decode_held(data)[0].cell.day.toordinal()
    try:
        day: int = _HELD_DAY.unpack_from(data, _HELD_DAY_AT)[0]
    except struct.error as exc:
        raise StateError(f"unreadable crime state {data[:40]!r}: {exc}") from exc
    return day


#: where a packed state's digests begin, and its count of them
_HELD_SEEN_AT = _HELD_HEAD.size
_HELD_COUNT_AT = _HELD_HEAD.size - 1
#: per domestic-abuse flag: stored cell text (force, category, disposal joined by 0x1f) -> the
#: combination, one object for every crime of it (as many as the combinations met)
_COMBOS: tuple[dict[bytes, tuple[str, str, str, bool]], ...] = ({}, {})


def held_combo(data: bytes) -> tuple[tuple[str, str, str, bool], int]:
    """((force, category, disposal, domestic-abuse flag), ordinal day) of a stored state's cell,
    without decoding the rest: deriving counts reads one for every crime held."""
    if data[:1] != b"\x01":  # another format: decoded in full
        cell = decode_held(data)[0].cell
        return (cell.force, cell.category, cell.disposal, cell.domestic_abuse), cell.day.toordinal()
    try:
        text = data[_HELD_SEEN_AT + 8 * data[_HELD_COUNT_AT] :]
        flag = data[1] & 1
        combos = _COMBOS[flag]
        combo = combos.get(text)
        if combo is None:
            force, category, disposal = text.decode().split("\x1f")
            combo = combos[text] = (force, category, disposal, bool(flag))
        day: int = _HELD_DAY.unpack_from(data, _HELD_DAY_AT)[0]
    except (ValueError, IndexError, struct.error) as exc:
        raise StateError(f"unreadable crime state {data[:40]!r}: {exc}") from exc
    return combo, day


def decode_held(data: bytes) -> tuple[Held, int]:
    """Table value -> (state, partition). Raises ``StateError`` for bytes no version wrote."""
    try:
        if data[:1] == b"[":
            return _decode_held_json(data)
        fmt, flags, partition, offset, day, n = _HELD_HEAD.unpack_from(data)
        if fmt != _HELD_FORMAT:
            raise ValueError(f"format {fmt}")
        layout = _HELD_STRUCTS[n]
        seen = layout.unpack_from(data)[6:]
        force, category, disposal = data[layout.size :].decode().split("\x1f")
        cell = Cell(force, category, disposal, dt.date.fromordinal(day), bool(flags & 1))
    except (ValueError, IndexError, struct.error) as exc:
        raise StateError(f"unreadable crime state {data[:40]!r}: {exc}") from exc
    return Held(cell, seen, offset), partition


def _decode_held_json(data: bytes) -> tuple[Held, int]:
    force, category, disposal, day, da, seen, offset, partition = orjson.loads(data)
    cell = Cell(force, category, disposal, dt.date.fromordinal(day), bool(da))
    return Held(cell, tuple(int.from_bytes(bytes.fromhex(d), "little") for d in seen), offset), partition
