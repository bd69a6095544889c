"""``GET /api/openapi.json``: the OpenAPI 3.1 document of every endpoint.

The document is package data (``streams/http/openapi.json``), written by hand next to the
handlers it describes; ``tests/integration/test_api_fuzz.py`` holds every route of a built worker
against it and runs schemathesis against a live worker.
"""

from __future__ import annotations

from aiohttp import web

from streams.resources import OPENAPI


class DocsPages:
    def __init__(self) -> None:
        self._body = OPENAPI.read_bytes()

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self._body, content_type="application/json")
