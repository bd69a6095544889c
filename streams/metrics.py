"""Every Prometheus metric of the worker, declared once (README "Metrics" has the table).

Conventions, so that ops can rely on them:
- one ``disposal_`` prefix; units in the names (``_seconds``, ``_timestamp_seconds``);
- counters declared without ``_total`` (the client adds it), and no ``_created`` series;
- counters of closed sets (reasons, change kinds, exit codes) exist at zero from the start, so that
  ``rate()`` and ``absent()`` work from the first scrape;
- label values come from closed sets (force id, category, disposal class, reason, rule id), never
  crime references;
- a scrape costs only the series it exports: gauges are set when things change, never computed
  from the crimes held at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

from streams.core.classify import REASONS
from streams.core.crimes import Change

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

EVENTS = Counter(
    "disposal_events",
    "Events accepted (decoded and valid), by force; includes duplicates and superseded events, which "
    "change no count. Events/s by force, and the 'force has gone quiet' rule, read it",
    ["force"],
)
FORCE_LAST_EVENT = Gauge(
    "disposal_force_last_event_timestamp_seconds",
    "When this worker last processed an event of the force (wall clock, Unix time)",
    ["force"],
)
REJECTED = Counter("disposal_events_rejected", "Records sent to the dead-letter topic, by reason", ["reason"])
REGISTRY_FAILURES = Counter(
    "disposal_schema_registry_failures",
    "Times the schema registry could not be reached while the worker needed a writer schema "
    "(records of ids not learnt yet wait, and are read again once it answers)",
)
CHANGES = Counter(
    "disposal_event_changes",
    "What accepted events did to the per-crime state: new, moved, replaced, duplicate, superseded",
    ["change"],
)
CRIMES = Gauge(
    "disposal_crimes_held", "Crimes counted by this worker's partitions (latest outcome, within retention)"
)
STORE_CRIMES = Gauge(
    "disposal_store_crimes",
    "Crimes held in the local store for this worker's partitions, including those past the "
    "retention horizon that the sweep has not removed yet",
)
STREAM_DAY = Gauge(
    "disposal_stream_newest_outcome_timestamp_seconds",
    "Newest outcome date held by this worker (midnight UTC), as a Unix time",
)
FENCED = Counter(
    "disposal_partitions_fenced",
    "Partitions this worker lost to a fence (another worker claimed them while it was paused, or "
    "their transaction timed out); their uncommitted changes were dropped",
)
PARTITIONS = Gauge("disposal_partitions_assigned", "Partitions of the disposals topic this worker owns")
RESTORE_SECONDS = Histogram(
    "disposal_partition_restore_seconds",
    "Time to restore an assigned partition: its store brought up to the changelog, its counts "
    "loaded or derived",
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300),
)
RESTORED = Counter(
    "disposal_changelog_restored_records",
    "Changelog records read into the local store while restoring partitions",
)
COUNTS_SAVE_SECONDS = Counter(
    "disposal_counts_save_seconds",
    "Time the checkpoints spent encoding the counts that changed, to save them with the crimes",
)
COUNTS_SAVED = Counter(
    "disposal_counts_saved_cells",
    "Count cells written to the store with the crimes: those that changed, in each checkpoint's "
    "segment, and every cell, in each snapshot",
)
RESTORES = Counter(
    "disposal_partition_restores",
    "Partitions restored, by how their counts came: loaded as saved, loaded and moved with the "
    "changelog records read, derived from the changelog read whole, or derived from every crime "
    "in the store (a restart on a kept store should never need the last)",
    ["counts"],
)
CONSUMER_LAG = Gauge(
    "disposal_consumer_lag",
    "Records of an owned partition of the disposals topic past the committed offset (to the last "
    "stable offset)",
    ["partition"],
)
LAST_COMMIT = Gauge(
    "disposal_last_commit_timestamp_seconds",
    "When this worker last committed offsets (after changelog and store), as a Unix time",
)
LAG_REFRESHED = Gauge(
    "disposal_lag_refreshed_timestamp_seconds",
    "When disposal_consumer_lag was last measured (the broker answered), as a Unix time: lag values "
    "older than a minute are stale (the broker is away)",
)
BROKER_REACHABLE = Gauge(
    "disposal_broker_reachable",
    "1 while the last check of the brokers answered, 0 while it did not (/healthz says degraded)",
)
WORKER_EXITS = Counter(
    "disposal_worker_exits",
    "Exits on purpose for the supervisor to restart the worker, by code (70: a bug on a record, 75: "
    "stalled), counted since the data directory was made",
    ["code"],
)
EVALUATION_SECONDS = Histogram(
    "disposal_alert_evaluation_seconds",
    "Time the alert leader spends computing one evaluation (every worker's rule totals merged, rules "
    "evaluated, transitions found), not counting the wait for other workers",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
ALERTS_FIRING = Gauge(
    "disposal_alerts_firing",
    "1 for each alert firing (exported by the worker that evaluates alerts, the leader)",
    ["rule", "force", "category", "severity"],
)
ALERT_TRANSITIONS = Counter(
    "disposal_alert_transitions",
    "Alert transitions emitted to the alerts topic, by rule and state entered",
    ["rule", "state"],
)
RULE_NUMERATOR = Gauge(
    "disposal_rule_numerator",
    "Rate, spike and peer rules: crimes in the rule's disposal classes over its window, per force and "
    "category, at the last evaluation (the leader only): the out-of-court shares of the dashboard",
    ["rule", "force", "category"],
)
RULE_DENOMINATOR = Gauge(
    "disposal_rule_denominator",
    "Rate, spike and peer rules: crimes with an outcome other than pending over the rule's window, per force "
    "and category, at the last evaluation (the leader only)",
    ["rule", "force", "category"],
)
API_DENIED = Counter(
    "disposal_api_denied",
    "API requests refused: missing_token, wrong_token, expired_session, wrong_session (401), "
    "not_localhost, forbidden_force, no_permission, cross_site (403); missing_peer, wrong_peer on "
    "the workers' own endpoints",
    ["reason"],
)
HTTP_REFUSED = Counter(
    "disposal_http_refused",
    "Connections the web server refused: too_many_connections (DW_WEB_MAX_CONNECTIONS open), "
    "too_many_from_client (DW_WEB_MAX_CONNECTIONS_PER_CLIENT from its address)",
    ["reason"],
)
DENIAL_REASONS = (
    "missing_token",
    "wrong_token",
    "expired_session",
    "wrong_session",
    "cross_site",
    "not_localhost",
    "forbidden_force",
    "no_permission",
    "missing_peer",
    "wrong_peer",
)
REIDENTIFICATIONS = Counter(
    "disposal_reidentifications",
    "Pseudonyms turned back into crime references (GET /api/refs/{pseudonym}), by force and outcome: "
    "found, not_found, refused",
    ["force", "outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "disposal_webhook_attempts",
    "Webhook deliveries, by webhook and outcome (delivered, failed: retried with backoff)",
    ["webhook", "outcome"],
)
ALERTMANAGER_PUSHES = Counter(
    "disposal_alertmanager_pushes",
    "Pushes of the alerts to Alertmanager (DW_ALERTMANAGER_URL), by outcome (delivered, failed: retried)",
    ["outcome"],
)

for _reason in REASONS:
    REJECTED.labels(_reason)
for _change in Change:
    CHANGES.labels(_change.value)
for _reason in DENIAL_REASONS:
    API_DENIED.labels(_reason)
HTTP_REFUSED.labels("too_many_connections")
HTTP_REFUSED.labels("too_many_from_client")
for _code in ("70", "74", "75"):
    WORKER_EXITS.labels(_code)
for _outcome in ("delivered", "failed"):
    ALERTMANAGER_PUSHES.labels(_outcome)

_event_children: dict[str, Any] = {}
_last_event_children: dict[str, Any] = {}
_change_children: dict[str, Any] = {c.value: CHANGES.labels(c.value) for c in Change}


def count_accepted(accepted: Mapping[str, int], changes: Mapping[Any, int], now_s: float) -> None:
    """Add one batch's tallies (accepted events per force, changes per kind): one increment per
    label set, not one per event."""
    for force, n in accepted.items():
        child = _event_children.get(force)
        if child is None:
            child = _event_children[force] = EVENTS.labels(force)
            _last_event_children[force] = FORCE_LAST_EVENT.labels(force)
        child.inc(n)
        _last_event_children[force].set(now_s)
    for change, n in changes.items():
        _change_children[str(change)].inc(n)


def webhooks_known(names: Iterable[str]) -> None:
    """Delivery counters of the configured webhooks, at zero."""
    for name in names:
        for outcome in ("delivered", "failed"):
            WEBHOOK_ATTEMPTS.labels(name, outcome)
