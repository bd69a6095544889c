"""``GET /api/counts?group_by=&window=&at=``: counts across *all* partitions.

The worker that answers asks every other worker of the group for its partial counts
(``streams.http.peers``) and adds them up; a worker that does not answer fails the request (503)
rather than return a silently partial figure; so does a worker still restoring partitions from
the changelog (503 with ``Retry-After``: no partial figure, ever). A token scoped to some forces
must group by force and sees only its forces' rows.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from streams.access import Denied, Scope
from streams.cluster import Cluster
from streams.core.query import parse_day, parse_group_by, window_days
from streams.http.guards import deny, error
from streams.peers import PeerError

#: what a request for counts gets while a worker restores partitions from the changelog
RESTORING = "a worker is restoring its partitions from the changelog: counts would be partial; retry"
RETRY_AFTER_S = 2


class CountsPages:
    def __init__(self, cluster: Cluster, *, retention_days: int) -> None:
        self.cluster = cluster
        self.retention_days = retention_days

    async def counts(self, request: web.Request, scope: Scope) -> web.Response:
        q = request.query
        try:
            group_by = parse_group_by(q.get("group_by", "force,category,disposal"))
            window = q.get("window", "all")
            at = parse_day(q["at"], "at") if "at" in q else None
            window_days(window, at=dt.date(2000, 1, 1), keep_days=1)  # validates `window` only
        except ValueError as exc:
            return error(400, str(exc))
        if scope.forces is not None and "force" not in group_by:
            return deny(
                Denied(403, "forbidden_force", "this token is limited to some forces: group by force")
            )
        try:
            if at is None:
                at = await self.cluster.today()
            if at is None:  # stream clock, nothing counted yet
                return web.json_response(
                    {"group_by": list(group_by), "window": window, "at": None, "rows": []}
                )
            first, last = window_days(window, at=at, keep_days=self.retention_days)
            rows, recovering, workers = await self.cluster.rows(group_by, first, last)
        except ValueError as exc:  # a window reaching before the year 1 from `at`
            return error(400, str(exc))
        except PeerError as exc:
            return error(503, f"cannot gather counts from every worker: {exc}")
        if recovering:  # never a partial figure: some crimes are not back from the changelog yet
            return error(503, RESTORING, headers={"Retry-After": str(RETRY_AFTER_S)})
        if scope.forces is not None:  # a scoped token sees only its forces' rows
            i = group_by.index("force")
            rows = {r: n for r, n in rows.items() if scope.allows(r[i])}
        return web.json_response(
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
