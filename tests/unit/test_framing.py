"""Confluent's wire format beside single-object encoding: the same body under a registry id,
writer schemas resolved to the project's, and a record of an id that cannot be read refused with
a reason of its own."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import io
import json
from typing import Any

import fastavro
import pytest

from streams.codec import ALERT_CODEC, EVENT_CODEC, HEADER_LEN, encode_alert, encode_outcome
from streams.errors import DecodeError
from streams.framing import (
    SCHEMA_UNRESOLVABLE,
    SINGLE_OBJECT,
    UNKNOWN_SCHEMA_ID,
    AlertReader,
    EventReader,
    Framing,
    confluent_header,
    schema_id_of,
)
from streams.model import OutcomeEvent
from tests.unit.test_codec import EVENT

OWN = json.dumps(EVENT_CODEC.schema)


def confluent(schema_id: int, schema: dict, record: dict) -> bytes:  # type: ignore[type-arg]
    """What a stock Confluent serializer writes: magic, id, then the schemaless Avro body."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return confluent_header(schema_id) + buf.getvalue()


def record_of(event: OutcomeEvent) -> dict[str, Any]:
    r = {f["name"]: getattr(event, f["name"]) for f in EVENT_CODEC.schema["fields"]}
    r["disposal"] = r["disposal"].replace("-", "_")
    return r


def test_the_framing_swaps_the_header_and_keeps_the_body() -> None:
    single = encode_outcome(EVENT)
    framed = Framing(7).frame(single)
    assert framed[:5] == b"\x00\x00\x00\x00\x07" and framed[5:] == single[HEADER_LEN:]
    assert schema_id_of(framed) == 7 and schema_id_of(single) is None
    assert SINGLE_OBJECT.frame(single) is single
    with pytest.raises(ValueError, match="does not fit"):
        confluent_header(2**32)


def test_a_stock_serializers_bytes_read_as_the_event_and_single_object_still_reads() -> None:
    reader = EventReader()
    data = confluent(41, EVENT_CODEC.schema, record_of(EVENT))
    assert reader.readers.missing([data, None, b"", encode_outcome(EVENT)]) == {41}
    reader.readers.learn(41, "AVRO", OWN)
    assert reader.readers.missing([data]) == set()
    assert reader.decode(data) == EVENT
    assert reader.decode(Framing(41).frame(encode_outcome(EVENT))) == EVENT
    assert reader.decode(encode_outcome(EVENT)) == EVENT


def test_an_older_or_newer_writer_schema_resolves_to_the_readers() -> None:
    """A producer's schema with a field the reader lacks, and without one the reader has a
    default for: the event reads as the reader's."""
    writer = copy.deepcopy(EVENT_CODEC.schema)
    writer["fields"] = [f for f in writer["fields"] if f["name"] != "outcome_text"]
    writer["fields"].append({"name": "officer_rank", "type": "string"})
    record = {k: v for k, v in record_of(EVENT).items() if k != "outcome_text"} | {"officer_rank": "PC"}
    reader = EventReader()
    reader.readers.learn(9, None, json.dumps(writer))
    assert reader.decode(confluent(9, writer, record)) == EVENT


def test_a_writer_without_a_field_the_reader_needs_is_dead_lettered_with_its_reason() -> None:
    writer = copy.deepcopy(EVENT_CODEC.schema)
    writer["fields"] = [f for f in writer["fields"] if f["name"] != "crime_ref"]
    record = {k: v for k, v in record_of(EVENT).items() if k != "crime_ref"}
    reader = EventReader()
    reader.readers.learn(12, "AVRO", json.dumps(writer))
    with pytest.raises(DecodeError) as info:
        reader.decode(confluent(12, writer, record))
    assert info.value.reason == SCHEMA_UNRESOLVABLE and "crime_ref" in str(info.value)


@pytest.mark.parametrize(
    ("teach", "reason", "words"),
    [
        (lambda r: r.unknown(5), UNKNOWN_SCHEMA_ID, "schema id 5 is unknown to the registry"),
        (lambda r: r.learn(5, "JSON", "{}"), SCHEMA_UNRESOLVABLE, "a JSON schema, not Avro"),
        (lambda r: r.learn(5, "AVRO", '{"type": "nope"}'), SCHEMA_UNRESOLVABLE, "does not parse"),
    ],
)
def test_an_id_that_cannot_be_read_is_refused_with_a_reason_of_its_own(teach, reason, words) -> None:  # type: ignore[no-untyped-def]
    reader = EventReader()
    teach(reader.readers)
    with pytest.raises(DecodeError) as info:
        reader.decode(Framing(5).frame(encode_outcome(EVENT)))
    assert info.value.reason == reason and words in str(info.value)


def test_a_cut_body_is_undecodable_not_a_crash() -> None:
    writer = copy.deepcopy(EVENT_CODEC.schema)
    writer["fields"].append({"name": "extra", "type": "long"})
    reader = EventReader()
    reader.readers.learn(3, "AVRO", json.dumps(writer))
    data = confluent(3, writer, record_of(EVENT) | {"extra": 5})
    with pytest.raises(DecodeError) as info:
        reader.decode(data[:-4])
    assert info.value.reason == "undecodable"
    with pytest.raises(DecodeError, match="trailing bytes"):
        reader.decode(data + b"\x00")


def test_alerts_read_in_both_framings() -> None:
    record = {
        "schema_version": 2, "fingerprint": "ab", "rule_id": "r", "force_id": "kent", "category": "stalking",
        "state": "firing", "severity": "high", "measure": "case", "value": 1.0, "threshold": 1.0,
        "numerator": 1, "denominator": None, "window_start": dt.date(2025, 6, 3),
        "window_end": dt.date(2025, 6, 30), "p0": None, "limit": None, "crime_refs": ["x"],
        "transition_at": dt.datetime(2026, 12, 1, 9, 12, 15, 111000, tzinfo=dt.UTC), "description": "d",
        "summary": "s", "confidence": None, "interval_low": None, "interval_high": None, "resolve_at": 1.0,
        "baseline_numerator": None, "baseline_denominator": None, "p_value": None,
    }  # fmt: skip
    reader = AlertReader()
    reader.readers.learn(2, "AVRO", json.dumps(ALERT_CODEC.schema))
    single = encode_alert(record)
    assert reader.decode(Framing(2).frame(single)) == reader.decode(single)
    assert reader.decode(single)["rule_id"] == "r"


def test_the_readers_own_id_reads_in_place_as_single_object_does_and_refuses_garbage() -> None:
    reader = EventReader()
    reader.readers.learn(1, "AVRO", OWN)
    events = [
        dataclasses.replace(EVENT, crime_ref=f"DUR/{i}", outcome_text="x" * i) for i in range(0, 300, 7)
    ]
    assert [reader.decode(Framing(1).frame(encode_outcome(e))) for e in events] == events
    for garbage in (confluent_header(1), confluent_header(1) + b"\xff" * 9, b"\x00\x00"):
        with pytest.raises(DecodeError) as info:
            reader.decode(garbage)
        assert info.value.reason == "undecodable"
