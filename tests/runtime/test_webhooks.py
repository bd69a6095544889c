"""A webhook's delivery loop with a fake consumer of the alerts topic and a real local receiver."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, cast

from aiohttp import web

from streams.alerting.webhooks import Webhook, deliver_forever
from streams.clients import ClientFactory
from tests.runtime.fakes import local_server
from tests.unit.test_wire import ENTRY


class AlertsTopic:
    """The alerts topic as one consumer sees it: ``records`` at the first fetch, then nothing."""

    def __init__(self, records: list[Any]) -> None:
        self.records, self.commits = records, list[dict[Any, int]]()

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        if self.records:
            got, self.records = self.records, []
            return {"tp": got}
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.commits.append({tp.partition: n for tp, n in offsets.items()})


async def test_a_record_without_a_value_is_skipped_and_the_rest_delivered_and_committed() -> None:
    """A null value on the alerts topic is not a transition: it was handed to the decoder, which
    raised, and the delivery stopped there for good."""
    bodies: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner, base = await local_server(app)
    topic = AlertsTopic(
        [SimpleNamespace(offset=0, value=None), SimpleNamespace(offset=1, value=b"transition")]
    )

    class Clients:
        def consumer(self, **options: Any) -> Any:
            return topic

        def producer(self, **options: Any) -> Any:
            raise AssertionError("a webhook produces nothing")

    async def decode(value: bytes) -> dict[str, Any]:
        assert value == b"transition"
        return dict(ENTRY)

    hook = Webhook(name="panel", url=f"{base}/hook", secret="whsec_c2VjcmV0")
    task = asyncio.create_task(
        deliver_forever(hook, cast(ClientFactory, Clients()), "alerts", "g", 1.0, 0.0, decode=decode)
    )
    try:
        for _ in range(200):
            if bodies and topic.commits:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
    assert [b["transition_ids"] for b in bodies] == [[1]]
    assert json.dumps(bodies[0]["alerts"][0]["fingerprint"]) == '"ab"'
    assert topic.commits[-1] == {0: 2}  # past the record without a value too
