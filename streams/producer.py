"""The blocking clients' side: topic set-up and reachability (kafka-python's admin client), and
the CLI's event producer (confluent-kafka) with its lag check.

The worker also uses ``ensure_topics`` before it starts. The worker itself produces only through
aiokafka (``streams.runtime.outbox``), never through a blocking client, whose send can block the
event loop.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.clients import admin_options, rdkafka_options
from streams.codec import outcome_record
from streams.errors import ConfigError
from streams.framing import SINGLE_OBJECT
from streams.model import OutcomeEvent
from streams.settings import Settings
from streams.wire import Membership, decode_membership

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """``Name: message``, without the name twice (kafka-python's messages often start with it)."""
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}" if text else name


def _unreachable(settings: Settings, exc: BaseException) -> ConfigError:
    return ConfigError(
        f"cannot reach Kafka at DW_KAFKA={settings.kafka} ({describe(exc)}); "
        "is the broker running? start one with: disposal-watch kafka start --dir var/kafka"
    )


def admin(settings: Settings) -> Any:
    from kafka import KafkaAdminClient

    options = {
        "client_id": f"{settings.app_id}-admin",
        "request_timeout_ms": 10000,
        "bootstrap_timeout_ms": 5000,
        **admin_options(settings),  # security, DW_ADMIN_* (an unknown one: ConfigError here)
    }
    try:
        return KafkaAdminClient(bootstrap_servers=settings.kafka.split(","), **options)
    except Exception as exc:
        raise _unreachable(settings, exc) from exc


#: the crimes' changelog is compacted (the latest state of each crime is kept). Compaction cleans
#: only closed segments, so they are small (16 MB, or an hour's writes): a restore reads the open
#: segment uncompacted. Tombstones are kept a minute after compaction first reaches them, not
#: Kafka's 24 hours: the only tombstones are those of crimes past the retention horizon
#: (``streams.runtime.retention``), so a restore that misses one (it read the crime's last state
#: before the tombstone went) holds a crime that the counts leave out by their horizon and the
#: next sweep deletes again; a later event of that crime counts as it would have. Kept 24 hours,
#: a backfill of three years' data left 11 million tombstones for 6.6 million crimes, read by
#: every restore. Cleaning sooner (4 MB segments, at a tenth superseded, within 10 minutes)
#: left fewer records but made the broker's cleaner compete with the worker on two cores, and
#: the national restore was slower (bench/README.md, "National scale", run 3).
CHANGELOG_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": str(60 * 60 * 1000),
    "segment.bytes": str(16 * 1024 * 1024),
    "min.cleanable.dirty.ratio": "0.3",
    "delete.retention.ms": str(60 * 1000),
}


def replication_of(settings: Settings, brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for the topics this project creates, from
    ``DW_REPLICATION_FACTOR`` (default: the cluster's brokers, at most 3) and
    ``DW_MIN_INSYNC_REPLICAS`` (default: one less than the factor from 3 up, else 1)."""
    rf = settings.replication_factor or max(1, min(3, brokers))
    if rf > brokers:
        raise ConfigError(
            f"DW_REPLICATION_FACTOR={rf}, but the cluster at DW_KAFKA has {brokers} broker(s); "
            f"set it to {brokers} or fewer"
        )
    min_isr = settings.min_insync_replicas or (rf - 1 if rf >= 3 else 1)
    if min_isr > rf:
        raise ConfigError(f"DW_MIN_INSYNC_REPLICAS={min_isr} is more than the replication factor {rf}")
    return rf, min_isr


def _described(client: Any, topics: list[str], timeout_s: float = 15.0) -> list[dict[str, Any]]:
    """``describe_topics``, asked again until every topic shows its partitions: the metadata of a
    topic created a moment ago (here or by another process) can lag behind for a while."""
    deadline = time.monotonic() + timeout_s
    while True:
        described: list[dict[str, Any]] = client.describe_topics(topics)
        if all(meta.get("partitions") for meta in described) or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


def ensure_topics(settings: Settings) -> None:
    """Create the disposals, dead-letter, alerts and changelog topics if missing, replicated as
    ``replication_of`` says; check partition counts and replication of those that exist.

    The changelog is co-partitioned with ``disposals`` (the state of a crime of source partition
    p is written to changelog partition p), so both must have ``DW_PARTITIONS`` partitions; a
    mismatch is refused with a message rather than failing inside the worker. So is a topic
    replicated fewer times than asked: an acknowledged write must survive a broker's loss.
    """
    from kafka.admin import NewTopic

    client = admin(settings)
    try:
        brokers = len(client.describe_cluster().get("brokers") or []) or 1
        rf, min_isr = replication_of(settings, brokers)
        wanted = [
            settings.disposals_topic,
            settings.dlq_topic,
            settings.alerts_topic,
            settings.changelog_topic,
        ]
        existing = set(client.list_topics())
        # alerts: one partition, so the feed has one order (its ids are offsets)
        parts = {settings.alerts_topic: 1}
        isr = {"min.insync.replicas": str(min_isr)}
        configs = {settings.changelog_topic: {**CHANGELOG_CONFIG, **isr}}
        new = [
            NewTopic(t, parts.get(t, settings.partitions), rf, topic_configs=configs.get(t, isr))
            for t in wanted
            if t not in existing
        ]
        if new:
            client = _create_topics(settings, client, new)
        for meta in _described(client, wanted):
            topic, partitions = meta["name"], meta.get("partitions") or []
            co_partitioned = topic in (settings.disposals_topic, settings.changelog_topic)
            if co_partitioned and partitions and len(partitions) != settings.partitions:
                n = len(partitions)
                raise ConfigError(
                    f"topic {topic} has {n} partitions but DW_PARTITIONS={settings.partitions}; "
                    f"set DW_PARTITIONS={n} (the changelog must match the disposals topic)"
                )
            copies = min((len(p.get("replica_nodes") or []) for p in partitions), default=rf)
            if copies < rf:
                raise ConfigError(
                    f"topic {topic} has {copies} replica(s), fewer than DW_REPLICATION_FACTOR={rf}: "
                    "raise it (kafka-reassign-partitions), or set DW_REPLICATION_FACTOR to accept it"
                )
    finally:
        client.close()


#: how long a cluster that has just started may take until every broker knows the controller
CREATE_RETRY_S = 30.0


def _create_topics(settings: Settings, client: Any, new: list[Any]) -> Any:
    """Create ``new`` (a topic another process creates meanwhile is fine); returns the admin
    client to go on with. A cluster that has just started may name as controller a broker that
    the broker answering does not know yet (kafka-python: ``UnknownBrokerIdError``): asked again
    with a new client, for up to CREATE_RETRY_S."""
    from kafka.errors import (
        NodeNotReadyError,
        NotControllerError,
        TopicAlreadyExistsError,
        UnknownBrokerIdError,
    )

    deadline = time.monotonic() + CREATE_RETRY_S
    while True:
        try:
            with contextlib.suppress(TopicAlreadyExistsError):
                client.create_topics(new, timeout_ms=15000)
            return client
        except (UnknownBrokerIdError, NodeNotReadyError, NotControllerError) as exc:
            if time.monotonic() > deadline:
                raise
            log.info("creating topics: %r while the cluster settles; asking again", exc)
            client.close()
            time.sleep(0.5)
            client = admin(settings)


def topics_ready(settings: Settings, partitions: dict[str, int]) -> bool:
    """Whether topics with these partition counts need nothing of ``ensure_topics``."""
    wanted = {
        settings.disposals_topic: settings.partitions,
        settings.changelog_topic: settings.partitions,
        settings.dlq_topic: None,
        settings.alerts_topic: None,
    }
    return all(t in partitions and n in (None, partitions[t]) for t, n in wanted.items())


class _ClientLog:
    """What confluent-kafka calls for librdkafka's log lines (``log(level, msg, *args)``)."""

    def log(self, level: int, msg: str, *args: Any) -> None:
        log.debug(msg, *args)


@dataclass
class SendStats:
    sent: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)


#: how long ``EventProducer.close`` waits for the records still queued to be acknowledged
FLUSH_S = 120.0


class EventProducer:
    """Sends events to the disposals topic, keyed by crime (force/crime reference).

    Through confluent-kafka (librdkafka): measured side by side with kafka-python and aiokafka
    on pre-encoded records (bench/ingest.py), it produced 309,000 records/s against 53,000 and
    23,000, and kafka-python's own ``send`` was 60% of the ingest's time. Keys go to the
    partitions Java's and kafka-python's clients pick (``murmur2_random``: murmur2 of the key),
    so a crime's events stay on one partition whichever producer wrote them. Idempotence keeps
    retries from reordering or doubling them.
    """

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer

        self.settings = settings
        self.stats = SendStats()
        self._topic = settings.disposals_topic
        from confluent_kafka import KafkaException

        try:
            self._producer = Producer(
                {
                    "bootstrap.servers": settings.kafka,
                    "client.id": f"{settings.app_id}-ingest",
                    "acks": "all",
                    "enable.idempotence": True,
                    "partitioner": "murmur2_random",
                    "linger.ms": 20,
                    "batch.size": 1_000_000,
                    "queue.buffering.max.messages": 500_000,
                    "message.timeout.ms": 60_000,
                    # a callback only for records that failed: one Python call per failure, not per record
                    "delivery.report.only.error": True,
                    "on_delivery": self._on_delivery,
                    "error_cb": self._on_client_error,
                    # librdkafka's own log lines, at debug: it logs every failed connection attempt
                    # (hundreds a second to a broker that is down) and retries while a fresh broker
                    # loads; what matters reaches the user as an error (unreachable, failed sends)
                    "logger": _ClientLog(),
                    **rdkafka_options(settings),  # security, then DW_RDKAFKA_*
                }
            )
        except KafkaException as exc:  # a property librdkafka does not know, or a bad value
            raise ConfigError(
                f"the CLI's producer (librdkafka) refused its settings (DW_KAFKA_*, DW_RDKAFKA_*): {exc}"
            ) from None
        self._produce = self._producer.produce
        #: how values are framed: single-object encoding, or Confluent's wire format under the id
        #: the registry gave (set by ``ensure_topics`` when DW_SCHEMA_REGISTRY_URL is set)
        self.framing = SINGLE_OBJECT

    def ensure_topics(self) -> None:
        """``ensure_topics``, asked of this producer's metadata first: when every topic exists
        with the partitions it should have (the usual case) the admin client, its import and
        its connection are not needed (about 0.2 s of an ingest's start). With a registry, the
        project's schemas are registered too, and what this producer sends is framed for it."""
        from confluent_kafka import KafkaException

        try:
            topics = self._producer.list_topics(timeout=5).topics
        except KafkaException as exc:
            raise _unreachable(self.settings, exc) from exc
        have = {name: len(meta.partitions) for name, meta in topics.items() if meta.error is None}
        if not topics_ready(self.settings, have):
            ensure_topics(self.settings)
        if self.settings.schema_registry_url is not None:
            from streams.schema_registry import register_now

            self.framing = register_now(self.settings).events

    def _on_client_error(self, err: Any) -> None:
        log.debug("Kafka client: %s", err)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.stats.failed += 1
            name = err.name()
            self.stats.errors[name] = self.stats.errors.get(name, 0) + 1

    def send(self, event: OutcomeEvent) -> None:
        self.send_raw(*outcome_record(event))

    def send_raw(self, key: bytes | None, value: bytes) -> None:
        """Send ``value`` (single-object bytes, as ``streams.codec`` makes them) in this
        producer's framing."""
        self.send_records([(key, value)])

    def send_records(self, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """``send_raw`` of each (key, value), in order: one call for a chunk of an ingest, so
        the loop over its records makes no Python call but the client's."""
        produce, topic = self._produce, self._topic
        frame = self.framing.frame if self.framing.schema_id is not None else None
        for key, value in records:
            if frame is not None:
                value = frame(value)
            try:
                produce(topic, value, key)
            except BufferError:  # the local queue is full: let the client send, then retry
                self._produce_when_room(key, value)
        before = self.stats.sent
        self.stats.sent += len(records)
        if before // 10_000 != self.stats.sent // 10_000:  # serve delivery callbacks (failures only)
            self._producer.poll(0)

    def _produce_when_room(self, key: bytes | None, value: bytes) -> None:
        while True:
            self._producer.poll(0.05)
            try:
                self._produce(self._topic, value, key)
                return
            except BufferError:
                continue

    def close(self) -> SendStats:
        left = self._producer.flush(FLUSH_S)
        if left:
            self.stats.failed += left
            self.stats.errors["NotDelivered"] = self.stats.errors.get("NotDelivered", 0) + left
        return self.stats

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def group_assignment(settings: Settings) -> tuple[str, Membership]:
    """The worker group's state ("Stable" once a rebalance is over) and which member URL owns
    each ``disposals`` partition, as the group's leader last assigned them."""
    client = admin(settings)
    try:
        group = client.describe_groups([settings.app_id]).get(settings.app_id) or {}
    finally:
        client.close()
    owners: dict[int, str] = {}
    for member in group.get("members") or []:
        data = (member.get("member_assignment") or {}).get("user_data")
        owners.update(decode_membership(data.encode() if isinstance(data, str) else data).owners)
    return str(group.get("group_state", "")), Membership(owners)


def end_offsets(settings: Settings) -> dict[int, int]:
    """Per partition of ``disposals``, the offset after the last record produced so far (the last
    stable offset: records of a transaction still open are not yet produced)."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec
    from kafka.protocol.consumer.offsets import IsolationLevel

    client = admin(settings)
    try:
        meta = client.describe_topics([settings.disposals_topic])
        parts = [p["partition_index"] for p in (meta[0].get("partitions") or [])] if meta else []
        tps = [TopicPartition(settings.disposals_topic, p) for p in sorted(parts)]
        ends = client.list_partition_offsets(
            {tp: OffsetSpec.LATEST for tp in tps}, isolation_level=IsolationLevel.READ_COMMITTED
        )
    finally:
        client.close()
    return {tp.partition: ends[tp].offset for tp in tps}


def lag(settings: Settings, ends: dict[int, int] | None = None) -> dict[int, int]:
    """Records of ``disposals`` not yet committed by the worker group, per partition: up to
    ``ends`` when given (records produced before a point in time), else up to now."""
    from kafka import TopicPartition

    ends = ends if ends is not None else end_offsets(settings)
    tps = [TopicPartition(settings.disposals_topic, p) for p in sorted(ends)]
    client = admin(settings)
    try:
        committed = client.list_group_offsets({settings.app_id: tps}).get(settings.app_id, {})
    finally:
        client.close()
    out = {}
    for tp in tps:
        meta_c = committed.get(tp)
        done = meta_c.offset if meta_c is not None and meta_c.offset >= 0 else 0
        out[tp.partition] = max(0, ends[tp.partition] - done)
    return out
