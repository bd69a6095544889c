"""Avro records with single-object framing, and the resolution of older writer schemas.

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

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fastavro
import fastavro._read
import fastavro._write
import fastavro.schema

from streams.errors import DecodeError, EncodeError
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
read_data: Any = fastavro._read._read_data  # type: ignore[attr-defined]
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
        schema = fastavro.schema.load_schema(str(path), _write_hint=False)
        if not isinstance(schema, dict):
            raise DecodeError(f"schema file {path} is not a record schema", reason="unknown_schema")
        #: the parsed schema: a record's, as JSON
        self.schema: dict[str, Any] = schema
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
            record = read_data(buf, writer, named, reader, READ_OPTIONS)
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


#: the codecs of the two record types the project writes
EVENT_CODEC = AvroCodec("disposalwatch.OutcomeEvent")
ALERT_CODEC = AvroCodec("disposalwatch.Alert")


def encode_alert(record: Mapping[str, Any]) -> bytes:
    """An alert transition (``alerts.lifecycle.Transition.record()``) -> alerts-topic bytes."""
    return ALERT_CODEC.encode(record)


def decode_alert(data: bytes) -> dict[str, Any]:
    """Alerts-topic bytes -> the record; raises ``DecodeError``."""
    return ALERT_CODEC.decode(data)
