"""Thousands of malformed and invalid records mixed with good ones: good counts stay exact,
every bad record lands in the dead-letter topic with its original bytes and reason."""

import dataclasses
import datetime as dt
import random
import re
import time
from collections import Counter
from typing import Any

from kafka import KafkaConsumer

from streams.codec import decode_outcome, encode_outcome
from streams.errors import DecodeError
from streams.simulate import simulate

from .conftest import Deployment, expected_counts, reference_category, today


def bad_records(n: int, rng: random.Random) -> list[tuple[bytes, bytes, str]]:
    template = next(iter(simulate(1, seed=99)))
    good = encode_outcome(template)
    out = []
    for i in range(n):
        kind = i % 10
        ev = dataclasses.replace(template, crime_ref=f"BAD-{i}", event_id=f"bad-{i}")
        if kind == 0:
            value, reason = rng.randbytes(rng.randrange(1, 80)), "undecodable"
        elif kind == 1:
            whole = encode_outcome(ev)
            value, reason = whole[: rng.randrange(10, len(whole))], "undecodable"
        elif kind == 2:
            value, reason = b"\xc3\x01" + rng.randbytes(8) + good[10:], "unknown_schema"
        elif kind == 3:
            value, reason = (
                encode_outcome(dataclasses.replace(ev, force_id="gotham")),
                "unknown_force",
            )
        elif kind == 4:
            value, reason = (
                encode_outcome(dataclasses.replace(ev, outcome_number=1, disposal="caution")),
                "unknown_outcome",
            )
        elif kind == 5:
            value, reason = (
                encode_outcome(dataclasses.replace(ev, offence_code=None, crime_type="Piracy")),
                "unknown_crime_type",
            )
        elif kind == 6:
            value, reason = (
                encode_outcome(dataclasses.replace(ev, outcome_date=today() + dt.timedelta(days=30))),
                "future_outcome",
            )
        elif kind == 7:
            value, reason = (
                encode_outcome(dataclasses.replace(ev, outcome_date=today() - dt.timedelta(days=500))),
                "beyond_retention",
            )
        elif kind == 8:
            value, reason = encode_outcome(dataclasses.replace(ev, event_id="")), "schema_invalid"
        else:
            value, reason = b"", "undecodable"
        try:  # a record that reads as an event is keyed by its crime, as a producer keys it
            key = decode_outcome(value).crime_key.encode()
        except DecodeError:
            key = f"bad/{i}".encode()
        out.append((key, value, reason))
    return out


def test_bad_input_is_dead_lettered_and_good_counts_are_exact(deployment: Deployment) -> None:
    rng = random.Random(7)
    good = list(simulate(4000, seed=21))
    bad = bad_records(2000, rng)
    # interleave, keeping the good events' own order (latest-outcome ties depend on it)
    slots = sorted(rng.sample(range(len(good) + len(bad)), len(bad)))
    records: list[tuple[bytes, bytes]] = []
    gi = bi = 0
    for pos in range(len(good) + len(bad)):
        if bi < len(slots) and slots[bi] == pos:
            records.append(bad[bi][:2])
            bi += 1
        else:
            records.append((good[gi].crime_key.encode(), encode_outcome(good[gi])))
            gi += 1
    deployment.produce_raw(records)
    worker = deployment.start_worker()
    deployment.wait()

    assert deployment.counts(worker) == expected_counts(good, reference_category)

    settings = deployment.settings
    consumer = KafkaConsumer(
        settings.dlq_topic,
        bootstrap_servers=settings.kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    dead: list[Any] = []
    deadline = time.monotonic() + 60
    while len(dead) < len(bad) and time.monotonic() < deadline:
        dead.extend(consumer)
    consumer.close()
    assert len(dead) == len(bad)
    got = Counter((m.key, m.value, dict(m.headers)["dw.reason"].decode()) for m in dead)
    assert got == Counter(bad)
    for m in dead:
        h = dict(m.headers)
        assert h["dw.topic"].decode() == settings.disposals_topic
        assert int(h["dw.partition"]) in range(settings.partitions) and int(h["dw.offset"]) >= 0
        assert h["dw.error"]

    metrics = worker.metrics()
    for reason, n in Counter(r for _, _, r in bad).items():
        m = re.search(rf'disposal_events_rejected_total{{reason="{reason}"}} (\S+)', metrics)
        assert m and float(m.group(1)) == n, reason


def test_one_crimes_events_on_two_partitions_count_once(deployment: Deployment) -> None:
    """A producer that does not partition by murmur2 of the crime key (librdkafka's default
    CRC32, null keys, explicit partitions) can put one crime's events on two partitions. The
    one on the partition its key picks counts; the other is dead-lettered as wrong_partition."""
    from confluent_kafka import Producer

    from streams.core.partitioner import partition_of

    s = deployment.settings
    first, second = simulate(2, seed=3)
    second = dataclasses.replace(
        first, event_id="later", disposal="charge", outcome_number=1,
        outcome_date=first.outcome_date + dt.timedelta(days=3),
    )  # fmt: skip
    key = first.crime_key.encode()
    home = partition_of(key, s.partitions)
    away = (home + 1) % s.partitions
    producer = Producer({"bootstrap.servers": s.kafka})
    producer.produce(s.disposals_topic, encode_outcome(first), key, partition=home)
    producer.produce(s.disposals_topic, encode_outcome(second), key, partition=away)
    assert producer.flush(30) == 0
    worker = deployment.start_worker()
    deployment.wait()
    assert deployment.counts(worker) == expected_counts([first], reference_category)
    consumer = KafkaConsumer(
        s.dlq_topic, bootstrap_servers=s.kafka, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    dead = list(consumer)
    consumer.close()
    assert [(dict(m.headers)["dw.reason"], int(dict(m.headers)["dw.partition"])) for m in dead] == [
        (b"wrong_partition", away)
    ]
    assert re.search(
        r'^disposal_events_rejected_total\{reason="wrong_partition"\} 1\.0$', worker.metrics(), re.M
    )
