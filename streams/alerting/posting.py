"""One POST of a JSON body to a receiver: what the webhooks and the Alertmanager push share.

Each keeps its own retry policy: a webhook delivery backs off in its ``alerts.grouping.Groups``
(reading goes on meanwhile), the Alertmanager push retries until its next resend is due."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

JSON = {"content-type": "application/json"}


async def post_json(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str] = JSON
) -> str | None:
    """POST ``body`` once: None when the receiver answered 2xx, else what went wrong (``HTTP
    503``, or the name of the error: ``ClientConnectorError``, ``TimeoutError``, ...)."""
    try:
        async with session.post(url, data=body, headers=dict(headers)) as r:
            if 200 <= r.status < 300:
                return None
            return f"HTTP {r.status}"
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return type(exc).__name__
