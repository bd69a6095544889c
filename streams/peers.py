"""How a worker asks the other workers of its group: one long-lived HTTP client, behind a seam.

``PeerTransport`` is what ``streams.cluster.Cluster`` needs of the network: the JSON a peer's URL
answers, or ``PeerError``. ``HttpPeers`` is the real one: a single aiohttp session (its
connection pool kept between calls, so a fan-out for ``/api/counts`` or an evaluation reuses the
connections to each peer instead of opening new ones), made inside the running event loop at its
first call and closed when the worker stops. Tests give ``Cluster`` a fake, as httpx's
``MockTransport`` stands in for the network.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import aiohttp

from streams.access import PEER_HEADER
from streams.errors import StreamError

#: a query: names to values, or (name, value) pairs where a name repeats
Params = Mapping[str, str] | Sequence[tuple[str, str]]

#: seconds a peer has to answer one call
PEER_TIMEOUT_S = 10.0


class PeerError(StreamError):
    """Another worker did not answer, or answered with anything but 200 and its figures."""


class PeerTransport(Protocol):
    async def get_json(self, url: str, params: Params) -> Any:
        """The JSON body of a 200 answer from ``url``; ``PeerError`` for any other answer or none."""
        ...

    async def close(self) -> None: ...


class HttpPeers:
    """The real transport: one aiohttp session, carrying the peer credential (``X-DW-Peer``)
    and trusting ``tls`` (the deployment's certificate) as well as the system's store."""

    def __init__(self, credential: str, tls: ssl.SSLContext | None = None) -> None:
        self._credential = credential
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S),
                headers={PEER_HEADER: self._credential},
                connector=aiohttp.TCPConnector(ssl=self._tls if self._tls is not None else True),
            )
        return self._session

    async def get_json(self, url: str, params: Params) -> Any:
        try:
            async with self._open().get(url, params=params) as resp:
                if resp.status != 200:
                    raise PeerError(f"{url} answered {resp.status}")
                return await resp.json()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PeerError(f"{url} did not answer: {type(exc).__name__} {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
