"""Confluent's wire format beside Avro single-object encoding: framing and per-id readers.

A record in Confluent's wire format is a ``0x00`` byte, the writer schema's registry id (4 bytes,
big-endian), then the Avro binary body: what Confluent's serializers, ``confluent-kafka``'s
``AvroSerializer``, Kafka Connect and most managed offerings write. Single-object encoding
(``streams.codec``) starts ``C3 01``, so the first byte tells the two apart.

``Framing`` is how the project writes a topic: single-object bytes as the codec makes them, or
the same body under a registry id. ``Readers`` is how the worker reads one: a registry id maps to
the writer schema the registry gave for it, resolved to the project's own (reader) schema. An id
whose schema has the reader's parsing canonical form reads through the codec's own path (for
events, the reader written out for the schema: ``codec._fast_decode_outcome``), so the framing
costs the counting loop only the header swap. Nothing here speaks HTTP: the registry shell
(``streams.schema_registry``) fetches schemas and hands them to ``Readers.learn``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import fastavro
import fastavro.read
import fastavro.schema

from streams.codec import (
    ALERT_CODEC,
    EVENT_CODEC,
    HEADER_LEN,
    MAGIC,
    READ_OPTIONS,
    AvroCodec,
    decode_alert,
    decode_outcome,
    decode_outcome_body,
    fingerprint,
)
from streams.codec.avro import read_data
from streams.errors import DecodeError
from streams.model import OutcomeEvent

CONFLUENT_MAGIC = 0
CONFLUENT_HEADER_LEN = 5
#: schema ids are unsigned 32-bit on the wire; Confluent's and Apicurio's start at 1
MAX_SCHEMA_ID = 2**32 - 1

#: dead-letter reasons of records framed for a registry
UNKNOWN_SCHEMA_ID = "unknown_schema_id"
SCHEMA_UNRESOLVABLE = "schema_unresolvable"


def confluent_header(schema_id: int) -> bytes:
    if not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise ValueError(f"schema id {schema_id} does not fit the Confluent wire format")
    return bytes([CONFLUENT_MAGIC]) + schema_id.to_bytes(4, "big")


def schema_id_of(data: bytes) -> int | None:
    """The registry id of a record in Confluent's wire format; None for any other framing."""
    if len(data) >= CONFLUENT_HEADER_LEN and data[0] == CONFLUENT_MAGIC:
        return int.from_bytes(data[1:CONFLUENT_HEADER_LEN], "big")
    return None


@dataclass(frozen=True)
class Framing:
    """How the project frames what it writes to one topic. ``schema_id`` None: single-object
    encoding (no registry); else Confluent's wire format under that id."""

    schema_id: int | None = None

    def frame(self, single_object: bytes) -> bytes:
        """``single_object`` (the codec's bytes) in this framing: the body is the same."""
        if self.schema_id is None:
            return single_object
        return confluent_header(self.schema_id) + single_object[HEADER_LEN:]


SINGLE_OBJECT = Framing()


@dataclass(frozen=True)
class _Resolved:
    """How to read bodies of one registry id: through the codec (the reader's own schema), or
    fastavro resolving ``writer`` to the reader's schema."""

    own: bool
    writer: Any = None
    named: Any = None
    reader: Any = None


@dataclass(frozen=True)
class _Refused:
    """A registry id whose records are dead-lettered: unknown to the registry, or a schema that
    is not Avro or does not parse."""

    reason: str
    message: str


class Readers:
    """Registry id -> how to read its records, for one record type (``codec_name``).

    Ids are learnt from the registry (``learn``, ``unknown``) before records of them are read;
    ``body`` of an id never learnt is a bug in the caller, and raises ``KeyError``."""

    def __init__(self, codec: AvroCodec) -> None:
        self.codec = codec
        self._own_fingerprint = codec.fingerprint
        self._by_id: dict[int, _Resolved | _Refused] = {}
        self._single_object_header = MAGIC + self._own_fingerprint
        #: Confluent headers (magic and id) of ids whose schema is the reader's own
        self.own_headers: set[bytes] = set()

    def knows(self, schema_id: int) -> bool:
        return schema_id in self._by_id

    def missing(self, values: Any) -> set[int]:
        """Registry ids among ``values`` (record values, None allowed) not learnt yet. On the
        counting path: the first five bytes of every record, collected as a set (a batch holds
        one or two), then looked at."""
        heads = {data[:CONFLUENT_HEADER_LEN] for data in values if data}
        ids = {schema_id_of(head) for head in heads if head[0] == CONFLUENT_MAGIC}
        return {i for i in ids if i is not None and i not in self._by_id}

    def learn(self, schema_id: int, schema_type: str | None, schema_str: str) -> None:
        """Record what the registry gave for ``schema_id``."""
        if (schema_type or "AVRO").upper() != "AVRO":
            self._by_id[schema_id] = _Refused(
                SCHEMA_UNRESOLVABLE, f"schema id {schema_id} is a {schema_type} schema, not Avro"
            )
            return
        named: dict[str, dict[str, Any]] = {"writer": {}, "reader": {}}
        try:
            writer = fastavro.schema.parse_schema(json.loads(schema_str), named["writer"], _write_hint=False)
        except Exception as exc:  # noqa: BLE001 - fastavro raises many types on a bad schema
            self._by_id[schema_id] = _Refused(
                SCHEMA_UNRESOLVABLE, f"schema id {schema_id} does not parse: {type(exc).__name__}: {exc}"
            )
            return
        if fingerprint(writer) == self._own_fingerprint:
            self._by_id[schema_id] = _Resolved(own=True)
            self.own_headers.add(confluent_header(schema_id))
            return
        reader = fastavro.schema.parse_schema(self.codec.schema, named["reader"], _write_hint=False)
        self._by_id[schema_id] = _Resolved(own=False, writer=writer, named=named, reader=reader)

    def unknown(self, schema_id: int) -> None:
        """The registry does not know ``schema_id``: its records are dead-lettered."""
        message = f"schema id {schema_id} is unknown to the registry"
        self._by_id[schema_id] = _Refused(UNKNOWN_SCHEMA_ID, message)

    def body(self, data: bytes) -> tuple[_Resolved, bytes]:
        """For a record in Confluent's wire format: how to read it, and the same body as the
        codec's single-object bytes when the writer is the reader's own schema."""
        schema_id = int.from_bytes(data[1:CONFLUENT_HEADER_LEN], "big")
        how = self._by_id[schema_id]
        if isinstance(how, _Refused):
            raise DecodeError(how.message, reason=how.reason)
        if how.own:
            return how, self._single_object_header + data[CONFLUENT_HEADER_LEN:]
        return how, data

    def resolve(self, how: _Resolved, data: bytes) -> dict[str, Any]:
        """The record in ``data`` (Confluent's wire format, a writer other than the reader's
        own schema), resolved to the reader's schema."""
        buf = io.BytesIO(data)
        buf.seek(CONFLUENT_HEADER_LEN)
        try:
            record = read_data(buf, how.writer, how.named, how.reader, READ_OPTIONS)
        except fastavro.read.SchemaResolutionError as exc:
            raise DecodeError(
                f"the writer schema cannot be resolved to {self.codec.name}: {exc}",
                reason=SCHEMA_UNRESOLVABLE,
            ) from exc
        except Exception as exc:  # noqa: BLE001 - fastavro raises many types on bad bytes
            raise DecodeError(
                f"malformed {self.codec.name} body: {type(exc).__name__}: {exc}", reason="undecodable"
            ) from exc
        if buf.tell() != len(data):
            raise DecodeError(f"{len(data) - buf.tell()} trailing bytes after the {self.codec.name} body")
        if not isinstance(record, dict):
            raise DecodeError(f"{self.codec.name} body is not a record")
        return record


class EventReader:
    """Reads the disposals topic in both framings."""

    def __init__(self) -> None:
        self.readers = Readers(EVENT_CODEC)
        self._own_headers = self.readers.own_headers

    def decode(self, data: bytes) -> OutcomeEvent:
        """On the counting path: an id of the reader's own schema reads its body in place."""
        if data[:1] == b"\x00":
            if data[:CONFLUENT_HEADER_LEN] in self._own_headers:
                return decode_outcome_body(data, CONFLUENT_HEADER_LEN)
            if len(data) < CONFLUENT_HEADER_LEN:
                return decode_outcome(data)  # the codec's error
            how, body = self.readers.body(data)
            if how.own:
                return decode_outcome(body)
            record = self.readers.resolve(how, body)
            record["disposal"] = record["disposal"].replace("_", "-")
            try:
                return OutcomeEvent(**record)
            except TypeError as exc:
                raise DecodeError(f"not an OutcomeEvent: {exc}") from exc
        return decode_outcome(data)


class AlertReader:
    """Reads the alerts topic in both framings."""

    def __init__(self) -> None:
        self.readers = Readers(ALERT_CODEC)

    def decode(self, data: bytes) -> dict[str, Any]:
        if data and data[0] == CONFLUENT_MAGIC and len(data) >= CONFLUENT_HEADER_LEN:
            how, body = self.readers.body(data)
            if how.own:
                return decode_alert(body)
            return self.readers.resolve(how, body)
        return decode_alert(data)
