"""Every Prometheus metric of the worker, declared once.

Label values come from closed sets (force id, category, disposal class, reason), never from
crime references. Counters are declared without ``_total``: the client adds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
RESTORE_SECONDS = Histogram(
    "disposal_partition_restore_seconds",
    "Time to restore an assigned partition: its store brought up to the changelog, counts derived",
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300),
)
RESTORED = Counter(
    "disposal_changelog_restored_records",
    "Changelog records read into the local store while restoring partitions",
)
CONSUMER_LAG = Gauge(
    "disposal_consumer_lag",
    "Records of an owned partition of the disposals topic past the committed offset",
    ["partition"],
)
LAST_COMMIT = Gauge(
    "disposal_last_commit_timestamp_seconds",
    "When this worker last committed offsets (after changelog and store), as a Unix time",
)
EVALUATION_SECONDS = Histogram(
    "disposal_alert_evaluation_seconds",
    "Time the alert leader spends computing one evaluation (every worker's rule totals merged, "
    "rules evaluated, transitions found), not counting the wait for other workers",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
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


_accepted_children: dict[tuple[str, str, str], Any] = {}
_change_children: dict[str, Any] = {}


def count_accepted(accepted: Mapping[tuple[str, str, str], int], changes: Mapping[Any, int]) -> None:
    """Add one batch's tallies: one increment per label set, not one per event."""
    for labels, n in accepted.items():
        child = _accepted_children.get(labels)
        if child is None:
            child = _accepted_children[labels] = EVENTS.labels(*labels)
        child.inc(n)
    for change, n in changes.items():
        key = str(change)
        child = _change_children.get(key)
        if child is None:
            child = _change_children[key] = CHANGES.labels(key)
        child.inc(n)
