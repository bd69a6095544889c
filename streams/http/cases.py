"""Acting on a case: ``GET /api/refs/{pseudonym}?force=<force id>``.

An alert cites crimes by pseudonym (keyed HMAC of the crime reference), so that no crime
reference leaves the processor. A force that must act on an alert needs the reference back: a
token whose scope includes the force and which carries the ``reidentify`` permission gets it.
Every lookup is logged (who, which force, which pseudonym, whether it was found; never the
reference) and counted in ``disposal_reidentifications_total{force,outcome}``. Without the
permission the answer is 403; for a pseudonym of a crime no worker holds, 404.

No mapping from pseudonyms to references is stored: the worker that holds the crime finds it by
pseudonymising its force's crime keys (``Cluster.reidentify``): a few seconds at worst for the
largest force, and nothing to leak or to keep in step.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from streams import metrics
from streams.access import Denied, Scope
from streams.cluster import Cluster
from streams.http.guards import deny, error, forbidden_force
from streams.peers import PeerError
from streams.reference import FORCE_NAMES

log = logging.getLogger(__name__)

_PSEUDONYM = re.compile(r"^[0-9a-f]{16}$")


class CasePages:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def reidentify(self, request: web.Request, scope: Scope, pseudonym: str) -> web.Response:
        force = request.query.get("force", "")
        if force not in FORCE_NAMES:
            return error(400, f"force must be a police.uk force id, not {force!r}")
        if not _PSEUDONYM.match(pseudonym):
            return error(400, "a pseudonym is 16 hexadecimal digits")
        refused = forbidden_force(scope, force)
        if refused is None and "reidentify" not in scope.permissions:
            refused = deny(
                Denied(403, "no_permission", "this token may not re-identify crimes (permission reidentify)")
            )
        if refused is not None:
            metrics.REIDENTIFICATIONS.labels(force, "refused").inc()
            log.warning(
                "re-identification refused: token %s, force %s, pseudonym %s", scope.name, force, pseudonym
            )
            return refused
        try:
            crime_ref = await self.cluster.reidentify(force, pseudonym)
        except PeerError as exc:
            return error(503, f"cannot ask every worker: {exc}")
        outcome = "found" if crime_ref is not None else "not_found"
        metrics.REIDENTIFICATIONS.labels(force, outcome).inc()
        log.warning(
            "re-identification %s: token %s, force %s, pseudonym %s", outcome, scope.name, force, pseudonym
        )
        if crime_ref is None:
            return error(404, f"no crime of {force} held has the pseudonym {pseudonym}")
        return web.json_response({"pseudonym": pseudonym, "force": force, "crime_ref": crime_ref})
