"""The oversight dashboard over HTTP: ``/`` (alerts, live, and funnel plots), ``/force/{id}``
(a force's monthly trend and alerts), ``/force/{id}/counts.csv``, and ``/signin``.

The same access rules as the API (``streams.access``): with no tokens file, localhost only; with
one, a sign-in that takes a bearer token once and gives a signed, expiring session cookie
(HttpOnly, SameSite=Strict, Secure over TLS; the API and the SSE feed accept it too,
``streams.http.guards``), and a force-scoped token sees only its forces. Sign-in refuses posts
from other sites. The pages are read-only.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import time
from collections.abc import Mapping, Sequence

from aiohttp import web

from alerts.evidence import CATEGORY_WORDS
from alerts.rules import Rule
from streams import metrics
from streams.access import Denied, Scope, entry_of
from streams.alerting.log import AlertLog
from streams.cluster import Cluster
from streams.core.query import window_days
from streams.dashboard import render
from streams.dashboard.funnel import Funnel, funnel
from streams.dashboard.trend import monthly
from streams.http.counts import RESTORING, RETRY_AFTER_S
from streams.http.guards import SESSION_COOKIE, Guard, cross_site, deny, error
from streams.peers import PeerError
from streams.reference import FORCE_NAMES

#: the other forces together, in the rows of a force page (never a force id: those have no ~)
OTHERS = "~others"


def html_page(text: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=headers)


def restoring_page() -> web.Response:
    """No page from partial counts: 503 with Retry-After while a worker restores."""
    text = render.page("Restoring", f"<p>{render.esc(RESTORING)}.</p>", "")
    return html_page(text, 503, headers={"Retry-After": str(RETRY_AFTER_S)})


def refused_page(denied: Denied) -> web.Response:
    """The sign-in form (no credential) or a page saying what is not covered."""
    if denied.status == 401:
        return html_page(render.signin_page(), status=401)
    return html_page(render.page("Not available here", f"<p>{render.esc(denied.message)}</p>", ""), 403)


def not_all_workers_page(exc: Exception) -> web.Response:
    return html_page(render.page("Not all workers answered", f"<p>{render.esc(exc)}</p>", ""), 503)


class DashboardPages:
    def __init__(
        self,
        cluster: Cluster,
        alert_log: AlertLog,
        rules: Sequence[Rule],
        guard: Guard,
        *,
        retention_days: int,
    ) -> None:
        self.cluster, self.log, self.rules, self.guard = cluster, alert_log, rules, guard
        self.retention_days = retention_days
        self.rule_words = {r.id: r.description[:1].upper() + r.description[1:] for r in rules}

    # --- access -------------------------------------------------------------------------------

    def _scope(self, request: web.Request) -> Scope | Denied:
        return self.guard.scope_of(request)

    async def signin_form(self, request: web.Request) -> web.Response:
        return html_page(render.signin_page())

    async def signin(self, request: web.Request) -> web.Response:
        if cross_site(request):
            metrics.API_DENIED.labels("cross_site").inc()
            return html_page(
                render.page("Not available here", "<p>Sign in from this site's own page.</p>", ""), 403
            )
        form = await request.post()
        token = str(form.get("token", "")).strip()
        tokens = self.guard.tokens
        entry = entry_of(tokens, token) if tokens is not None and token else None
        if entry is None:
            if tokens is not None:
                metrics.API_DENIED.labels("wrong_token").inc()
            return html_page(render.signin_page("That token is not valid."), status=401)
        resp = web.HTTPSeeOther("/")
        # no Max-Age: kept for the browser session only, and never past the session's own expiry
        resp.set_cookie(
            SESSION_COOKIE,
            self.guard.sessions.issue(entry, time.time()),
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/",
        )
        return resp

    # --- pages --------------------------------------------------------------------------------

    async def _today(self) -> dt.date | None:
        return await self.cluster.today()

    async def index(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        if isinstance(scope, Denied):
            return refused_page(scope)
        window = request.query.get("window", "365d")
        if window not in render.WINDOWS:
            window = "365d"
        try:
            today = await self._today()
            counts: dict[tuple[str, ...], int] = {}
            if today is not None:
                first, last = window_days(window, at=today, keep_days=self.retention_days)
                counts, recovering, _ = await self.cluster.rows(
                    ("force", "category", "disposal"), first, last
                )
                if recovering:
                    return restoring_page()
        except PeerError as exc:
            return not_all_workers_page(exc)
        alerts = [a for a in self.log.current.values() if scope.allows(a["force_id"])]
        note = (
            "Showing every force."
            if scope.forces is None
            else "Showing " + ", ".join(FORCE_NAMES.get(f, f) for f in sorted(scope.forces)) + " only."
        )
        text = render.index_page(
            alerts,
            self._funnels(counts, int(window[:-1]), scope),
            rule_words=self.rule_words,
            after=self.log.position - 1,
            window=window,
            as_of=render.as_of_text(today.isoformat() if today else None, self.cluster.clock.kind),
            scope_note=note,
            category_names=CATEGORY_WORDS,
        )
        return html_page(text)

    def _funnels(self, counts: Mapping[tuple[str, ...], int], days: int, scope: Scope) -> list[Funnel]:
        """The funnel of every peer rule's categories over all forces (domestic-abuse-only rules
        have none), showing the points of the forces ``scope`` may see."""
        funnels = []
        for rule in self.rules:
            if rule.measure != "peer" or rule.domestic_abuse is not None:
                continue
            for category in rule.category:
                f = funnel(rule, category, counts, FORCE_NAMES, days)
                funnels.append(
                    dataclasses.replace(f, points=tuple(p for p in f.points if scope.allows(p.force)))
                )
        return funnels

    async def _force_rows(self, force: str) -> tuple[dt.date | None, dict[tuple[str, ...], int], bool]:
        """Today, the rows of a force page, and whether a worker is still restoring."""
        today = await self._today()
        if today is None:
            return None, {}, False
        first, last = window_days("365d", at=today, keep_days=self.retention_days)
        # the force's own days, and every force's without the force dimension (a few thousand
        # rows either way, where all forces by force would be forty-five times as many)
        mine, r1, _ = await self.cluster.rows(
            ("force", "category", "disposal", "day"), first, last, force=force
        )
        every, r2, _ = await self.cluster.rows(("category", "disposal", "day"), first, last)
        rows = dict(mine)
        for (category, disposal, day), n in every.items():
            rest = n - mine.get((force, category, disposal, day), 0)
            if rest:
                rows[(OTHERS, category, disposal, day)] = rest
        return today, rows, r1 or r2

    def _force_refused(self, request: web.Request, force: str, *, page: bool = True) -> web.Response | Scope:
        """The scope of a force's page (or, not ``page``, its CSV), or the refusal: a page for
        the page, JSON (``{"error": ...}``, as every API answer's) for the CSV."""
        scope = self._scope(request)
        if force not in FORCE_NAMES and not isinstance(scope, Denied):
            if not page:
                return error(404, f"no force has the id {force[:80]!r}")
            text = f"<p>No force has the id {render.esc(force)}.</p>"
            return html_page(render.page("No such force", text, ""), 404)
        if not isinstance(scope, Denied) and not scope.allows(force):
            scope = Denied(403, "forbidden_force", "Your access does not cover this force.")
        if isinstance(scope, Denied):
            return refused_page(scope) if page else deny(scope, "Bearer")
        return scope

    async def force(self, request: web.Request, force: str) -> web.Response:
        checked = self._force_refused(request, force)
        if isinstance(checked, web.Response):
            return checked
        try:
            today, rows, recovering = await self._force_rows(force)
        except PeerError as exc:
            return not_all_workers_page(exc)
        if recovering:
            return restoring_page()
        current = [a for a in self.log.current.values() if a["force_id"] == force and a["state"] == "firing"]
        past = [e for e in reversed(self.log.entries) if e["force_id"] == force]
        text = render.force_page(
            force,
            monthly(rows, force),
            current,
            past,
            rule_words=self.rule_words,
            as_of=render.as_of_text(today.isoformat() if today else None, self.cluster.clock.kind),
            methods=render.peer_methods(self.rules),
        )
        return html_page(text)

    async def force_csv(self, request: web.Request, force: str) -> web.Response:
        checked = self._force_refused(request, force, page=False)
        if isinstance(checked, web.Response):
            return checked
        try:
            _, rows, recovering = await self._force_rows(force)
        except PeerError as exc:  # as every CSV and API answer's errors: JSON (``guards.error``)
            return error(503, f"cannot gather counts from every worker: {exc}")
        if recovering:
            return error(503, RESTORING, headers={"Retry-After": str(RETRY_AFTER_S)})
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            [
                "category",
                "month",
                "force_out_of_court",
                "force_outcomes",
                "all_forces_out_of_court",
                "all_forces_outcomes",
            ]
        )
        for category, months in monthly(rows, force).items():
            for m in months:
                counted = (m.force_out_of_court, m.force_outcomes, m.all_out_of_court, m.all_outcomes)
                w.writerow([category, m.month, *counted])
        headers = {"Content-Disposition": f'attachment; filename="{force}-high-risk-monthly.csv"'}
        return web.Response(text=out.getvalue(), content_type="text/csv", headers=headers)
