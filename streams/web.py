"""HTTP endpoints of the worker, served by Faust's web server on DW_WEB_HOST:DW_WEB_PORT.

- ``GET /metrics``: Prometheus text format
- ``GET /healthz``: liveness and what this worker owns
- ``GET /api/counts?group_by=&window=&at=``: counts across *all* partitions: the worker that
  answers asks every other worker of the group (found through Faust's partition assignor) for
  its partial counts and adds them up; a worker that does not answer fails the request (503)
  rather than returning a silently partial figure
- ``GET /api/counts/local``, ``GET /api/clock``: the per-worker halves of that
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import aiohttp
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.app import CRIMES_TABLE, DisposalApp
from streams.buckets import merge_rows, parse_group_by, window_days

log = logging.getLogger(__name__)
PEER_TIMEOUT_S = 10.0


class PeerError(Exception):
    pass


def register(dw: DisposalApp) -> None:
    app = dw.app
    settings = dw.settings

    def local_clock() -> dt.date | None:
        days = [c.newest for c in dw.counts.values() if c.newest is not None]
        return max(days) if days else None

    def local_rows(
        group_by: tuple[str, ...], first: dt.date | None, last: dt.date | None
    ) -> dict[tuple[str, ...], int]:
        return merge_rows(c.rows(group_by, first, last) for c in list(dw.counts.values()))

    def peers() -> list[str]:
        """URLs of the other workers that own partitions of the crimes table."""
        me = str(app.conf.canonical_url).rstrip("/")
        try:
            meta = app.router.table_metadata(CRIMES_TABLE)
        except Exception:  # no assignment yet
            return []
        return sorted({str(url).rstrip("/") for url in meta} - {me})

    async def fetch(session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> Any:
        try:
            async with session.get(url, params=params) as resp:
                if resp.status != 200:
                    raise PeerError(f"{url} answered {resp.status}")
                return await resp.json()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PeerError(f"{url} did not answer: {type(exc).__name__} {exc}") from exc

    def bad_request(view: Any, message: str) -> Any:
        return view.json({"error": message}, status=400)

    @app.page("/metrics")
    async def metrics_page(view: Any, request: Any) -> Any:
        return view.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(view: Any, request: Any) -> Any:
        clock = local_clock()
        return view.json(
            {
                "status": "recovering" if dw.recovering else "ok",
                "partitions": sorted(dw.counts),
                "records_processed": dw.processed,
                "clock": settings.clock,
                "newest_outcome_date": clock.isoformat() if clock else None,
            }
        )

    @app.page("/api/clock")
    async def clock_page(view: Any, request: Any) -> Any:
        clock = local_clock()
        return view.json(
            {
                "newest_outcome_date": clock.isoformat() if clock else None,
                "recovering": dw.recovering,
            }
        )

    @app.page("/api/counts/local")
    async def counts_local(view: Any, request: Any) -> Any:
        q = request.query
        try:
            group_by = parse_group_by(q.get("group_by", ""))
            first = dt.date.fromisoformat(q["first"]) if q.get("first") else None
            last = dt.date.fromisoformat(q["last"]) if q.get("last") else None
        except ValueError as exc:
            return bad_request(view, str(exc))
        rows = local_rows(group_by, first, last)
        return view.json({"rows": [[*r, n] for r, n in rows.items()], "recovering": dw.recovering})

    @app.page("/api/counts")
    async def counts(view: Any, request: Any) -> Any:
        q = request.query
        try:
            group_by = parse_group_by(q.get("group_by", "force,category,disposal"))
            window = q.get("window", "all")
            at_text = q.get("at")
            at = dt.date.fromisoformat(at_text) if at_text else None
            window_days(window, at=dt.date(2000, 1, 1), keep_days=1)  # validates `window` only
        except ValueError as exc:
            return bad_request(view, str(exc))
        others = peers()
        timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                if at is None:
                    if settings.clock == "wall":
                        at = dt.datetime.now(dt.UTC).date()
                    else:
                        clocks = [local_clock()]
                        answers = await asyncio.gather(
                            *(fetch(session, f"{u}/api/clock", {}) for u in others)
                        )
                        clocks += [
                            dt.date.fromisoformat(a["newest_outcome_date"])
                            for a in answers
                            if a["newest_outcome_date"]
                        ]
                        known = [c for c in clocks if c is not None]
                        at = max(known) if known else None
                if at is None:  # stream clock, nothing counted yet
                    return view.json({"group_by": list(group_by), "window": window, "at": None, "rows": []})
                first, last = window_days(window, at=at, keep_days=settings.retention_days)
                params = {
                    "group_by": ",".join(group_by),
                    "first": first.isoformat(),
                    "last": last.isoformat(),
                }
                answers = await asyncio.gather(
                    *(fetch(session, f"{u}/api/counts/local", params) for u in others)
                )
        except PeerError as exc:
            return view.json({"error": f"cannot gather counts from every worker: {exc}"}, status=503)
        parts = [local_rows(group_by, first, last)]
        parts += [{tuple(r[:-1]): int(r[-1]) for r in a["rows"]} for a in answers]
        rows = merge_rows(parts)
        recovering = dw.recovering or any(a.get("recovering") for a in answers)
        return view.json(
            {
                "group_by": list(group_by),
                "window": window,
                "at": at.isoformat(),
                "first_day": first.isoformat(),
                "workers": 1 + len(others),
                "recovering": recovering,
                "rows": [
                    {**dict(zip(group_by, r, strict=True)), "count": n} for r, n in sorted(rows.items())
                ],
            }
        )
