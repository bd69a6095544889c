"""``Cluster``'s fan-out to the other workers, with a fake transport: no broker, no network."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from alerts.aggregates import RuleAggregates
from streams.cluster import Cluster
from streams.core.buckets import DayCounts
from streams.core.classify import Cell
from streams.core.clock import StreamClock, WallClock
from streams.peers import Params, PeerError
from streams.runtime.partition import PartitionState
from streams.runtime.store import MemoryStore, Store
from streams.schema_registry import Schemas
from streams.wire import Membership, TotalsReply, encode_totals

ME, PEER = "http://me:6066", "http://peer:6066"
D = dt.date(2026, 3, 1)


@dataclass
class Worker:
    """A ``WorkerState`` of one partition, as the cluster reads it."""

    partitions: dict[int, PartitionState] = field(
        default_factory=lambda: {0: PartitionState(0, DayCounts(), 0)}
    )
    recovering: bool = False
    records_processed: int = 0
    membership: Membership = field(default_factory=lambda: Membership({0: ME, 1: PEER}))
    store: Store = field(default_factory=MemoryStore)
    schemas: Schemas | None = None

    def is_leader(self) -> bool:
        return True

    def newest(self) -> dt.date | None:
        return self.partitions[0].counts.newest

    def backlog(self) -> int:
        return 0

    def caught_up(self) -> bool:
        return True


class FakePeers:
    """Answers by path; records every call. A path without an answer is a peer that is down."""

    def __init__(self, answers: Mapping[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, Params]] = []
        self.closed = False

    async def get_json(self, url: str, params: Params) -> Any:
        self.calls.append((url, params))
        path = url.removeprefix(PEER)
        if path not in self.answers:
            raise PeerError(f"{url} answered 503")
        return self.answers[path]

    async def close(self) -> None:
        self.closed = True


def cluster(peers: FakePeers, worker: Worker | None = None, clock: Any = None) -> Cluster:
    return Cluster(worker or Worker(), RuleAggregates([]), ME, b"k" * 32, clock or StreamClock(), peers)


def test_counts_add_up_this_worker_and_its_peer() -> None:
    worker = Worker()
    worker.partitions[0].counts.add(Cell("kent", "stalking", "caution", D, False))
    peers = FakePeers({"/api/counts/local": {"rows": [["kent", 2], ["essex", 1]], "recovering": False}})
    rows, recovering, answered = asyncio.run(cluster(peers, worker).rows(("force",), D, D))
    assert rows == {("kent",): 3, ("essex",): 1} and not recovering and answered == 2
    ((url, params),) = peers.calls  # only the other worker is asked, not this one
    assert url == f"{PEER}/api/counts/local" and params["group_by"] == "force"  # type: ignore[call-overload]


def test_a_peer_restoring_makes_the_figure_partial() -> None:
    peers = FakePeers({"/api/counts/local": {"rows": [], "recovering": True}})
    _, recovering, _ = asyncio.run(cluster(peers).rows(("force",), D, D))
    assert recovering


def test_a_peer_that_does_not_answer_is_an_error_not_a_smaller_figure() -> None:
    with pytest.raises(PeerError, match="503"):
        asyncio.run(cluster(FakePeers({})).rows(("force",), D, D))


def test_totals_of_other_rules_are_refused() -> None:
    reply = encode_totals(TotalsReply("other-rules", False, {}))
    with pytest.raises(PeerError, match="evaluates other rules"):
        asyncio.run(cluster(FakePeers({"/api/aggregates/local": reply})).totals(D))


def test_today_by_the_stream_clock_is_the_newest_of_every_worker() -> None:
    worker = Worker()
    worker.partitions[0].counts.add(Cell("kent", "stalking", "caution", D, False))
    later = {"/api/clock": {"newest_outcome_date": "2026-03-05"}}
    assert asyncio.run(cluster(FakePeers(later), worker).today()) == dt.date(2026, 3, 5)
    earlier = {"/api/clock": {"newest_outcome_date": "2026-02-01"}}
    assert asyncio.run(cluster(FakePeers(earlier), worker).today()) == D


def test_today_by_the_wall_clock_asks_no_peer() -> None:
    peers = FakePeers({})
    today = asyncio.run(cluster(peers, clock=WallClock(lambda: 86400.0 * 20000)).today())
    assert today == dt.date(2024, 10, 4) and peers.calls == []


def test_a_worker_alone_asks_nobody_and_closing_closes_the_transport() -> None:
    peers = FakePeers({})
    alone = Worker(membership=Membership({0: ME}))
    c = cluster(peers, alone)
    assert asyncio.run(c.rows(("force",), D, D)) == ({}, False, 1) and peers.calls == []
    asyncio.run(c.close())
    assert peers.closed


def test_the_http_transport_keeps_one_connection_and_says_which_peer_failed() -> None:
    from aiohttp import web

    from streams.kafka_local import free_port
    from streams.peers import HttpPeers
    from tests.runtime.fakes import local_server

    seen: list[tuple[object, str | None]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.transport.get_extra_info("peername") if request.transport else None,
                     request.headers.get("X-DW-Peer")))  # fmt: skip
        if request.query.get("fail"):
            return web.Response(status=503)
        return web.json_response({"ok": request.query.get("n")})

    async def scenario() -> None:
        app = web.Application()
        app.router.add_get("/x", answer)
        runner, base = await local_server(app)
        peers = HttpPeers("credential")
        try:
            url = f"{base}/x"
            assert await peers.get_json(url, {"n": "1"}) == {"ok": "1"}
            assert await peers.get_json(url, [("n", "2")]) == {"ok": "2"}
            with pytest.raises(PeerError, match="answered 503"):
                await peers.get_json(url, {"fail": "1"})
            with pytest.raises(PeerError, match="did not answer"):
                await peers.get_json(f"http://127.0.0.1:{free_port()}/x", {})
        finally:
            await peers.close()
            await runner.cleanup()

    asyncio.run(scenario())
    assert len({where for where, _ in seen}) == 1, seen  # one connection, kept alive
    assert {credential for _, credential in seen} == {"credential"}
