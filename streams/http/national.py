"""National and per-force figures, a period against the one before: ``GET /api/summary``
(JSON, or CSV with ``format=csv``) and the page ``/national``.

``/api/summary?period=12m&compare=previous``: for each high-risk category, nationally and per
force, out-of-court disposals by class, all outcomes and the share, over the ``period`` (3m, 6m
or 12m, calendar months to the day the data runs to) and the one before, with each count's
change as a ratio and its exact 95% interval (``streams.dashboard.national``). Counts come from
every worker (``Cluster.rows``), as ``/api/counts`` over the same days: no partial figure (503
while a worker restores). A token scoped to some forces sees their lines only; the national
lines and the quarterly series need an all-forces token.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from streams.access import Denied, Scope
from streams.cluster import Cluster
from streams.dashboard import render
from streams.dashboard.national import (
    CLASSES,
    PERIODS,
    Change,
    Figures,
    Line,
    Period,
    Quarter,
    periods,
    quarterly,
    sentence,
    summarise,
)
from streams.dashboard.national_page import METHOD, national_page
from streams.errors import StreamError
from streams.http.counts import RESTORING, RETRY_AFTER_S
from streams.http.dashboard import html_page, not_all_workers_page, refused_page, restoring_page
from streams.http.guards import Guard, error
from streams.peers import PeerError
from streams.reference import FORCE_NAMES


class Restoring(StreamError):
    """A worker is restoring: the figures would be partial."""


@dataclass(frozen=True)
class Summary:
    at: dt.date
    months: int
    now: Period
    before: Period
    lines: list[Line]
    #: national quarters per category (all-forces scopes only)
    quarters: dict[str, list[Quarter]]


def _figures_json(f: Figures) -> dict[str, Any]:
    return {
        **{c: f.count(c) for c in CLASSES},
        "out_of_court": f.out_of_court,
        "outcomes": f.outcomes,
        "share": f.share,
    }


def _change_json(c: Change) -> dict[str, Any]:
    return {"now": c.now, "before": c.before, "ratio": c.ratio, "low": c.low, "high": c.high}


def _period_json(p: Period) -> dict[str, Any]:
    return {"first": p.first.isoformat(), "last": p.last.isoformat(), "complete": p.complete}


class NationalPages:
    def __init__(
        self,
        cluster: Cluster,
        guard: Guard,
        *,
        retention_days: int,
        methods: Sequence[str] = (),
    ) -> None:
        self.cluster, self.guard, self.methods = cluster, guard, methods
        self.retention_days = retention_days

    async def _summary(self, period: str, scope: Scope) -> Summary | None:
        """The figures ``scope`` may see; None before anything is counted (stream clock)."""
        at = await self.cluster.today()
        if at is None:
            return None
        months = PERIODS[period]
        now, before = periods(at, months, at - dt.timedelta(days=self.retention_days))
        by = ("force", "category", "disposal")
        now_rows, r1, _ = await self.cluster.rows(by, now.first, now.last)
        before_rows, r2, _ = await self.cluster.rows(by, before.first, before.last)
        national = scope.forces is None
        series: dict[tuple[str, ...], int] = {}
        r3 = False
        if national:
            series, r3, _ = await self.cluster.rows(("category", "disposal", "day"), before.first, now.last)
        if r1 or r2 or r3:
            raise Restoring
        forces = sorted(f for f in FORCE_NAMES if scope.allows(f))
        lines = summarise(now_rows, before_rows, forces=forces, national=national, comparable=before.complete)
        quarters = quarterly(series, before.first, now.last) if national else {}
        return Summary(at, months, now, before, lines, quarters)

    @staticmethod
    def _period(request: web.Request) -> str:
        period = request.query.get("period", "12m")
        if period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period[:20]!r}")
        compare = request.query.get("compare", "previous")
        if compare != "previous":
            raise ValueError(f"compare must be 'previous' (the period just before), not {compare[:20]!r}")
        return period

    async def api(self, request: web.Request, scope: Scope) -> web.Response:
        try:
            period = self._period(request)
            fmt = request.query.get("format", "json")
            if fmt not in ("json", "csv"):
                raise ValueError(f"format must be json or csv, not {fmt[:20]!r}")
            summary = await self._summary(period, scope)
        except ValueError as exc:
            return error(400, str(exc))
        except PeerError as exc:
            return error(503, f"cannot gather counts from every worker: {exc}")
        except Restoring:
            return error(503, RESTORING, headers={"Retry-After": str(RETRY_AFTER_S)})
        if fmt == "csv":
            return self._csv(summary, period)
        if summary is None:
            return web.json_response({"period": period, "at": None, "rows": []})
        return web.json_response(
            {
                "period": period,
                "at": summary.at.isoformat(),
                "current": _period_json(summary.now),
                "previous": _period_json(summary.before),
                "method": METHOD,
                "rows": [
                    {
                        "category": line.category,
                        "force": line.force,
                        "current": _figures_json(line.now),
                        "previous": _figures_json(line.before),
                        "change": {c: _change_json(ch) for c, ch in line.changes.items()},
                    }
                    for line in summary.lines
                ],
                "sentences": [
                    s
                    for line in summary.lines
                    if line.force is None
                    for c in (*CLASSES, "out-of-court")
                    if (s := sentence(line, c, summary.months, summary.now.last)) is not None
                ],
                "quarters": {
                    category: [
                        {
                            "quarter": q.quarter,
                            **q.by_class,
                            "out_of_court": q.out_of_court,
                            "outcomes": q.outcomes,
                            "whole": q.whole,
                        }  # fmt: skip
                        for q in qs
                    ]
                    for category, qs in summary.quarters.items()
                },
            }
        )

    @staticmethod
    def _csv(summary: Summary | None, period: str) -> web.Response:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        head = ["category", "force", "period_first", "period_last"]
        for when in ("current", "previous"):
            head += [f"{when}_{c}" for c in (*CLASSES, "out_of_court", "outcomes")]
        w.writerow([*head, "out_of_court_ratio", "out_of_court_ratio_low", "out_of_court_ratio_high"])
        for line in summary.lines if summary is not None else []:
            assert summary is not None
            row: list[object] = [line.category, line.force or "all", summary.now.first, summary.now.last]
            for f in (line.now, line.before):
                row += [*(f.count(c) for c in CLASSES), f.out_of_court, f.outcomes]
            change = line.changes.get("out-of-court")
            row += [change.ratio, change.low, change.high] if change is not None else ["", "", ""]
            w.writerow(["" if v is None else v for v in row])
        headers = {"Content-Disposition": f'attachment; filename="national-{period}.csv"'}
        return web.Response(text=out.getvalue(), content_type="text/csv", headers=headers)

    async def page(self, request: web.Request) -> web.Response:
        scope = self.guard.scope_of(request)
        if isinstance(scope, Denied):
            return refused_page(scope)
        try:
            period = self._period(request)
            summary = await self._summary(period, scope)
        except ValueError as exc:
            return html_page(render.page("Not a period", f"<p>{render.esc(exc)}</p>", ""), 400)
        except PeerError as exc:
            return not_all_workers_page(exc)
        except Restoring:
            return restoring_page()
        as_of = render.as_of_text(summary.at.isoformat() if summary else None, self.cluster.clock.kind)
        if summary is None:
            return html_page(render.page("National figures", "<p>No outcomes counted yet.</p>", as_of))
        note = (
            "All forces, and each force."
            if scope.forces is None
            else "Showing "
            + ", ".join(render.force_name(f) for f in sorted(scope.forces))
            + " only: the national figures need an all-forces token."
        )
        text = national_page(
            summary.lines,
            summary.quarters,
            months=summary.months,
            now=summary.now,
            before=summary.before,
            as_of=as_of,
            scope_note=note,
            csv_link=f"/api/summary?period={period}&compare=previous&format=csv",
            methods=self.methods,
        )
        return html_page(text)
