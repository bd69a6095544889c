"""HTTP endpoints of the worker, served by Faust's web server on DW_WEB_HOST:DW_WEB_PORT.

- ``GET /metrics``: Prometheus text format
- ``GET /healthz``: liveness and what this worker owns
- ``GET /api/counts?group_by=&window=&at=``: counts across *all* partitions: the worker that
  answers asks every other worker of the group (found through Faust's partition assignor) for
  its partial counts and adds them up; a worker that does not answer fails the request (503)
  rather than returning a silently partial figure
- ``GET /api/counts/local``, ``GET /api/refs/local``, ``GET /api/clock``: the per-worker halves
  of that, for the other workers only (``X-DW-Peer`` credential, see ``streams.access``)
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams import metrics
from streams.access import PEER_HEADER, Denied, Scope, authorize, authorize_peer
from streams.app import DisposalApp
from streams.buckets import merge_refs, parse_group_by, window_days
from streams.cluster import Cluster, PeerError

log = logging.getLogger(__name__)

#: an endpoint that needs the caller's Scope: (view, request, scope) -> response
Handler = Callable[[Any, Any, Scope], Awaitable[Any]]


def register(dw: DisposalApp, cluster: Cluster) -> Any:
    app = dw.app
    settings = dw.settings

    def bad_request(view: Any, message: str) -> Any:
        return view.json({"error": message}, status=400)

    def deny(view: Any, denied: Denied, challenge: str | None) -> Any:
        metrics.API_DENIED.labels(denied.reason).inc()
        headers = {"WWW-Authenticate": challenge} if challenge and denied.status == 401 else None
        return view.json({"error": denied.message}, status=denied.status, headers=headers)

    def scoped(handler: Handler) -> Any:
        """A user-facing endpoint: the handler gets the Scope of the request's bearer token;
        a missing or wrong token, or a scope violation, gets 401/403 (counted)."""

        @functools.wraps(handler)
        async def page(view: Any, request: Any) -> Any:
            scope = authorize(dw.tokens, request.headers.get("Authorization"), request.remote)
            if isinstance(scope, Denied):
                return deny(view, scope, "Bearer")
            return await handler(view, request, scope)

        return page

    def peers_only(handler: Any) -> Any:
        """A worker-to-worker endpoint: only requests with the peer credential (counted)."""

        @functools.wraps(handler)
        async def page(view: Any, request: Any) -> Any:
            denied = authorize_peer(cluster.credential, request.headers.get(PEER_HEADER))
            if denied is not None:
                return deny(view, denied, None)
            return await handler(view, request)

        return page

    @app.page("/metrics")
    async def metrics_page(view: Any, request: Any) -> Any:
        return view.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(view: Any, request: Any) -> Any:
        clock = cluster.local_clock()
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
    @peers_only
    async def clock_page(view: Any, request: Any) -> Any:
        clock = cluster.local_clock()
        return view.json(
            {"newest_outcome_date": clock.isoformat() if clock else None, "recovering": dw.recovering}
        )

    @app.page("/api/counts/local")
    @peers_only
    async def counts_local(view: Any, request: Any) -> Any:
        q = request.query
        try:
            group_by = parse_group_by(q.get("group_by", ""))
            first = dt.date.fromisoformat(q["first"]) if q.get("first") else None
            last = dt.date.fromisoformat(q["last"]) if q.get("last") else None
        except ValueError as exc:
            return bad_request(view, str(exc))
        rows = cluster.local_rows(group_by, first, last)
        return view.json({"rows": [[*r, n] for r, n in rows.items()], "recovering": dw.recovering})

    @app.page("/api/refs/local")
    @peers_only
    async def refs_local(view: Any, request: Any) -> Any:
        q = request.query
        try:
            first, last = dt.date.fromisoformat(q["first"]), dt.date.fromisoformat(q["last"])
        except (KeyError, ValueError) as exc:
            return bad_request(view, f"first and last must be YYYY-MM-DD: {exc}")
        rows = merge_refs(c.refs_by_row(first, last) for c in list(dw.counts.values()))
        return view.json({"rows": [[*r, refs] for r, refs in rows.items()]})

    @app.page("/api/counts")
    @scoped
    async def counts(view: Any, request: Any, scope: Scope) -> Any:
        q = request.query
        try:
            group_by = parse_group_by(q.get("group_by", "force,category,disposal"))
            window = q.get("window", "all")
            at_text = q.get("at")
            at = dt.date.fromisoformat(at_text) if at_text else None
            window_days(window, at=dt.date(2000, 1, 1), keep_days=1)  # validates `window` only
        except ValueError as exc:
            return bad_request(view, str(exc))
        try:
            if at is None:
                at = await cluster.today()
            if at is None:  # stream clock, nothing counted yet
                return view.json({"group_by": list(group_by), "window": window, "at": None, "rows": []})
            first, last = window_days(window, at=at, keep_days=settings.retention_days)
            rows, recovering, workers = await cluster.rows(group_by, first, last)
            if scope.forces is not None:  # a scoped token sees only its forces' rows
                if "force" not in group_by:
                    metrics.API_DENIED.labels("forbidden_force").inc()
                    return view.json(
                        {"error": "this token is limited to some forces: group by force"}, status=403
                    )
                i = group_by.index("force")
                rows = {r: n for r, n in rows.items() if scope.allows(r[i])}
        except PeerError as exc:
            return view.json({"error": f"cannot gather counts from every worker: {exc}"}, status=503)
        return view.json(
            {
                "group_by": list(group_by),
                "window": window,
                "at": at.isoformat(),
                "first_day": first.isoformat(),
                "workers": workers,
                "recovering": recovering,
                "rows": [
                    {**dict(zip(group_by, r, strict=True)), "count": n} for r, n in sorted(rows.items())
                ],
            }
        )

    return scoped
