"""The worker's HTTP server on a real socket (no broker): security headers on every answer, slow
request headers timed out, connections bounded, sign-in refused across sites, and every route a
built worker serves described in the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from streams.http.guards import cross_site
from streams.http.server import SECURITY_HEADERS, Limits, WebServer
from streams.kafka_local import free_port
from streams.resources import DASHBOARD_STATIC, OPENAPI


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


async def started(limits: Limits) -> WebServer:
    server = WebServer("127.0.0.1", free_port(), limits)
    server.add_page("/hello", hello, "hello")
    server.add_static("/static/", DASHBOARD_STATIC)
    await server.start()
    return server


async def exchange(port: int, request: bytes, read_s: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), read_s)
    writer.close()
    return data


@pytest.mark.parametrize(
    "path", ["/hello", "/nowhere", "/static/dashboard.js", "/static/../settings.py", "/static/x.js"]
)
async def test_every_answer_carries_the_security_headers(path: str) -> None:
    server = await started(Limits())
    try:
        answer = (await exchange(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())).decode()
        head = answer.split("\r\n\r\n")[0]
        for name, value in SECURITY_HEADERS.items():
            assert f"{name}: {value}" in head, (path, name)
        assert "Server: disposal-watch" in head and "aiohttp" not in head
        if path != "/hello" and path != "/static/dashboard.js":
            assert head.startswith("HTTP/1.1 404")
    finally:
        await server.stop()


async def test_slow_request_headers_are_cut_off() -> None:
    server = await started(Limits(idle_timeout_s=0.5))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        t0 = time.monotonic()
        writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        for _ in range(40):  # one header line every 0.1 s, never the blank line that ends them
            await asyncio.sleep(0.1)
            if reader.at_eof():
                break
            writer.write(b"X-Slow: 1\r\n")
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed, unanswered
        assert time.monotonic() - t0 < 2.0
        writer.close()
        # a prompt request is answered as usual
        assert b"200 OK" in await exchange(server.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        await server.stop()


async def test_one_client_cannot_take_every_connection() -> None:
    server = await started(Limits(max_connections=100, max_per_client=2, idle_timeout_s=30))
    held: list[socket.socket] = []
    try:
        for _ in range(2):
            held.append(socket.create_connection(("127.0.0.1", server.port)))
        await asyncio.sleep(0.2)
        busy = await exchange(server.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert busy.startswith(b"HTTP/1.1 503")  # a third from the same address
        # another address is served meanwhile
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.2", 0))
        writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(4096), 5)).startswith(b"HTTP/1.1 200")
        writer.close()
        assert server.gate.per_client == {"127.0.0.1": 2}
    finally:
        for s in held:
            s.close()
        await server.stop()


async def test_connections_past_the_limit_get_503_at_once() -> None:
    server = await started(Limits(max_connections=3, idle_timeout_s=30))
    held: list[socket.socket] = []
    try:
        for _ in range(3):
            held.append(socket.create_connection(("127.0.0.1", server.port)))
        await asyncio.sleep(0.2)
        assert server.gate.open == 3
        busy = await exchange(server.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert busy.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in busy
        held.pop().close()
        await asyncio.sleep(0.2)
        assert server.gate.open == 2
        assert b"200 OK" in await exchange(server.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        for s in held:
            s.close()
        await server.stop()


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),  # not from a browser
        ({"Sec-Fetch-Site": "same-origin"}, False),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "null"}, False),  # Referrer-Policy: no-referrer
        ({"Sec-Fetch-Site": "none"}, False),  # typed into the address bar
        ({"Origin": "http://dw.example:6066"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, True),
        ({"Sec-Fetch-Site": "same-site"}, True),  # another port or subdomain is another origin
        ({"Sec-Fetch-Site": "cross-site", "Origin": "http://dw.example:6066"}, True),
        ({"Origin": "http://evil.example"}, True),
        ({"Origin": "http://dw.example:6067"}, True),
    ],
)
def test_sign_in_posts_from_other_sites_are_refused(headers: dict[str, str], refused: bool) -> None:
    request = make_mocked_request("POST", "/signin", headers={"Host": "dw.example:6066", **headers})
    assert cross_site(request) is refused


def test_every_route_a_worker_serves_is_in_the_openapi_document(tmp_path: Path) -> None:
    from streams.app import build
    from streams.keys import derive
    from streams.settings import load_settings

    settings = load_settings(store="memory", data_dir=tmp_path, kafka="localhost:1")
    worker = build(settings, derive(b"k" * 64))
    served = {(m, p) for m, p in worker.server.routes() if m != "HEAD"}
    doc = json.loads(OPENAPI.read_text())
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served - described == set(), "routes the OpenAPI document lacks"
    assert described - served == set(), "the document describes routes no worker serves"
    assert doc["openapi"].startswith("3.1")


Row = tuple[str, ...]


class RestoringCluster:
    """A cluster whose workers are still restoring, then (after ``restoring`` asks) done."""

    def __init__(self, restoring: int) -> None:
        self.restoring = restoring

    async def today(self) -> object:
        import datetime as dt

        return dt.date(2025, 6, 30)

    async def rows(
        self, group_by: object, first: object, last: object, force: object = None
    ) -> tuple[dict[tuple[str, ...], int], bool, int]:
        self.restoring -= 1
        return {("kent",): 7}, self.restoring >= 0, 1


async def test_counts_while_a_worker_restores_are_503_with_retry_after_never_a_part() -> None:
    from streams.access import Scope
    from streams.http.counts import CountsPages

    pages = CountsPages(RestoringCluster(restoring=1), retention_days=400)  # type: ignore[arg-type]
    request = make_mocked_request("GET", "/api/counts?group_by=force")
    busy = await pages.counts(request, Scope("t", None))
    assert busy.status == 503 and busy.headers["Retry-After"] == "2"
    assert b"rows" not in busy.body and b"restoring" in busy.body  # type: ignore[operator]
    done = await pages.counts(request, Scope("t", None))
    assert done.status == 200 and json.loads(done.body)["rows"] == [{"force": "kent", "count": 7}]  # type: ignore[arg-type]


@pytest.mark.parametrize(("busy_answers", "timeout", "code"), [(2, "30", 0), (1000, "2", 1)])
async def test_the_cli_waits_out_a_restore_or_says_why_it_gave_up(
    busy_answers: int, timeout: str, code: int
) -> None:
    import os
    import sys

    asked = 0

    async def counts(request: web.Request) -> web.Response:
        nonlocal asked
        asked += 1
        if asked <= busy_answers:
            return web.json_response(
                {"error": "a worker is restoring"}, status=503, headers={"Retry-After": "1"}
            )
        return web.json_response({"group_by": ["force"], "rows": [{"force": "kent", "count": 7}]})

    server = WebServer("127.0.0.1", free_port(), Limits())
    server.add_page("/api/counts", counts, "counts")
    await server.start()
    try:
        cli = Path(sys.executable).parent / "disposal-watch"
        proc = await asyncio.create_subprocess_exec(
            str(cli), "counts", "--group-by", "force", "--timeout", timeout, "--url", f"http://127.0.0.1:{server.port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "DW_KAFKA": "localhost:1"},
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await server.stop()
    assert proc.returncode == code, err
    if code == 0:
        assert out.decode() == "force,count\nkent,7\n" and asked == busy_answers + 1
    else:
        assert out == b"" and err.decode().count("\n") == 1 and "restoring" in err.decode()


async def test_the_force_csv_answers_its_errors_as_json_as_the_api_does() -> None:
    from streams.access import Sessions, TokenEntry, digest
    from streams.http.dashboard import DashboardPages
    from streams.http.guards import Guard

    guard = Guard(
        [TokenEntry(name="kent", sha256=digest("k"), forces=("kent",))], "peer", Sessions(b"s" * 32, 3600)
    )

    class Restoring(RestoringCluster):
        async def rows(
            self, group_by: object, first: object, last: object, force: object = None
        ) -> tuple[dict[tuple[str, ...], int], bool, int]:
            return {}, True, 1

    pages = DashboardPages(Restoring(0), None, [], guard, retention_days=400)  # type: ignore[arg-type]

    async def csv_of(force: str, headers: dict[str, str]) -> web.Response:
        return await pages.force_csv(
            make_mocked_request("GET", f"/force/{force}/counts.csv", headers=headers), force
        )

    kent = {"Authorization": "Bearer k"}
    for answer, status in [
        (await csv_of("kent", kent), 503),  # a worker restoring
        (await csv_of("durham", kent), 403),  # not this token's force
        (await csv_of("gotham", kent), 404),  # no such force
        (await csv_of("kent", {}), 401),  # no token
    ]:
        assert answer.status == status and answer.content_type == "application/json", (status, answer.body)
        assert json.loads(answer.body)["error"]  # type: ignore[arg-type]
    assert (await csv_of("kent", kent)).headers["Retry-After"] == "2"
    assert (await csv_of("kent", {})).headers["WWW-Authenticate"] == "Bearer"


async def test_the_scrutiny_csv_answers_its_errors_as_json_and_its_page_as_html() -> None:
    from streams.access import Sessions, TokenEntry, digest
    from streams.http.guards import Guard
    from streams.http.scrutiny import ScrutinyPages

    guard = Guard(
        [TokenEntry(name="kent", sha256=digest("k"), forces=("kent",))], "peer", Sessions(b"s" * 32, 3600)
    )

    class Restoring(RestoringCluster):
        async def candidates(self, force: str, first: object, last: object) -> tuple[list[object], bool]:
            return [], True

    pages = ScrutinyPages(Restoring(0), guard, pseudonym_key=b"p" * 32, draw_key=b"d" * 32, size=5)  # type: ignore[arg-type]

    async def answer(force: str, headers: dict[str, str], query: str = "", csv: bool = True) -> web.Response:
        path = f"/force/{force}/scrutiny{'.csv' if csv else ''}{query}"
        request = make_mocked_request("GET", path, headers=headers)
        return await (pages.csv if csv else pages.page)(request, force)

    kent = {"Authorization": "Bearer k"}
    for got, status in [
        (await answer("kent", kent), 503),  # a worker restoring
        (await answer("durham", kent), 403),  # not this token's force
        (await answer("gotham", kent), 404),  # no such force
        (await answer("kent", {}), 401),  # no token
        (await answer("kent", kent, "?quarter=2025-Q5"), 400),  # not a quarter
    ]:
        assert got.status == status and got.content_type == "application/json", (status, got.body)
        assert json.loads(got.body)["error"]  # type: ignore[arg-type]
    assert (await answer("kent", kent)).headers["Retry-After"] == "2"
    assert (await answer("kent", {})).headers["WWW-Authenticate"] == "Bearer"
    page = await answer("kent", kent, "?quarter=2025-Q5", csv=False)
    assert page.status == 400 and page.content_type == "text/html"


async def test_the_alerts_answer_shows_a_token_its_forces_only_and_refuses_others() -> None:
    """``AlertPages.alerts`` behind ``Guard.scoped``: by the bearer token's forces, with no
    broker (the alert log is filled as its follower fills it)."""
    from streams.access import Sessions, TokenEntry, digest
    from streams.alerting.log import AlertLog
    from streams.clients import KafkaClients
    from streams.http.alerts import AlertPages
    from streams.http.guards import Guard
    from tests.unit.test_wire import ENTRY

    log = AlertLog(KafkaClients.plain(["unused:9092"]), "alerts")  # never started: no broker asked
    for offset, (force, state) in enumerate([("kent", "firing"), ("essex", "firing"), ("kent", "resolved")]):
        log.remember(
            {**ENTRY, "id": offset, "fingerprint": f"{force}-{offset}", "force_id": force, "state": state}
        )
    guard = Guard(
        [
            TokenEntry(name="kent", sha256=digest("k"), forces=("kent",)),
            TokenEntry(name="all", sha256=digest("a"), forces="all"),
        ],
        "peer",
        Sessions(b"s" * 32, 3600),
    )
    alerts = guard.scoped(AlertPages(log).alerts)

    async def ask(query: str, token: str | None) -> web.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = await alerts(make_mocked_request("GET", f"/api/alerts{query}", headers=headers))
        assert isinstance(answer, web.Response)
        return answer

    def forces(answer: web.Response) -> list[str]:
        assert answer.status == 200, answer.body
        return sorted(a["force_id"] for a in json.loads(answer.body)["alerts"])  # type: ignore[arg-type]

    assert forces(await ask("", "a")) == ["essex", "kent"]  # firing ones, every force
    assert forces(await ask("?state=all", "a")) == ["essex", "kent", "kent"]
    assert forces(await ask("?state=all", "k")) == ["kent", "kent"]  # kent's token: kent's only
    for query, token, status in [
        ("?force=essex", "k", 403),  # naming a force the token may not see
        ("?state=open", "a", 400),  # not a state
        ("", None, 401),  # no token (and tokens configured)
        ("", "wrong", 401),
    ]:
        answer = await ask(query, token)
        assert answer.status == status and json.loads(answer.body)["error"], (query, token)  # type: ignore[arg-type]
