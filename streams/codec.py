"""Bytes on the wire <-> values: Avro events and alerts, and the worker's per-crime state.

Framing: Avro single-object encoding (Avro spec, "Single object encoding"): the two bytes
``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's parsing
canonical form, then the Avro binary body. A reader
looks the fingerprint up among the schemas it knows (every ``*.avsc`` under ``schemas/avro``
and ``schemas/avro/history``) and resolves that writer schema to its own, so records written
with an older schema stay readable after fields are added (with defaults).

fastavro does the encoding and decoding; its parser validates the schema files at import.
Decoding is on the worker's per-record path, and fastavro's public ``schemaless_reader`` walks
the whole schema again at every call to collect its named types (about 11 of its 17 us for an
event). ``AvroCodec`` collects them once per writer schema and calls the reader behind it,
``fastavro._read._read_data`` (6 us): the one place the project touches fastavro's internals,
pinned by ``pyproject.toml`` and held equal to the public reader by ``tests/unit/test_codec.py``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fastavro
import fastavro._read
import fastavro.schema
import orjson

from streams.core.classify import Cell
from streams.core.crimes import KEEP_SEEN, Held
from streams.errors import DecodeError, EncodeError, StateError
from streams.model import OutcomeEvent

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "avro"


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


#: fastavro's reader behind ``schemaless_reader`` (not in its type stubs)
_read_data: Any = fastavro._read._read_data  # type: ignore[attr-defined]

#: fastavro's reader options, as its public ``schemaless_reader`` passes them by default
_READ_OPTIONS = {
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
        self._readers: dict[bytes, tuple[Any, dict[str, dict[str, Any]], Any]] = {
            self.fingerprint: self._reader(self.schema, None)
        }
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
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self.schema, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise EncodeError(f"cannot encode {self.name}: {exc}") from exc
        return buf.getvalue()

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
            record = _read_data(buf, writer, named, reader, _READ_OPTIONS)
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


def encode_outcome(event: OutcomeEvent) -> bytes:
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


def decode_outcome(data: bytes) -> OutcomeEvent:
    """Bytes -> event. Raises ``DecodeError`` (reason ``undecodable`` or ``unknown_schema``)."""
    r = _EVENTS.decode(data)
    r["disposal"] = r["disposal"].replace("_", "-")
    return OutcomeEvent(**r)


_ALERTS = AvroCodec("disposalwatch.Alert")


def encode_alert(record: Mapping[str, Any]) -> bytes:
    """An alert transition (``alerts.lifecycle.Transition.record()``) -> alerts-topic bytes."""
    return _ALERTS.encode(record)


def decode_alert(data: bytes) -> dict[str, Any]:
    """Alerts-topic bytes -> the record; raises ``DecodeError``."""
    return _ALERTS.decode(data)


# --- per-crime state, as the worker's `crimes` table stores it --------------------------------
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
