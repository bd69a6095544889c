"""``/metrics`` (Prometheus text format), ``/livez`` and ``/healthz``.

Kubernetes-style probes: ``/livez`` answers 200 while the process serves at all (liveness: a
restart would not help a worker whose broker is away); ``/healthz`` is readiness: 200 with
``ok`` or ``recovering`` (restoring partitions from the changelog), 503 with ``degraded`` and a
reason while the worker cannot reach the brokers it needs (``streams.runtime.watchdog``) or the
schema registry it needs (``streams.schema_registry``).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.core.clock import Clock
from streams.runtime.view import WorkerState
from streams.runtime.watchdog import BrokerState


class HealthPages:
    def __init__(self, loop: WorkerState, brokers: BrokerState, clock: Clock) -> None:
        self.loop = loop
        self.brokers = brokers
        self.clock = clock

    async def livez(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def metrics(self, request: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        newest = self.loop.newest()
        problem = self.brokers.problem() or (self.loop.schemas.problem() if self.loop.schemas else None)
        body = {
            "status": "degraded" if problem else "recovering" if self.loop.recovering else "ok",
            "partitions": sorted(self.loop.partitions),
            "records_processed": self.loop.records_processed,
            "clock": self.clock.kind,
            "newest_outcome_date": newest.isoformat() if newest else None,
        }
        if problem:
            body["reason"] = problem
        return web.json_response(body, status=503 if problem else 200)
