"""Outgoing webhooks: every alert transition, in order, signed per Standard Webhooks.

``DW_WEBHOOKS_FILE`` is a YAML file::

    webhooks:
      - name: kent-panel                 # [a-z0-9-]; also names the Kafka consumer group
        url: https://example.org/hooks/disposal-watch
        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw   # base64 key after "whsec_"
        forces: [kent]                   # or all (default)

Each webhook is a Kafka consumer group (``<DW_APP_ID>-webhook-<name>``) on the one-partition
alerts topic: one worker of the group delivers, in topic order, and commits a transition's
offset only after the receiver answered 2xx. Failures are retried with exponential backoff
(0.5 s doubling to ``DW_WEBHOOK_MAX_BACKOFF_S``, default 60 s) for as long as it takes, so a
receiver that is down for an hour gets every transition afterwards, in order. Delivery is
at-least-once: after a crash or a move of the group, a transition can arrive twice with the
same ``webhook-id``, which receivers use to drop repeats (as the Standard Webhooks spec says).

Signature (standardwebhooks.com): headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds)
and ``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streams.codec import decode_alert
from streams.errors import ConfigError
from streams.wire import alert_json

log = logging.getLogger(__name__)


class Webhook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    url: str = Field(pattern=r"^https?://")
    secret: str
    forces: Literal["all"] | tuple[str, ...] = "all"

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        try:
            base64.b64decode(v.removeprefix("whsec_"), validate=True)
        except ValueError:
            raise ValueError("secret must be base64, optionally prefixed whsec_") from None
        return v

    @property
    def key(self) -> bytes:
        return base64.b64decode(self.secret.removeprefix("whsec_"))

    def allows(self, force: str) -> bool:
        return self.forces == "all" or force in self.forces


def load_webhooks(path: Path) -> list[Webhook]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        hooks = [Webhook.model_validate(h) for h in (doc or {}).get("webhooks", [])]
    except (OSError, yaml.YAMLError, ValidationError, AttributeError) as exc:
        raise ConfigError(f"DW_WEBHOOKS_FILE={path}: {exc}") from None
    names = [h.name for h in hooks]
    if len(set(names)) != len(names):
        raise ConfigError(f"DW_WEBHOOKS_FILE={path}: webhook names must be unique")
    return hooks


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(hook: Webhook, msg_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    ts = int(now if now is not None else time.time())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(hook.key, msg_id, ts, body),
    }


async def deliver_forever(
    hook: Webhook,
    bootstrap: list[str],
    topic: str,
    group: str,
    max_backoff_s: float,
    on_result: object = None,
) -> None:
    """Deliver every transition on ``topic`` to ``hook`` in order (runs until cancelled)."""
    import aiohttp
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # never a transition from an aborted (fenced) write
    )
    await consumer.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async for msg in consumer:
                entry = alert_json(decode_alert(msg.value), msg.offset)
                if hook.allows(entry["force_id"]):
                    body = json.dumps(entry).encode()
                    msg_id = f"{topic}-{msg.offset}"
                    backoff = 0.5
                    while True:
                        try:
                            async with session.post(
                                hook.url, data=body, headers=headers(hook, msg_id, body)
                            ) as r:
                                ok = 200 <= r.status < 300
                                outcome = f"HTTP {r.status}"
                        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                            ok, outcome = False, type(exc).__name__
                        if callable(on_result):
                            on_result(hook.name, ok)
                        if ok:
                            break
                        log.warning(
                            "webhook %s: %s for %s; retrying in %.1fs", hook.name, outcome, msg_id, backoff
                        )
                        await asyncio.sleep(backoff)
                        backoff = min(max_backoff_s, backoff * 2)
                await consumer.commit({TopicPartition(msg.topic, msg.partition): msg.offset + 1})
    finally:
        await consumer.stop()
