"""The Faust application: topics, the per-crime table, and wiring. No logic lives here.

Choices that keep counts exact (see README, "Exactness"):
- ``processing_guarantee`` stays at-least-once: Faust's exactly-once mode has open duplicate
  and crash bugs (faust-streaming #517, #323); redeliveries are made harmless instead, by the
  idempotent per-crime state (``streams.crimes``).
- agents run with concurrency 1 (#606: concurrency > 1 can commit past an in-flight message).
- no windowed tables (#385, #193, #250): day buckets are keys of our own, expired by our clock.
- Faust flushes the producer (table changelog and dead-letter sends) before it commits offsets,
  so a committed offset never runs ahead of the state it produced.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import faust

from streams import metrics
from streams.buckets import DayCounts
from streams.settings import Settings

log = logging.getLogger(__name__)

CRIMES_TABLE = "crimes"


@dataclass
class DisposalApp:
    """The Faust app with its topics and table, and the worker's in-memory counts."""

    settings: Settings
    app: Any  # faust.App (untyped library)
    disposals: Any
    dead_letters: Any
    crimes: Any
    #: hashed bearer tokens from DW_TOKENS_FILE; None when not configured (localhost only)
    tokens: list[Any] | None = None
    #: per partition of ``disposals`` this worker owns: counts derived from the crimes it holds
    counts: dict[int, DayCounts] = field(default_factory=dict)
    recovering: bool = True
    #: records the agent has taken from the disposals topic since start (accepted or rejected)
    processed: int = 0
    #: set by the agent when it counted a case-rule breach: the evaluator runs without waiting
    evaluate_soon: asyncio.Event = field(default_factory=asyncio.Event)
    #: case rules, for the agent's breach check
    case_rules: list[Any] = field(default_factory=list)
    #: produced records not yet acknowledged (streams/commit_guard.py); None until wired
    unacked: Any = None


def create_app(settings: Settings) -> DisposalApp:
    from alerts.rules import load_rules
    from streams import agents, alerting, commit_guard, web  # wiring: they register on the app
    from streams.cluster import Cluster
    from streams.reference import FORCE_NAMES

    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{hp}" for hp in settings.kafka.split(",")],
        store="rocksdb://" if settings.store == "rocksdb-unsafe" else "memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # a worker that dies is noticed after 10 s (Kafka's default is 45 s), so its partitions
        # move to a live worker, or to its restarted self, quickly
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_commit_every=5000,
        table_standby_replicas=0,
        # changelog records are small (~150 bytes) and one is written per event: let the
        # producer gather them into large batches instead of a request every record or two
        producer_linger=0.02,
        producer_max_batch_size=512 * 1024,
        stream_buffer_maxsize=16384,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_metrics_enabled=False,
        web_in_thread=False,
    )
    # commits wait for every changelog record before them to be acknowledged (Faust's own flush
    # can return early: see streams/commit_guard.py)
    unacked = commit_guard.guard(app.producer.buffer)
    metrics.UNACKED.set_function(lambda: len(unacked))

    def raw() -> Any:
        return faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    disposals = app.topic(settings.disposals_topic, partitions=settings.partitions, schema=raw())
    dead_letters = app.topic(settings.dlq_topic, partitions=settings.partitions, schema=raw())
    # key_type/value_type bytes (not a Schema) is what makes the table's store use the raw
    # serializer; with only a schema, the RocksDB store would JSON-decode the values.
    crimes = app.Table(
        CRIMES_TABLE, default=None, partitions=settings.partitions, key_type=bytes, value_type=bytes
    )
    dw = DisposalApp(settings, app, disposals, dead_letters, crimes, unacked=unacked)
    if settings.tokens_file is not None:
        from streams.access import load_tokens

        dw.tokens = list(load_tokens(settings.tokens_file, set(FORCE_NAMES)))
    else:
        log.warning("no DW_TOKENS_FILE: the API answers unauthenticated requests from localhost only")
    from streams.settings import DEV_PSEUDONYM_KEY

    if settings.pseudonym_key == DEV_PSEUDONYM_KEY:
        log.warning("DW_PSEUDONYM_KEY is not set: crime references in alerts use the development key")
    if settings.store == "rocksdb-unsafe":
        log.warning(
            "DW_STORE=rocksdb-unsafe: this store has lost counts when a worker was killed "
            "(README, 'Known limit'); use it only to investigate that, never for figures"
        )
    cluster = Cluster(dw)
    agents.register(dw)
    rules = load_rules(settings.rules, known_forces=FORCE_NAMES)
    dw.case_rules = [r for r in rules if r.measure == "case"]
    scoped = web.register(dw, cluster)
    alerting.register(dw, cluster, rules, scoped)
    return dw
