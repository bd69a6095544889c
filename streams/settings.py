"""Configuration: one frozen ``Settings``, read from ``DW_*`` environment variables.

``load_settings()`` turns pydantic's validation errors into one ``ConfigError`` whose lines
name each bad variable, so a typo stops the program at start with a message that says what
to fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import ConfigError
from streams.resources import DEFAULT_RULES

#: settings whose values are secrets: an error names them, never echoes them
SECRETS = frozenset({"pseudonym_key", "token", "kafka_sasl_password", "schema_registry_password"})
_HOSTPORT = re.compile(r"^[A-Za-z0-9.\-_\[\]:]+:\d{1,5}$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DW_", frozen=True, extra="ignore")

    #: Kafka bootstrap servers, host:port[,host:port...]
    kafka: str = "localhost:9092"
    #: where the worker keeps its local state (RocksDB tables) and the CLI its caches
    data_dir: Path = Path("var")
    #: address the worker's HTTP server binds and advertises to other workers
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    #: serve HTTPS with this certificate (PEM) and key; the other workers and the CLI trust the
    #: certificate file as well as the system's authorities. Both or neither
    web_tls_cert: Path | None = None
    web_tls_key: Path | None = None
    #: a connection that has not sent a whole request this long after opening (or after its
    #: last answer) is closed, so slow request headers cannot hold the server's sockets
    web_idle_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    #: most connections open at once (the live feed holds one per open dashboard); more get 503
    web_max_connections: int = Field(default=256, ge=8, le=100_000)
    #: most connections open at once from one address (a proxy in front: raise it)
    web_max_connections_per_client: int = Field(default=64, ge=1, le=100_000)
    #: hours a dashboard sign-in lasts (the session cookie is signed and expires; it never holds
    #: the token)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    #: "wall": today is the UTC calendar date; "stream": today is the newest outcome date seen
    clock: Literal["wall", "stream"] = "wall"
    #: alert rules file (YAML)
    rules: Path = DEFAULT_RULES
    #: events with an outcome date more than this many days before today are dead-lettered
    retention_days: int = Field(default=400, ge=1, le=3650)
    #: partitions of the disposals topic (and so of the worker's tables):
    #: the most workers that can share the work
    partitions: int = Field(default=8, ge=1, le=1024)
    #: how every Kafka client connects (streams/clients.py); SSL files are PEM
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    #: copies of every topic the project creates; none: the cluster's brokers, at most 3
    replication_factor: int | None = Field(default=None, ge=1, le=16)
    #: min.insync.replicas of those topics; none: one less than the factor from 3 up, else 1
    min_insync_replicas: int | None = Field(default=None, ge=1, le=16)
    #: consumer group, Faust application id, and the name of the changelog topic
    app_id: str = Field(default="disposal-watch", pattern=r"^[A-Za-z0-9._\-]+$")
    #: prefix for every topic name (lets several deployments or tests share one broker)
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._\-]*$")
    #: local store of the crimes' state: "rocksdb" (on disk in DW_DATA_DIR/store; a restart reads
    #: only the changelog written since) or "memory" (empty at every start: the whole changelog
    #: is read; for tests)
    store: Literal["rocksdb", "memory"] = "rocksdb"
    #: a worker whose committed offsets do not move for this long while records wait (and which
    #: is not restoring) exits with code 75, for its supervisor to restart it; 0: never
    stall_exit_s: float = Field(default=120.0, ge=0)
    #: "exactly_once": changelog, dead letters and offsets in one transaction per partition,
    #: which fences a paused worker (streams/runtime/transactions.py); "at_least_once": one
    #: producer, offsets committed by the consumer, no fence (cheaper; a worker paused past its
    #: session timeout can append stale states to the changelog)
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    #: most records the counting loop takes from Kafka at once
    batch_records: int = Field(default=2000, ge=1, le=100_000)
    #: seconds between checkpoints (changelog and offsets committed, store written)
    commit_interval_s: float = Field(default=1.0, gt=0, le=300)
    #: a checkpoint comes sooner once this many crimes have changed since the last one
    checkpoint_max_pending: int = Field(default=50_000, ge=1)
    #: faults for tests (streams/runtime/faults.py): when this file exists, the counting loop
    #: removes it and hangs; and SIGKILL after a checkpoint step, as "changelog:3"
    fault_hang_file: Path | None = None
    fault_kill_after: str | None = Field(default=None, pattern=r"^(changelog|store|commit):[1-9][0-9]*$")
    #: seconds between evaluations of the alert rules (on the leader)
    alert_interval_s: float = Field(default=2.0, gt=0, le=3600)
    #: YAML file of hashed bearer tokens and their forces (streams/access.py); none: localhost only
    tokens_file: Path | None = None
    #: YAML file of outgoing webhooks (streams/alerting/webhooks.py); none: no webhooks
    webhooks_file: Path | None = None
    #: longest wait between two delivery attempts to a webhook receiver that is down
    webhook_max_backoff_s: float = Field(default=60.0, gt=0)
    #: Alertmanager to push alerts to (http://host:9093); none: no push
    alertmanager_url: str | None = Field(default=None, pattern=r"^https?://")
    #: seconds between two pushes of every alert to Alertmanager (its endsAt is 4 of them ahead)
    alertmanager_resend_s: float = Field(default=60.0, gt=0, le=3600)
    #: a webhook call goes out this long after its group's (rule x force) first transition,
    #: with every transition of the group since
    webhook_group_s: float = Field(default=30.0, ge=0)
    #: the deployment's master secret (streams/keys.py): keys the pseudonyms of crime references
    #: in alerts, the workers' credential to each other and the dashboard's sessions; the same on
    #: every worker. Unset: a worker serving only localhost makes one in DW_DATA_DIR; one
    #: serving more refuses to start
    pseudonym_key: SecretStr | None = None
    #: processes that parse and encode rows for `ingest` (0: one per core)
    ingest_workers: int = Field(default=0, ge=0, le=64)
    #: a schema registry's REST API (Confluent's, or Apicurio's /apis/ccompat/v7): the project
    #: registers its schemas there, writes Confluent's wire format and reads both framings
    #: (streams/schema_registry.py); none: Avro single-object encoding only
    schema_registry_url: str | None = Field(default=None, pattern=r"^https?://")
    #: basic authentication to the registry
    schema_registry_user: str | None = None
    schema_registry_password: SecretStr | None = None
    #: TLS to the registry: CA file, and a client certificate and key (PEM)
    schema_registry_cafile: Path | None = None
    schema_registry_certfile: Path | None = None
    schema_registry_keyfile: Path | None = None
    #: compatibility the project sets on its subjects; NONE is refused, as an incompatible
    #: producer schema would then break the stream
    schema_compatibility: Literal[
        "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"
    ] = "FULL"
    #: crimes in a scrutiny panel's quarterly sample of a force (streams/dashboard/scrutiny.py)
    scrutiny_sample: int = Field(default=20, ge=1, le=1000)
    #: bearer token the CLI sends to the worker's API
    token: SecretStr | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("kafka")
    @classmethod
    def _bootstrap(cls, v: str) -> str:
        parts = [p.strip() for p in v.split(",")]
        bad = [p for p in parts if not _HOSTPORT.match(p)]
        if not parts or bad:
            raise ValueError(f"expected host:port[,host:port...], got {v!r}")
        return ",".join(parts)

    @field_validator("store", mode="before")
    @classmethod
    def _no_unsafe_store(cls, v: object) -> object:
        if v == "rocksdb-unsafe":
            raise ValueError(
                "rocksdb-unsafe (Faust's store) is gone: use rocksdb, now the default, or memory"
            )
        return v

    @field_validator("rules")
    @classmethod
    def _rules_exist(cls, v: Path) -> Path:
        if not v.is_file():
            raise ValueError(f"rules file {v} does not exist")
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        given = [self.web_tls_cert is not None, self.web_tls_key is not None]
        if any(given) and not all(given):
            raise ValueError("DW_WEB_TLS_CERT and DW_WEB_TLS_KEY go together: set both or neither")
        for path in (self.web_tls_cert, self.web_tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    @model_validator(mode="after")
    def _registry(self) -> Settings:
        if self.schema_registry_url is None:
            given = [n for n in ("schema_registry_user", "schema_registry_cafile", "schema_registry_certfile")
                     if getattr(self, n) is not None]  # fmt: skip
            if given:
                raise ValueError(f"DW_{given[0].upper()} is set but DW_SCHEMA_REGISTRY_URL is not")
        if (self.schema_registry_certfile is None) != (self.schema_registry_keyfile is None):
            raise ValueError(
                "DW_SCHEMA_REGISTRY_CERTFILE and DW_SCHEMA_REGISTRY_KEYFILE go together: set both or neither"
            )
        files = (self.schema_registry_cafile, self.schema_registry_certfile, self.schema_registry_keyfile)
        for path in files:
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    @property
    def disposals_topic(self) -> str:
        return f"{self.topic_prefix}disposals"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic_prefix}disposals.dlq"

    @property
    def alerts_topic(self) -> str:
        return f"{self.topic_prefix}alerts"

    @property
    def changelog_topic(self) -> str:
        """The crimes' compacted changelog (the name Faust gave its table's changelog)."""
        return f"{self.app_id}-crimes-changelog"

    @property
    def web_url(self) -> str:
        scheme = "https" if self.web_tls_cert is not None else "http"
        return f"{scheme}://{self.web_host}:{self.web_port}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and ``overrides``); ``ConfigError`` names every bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if not err["loc"]:  # a rule over several settings: its input is all of them, secrets too
                lines.append(err["msg"].removeprefix("Value error, "))
                continue
            name = "DW_" + "_".join(str(p) for p in err["loc"]).upper()
            given = None if err["loc"] and err["loc"][0] in SECRETS else err.get("input")
            lines.append(f"{name}={given!r}: {err['msg']}" if given is not None else f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
