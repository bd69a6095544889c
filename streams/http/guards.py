"""Who may ask: bearer tokens scoped to forces for users, a shared credential for workers.

``Guard.scoped(handler)``: a user-facing endpoint; the handler receives the ``Scope`` of the
request's bearer token. ``Guard.peers_only(handler)``: a worker-to-worker endpoint. Refusals are
401 (no or wrong credential) or 403 (scope), answered in JSON and counted in
``disposal_api_denied_total{reason}``. See ``streams.access`` for the rules themselves.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from streams import metrics
from streams.access import PEER_HEADER, Denied, Scope, Sessions, TokenEntry, authorize, authorize_peer

Response = web.StreamResponse

#: the dashboard's sign-in session (``streams.access.Sessions``: signed, expiring, never the
#: token; HttpOnly, SameSite=Strict, Secure over TLS); user-facing endpoints accept it in place of
#: the Authorization header
SESSION_COOKIE = "dw_session"


def cross_site(request: web.BaseRequest) -> bool:
    """Whether a browser says this request comes from another site: by Fetch Metadata where the
    browser sends it, else by Origin. (Under ``Referrer-Policy: no-referrer`` a browser sends
    ``Origin: null`` even for a form of the same origin, so "null" alone proves nothing.)"""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin not in (None, "null", f"{request.scheme}://{request.host}")


ScopedHandler = Callable[..., Awaitable[Response]]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def deny(denied: Denied, challenge: str | None = None) -> web.Response:
    metrics.API_DENIED.labels(denied.reason).inc()
    headers = {"WWW-Authenticate": challenge} if challenge and denied.status == 401 else None
    return error(denied.status, denied.message, headers)


class Guard:
    def __init__(self, tokens: list[TokenEntry] | None, peer_credential: str, sessions: Sessions) -> None:
        self.tokens = tokens
        self.peer_credential = peer_credential
        self.sessions = sessions

    def scope_of(self, request: web.BaseRequest) -> Scope | Denied:
        """What the request may see: by its bearer token, else its session cookie, else (no
        tokens configured) by whether it comes from localhost."""
        header = request.headers.get("Authorization")
        cookie = request.cookies.get(SESSION_COOKIE)
        if header is None and cookie and self.tokens is not None:
            return self.sessions.scope(cookie, self.tokens, time.time())
        return authorize(self.tokens, header, request.remote)

    def scoped(self, handler: ScopedHandler) -> Callable[..., Awaitable[Response]]:
        @functools.wraps(handler)
        async def page(request: web.Request, **params: Any) -> Response:
            scope = self.scope_of(request)
            if isinstance(scope, Denied):
                return deny(scope, "Bearer")
            return await handler(request, scope, **params)

        return page

    def peers_only(self, handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
        @functools.wraps(handler)
        async def page(request: web.Request, **params: Any) -> Response:
            denied = authorize_peer(self.peer_credential, request.headers.get(PEER_HEADER))
            if denied is not None:
                return deny(denied)
            return await handler(request, **params)

        return page


def forbidden_force(scope: Scope, force: str | None) -> web.Response | None:
    """403 when a request names a force its token may not see."""
    if force and not scope.allows(force):
        return deny(Denied(403, "forbidden_force", f"this token may not see force {force!r}"))
    return None
