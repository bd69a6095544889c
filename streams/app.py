"""The composition root: builds the worker's objects once and registers thin pages and tasks.

Nothing imports this module. ``build(settings, keys)`` returns a typed ``Worker``; ``cli.worker`` runs it.

    Faust app (host: lifecycle, tasks)
      RuntimeService: CountingLoop (source topic, store, changelog, checkpoints) + Watchdog
      tasks: AlertLog.follow, Evaluator.run, one webhook delivery per receiver
      WebService: the HTTP server (streams.http.server), serving
      pages: /metrics /healthz /livez /api/openapi.json (open)
             /api/counts /api/alerts /api/alerts/stream /api/refs/{pseudonym} /api/summary
             (API, scoped by token)
             / /signin /national /force/{force} (+ counts.csv) /force/{force}/scrutiny (+ .csv)
             (pages, scoped by session)
             /api/counts/local /api/aggregates/local /api/refs/local /api/reidentify/local
             /api/clock /api/scrutiny/local (other workers only)
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from alerts.aggregates import RuleAggregates
from alerts.engine import breaches
from alerts.rules import Rule, load_rules
from streams import metrics
from streams.access import Sessions, TokenEntry, load_tokens
from streams.alerting.alertmanager import AlertmanagerPush
from streams.alerting.evaluator import Evaluator
from streams.alerting.log import AlertLog
from streams.alerting.webhooks import Webhook, deliver_forever, load_webhooks
from streams.alerting.writer import AlertWriter
from streams.clients import KafkaClients
from streams.cluster import Cluster
from streams.core.classify import Cell
from streams.core.clock import Clock, clock_for
from streams.dashboard.render import peer_methods
from streams.http.alerts import AlertPages
from streams.http.cases import CasePages
from streams.http.counts import CountsPages
from streams.http.dashboard import DashboardPages
from streams.http.docs import DocsPages
from streams.http.guards import Guard
from streams.http.health import HealthPages
from streams.http.national import NationalPages
from streams.http.peers import PeerPages
from streams.http.scrutiny import ScrutinyPages
from streams.http.server import Limits, WebServer
from streams.keys import Keys
from streams.peers import HttpPeers
from streams.reference import CATEGORIES, FORCE_NAMES
from streams.resources import DASHBOARD_STATIC
from streams.runtime import exits, host
from streams.runtime.loop import CountingLoop
from streams.runtime.store import Deployment, open_store
from streams.runtime.watchdog import Watchdog
from streams.schema_registry import UNREGISTERED, Registered, Schemas, alert_decoder
from streams.settings import Settings
from streams.tls import client_context, server_context

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """Everything one worker process runs, built once."""

    settings: Settings
    app: Any  # the Faust app (host)
    loop: CountingLoop
    watchdog: Watchdog
    cluster: Cluster
    alert_log: AlertLog
    evaluator: Evaluator
    server: WebServer

    def run(self) -> None:
        host.run_worker(self.app, self.settings.log_level)


def breach_test(case_rules: Sequence[Rule]) -> Callable[[Cell], bool]:
    """Whether a crime's new cell breaches a case rule (remembered per combination)."""
    known: dict[tuple[str, str, bool], bool] = {}

    def is_breach(cell: Cell) -> bool:
        key = (cell.category, cell.disposal, cell.domestic_abuse)
        hit = known.get(key)
        if hit is None:
            hit = known[key] = any(
                breaches(
                    r, category=cell.category, disposal=cell.disposal, domestic_abuse=cell.domestic_abuse
                )
                for r in case_rules
            )
        return hit

    return is_breach


def _rules(settings: Settings) -> list[Rule]:
    """The rules (DW_RULES). scipy, if one needs it, is imported once the worker has started
    (``Evaluator.load_statistics``)."""
    return load_rules(settings.rules, known_forces=FORCE_NAMES, known_categories=CATEGORIES)


def _tokens(settings: Settings) -> list[TokenEntry] | None:
    """The API's tokens (DW_TOKENS_FILE); None: localhost only, unauthenticated, said in the log."""
    if settings.tokens_file is not None:
        return load_tokens(settings.tokens_file, set(FORCE_NAMES))
    log.warning("no DW_TOKENS_FILE: the API answers unauthenticated requests from localhost only")
    return None


def _loop(
    settings: Settings,
    rules: Sequence[Rule],
    sink: RuleAggregates,
    clock: Clock,
    clients: KafkaClients,
    schemas: Schemas | None,
    wake: Callable[[], None],
) -> CountingLoop:
    """The counting loop on its store, telling ``sink`` of every count move and calling
    ``wake`` when a crime breaches a case rule."""
    store = open_store(
        settings.store,
        settings.data_dir,
        Deployment(settings.app_id, settings.changelog_topic, settings.partitions),
    )
    return CountingLoop(
        settings,
        store,
        clock,
        is_breach=breach_test([r for r in rules if r.measure == "case"]),
        on_breach=wake,
        sink=sink,
        clients=clients,
        schemas=schemas,
    )


def build(settings: Settings, keys: Keys, registered: Registered = UNREGISTERED) -> Worker:
    rules = _rules(settings)
    tokens = _tokens(settings)
    webhooks = load_webhooks(settings.webhooks_file) if settings.webhooks_file is not None else []
    clients = KafkaClients.from_settings(settings)  # refuses an unknown DW_CONSUMER_* etc. here
    # the registry's writer schemas, learnt as records of new ids arrive (DW_SCHEMA_REGISTRY_URL)
    schemas = Schemas(settings) if settings.schema_registry_url is not None else None
    wake: list[Callable[[], None]] = []  # the evaluator's, once built
    aggregates = RuleAggregates(rules)
    clock = clock_for(settings.clock)
    loop = _loop(settings, rules, aggregates, clock, clients, schemas, lambda: wake[0]())
    watchdog = Watchdog(loop, clients, settings.stall_exit_s)
    cluster = Cluster(
        loop,
        aggregates,
        settings.web_url,
        keys.pseudonym,
        clock,
        HttpPeers(keys.peer, client_context(settings.web_tls_cert)),
    )
    alert_log = AlertLog(clients, settings.alerts_topic, alert_decoder(schemas))
    writer = AlertWriter(clients, settings.alerts_topic, f"{settings.app_id}-alerts")
    evaluator = Evaluator(
        rules,
        loop,
        cluster,
        alert_log,
        writer,
        interval_s=settings.alert_interval_s,
        framing=registered.alerts,
    )
    wake.append(evaluator.wake)

    _gauges(settings, loop)
    app = host.create_app(settings)
    guard = Guard(tokens, keys.peer, Sessions(keys.session, settings.session_hours * 3600))
    server = _server(settings)
    app.service(host.WebService(server))
    app.service(host.RuntimeService(loop, watchdog))
    worker = Worker(settings, app, loop, watchdog, cluster, alert_log, evaluator, server)
    _pages(worker, guard, rules, keys)
    _tasks(worker, webhooks, clients, schemas)
    return worker


def _gauges(settings: Settings, loop: CountingLoop) -> None:
    """The gauges read from the loop at each scrape, and the exits recorded before this start."""
    for code, n in exits.record_in(settings.data_dir).items():
        metrics.WORKER_EXITS.labels(code).inc(n)
    metrics.CRIMES.set_function(lambda: sum(p.counts.total for p in list(loop.partitions.values())))
    metrics.STORE_CRIMES.set_function(lambda: sum(p.store_crimes for p in list(loop.partitions.values())))
    metrics.STREAM_DAY.set_function(lambda: _midnight(loop.newest()))


def _server(settings: Settings) -> WebServer:
    """The worker's HTTP server: its limits, and TLS when a certificate is given."""
    tls = None
    if settings.web_tls_cert is not None and settings.web_tls_key is not None:
        tls = server_context(settings.web_tls_cert, settings.web_tls_key)
    return WebServer(
        settings.web_host,
        settings.web_port,
        Limits(
            idle_timeout_s=settings.web_idle_timeout_s,
            max_connections=settings.web_max_connections,
            max_per_client=settings.web_max_connections_per_client,
        ),
        tls=tls,
    )


def _pages(worker: Worker, guard: Guard, rules: Sequence[Rule], keys: Keys) -> None:
    """Every route the worker serves: the API, the workers' own endpoints, the dashboard."""
    settings, cluster, add_page = worker.settings, worker.cluster, worker.server.add_page
    health = HealthPages(worker.loop, worker.watchdog.brokers, cluster.clock)
    counts = CountsPages(cluster, retention_days=settings.retention_days)
    feed = AlertPages(worker.alert_log)
    peers = PeerPages(cluster)
    cases = CasePages(cluster)
    add_page("/api/openapi.json", DocsPages().openapi, "openapi")
    add_page("/metrics", health.metrics, "metrics")
    add_page("/healthz", health.healthz, "healthz")
    add_page("/livez", health.livez, "livez")
    add_page("/api/counts", guard.scoped(counts.counts), "counts")
    add_page("/api/alerts", guard.scoped(feed.alerts), "alerts")
    add_page("/api/alerts/stream", guard.scoped(feed.stream), "alerts_stream")
    add_page("/api/counts/local", guard.peers_only(peers.counts_local), "counts_local")
    add_page("/api/aggregates/local", guard.peers_only(peers.aggregates_local), "aggregates_local")
    add_page("/api/refs/local", guard.peers_only(peers.refs_local), "refs_local")
    add_page("/api/reidentify/local", guard.peers_only(peers.reidentify_local), "reidentify_local")
    add_page("/api/clock", guard.peers_only(peers.clock), "clock")
    add_page("/api/scrutiny/local", guard.peers_only(peers.scrutiny_local), "scrutiny_local")
    # after /api/refs/local: aiohttp matches routes in the order they were added
    add_page("/api/refs/{pseudonym}", guard.scoped(cases.reidentify), "reidentify")
    dashboard = DashboardPages(
        cluster, worker.alert_log, rules, guard, retention_days=settings.retention_days
    )
    national = NationalPages(
        cluster, guard, retention_days=settings.retention_days, methods=peer_methods(rules)
    )
    add_page("/api/summary", guard.scoped(national.api), "summary")
    add_page("/national", national.page, "national")
    scrutiny = ScrutinyPages(
        cluster, guard, pseudonym_key=keys.pseudonym, draw_key=keys.scrutiny, size=settings.scrutiny_sample
    )
    add_page("/force/{force}/scrutiny", scrutiny.page, "scrutiny")
    add_page("/force/{force}/scrutiny.csv", scrutiny.csv, "scrutiny_csv")
    add_page("/", dashboard.index, "dashboard")
    add_page("/signin", dashboard.signin_form, "signin", post=dashboard.signin)
    add_page("/force/{force}", dashboard.force, "force_page")
    add_page("/force/{force}/counts.csv", dashboard.force_csv, "force_csv")
    worker.server.add_static("/static/", DASHBOARD_STATIC)


def _tasks(
    worker: Worker, webhooks: Sequence[Webhook], clients: KafkaClients, schemas: Schemas | None
) -> None:
    """The tasks beside the counting loop (the alert log's follower, the evaluator, each
    webhook's deliverer, the Alertmanager push) and what closes their clients at stop."""
    settings, app, alert_log = worker.settings, worker.app, worker.alert_log
    metrics.webhooks_known(hook.name for hook in webhooks)
    host.add_task(app, alert_log.follow, "follow_alerts")
    host.add_task(app, worker.evaluator.run, "evaluate_alerts")
    for hook in webhooks:

        def record(name: str, ok: bool) -> None:
            metrics.WEBHOOK_ATTEMPTS.labels(name, "delivered" if ok else "failed").inc()

        deliver = functools.partial(
            deliver_forever,
            hook,
            clients,
            settings.alerts_topic,
            f"{settings.app_id}-webhook-{hook.name}",
            settings.webhook_max_backoff_s,
            settings.webhook_group_s,
            on_result=record,
            decode=alert_decoder(schemas),
        )
        host.add_task(app, deliver, f"webhook_{hook.name}")

    if settings.alertmanager_url is not None:
        push = AlertmanagerPush(
            settings.alertmanager_url,
            alert_log,
            worker.loop.is_leader,
            resend_s=settings.alertmanager_resend_s,
            feed_url=settings.web_url,
        )
        host.add_task(app, push.run, "alertmanager_push")

    async def close_clients() -> None:
        await worker.evaluator.close()
        await worker.cluster.close()
        await alert_log.close()
        if schemas is not None:
            await schemas.close()

    host.on_shutdown(app, close_clients)


def _midnight(day: dt.date | None) -> float:
    if day is None:
        return 0.0
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
