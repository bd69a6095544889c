"""How every Kafka client connects: the brokers, their security, and the settings an operator
passes through by prefix, as Kafka Streams' ``consumer.`` / ``producer.`` / ``admin.`` prefixes
and Quix Streams' ``consumer_extra_config`` do. Nothing about a cluster is a literal elsewhere.

- Security, for every client of the worker and the CLI, in three libraries: ``DW_KAFKA_SECURITY_PROTOCOL``
  (``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``), ``DW_KAFKA_SSL_CAFILE``,
  ``DW_KAFKA_SSL_CERTFILE`` and ``DW_KAFKA_SSL_KEYFILE`` (PEM), ``DW_KAFKA_SASL_MECHANISM``
  (``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``), ``DW_KAFKA_SASL_USERNAME``,
  ``DW_KAFKA_SASL_PASSWORD`` (a secret: never printed).
- ``DW_CONSUMER_<NAME>`` and ``DW_PRODUCER_<NAME>``: any option of the worker's consumers and
  producers (aiokafka), named as the client names it (``DW_CONSUMER_SESSION_TIMEOUT_MS=30000``
  is ``session_timeout_ms``); they override the worker's own defaults.
- ``DW_ADMIN_<NAME>``: any option of the admin client (kafka-python) that creates topics and reads
  lag for the worker and the CLI.
- ``DW_RDKAFKA_<NAME>``: any librdkafka property of the CLI's producer (``ingest``, ``simulate``),
  dots written as underscores (``DW_RDKAFKA_LINGER_MS=20`` is ``linger.ms``).

Values that read as integers, decimals or true/false are passed as such. A name the client does
not know is refused at start, in one line naming the variable.

``Consumer`` and ``Producer`` are what the worker uses of aiokafka's clients, typed (aiokafka
ships no types); ``ClientFactory`` is what makes them, which a test can replace.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aiokafka import TopicPartition

from streams.errors import ConfigError
from streams.settings import Settings

PREFIXES = ("DW_CONSUMER_", "DW_PRODUCER_", "DW_ADMIN_", "DW_RDKAFKA_")
#: options the worker sets itself, for its exactness: not to be overridden
FIXED = frozenset({"bootstrap_servers", "group_id", "enable_auto_commit", "isolation_level",
                   "partition_assignment_strategy", "transactional_id", "enable_idempotence",
                   "acks", "key_deserializer", "value_deserializer", "loop", "topics"})  # fmt: skip


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def passed(prefix: str, environ: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """Option name (lower case, underscores) -> (the variable, its value) for one prefix."""
    return {
        name[len(prefix) :].lower(): (name, _value(value))
        for name, value in environ.items()
        if name.startswith(prefix) and len(name) > len(prefix)
    }


def _known(options: dict[str, tuple[str, Any]], accepted: set[str], what: str) -> dict[str, Any]:
    for option, (variable, _) in options.items():
        if option in FIXED:
            raise ConfigError(f"{variable}: the worker sets {option} itself (exactness depends on it)")
        if option not in accepted:
            raise ConfigError(f"{variable}: {what} has no option {option!r}")
    return {option: value for option, (_, value) in options.items()}


def _security(settings: Settings) -> tuple[dict[str, Any], dict[str, str]]:
    """(aiokafka / kafka-python security options, PEM files by role) from DW_KAFKA_*."""
    security: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism is not None:
        password = settings.kafka_sasl_password
        security["sasl_mechanism"] = settings.kafka_sasl_mechanism
        security["sasl_plain_username"] = settings.kafka_sasl_username or ""
        security["sasl_plain_password"] = password.get_secret_value() if password is not None else ""
    roles = (
        ("cafile", settings.kafka_ssl_cafile),
        ("certfile", settings.kafka_ssl_certfile),
        ("keyfile", settings.kafka_ssl_keyfile),
    )
    return security, {role: str(path) for role, path in roles if path is not None}


def admin_options(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """kafka-python options (the admin client, the CLI's lag checks): security, then DW_ADMIN_*."""
    from kafka import KafkaAdminClient

    security, files = _security(settings)
    out = {**security, **{f"ssl_{role}": path for role, path in files.items()}}
    env = os.environ if environ is None else environ
    known = set(KafkaAdminClient.DEFAULT_CONFIG)
    out.update(_known(passed("DW_ADMIN_", env), known, "the admin client (kafka-python)"))
    return out


RDKAFKA_FILES = {
    "cafile": "ssl.ca.location",
    "certfile": "ssl.certificate.location",
    "keyfile": "ssl.key.location",
}


def rdkafka_options(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """librdkafka properties of the CLI's producer: security, then DW_RDKAFKA_*."""
    security, files = _security(settings)
    out: dict[str, Any] = {"security.protocol": security["security_protocol"]}
    out.update({RDKAFKA_FILES[role]: path for role, path in files.items()})
    if "sasl_mechanism" in security:
        out["sasl.mechanism"] = security["sasl_mechanism"]
        out["sasl.username"] = security["sasl_plain_username"]
        out["sasl.password"] = security["sasl_plain_password"]
    env = os.environ if environ is None else environ
    out.update({option.replace("_", "."): value for option, (_, value) in passed("DW_RDKAFKA_", env).items()})
    return out


class Record(Protocol):
    """A record as a consumer returns it (aiokafka's ``ConsumerRecord``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Consumer(Protocol):
    """What the worker uses of aiokafka's ``AIOKafkaConsumer``."""

    #: the group coordinator: the loop asks it to rejoin (aiokafka has no public call for it)
    _coordinator: Any

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def subscribe(self, topics: list[str], listener: Any = None) -> None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def unsubscribe(self) -> None: ...
    def assignment(self) -> set[TopicPartition]: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    async def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]: ...
    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...
    async def committed(self, partition: TopicPartition) -> int | None: ...
    async def position(self, partition: TopicPartition) -> int: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...


class Batch(Protocol):
    """aiokafka's ``BatchBuilder``: records appended until it is full."""

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: int | None) -> Any: ...
    def record_count(self) -> int: ...


class Producer(Protocol):
    """What the worker uses of aiokafka's ``AIOKafkaProducer``."""

    #: the transaction manager: whether a fencing error stopped the sender (no public call)
    _txn_manager: Any

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...
    def create_batch(self) -> Batch: ...
    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]: ...
    async def begin_transaction(self) -> None: ...
    async def commit_transaction(self) -> None: ...
    async def abort_transaction(self) -> None: ...
    async def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_id: str
    ) -> None: ...
    def transaction(self) -> AbstractAsyncContextManager[None]: ...


def topic_partition(topic: str, partition: int) -> TopicPartition:
    """aiokafka's name of a partition, for the modules outside the runtime that commit or seek
    (they import nothing of aiokafka themselves)."""
    from aiokafka import TopicPartition

    return TopicPartition(topic, partition)


class ClientFactory(Protocol):
    """Makes the worker's Kafka clients (``KafkaClients``; a test may give its own)."""

    def consumer(self, **defaults: Any) -> Consumer: ...
    def producer(self, **defaults: Any) -> Producer: ...


@dataclass(frozen=True)
class KafkaClients:
    """Makes the worker's Kafka clients (aiokafka)."""

    bootstrap: tuple[str, ...]
    #: security_protocol and sasl_* (the SSL context is made per client, from ``ssl_files``)
    security: Mapping[str, Any] = field(default_factory=dict)
    ssl_files: Mapping[str, str] = field(default_factory=dict)
    consumer_extra: Mapping[str, Any] = field(default_factory=dict)
    producer_extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> KafkaClients:
        """The worker's clients; ``ConfigError`` naming a DW_CONSUMER_* / DW_PRODUCER_* variable
        the client does not know."""
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        env = os.environ if environ is None else environ
        security, files = _security(settings)
        consumer_options = set(inspect.signature(AIOKafkaConsumer.__init__).parameters)
        producer_options = set(inspect.signature(AIOKafkaProducer.__init__).parameters)
        return cls(
            bootstrap=tuple(settings.kafka.split(",")),
            security=security,
            ssl_files=files,
            consumer_extra=_known(passed("DW_CONSUMER_", env), consumer_options, "the consumer (aiokafka)"),
            producer_extra=_known(passed("DW_PRODUCER_", env), producer_options, "the producer (aiokafka)"),
        )

    @classmethod
    def plain(cls, bootstrap: list[str] | tuple[str, ...]) -> KafkaClients:
        """PLAINTEXT to ``bootstrap``, nothing passed through (tests)."""
        return cls(bootstrap=tuple(bootstrap))

    def _aiokafka_security(self) -> dict[str, Any]:
        out = dict(self.security)
        if self.ssl_files or str(out.get("security_protocol", "")).endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            out["ssl_context"] = create_ssl_context(
                cafile=self.ssl_files.get("cafile"),
                certfile=self.ssl_files.get("certfile"),
                keyfile=self.ssl_files.get("keyfile"),
            )
        return out

    def consumer(self, **defaults: Any) -> Consumer:
        """An aiokafka consumer: the caller's defaults, then security, then DW_CONSUMER_*."""
        from aiokafka import AIOKafkaConsumer

        options = {**defaults, **self._aiokafka_security(), **self.consumer_extra}
        consumer: Consumer = AIOKafkaConsumer(bootstrap_servers=list(self.bootstrap), **options)
        return consumer

    def producer(self, **defaults: Any) -> Producer:
        """An aiokafka producer: the caller's defaults, then security, then DW_PRODUCER_*."""
        from aiokafka import AIOKafkaProducer

        options = {**defaults, **self._aiokafka_security(), **self.producer_extra}
        producer: Producer = AIOKafkaProducer(bootstrap_servers=list(self.bootstrap), **options)
        return producer
