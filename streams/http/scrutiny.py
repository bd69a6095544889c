"""A scrutiny panel's sample: ``/force/{force}/scrutiny?quarter=2026-Q3`` and its CSV,
``/force/{force}/scrutiny.csv`` (``streams.dashboard.scrutiny`` draws it).

Crimes are shown by pseudonym. A token whose scope covers the force and which carries the
``reidentify`` permission sees the crime references instead; each such view is logged (who,
which force and quarter, how many crimes; never the references) and counted in
``disposal_reidentifications_total{force,outcome="found"}``, as a lookup by pseudonym is.
"""

from __future__ import annotations

import csv
import io
import logging

from aiohttp import web

from streams import metrics
from streams.access import Denied, Scope
from streams.cluster import Cluster
from streams.core.counting import pseudonym
from streams.dashboard import render
from streams.dashboard.scrutiny import Candidate, draw, quarter_bounds, quarter_of, sizes_by_category
from streams.dashboard.scrutiny_page import scrutiny_page
from streams.http.counts import RESTORING, RETRY_AFTER_S
from streams.http.dashboard import html_page, not_all_workers_page, refused_page, restoring_page
from streams.http.guards import Guard, deny, error
from streams.peers import PeerError
from streams.reference import FORCE_NAMES

log = logging.getLogger(__name__)


class ScrutinyPages:
    def __init__(
        self,
        cluster: Cluster,
        guard: Guard,
        *,
        pseudonym_key: bytes,
        draw_key: bytes,
        size: int,
    ) -> None:
        self.cluster, self.guard = cluster, guard
        self.pseudonym_key, self.draw_key, self.size = pseudonym_key, draw_key, size

    def _checked(self, request: web.Request, force: str, page: bool) -> Scope | web.Response:
        """The request's scope, or its refusal: a page for the page, JSON (``{"error": ...}``,
        as every API answer's) for the CSV."""
        scope = self.guard.scope_of(request)
        if force not in FORCE_NAMES and not isinstance(scope, Denied):
            if not page:
                return error(404, f"no force has the id {force[:80]!r}")
            return html_page(
                render.page("No such force", f"<p>No force has the id {render.esc(force)}.</p>", ""), 404
            )
        if not isinstance(scope, Denied) and not scope.allows(force):
            scope = Denied(403, "forbidden_force", "Your access does not cover this force.")
        if isinstance(scope, Denied):
            return refused_page(scope) if page else deny(scope, "Bearer")
        return scope

    async def _sample(
        self, request: web.Request, force: str, page: bool
    ) -> tuple[str, list[Candidate], dict[str, int]] | web.Response:
        quarter = request.query.get("quarter")
        try:
            if quarter is None:
                today = await self.cluster.today()
                if today is None:
                    if not page:
                        return error(404, "no outcomes counted yet: give a quarter")
                    return html_page(render.page("Scrutiny sample", "<p>No outcomes counted yet.</p>", ""))
                quarter = quarter_of(today)
            first, last = quarter_bounds(quarter)
            pool, recovering = await self.cluster.candidates(force, first, last)
        except ValueError as exc:
            if not page:
                return error(400, str(exc))
            return html_page(render.page("Not a quarter", f"<p>{render.esc(exc)}</p>", ""), 400)
        except PeerError as exc:
            if not page:
                return error(503, f"cannot gather counts from every worker: {exc}")
            return not_all_workers_page(exc)
        if recovering:
            if not page:
                return error(503, RESTORING, headers={"Retry-After": str(RETRY_AFTER_S)})
            return restoring_page()
        return quarter, draw(pool, self.size, self.draw_key, force, quarter), sizes_by_category(pool)

    def _references(self, scope: Scope, force: str, quarter: str, sample: list[Candidate]) -> bool:
        """Whether this view shows crime references (logged and counted when it does)."""
        if "reidentify" not in scope.permissions:
            return False
        metrics.REIDENTIFICATIONS.labels(force, "found").inc(len(sample))
        log.warning(
            "re-identification: token %s, force %s, scrutiny sample of %s, %d crimes",
            scope.name, force, quarter, len(sample),
        )  # fmt: skip
        return True

    def _ref(self, c: Candidate, show: bool, force: str) -> str:
        return c.key[len(force) + 1 :] if show else pseudonym(c.key, self.pseudonym_key)

    async def _view(
        self, request: web.Request, force: str, *, page: bool
    ) -> tuple[str, list[Candidate], dict[str, int], bool] | web.Response:
        """What a request sees of the sample: its quarter, crimes, the quarter's disposals by
        category and whether references are shown; or the answer refusing it (a page for the
        page, JSON for the CSV)."""
        scope = self._checked(request, force, page)
        if isinstance(scope, web.Response):
            return scope
        got = await self._sample(request, force, page)
        if isinstance(got, web.Response):
            return got
        quarter, sample, sizes = got
        return quarter, sample, sizes, self._references(scope, force, quarter, sample)

    async def page(self, request: web.Request, force: str) -> web.Response:
        got = await self._view(request, force, page=True)
        if isinstance(got, web.Response):
            return got
        quarter, sample, sizes, show = got
        refs = [self._ref(c, show, force) for c in sample]
        return html_page(scrutiny_page(force, quarter, sample, refs, sizes, references=show))

    async def csv(self, request: web.Request, force: str) -> web.Response:
        got = await self._view(request, force, page=False)
        if isinstance(got, web.Response):
            return got
        quarter, sample, _, show = got
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            ["crime_ref" if show else "pseudonym", "category", "disposal", "outcome_date", "domestic_abuse"]
        )
        for c in sample:
            w.writerow(
                [self._ref(c, show, force), c.category, c.disposal, c.day.isoformat(), c.domestic_abuse]
            )
        headers = {"Content-Disposition": f'attachment; filename="{force}-scrutiny-{quarter}.csv"'}
        return web.Response(text=out.getvalue(), content_type="text/csv", headers=headers)
