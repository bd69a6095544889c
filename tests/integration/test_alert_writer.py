"""Only one worker at a time can write the alerts topic: a new leader fences the old one.

A worker that has lost leadership without knowing it (a rebalance in flight, a long pause)
may still be in the middle of writing a transition the new leader is about to write too.
The AlertWriter's transactional id fences it, and readers see only committed transitions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerFenced

from streams.alerting.log import AlertLog
from streams.alerting.writer import AlertWriter, Fenced
from streams.clients import KafkaClients


@pytest.fixture
def topic_and_id(kafka_bootstrap: str) -> tuple[str, str]:
    from kafka.admin import KafkaAdminClient, NewTopic

    tag = uuid.uuid4().hex[:10]
    topic = f"t{tag}.alerts"
    client = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        client.create_topics([NewTopic(topic, 1, 1)])
    finally:
        client.close()
    return topic, f"dw-{tag}-alerts"


async def read_all(bootstrap: str, topic: str) -> tuple[list[bytes], bool]:
    """Every committed value on the topic, and whether the follower saw itself caught up."""
    log = AlertLog(KafkaClients.plain([bootstrap]), topic)
    values: list[bytes] = []

    async def add(offset: int, value: bytes) -> None:
        values.append(value)

    log.add = add  # type: ignore[method-assign]
    follower = asyncio.create_task(log.follow())
    try:
        caught_up = await log.caught_up(timeout_s=20)
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    return values, caught_up


async def test_a_new_writer_fences_the_old_one(kafka_bootstrap: str, topic_and_id: tuple[str, str]) -> None:
    topic, txid = topic_and_id
    old = AlertWriter(KafkaClients.plain([kafka_bootstrap]), topic, txid)
    new = AlertWriter(KafkaClients.plain([kafka_bootstrap]), topic, txid)
    try:
        assert await old.write([(b"fp1", b"first")]) == [0]
        await new.claim()
        with pytest.raises(Fenced):
            await old.write([(b"fp2", b"from the old leader")])
        assert not old.claimed
        offsets = await new.write([(b"fp2", b"from the new leader"), (b"fp3", b"third")])
        assert offsets[1] == offsets[0] + 1
    finally:
        await old.release()
        await new.release()
    values, caught_up = await read_all(kafka_bootstrap, topic)
    assert values == [b"first", b"from the new leader", b"third"]
    assert caught_up  # past the commit markers, which are offsets but not records


async def test_an_open_transaction_of_the_old_leader_is_aborted(
    kafka_bootstrap: str, topic_and_id: tuple[str, str]
) -> None:
    """The old leader has sent a transition but not committed it when the new leader claims."""
    topic, txid = topic_and_id
    zombie = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=txid, enable_idempotence=True
    )
    await zombie.start()
    new = AlertWriter(KafkaClients.plain([kafka_bootstrap]), topic, txid)
    try:
        await zombie.begin_transaction()
        await (await zombie.send(topic, b"half-written", key=b"fp1", partition=0))
        await new.claim()
        with pytest.raises(ProducerFenced):
            await zombie.commit_transaction()
        await new.write([(b"fp1", b"written once")])
    finally:
        await new.release()
        await zombie.stop()
    values, caught_up = await read_all(kafka_bootstrap, topic)
    assert values == [b"written once"]
    assert caught_up
