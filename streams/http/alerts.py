"""The alert feed over HTTP.

- ``GET /api/alerts?state=firing|resolved|all&force=&category=&severity=``: current alerts;
- ``GET /api/alerts/stream``: server-sent events, every transition in order; reconnect with
  ``Last-Event-ID`` (or ``?last_event_id=``) to receive what was missed, none twice.

A token scoped to some forces sees only their alerts; naming another force is refused (403).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from streams.access import Scope
from streams.alerting.log import AlertLog
from streams.http.guards import error, forbidden_force
from streams.http.server import CLOSING

KEEPALIVE_S = 15.0


def matches(entry: Mapping[str, Any], q: Mapping[str, str], scope: Scope) -> bool:
    if not scope.allows(entry["force_id"]):
        return False
    for field, key in (("force", "force_id"), ("category", "category"), ("severity", "severity")):
        if q.get(field) and entry[key] != q[field]:
            return False
    return True


class AlertPages:
    def __init__(self, alert_log: AlertLog) -> None:
        self.log = alert_log

    async def alerts(self, request: web.Request, scope: Scope) -> web.Response:
        q = request.query
        refused = forbidden_force(scope, q.get("force"))
        if refused is not None:
            return refused
        state = q.get("state", "firing")
        if state not in ("firing", "resolved", "all"):
            return error(400, "state must be firing, resolved or all")
        items = [
            e
            for e in self.log.current.values()
            if (state == "all" or e["state"] == state) and matches(e, q, scope)
        ]
        items.sort(key=lambda e: (e["rule_id"], e["force_id"], e["category"]))
        return web.json_response({"alerts": items, "position": self.log.position})

    async def stream(self, request: web.Request, scope: Scope) -> web.StreamResponse:
        """Server-sent events: every transition, in order; reconnect with Last-Event-ID to resume."""
        q = request.query
        refused = forbidden_force(scope, q.get("force"))
        if refused is not None:
            return refused
        last = request.headers.get("Last-Event-ID") or q.get("last_event_id") or "-1"
        try:
            after = int(last)
        except ValueError:
            return error(400, f"Last-Event-ID must be a number, not {last!r}")
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        closing = request.app[CLOSING]
        try:
            while not closing.is_set():
                for entry in self.log.since(after):
                    after = entry["id"]
                    if matches(entry, q, scope):
                        await resp.write(f"id: {after}\nevent: alert\ndata: {json.dumps(entry)}\n\n".encode())
                await first_of(self.log.wait_after(after, KEEPALIVE_S), closing.wait())
                if not closing.is_set() and not self.log.since(after):
                    await resp.write(b": keep-alive\n\n")
        except ConnectionResetError:  # the client went away
            pass
        return resp


async def first_of(*waits: Any) -> None:
    """Wait until the first of ``waits`` completes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
