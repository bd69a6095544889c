"""The worker's HTTP server: aiohttp, with the protections a server reachable over a network needs.

- Every answer (pages, API, feed, static files, errors) carries ``SECURITY_HEADERS``: a strict
  Content-Security-Policy (scripts and styles from this origin only, no inline script, nothing
  from third parties, never framed), ``nosniff`` and ``no-referrer``.
- A connection that has not sent a whole request within ``DW_WEB_IDLE_TIMEOUT_S`` of opening (or of
  its last answer) is closed: slow request headers cannot hold the server's sockets. aiohttp's
  keep-alive timer does this (it also runs before the first request).
- At most ``DW_WEB_MAX_CONNECTIONS`` connections are open at once, and at most
  ``DW_WEB_MAX_CONNECTIONS_PER_CLIENT`` from one address; one more is answered 503 and closed
  (``ConnectionGate``), and counted in ``disposal_http_refused_total``. So one client holding
  sockets open (slowly) cannot shut the others out.
- Request bodies are capped (only sign-in posts one).
- With ``DW_WEB_TLS_CERT`` and ``DW_WEB_TLS_KEY`` the server speaks HTTPS only (``streams.tls``).

Pages are plain ``handler(request, **path parameters) -> response`` functions (``add_page``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from streams import metrics

log = logging.getLogger(__name__)

#: a page handler: the request and the path's parameters -> a response
Handler = Callable[..., Awaitable[web.StreamResponse]]

# Set when the server begins to stop: long-lived responses (the alert event stream) end at once,
# instead of holding the shutdown until they time out; their clients reconnect with Last-Event-ID.
CLOSING = web.AppKey("closing", asyncio.Event)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
#: the largest request body the server reads (a sign-in form is well under 1 KB)
MAX_BODY_BYTES = 16 * 1024
_BUSY_TEXT = b"too many connections to this worker; retry\n"
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_TEXT), _BUSY_TEXT)
)


@dataclass(frozen=True)
class Limits:
    idle_timeout_s: float = 10.0
    max_connections: int = 256
    max_per_client: int = 64


async def _secure_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = "disposal-watch"  # not the versions of Python and aiohttp


class ConnectionGate:
    """Counts open connections, in all and per client address. ``admit`` gives each new
    connection a protocol that serves it with aiohttp's, or, when ``max_connections`` are open or
    its address holds ``max_per_client`` already, answers 503 and closes it."""

    def __init__(self, max_connections: int, max_per_client: int) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.open = 0
        self.per_client: dict[str, int] = {}

    def admit(self, make: Callable[[], asyncio.Protocol]) -> asyncio.Protocol:
        return _Gated(make, self)

    def enter(self, client: str) -> str | None:
        """Count a connection from ``client`` in; or why it is refused."""
        if self.open >= self.max_connections:
            return "too_many_connections"
        if self.per_client.get(client, 0) >= self.max_per_client:
            return "too_many_from_client"
        self.open += 1
        self.per_client[client] = self.per_client.get(client, 0) + 1
        return None

    def leave(self, client: str) -> None:
        self.open -= 1
        left = self.per_client[client] - 1
        if left:
            self.per_client[client] = left
        else:
            del self.per_client[client]


class _Gated(asyncio.Protocol):
    """aiohttp's protocol for one admitted connection, passed every call; leaves the gate on close.
    A refused connection is answered 503 once its request starts to arrive (or after a second),
    so that the client reads the answer rather than a reset."""

    def __init__(self, make: Callable[[], asyncio.Protocol], gate: ConnectionGate) -> None:
        self._make, self._gate = make, gate
        self._inner: asyncio.Protocol | None = None
        self._client = ""
        self._transport: Any = None
        self._refusal: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        refused = self._gate.enter(self._client)
        if refused is None:
            self._inner = self._make()
            self._inner.connection_made(transport)
            return
        metrics.HTTP_REFUSED.labels(refused).inc()
        self._transport = transport
        self._refusal = asyncio.get_running_loop().call_later(1.0, self._refuse)

    def _refuse(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(BUSY)
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
        else:
            self._refuse()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refusal is not None:
            self._refusal.cancel()
        if self._inner is not None:
            self._gate.leave(self._client)
            self._inner.connection_lost(exc)


async def _closing(app: web.Application) -> None:
    app[CLOSING].set()


class WebServer:
    """The aiohttp application and its listener."""

    def __init__(self, host: str, port: int, limits: Limits, tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.limits, self.tls = host, port, limits, tls
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.app.on_response_prepare.append(_secure_headers)
        self.app[CLOSING] = asyncio.Event()
        self.app.on_shutdown.append(_closing)
        self.gate = ConnectionGate(limits.max_connections, limits.max_per_client)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None

    def add_page(self, path: str, handler: Handler, name: str, post: Handler | None = None) -> None:
        """Serve ``handler(request, **path parameters)`` at ``path`` (GET and HEAD), and ``post``."""

        async def get(request: web.Request) -> web.StreamResponse:
            return await handler(request, **request.match_info)

        self.app.router.add_get(path, get, name=name)
        if post is not None:
            post_handler = post

            async def post_(request: web.Request) -> web.StreamResponse:
                return await post_handler(request, **request.match_info)

            self.app.router.add_post(path, post_, name=f"{name}_post")

    def add_static(self, prefix: str, directory: Path) -> None:
        """Serve the files of ``directory`` (read once, at start) at ``prefix{filename}``; any
        other name is 404. No path from a request ever reaches the file system."""
        types = {".js": "application/javascript", ".css": "text/css"}
        files = {f.name: (f.read_bytes(), types[f.suffix]) for f in directory.iterdir() if f.suffix in types}

        async def static(request: web.Request, filename: str) -> web.Response:
            found = files.get(filename)
            if found is None:
                return web.Response(text=f"no file {filename[:80]!r} here\n", status=404)
            body, kind = found
            return web.Response(body=body, content_type=kind, headers={"Cache-Control": "no-cache"})

        self.add_page(prefix + "{filename}", static, "static")

    def routes(self) -> list[tuple[str, str]]:
        """(method, path) of every route, for the OpenAPI document's completeness test."""
        out = []
        for route in self.app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path") or info.get("formatter") or info.get("prefix", "")
            out.append((route.method, str(path)))
        return out

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app, access_log=None, keepalive_timeout=self.limits.idle_timeout_s, handle_signals=False
        )
        await self._runner.setup()
        make: Any = self._runner.server
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            lambda: self.gate.admit(make), self.host, self.port, ssl=self.tls, reuse_address=True
        )
        log.info("serving on %s://%s:%d", "https" if self.tls else "http", self.host, self.port)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
