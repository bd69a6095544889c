"""The schema registry, when ``DW_SCHEMA_REGISTRY_URL`` is set: registration at start, and the
writer schemas of registry ids the worker reads.

Any registry that serves Confluent's REST API will do (Confluent Schema Registry, Apicurio
Registry's ``/apis/ccompat/v7``, Karapace); the client is ``confluent-kafka``'s own.

At start the worker and the CLI register the project's schemas (``register``): ``OutcomeEvent``
under ``<disposals topic>-value`` and ``Alert`` under ``<alerts topic>-value``, with the subjects'
compatibility set to ``DW_SCHEMA_COMPATIBILITY`` (FULL by default: the worker reads with its own
schema what producers write with theirs, so a producer's new schema must be readable by the
worker's (FORWARD), and the worker's next schema must read what is on the topic (BACKWARD)). A
registry that refuses a schema as incompatible stops the start with one line.

While it counts, the worker learns each registry id once (``Schemas.learn``), before the records
of that id are read: an id the registry does not know, or a schema that is not Avro, is learnt
as refused and its records go to the dead-letter topic; a registry that cannot be reached raises
``RegistryUnavailable``, and the caller reads the same records again later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streams import metrics
from streams.codec import ALERT_CODEC, EVENT_CODEC, decode_alert
from streams.errors import StreamError
from streams.framing import SINGLE_OBJECT, AlertReader, EventReader, Framing
from streams.settings import Settings

if TYPE_CHECKING:  # the client is imported only where a registry is set (a quarter second)
    from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

log = logging.getLogger(__name__)

#: what one request may take, and how often the client asks again (after 1 s, then 2 s...)
REQUEST_TIMEOUT_S = 5.0
RETRIES = 2


class RegistryUnavailable(StreamError):
    """The registry could not be reached, or answered with a server error: nothing was decided."""


class RegistryRefused(StreamError):
    """The registry refused a schema of the project (incompatible, or invalid)."""


def client_conf(settings: Settings) -> dict[str, Any]:
    """``confluent-kafka``'s registry client configuration from the ``DW_SCHEMA_REGISTRY_*``
    settings."""
    assert settings.schema_registry_url is not None
    conf: dict[str, Any] = {
        "url": settings.schema_registry_url,
        "timeout": REQUEST_TIMEOUT_S,
        "max.retries": RETRIES,
        "retries.wait.ms": 1000,
        "retries.max.wait.ms": 4000,
    }
    if settings.schema_registry_user is not None:
        password = settings.schema_registry_password
        conf["basic.auth.user.info"] = (
            f"{settings.schema_registry_user}:{password.get_secret_value() if password else ''}"
        )
    if settings.schema_registry_cafile is not None:
        conf["ssl.ca.location"] = str(settings.schema_registry_cafile)
    if settings.schema_registry_certfile is not None:
        conf["ssl.certificate.location"] = str(settings.schema_registry_certfile)
        conf["ssl.key.location"] = str(settings.schema_registry_keyfile)
    return conf


def _unavailable(settings: Settings, exc: BaseException) -> RegistryUnavailable:
    return RegistryUnavailable(
        f"the schema registry at {settings.schema_registry_url} cannot be reached "
        f"(DW_SCHEMA_REGISTRY_URL): {type(exc).__name__}: {exc}"
    )


def _server_side(exc: SchemaRegistryError) -> bool:
    return exc.http_status_code >= 500 or exc.http_status_code in (408, 429)


@dataclass(frozen=True)
class Registered:
    """Registry ids of the project's schemas: how it frames what it writes."""

    events: Framing = SINGLE_OBJECT
    alerts: Framing = SINGLE_OBJECT


async def _register_one(client: AsyncSchemaRegistryClient, subject: str, schema_json: str, level: str) -> int:
    from confluent_kafka.schema_registry import Schema

    schema = Schema(schema_json, "AVRO")
    subjects = await client.get_subjects()
    if subject in subjects:  # compatibility first: the registry then judges our schema by it
        await client.set_compatibility(subject, level)
        return await client.register_schema(subject, schema)
    schema_id = await client.register_schema(subject, schema)
    await client.set_compatibility(subject, level)
    return schema_id


async def register(settings: Settings) -> Registered:
    """Register the project's schemas and set their subjects' compatibility. Without a registry
    setting, the single-object framing. Raises ``RegistryRefused`` (one line: subject, reason)
    or ``RegistryUnavailable``."""
    if settings.schema_registry_url is None:
        return Registered()
    from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    ids: dict[str, int] = {}
    async with AsyncSchemaRegistryClient(client_conf(settings)) as client:
        for topic, codec in ((settings.disposals_topic, EVENT_CODEC), (settings.alerts_topic, ALERT_CODEC)):
            subject = f"{topic}-value"
            try:
                ids[topic] = await _register_one(
                    client, subject, json.dumps(codec.schema), settings.schema_compatibility
                )
            except SchemaRegistryError as exc:
                if _server_side(exc):
                    raise _unavailable(settings, exc) from exc
                raise RegistryRefused(
                    f"the schema registry refused {codec.name} under subject {subject} "
                    f"(compatibility {settings.schema_compatibility}): {exc.error_message} "
                    f"(HTTP {exc.http_status_code})"
                ) from exc
            except Exception as exc:  # noqa: BLE001 - the HTTP client's own errors: not reached
                raise _unavailable(settings, exc) from exc
    log.info(
        "schemas registered: %s-value id %d, %s-value id %d (compatibility %s)",
        settings.disposals_topic,
        ids[settings.disposals_topic],
        settings.alerts_topic,
        ids[settings.alerts_topic],
        settings.schema_compatibility,
    )
    return Registered(Framing(ids[settings.disposals_topic]), Framing(ids[settings.alerts_topic]))


#: no registry: single-object encoding on both topics
UNREGISTERED = Registered()


def register_now(settings: Settings) -> Registered:
    """``register`` for the CLI (no event loop running)."""
    return asyncio.run(register(settings))


#: the first wait before the registry is asked again after a failure, and the longest
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


class Schemas:
    """The worker's readers of both topics, and the registry client that teaches them ids."""

    def __init__(self, settings: Settings, clock: Any = time.monotonic) -> None:
        self.settings = settings
        self.events = EventReader()
        self.alerts = AlertReader()
        self._client: AsyncSchemaRegistryClient | None = None
        self._clock = clock
        #: since when the registry could not be reached (monotonic); None while it answers
        self.unavailable_since: float | None = None
        self._retry_at = 0.0
        self._wait_s = RETRY_FIRST_S
        self._last_error: RegistryUnavailable | None = None

    async def learn(self, ids: set[int], readers: Any) -> None:
        """Ask the registry for each of ``ids`` and teach ``readers`` (``framing.Readers``).

        Raises ``RegistryUnavailable`` when the registry cannot be reached, and then at once,
        without asking, until a wait that doubles from RETRY_FIRST_S to RETRY_MAX_S is over."""
        now = self._clock()
        if self._last_error is not None and now < self._retry_at:
            raise self._last_error
        from confluent_kafka.schema_registry import AsyncSchemaRegistryClient
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        if self._client is None:
            self._client = AsyncSchemaRegistryClient(client_conf(self.settings))
        for schema_id in sorted(ids):
            try:
                schema = await self._client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    log.warning("schema id %d is unknown to the registry: its records are dead-lettered",
                                schema_id)  # fmt: skip
                    readers.unknown(schema_id)
                    continue
                raise self._failed(now, exc) from exc
            except Exception as exc:  # noqa: BLE001 - the HTTP client's own errors: not reached
                raise self._failed(now, exc) from exc
            readers.learn(schema_id, schema.schema_type, schema.schema_str or "")
            log.info("schema id %d learnt from the registry", schema_id)
        if self.unavailable_since is not None:
            log.warning(
                "the schema registry answers again after %.0f s; reading on", now - self.unavailable_since
            )
        self.unavailable_since, self._last_error, self._wait_s = None, None, RETRY_FIRST_S

    def _failed(self, now: float, exc: BaseException) -> RegistryUnavailable:
        error = _unavailable(self.settings, exc)
        metrics.REGISTRY_FAILURES.inc()
        if self.unavailable_since is None:
            self.unavailable_since = now
        log.warning(
            "%s; records of schema ids not learnt yet wait (nothing is skipped), asking again in %.0f s",
            error,
            self._wait_s,
        )
        self._last_error, self._retry_at = error, now + self._wait_s
        self._wait_s = min(self._wait_s * 2, RETRY_MAX_S)
        return error

    async def alert(self, value: bytes) -> dict[str, Any]:
        """An alerts-topic record in either framing; an id not learnt yet is learnt first,
        waiting while the registry cannot be reached (the follower reads on from here only)."""
        readers = self.alerts.readers
        while missing := readers.missing((value,)):
            try:
                await self.learn(missing, readers)
            except RegistryUnavailable:
                await asyncio.sleep(RETRY_FIRST_S)
        return self.alerts.decode(value)

    def problem(self) -> str | None:
        """Why the worker is degraded, while the registry cannot be reached."""
        if self.unavailable_since is None:
            return None
        return f"schema registry unreachable for {self._clock() - self.unavailable_since:.0f} s"

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


AlertDecoder = Callable[[bytes], Awaitable[dict[str, Any]]]


async def _single_object_alert(value: bytes) -> dict[str, Any]:
    return decode_alert(value)


def alert_decoder(schemas: Schemas | None) -> AlertDecoder:
    """How readers of the alerts topic (the feed, webhooks) decode a record: in both framings
    with a registry, single-object encoding without. Raises ``DecodeError``."""
    return schemas.alert if schemas is not None else _single_object_alert


#: single-object encoding only (no registry)
SINGLE_OBJECT_ALERTS: AlertDecoder = _single_object_alert
