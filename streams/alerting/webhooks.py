"""Outgoing webhooks: every alert transition, in order, signed per Standard Webhooks.

``DW_WEBHOOKS_FILE`` is a YAML file::

    webhooks:
      - name: kent-panel                 # [a-z0-9-]; also names the Kafka consumer group
        url: https://example.org/hooks/disposal-watch
        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw   # base64 key after "whsec_"
        forces: [kent]                   # or all (default)

Each webhook is a Kafka consumer group (``<DW_APP_ID>-webhook-<name>``) on the one-partition
alerts topic: one worker of the group delivers. Deliveries are grouped (``alerts.grouping``): one
call per rule and force, ``DW_WEBHOOK_GROUP_S`` (30 s) after the group's first transition, with
the latest state of each of its alerts and the ids of every transition it covers; not one call
per case or per flip (the SSE feed and the alerts topic keep every transition). Groups go out
in the order of their first transition; offsets are committed only up to the oldest group not
yet answered 2xx. Failures are retried with exponential backoff (0.5 s doubling to
``DW_WEBHOOK_MAX_BACKOFF_S``, default 60 s) for as long as it takes, so a receiver that is down
for an hour gets every transition afterwards, in order. Reading goes on while a delivery backs
off, and what is read joins the groups waiting: the receiver then gets one call per rule and
force for all it missed, not one per interval it was down. Delivery is at-least-once: after a crash
or a move of the group, a transition can arrive twice: receivers drop repeats by its id (each
alert's ``id``, and the body's ``transition_ids``).

Body: ``{"rule_id", "force_id", "alerts": [feed JSON of each alert's latest transition],
"transition_ids": [...]}``; ``webhook-id`` is ``<alerts topic>-<first id>-<last id>``.

Signature (standardwebhooks.com): headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds)
and ``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import aiohttp
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts import strict_yaml
from alerts.grouping import Group, Groups
from streams.alerting.posting import post_json
from streams.clients import ClientFactory, topic_partition
from streams.errors import ConfigError
from streams.schema_registry import SINGLE_OBJECT_ALERTS, AlertDecoder
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
        doc = strict_yaml.load(path.read_text(encoding="utf-8"), quote=False)
        hooks = [Webhook.model_validate(h) for h in (doc or {}).get("webhooks", [])]
    except ValidationError as exc:  # named by field, never with the value given: it may be a secret
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise ConfigError(f"DW_WEBHOOKS_FILE={path}: {problems}") from None
    except (OSError, yaml.YAMLError, AttributeError) as exc:
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
    clients: ClientFactory,
    topic: str,
    group: str,
    max_backoff_s: float,
    group_s: float,
    on_result: Callable[[str, bool], None] | None = None,
    decode: AlertDecoder = SINGLE_OBJECT_ALERTS,
) -> None:
    """Deliver every transition on ``topic`` to ``hook``, grouped (runs until cancelled)."""
    consumer = clients.consumer(
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # never a transition from an aborted (fenced) write
    )
    consumer.subscribe([topic])
    await consumer.start()
    groups = Groups(group_s, max_backoff_s=max_backoff_s)
    committed: int | None = None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                now = time.monotonic()
                for records in batch.values():
                    for msg in records:
                        if msg.value is None:  # not a transition: nothing to deliver
                            groups.skip(msg.offset)
                            continue
                        entry = alert_json(await decode(msg.value), msg.offset)
                        if hook.allows(entry["force_id"]):
                            groups.add(msg.offset, entry, now)
                        else:
                            groups.skip(msg.offset)
                for due in groups.due(now):
                    outcome = await _post(session, hook, topic, due, on_result)
                    if outcome is not None:
                        wait = groups.failed(time.monotonic())
                        log.warning("webhook %s: %s; retrying in %.1fs", hook.name, outcome, wait)
                        break
                    groups.done(due)
                offset = groups.commit_offset()
                if offset is not None and offset != committed:
                    await consumer.commit({topic_partition(topic, 0): offset})
                    committed = offset
    finally:
        await consumer.stop()


async def _post(
    session: aiohttp.ClientSession,
    hook: Webhook,
    topic: str,
    group: Group,
    on_result: Callable[[str, bool], None] | None,
) -> str | None:
    """POST one group once: None when the receiver answered 2xx, else what went wrong."""
    body = json.dumps(group.payload()).encode()
    msg_id = f"{topic}-{group.offsets[0]}-{group.offsets[-1]}"
    failure = await post_json(session, hook.url, body, headers(hook, msg_id, body))
    if on_result is not None:
        on_result(hook.name, failure is None)
    return None if failure is None else f"{failure} for {msg_id}"
