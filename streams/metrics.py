"""Every Prometheus metric of the worker, declared once.

Label values come from closed sets (force id, category, disposal class, reason), never from
crime references. Counters are declared without ``_total``: the client adds it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "disposal_events",
    "Events accepted (decoded and valid), by force, offence category and disposal class; "
    "includes duplicates and superseded events, which change no count",
    ["force", "category", "disposal"],
)
REJECTED = Counter(
    "disposal_events_rejected",
    "Records sent to the dead-letter topic, by reason",
    ["reason"],
)
CHANGES = Counter(
    "disposal_event_changes",
    "What accepted events did to the per-crime state: new, moved, replaced, duplicate, superseded",
    ["change"],
)
CRIMES = Gauge(
    "disposal_crimes_held",
    "Crimes counted by this worker's partitions (latest outcome, within retention)",
)
STREAM_DAY = Gauge(
    "disposal_stream_newest_outcome_timestamp_seconds",
    "Newest outcome date held by this worker (midnight UTC), as a Unix time",
)
PARTITIONS = Gauge("disposal_partitions_assigned", "Partitions of the disposals topic this worker owns")
UNACKED = Gauge(
    "disposal_produced_unacknowledged",
    "Changelog and dead-letter records produced and not yet acknowledged; offsets wait for them",
)
REBUILD_SECONDS = Histogram(
    "disposal_counts_rebuild_seconds",
    "Time to rebuild the counters from the recovered per-crime table after a rebalance",
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300),
)
ALERTS_FIRING = Gauge(
    "alerts_firing",
    "1 for each alert firing (reported by the worker that evaluates alerts, the leader)",
    ["rule", "force", "category", "severity"],
)
ALERT_TRANSITIONS = Counter(
    "alert_transitions",
    "Alert transitions emitted to the alerts topic, by rule and the state entered",
    ["rule", "state"],
)
API_DENIED = Counter(
    "disposal_api_denied",
    "API requests refused: missing_token, wrong_token (401), not_localhost, forbidden_force (403)",
    ["reason"],
)
WEBHOOK_ATTEMPTS = Counter(
    "alert_webhook_attempts",
    "Webhook delivery attempts, by webhook and outcome (delivered, failed: retried with backoff)",
    ["webhook", "outcome"],
)
