"""Bytes on the wire <-> values, in three parts:

- ``avro``: Avro single-object framing, fastavro behind it, and the resolution of older writer
  schemas (``AvroCodec``); the alerts topic's records;
- ``events``: the disposal event's written-out writer and reader, the per-record hot paths
  (with a compiled reader, ``_event_reader.c``, where it was built);
- ``held``: the per-crime state as the store and its changelog hold it.

Importers use the names below; the modules are the places to read and change.
"""

from __future__ import annotations

from streams.codec.avro import (
    ALERT_CODEC,
    EVENT_CODEC,
    HEADER_LEN,
    MAGIC,
    READ_OPTIONS,
    SCHEMA_DIR,
    AvroCodec,
    decode_alert,
    encode_alert,
    fingerprint,
)
from streams.codec.events import (
    EVENT_READER,
    OutcomeFrame,
    decode_outcome,
    decode_outcome_body,
    encode_outcome,
    outcome_frame,
    outcome_record,
)
from streams.codec.held import decode_held, encode_held, held_combo, held_day

__all__ = [
    "ALERT_CODEC",
    "EVENT_CODEC",
    "EVENT_READER",
    "HEADER_LEN",
    "MAGIC",
    "READ_OPTIONS",
    "SCHEMA_DIR",
    "AvroCodec",
    "OutcomeFrame",
    "decode_alert",
    "decode_held",
    "decode_outcome",
    "decode_outcome_body",
    "encode_alert",
    "encode_held",
    "encode_outcome",
    "fingerprint",
    "held_combo",
    "held_day",
    "outcome_frame",
    "outcome_record",
]
