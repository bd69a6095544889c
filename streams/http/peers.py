"""What workers ask each other (``Guard.peers_only``: the peer credential, never users).

- ``GET /api/clock``: the newest outcome date this worker holds (the stream clock) and whether
  it is recovering;
- ``GET /api/counts/local?group_by=&first=&last=&force=``: this worker's part of ``/api/counts``
  (and of a force page's, with ``force``);
- ``GET /api/aggregates/local?at=``: this worker's rule totals for windows ending on ``at``
  (``streams.wire.TotalsReply``), for the alert leader;
- ``GET /api/refs/local?at=&alert=rule|force|category...``: pseudonyms of crimes behind alerts;
- ``GET /api/reidentify/local?force=&pseudonym=``: the crime reference behind a pseudonym, if this
  worker holds the crime (the user-facing endpoint checked the caller's permission).
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from streams.cluster import AlertKey, Cluster
from streams.core.query import parse_day, parse_group_by
from streams.http.guards import error
from streams.wire import encode_totals


def _day(text: str | None, name: str) -> dt.date:
    if not text:
        raise ValueError(f"{name} is required, as YYYY-MM-DD")
    return parse_day(text, name)


class PeerPages:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def clock(self, request: web.Request) -> web.Response:
        newest = self.cluster.local_clock()
        return web.json_response(
            {
                "newest_outcome_date": newest.isoformat() if newest else None,
                "recovering": self.cluster.loop.recovering,
            }
        )

    async def counts_local(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            group_by = parse_group_by(q.get("group_by", ""))
            first = parse_day(q["first"], "first") if "first" in q else None
            last = parse_day(q["last"], "last") if "last" in q else None
        except ValueError as exc:
            return error(400, str(exc))
        rows = await self.cluster.local_rows(group_by, first, last, q.get("force"))
        return web.json_response(
            {"rows": [[*r, n] for r, n in rows.items()], "recovering": self.cluster.loop.recovering}
        )

    async def aggregates_local(self, request: web.Request) -> web.Response:
        try:
            at = _day(request.query.get("at"), "at")
        except ValueError as exc:
            return error(400, str(exc))
        return web.json_response(encode_totals(self.cluster.local_totals(at)))

    async def refs_local(self, request: web.Request) -> web.Response:
        try:
            at = _day(request.query.get("at"), "at")
            alerts: list[AlertKey] = []
            for text in request.query.getall("alert", []):
                rule_id, force, category = text.split("|")
                alerts.append((rule_id, force, category))
        except ValueError as exc:
            return error(400, f"at=YYYY-MM-DD and alert=rule|force|category: {exc}")
        evidence = self.cluster.local_evidence(alerts, at)
        return web.json_response({"evidence": [[*key, refs] for key, refs in evidence.items()]})

    async def scrutiny_local(self, request: web.Request) -> web.Response:
        """This worker's candidates for a scrutiny sample (crime keys: peers only)."""
        force = request.query.get("force", "")
        try:
            first, last = _day(request.query.get("first"), "first"), _day(request.query.get("last"), "last")
        except ValueError as exc:
            return error(400, f"force, first=YYYY-MM-DD and last=YYYY-MM-DD: {exc}")
        found = await self.cluster.local_candidates(force, first, last)
        return web.json_response(
            {
                "recovering": self.cluster.loop.recovering,
                "candidates": [
                    [c.key, c.category, c.disposal, c.day.isoformat(), c.domestic_abuse] for c in found
                ],
            }
        )

    async def reidentify_local(self, request: web.Request) -> web.Response:
        force, wanted = request.query.get("force", ""), request.query.get("pseudonym", "")
        if not force or not wanted:
            return error(400, "force and pseudonym are required")
        return web.json_response({"crime_ref": await self.cluster.local_reidentify(force, wanted)})
