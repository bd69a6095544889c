"""A real schema registry (Apicurio Registry, Confluent's API): Confluent's wire format counted
beside single-object encoding, a stock serializer's records counted, schemas registered with
compatibility enforced, an unknown id dead-lettered, the registry away for 30 s losing nothing,
and alerts a stock deserializer reads."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from streams.codec import EVENT_CODEC
from streams.framing import confluent_header, schema_id_of
from streams.model import OutcomeEvent
from streams.simulate import simulate

from .conftest import Deployment, expected_counts, reference_category

END = dt.date(2025, 6, 30)
RULES = """\
rules:
  - {id: da-cr, description: d, severity: high, category: [other-violence, harassment, stalking],
     domestic_abuse: true, disposals: [community-resolution], measure: case}
"""


def record_of(event: OutcomeEvent, ctx: Any = None) -> dict[str, Any]:
    """The event as the dict a stock Avro serializer takes (the schema's enum symbols)."""
    r = {f["name"]: getattr(event, f["name"]) for f in EVENT_CODEC.schema["fields"]}
    r["disposal"] = r["disposal"].replace("-", "_")
    return r


def subject(d: Deployment) -> str:
    return f"{d.settings.disposals_topic}-value"


def stock_producer(d: Deployment) -> Producer:
    """An integrator's producer: librdkafka, keyed by crime, murmur2 as Java clients pick."""
    return Producer({"bootstrap.servers": d.settings.kafka, "partitioner": "murmur2_random"})


def send(producer: Producer, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    for key, value in records:
        producer.produce(topic, value, key)
    assert producer.flush(60) == 0


def read_topic(
    d: Deployment, topic: str, done: Any, timeout_s: float = 120, grace_s: float = 0, **config: Any
) -> list[Any]:
    """Every record of ``topic`` from the beginning, by assignment (no group to join), until
    ``grace_s`` after ``done(records)``, or ``timeout_s``."""
    c = Consumer({"bootstrap.servers": d.settings.kafka, "group.id": "peek", **config})
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        got: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done(got):
                deadline, done = min(deadline, time.monotonic() + grace_s), lambda _: False
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m)
        return got
    finally:
        c.close()


def dead_letters(d: Deployment, expect: int, timeout_s: float = 60) -> list[Any]:
    # a little longer than the expected count: more is a failure too
    return read_topic(d, d.settings.dlq_topic, lambda got: len(got) >= expect, timeout_s, grace_s=2)


def test_a_stock_serializer_ingest_and_single_object_are_counted_exactly(
    deployment: Deployment, registry: Any, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    deployment.env.update(DW_SCHEMA_REGISTRY_URL=registry.url, DW_CLOCK="stream", DW_RULES=str(rules))
    s = deployment.settings
    worker = deployment.start_worker()  # registers the project's schemas, FULL compatibility
    client = SchemaRegistryClient({"url": registry.url})
    assert client.get_compatibility(subject(deployment)) == "FULL"
    assert client.get_compatibility(f"{s.alerts_topic}-value") == "FULL"

    events = list(simulate(15000, seed=5, end=END))
    stock, ingested, single = events[:5000], events[5000:10000], events[10000:]
    # 1. an integrator: confluent-kafka's AvroSerializer with the project's schema
    serialize = AvroSerializer(client, json.dumps(EVENT_CODEC.schema), to_dict=record_of)
    ctx = SerializationContext(s.disposals_topic, MessageField.VALUE)
    send(stock_producer(deployment), s.disposals_topic,
         [(ev.crime_key.encode(), serialize(ev, ctx)) for ev in stock])  # fmt: skip
    # 2. the CLI, which registers and writes the Confluent framing
    f = tmp_path / "events.jsonl"
    f.write_text("".join(json.dumps(e.to_json_dict()) + "\n" for e in ingested))
    r = deployment.cli("ingest", "jsonl", str(f))
    assert r.returncode == 0, r.stderr
    # 3. single-object encoding, as before any registry
    deployment.produce(single)
    # 4. an id the registry never gave, and a producer schema that cannot be read as the event
    wrong = copy.deepcopy(EVENT_CODEC.schema)
    wrong["name"], wrong["fields"] = "Unrelated", [{"name": "x", "type": "string"}]
    other = client.register_schema("unrelated-value", Schema(json.dumps(wrong), "AVRO"))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(wrong), {"x": "y"})
    bad = [
        (b"kent/X1", confluent_header(987654) + b"\x02\x00"),
        (b"kent/X2", confluent_header(other) + buf.getvalue()),
    ]
    send(stock_producer(deployment), s.disposals_topic, bad)
    deployment.wait()

    assert deployment.counts(worker) == expected_counts(events, reference_category)
    dead = dead_letters(deployment, 2)
    reasons = sorted(dict(m.headers())["dw.reason"].decode() for m in dead)
    assert reasons == ["schema_unresolvable", "unknown_schema_id"], reasons

    # what ingest wrote carries the Confluent framing, under ids the registry knows
    framed = read_topic(deployment, s.disposals_topic, lambda got: len(got) >= len(events) + 2)
    ids = {schema_id_of(m.value()) for m in framed}
    assert None in ids  # the single-object records
    known = {i for i in ids if i is not None} - {987654, other}
    assert known and all(client.get_schema(i).schema_type in (None, "AVRO") for i in known)
    versions = client.get_versions(subject(deployment))
    assert versions  # the project's schema is registered under <topic>-value

    # a producer schema that drops a field the worker needs (no default) is refused
    dropped = copy.deepcopy(EVENT_CODEC.schema)
    dropped["fields"] = [x for x in dropped["fields"] if x["name"] != "crime_ref"]
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject(deployment), Schema(json.dumps(dropped), "AVRO"))
    assert info.value.http_status_code == 409

    # alerts: in the Confluent framing, read back by a stock deserializer equal to the feed
    feed = settled_feed(worker)
    assert feed, "the case rule should fire on the simulated data"
    deserialize = AvroDeserializer(client)
    actx = SerializationContext(s.alerts_topic, MessageField.VALUE)
    wanted = {entry["id"] for entry in feed}
    committed: dict[str, Any] = {"isolation.level": "read_committed"}
    records = read_topic(
        deployment, s.alerts_topic, lambda got: wanted <= {m.offset() for m in got}, **committed
    )
    assert all(schema_id_of(m.value()) is not None for m in records)
    read = {m.offset(): deserialize(m.value(), actx) for m in records}
    assert wanted <= read.keys(), f"feed ids not on the topic: {sorted(wanted - read.keys())}"
    for entry in feed:
        got = read[entry["id"]]
        assert (got["fingerprint"], got["rule_id"], got["state"], got["numerator"]) == (
            entry["fingerprint"], entry["rule_id"], entry["state"], entry["numerator"],
        )  # fmt: skip
        assert got["transition_at"].isoformat() == entry["transition_at"]


def settled_feed(worker: Any, timeout_s: float = 60) -> list[dict[str, Any]]:
    """Every transition the worker serves once the feed has stopped growing."""
    deadline, last, same = time.monotonic() + timeout_s, -1, 0
    while time.monotonic() < deadline:
        data = worker.get("/api/alerts?state=all")
        same = same + 1 if data["position"] == last and data["alerts"] else 0
        if same >= 4:
            return [a for a in data["alerts"]]
        last = data["position"]
        time.sleep(1.0)
    raise AssertionError("alerts did not settle")


def test_a_registry_that_refuses_the_projects_schema_stops_the_start_with_one_line(
    deployment: Deployment, registry: Any
) -> None:
    client = SchemaRegistryClient({"url": registry.url})
    other = {"type": "record", "name": "Other", "fields": [{"name": "a", "type": "string"}]}
    client.register_schema(subject(deployment), Schema(json.dumps(other), "AVRO"))
    client.set_compatibility(subject(deployment), "FULL")
    deployment.env["DW_SCHEMA_REGISTRY_URL"] = registry.url
    r = deployment.cli("simulate", "--events", "10")
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "refused disposalwatch.OutcomeEvent under subject" in lines[0], r.stderr
    r = deployment.cli(
        "simulate", "--events", "10", DW_SCHEMA_REGISTRY_URL="http://127.0.0.1:1/apis/ccompat/v7"
    )
    assert r.returncode == 2 and "cannot be reached (DW_SCHEMA_REGISTRY_URL)" in r.stderr, r.stderr


def test_the_registry_away_for_30_s_mid_stream_loses_nothing(deployment: Deployment, registry: Any) -> None:
    """Records of a schema id the worker has not learnt wait while the registry cannot be
    reached (SIGSTOP: connections hang), the worker reports itself degraded, nothing is
    dead-lettered, and every record counts once the registry answers."""
    deployment.env.update(DW_SCHEMA_REGISTRY_URL=registry.url)
    s = deployment.settings
    worker = deployment.start_worker()
    events = list(simulate(6000, seed=8))
    first, later = events[:3000], events[3000:]
    deployment.produce(first)
    deployment.wait()
    # a producer's next schema version (a field added, with a default): an id the worker has not seen
    client = SchemaRegistryClient({"url": registry.url})
    newer = copy.deepcopy(EVENT_CODEC.schema)
    newer["fields"].append({"name": "officer_rank", "type": ["null", "string"], "default": None})
    newer_id = client.register_schema(subject(deployment), Schema(json.dumps(newer), "AVRO"))
    parsed = fastavro.parse_schema(newer)

    def framed(ev: OutcomeEvent) -> bytes:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, record_of(ev) | {"officer_rank": "PC"})
        return confluent_header(newer_id) + buf.getvalue()

    os.kill(registry.pid, signal.SIGSTOP)
    try:
        send(
            stock_producer(deployment),
            s.disposals_topic,
            [(ev.crime_key.encode(), framed(ev)) for ev in later],
        )
        deadline, degraded = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            try:
                worker.get("/healthz")
            except OSError as exc:  # 503 while degraded
                degraded = getattr(exc, "read", lambda: b"")().decode() or str(exc)
            time.sleep(1)
        assert degraded is not None and "schema registry unreachable" in degraded, degraded
        assert worker.proc.poll() is None
    finally:
        os.kill(registry.pid, signal.SIGCONT)
    deployment.wait()
    assert deployment.counts(worker) == expected_counts(events, reference_category)
    assert dead_letters(deployment, 0, timeout_s=3) == []
    m = re.search(r"^disposal_schema_registry_failures_total (\S+)$", worker.metrics(), re.M)
    assert m and float(m.group(1)) >= 1
