"""``/metrics`` (Prometheus text format) and ``/healthz`` (liveness and what this worker owns)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.runtime.loop import CountingLoop


class HealthPages:
    def __init__(self, loop: CountingLoop, clock_kind: str) -> None:
        self.loop = loop
        self.clock_kind = clock_kind

    async def metrics(self, request: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        newest = self.loop.newest()
        return web.json_response(
            {
                "status": "recovering" if self.loop.recovering else "ok",
                "partitions": sorted(self.loop.partitions),
                "records_processed": self.loop.records_processed,
                "clock": self.clock_kind,
                "newest_outcome_date": newest.isoformat() if newest else None,
            }
        )
