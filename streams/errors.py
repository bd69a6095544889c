"""Errors raised by disposal-watch's stream code.

Hierarchy (every error the package raises on purpose; those defined beside the code that raises
them are named with their module)::

    StreamError
    ├── ConfigError          a setting or input file is unusable (message names it)
    ├── StorageError         the local store cannot be written (disk full, read-only)
    ├── KafkaSetupError      the local broker cannot be resolved, started or reached
    │   └── registry_local.RegistrySetupError   the same, for the local schema registry
    ├── DecodeError          bytes are not a readable event (reason: undecodable, unknown_schema)
    ├── EncodeError          a value cannot be written with the schema
    ├── StateError           the worker's own stored state is unreadable (a bug, not bad input)
    ├── InvariantError       the worker's own state broke a rule it keeps (a bug, never input)
    │   └── NotStarted       a part made at start (a Kafka client, the outbox) used before it
    ├── RejectedEvent        a decoded event breaks the contract (reason: unknown_force, ...)
    ├── InputError           a row of an input file cannot become an event (reason: as RejectedEvent)
    ├── runtime.outbox.ProduceFailed          the broker did not acknowledge a send (exit 75)
    ├── runtime.checkpoint.OffsetWentBack     a partition's position went behind what it holds
    ├── schema_registry.RegistryUnavailable   the schema registry cannot be reached (retried)
    ├── schema_registry.RegistryRefused       the registry refused a schema (exit 2 at start)
    ├── peers.PeerError                       another worker did not answer (HTTP 503)
    ├── http.national.Restoring               a worker is restoring: a figure would be partial
    ├── alerting.writer.Fenced                another worker writes the alerts now
    ├── alerting.writer.WriteAborted          the broker failed an alerts transaction (retried)
    ├── alerting.log.LogUnavailable           the brokers did not say where the alerts topic ends
    └── cli._NotReady                         the worker stayed restoring past the CLI's wait

The alerts package has its own root, ``alerts.errors.AlertError`` (it imports nothing of this
package). How the worker leaves on each of these is ``streams.runtime.loop.leave_on``.

Every error that stands for bad input carries a machine-readable ``reason`` that the
dead-letter topic and the ``disposal_events_rejected_total`` metric use.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

#: the most characters of an outside value (a field of a record, a line of a file) that an error
#: message, a log line or a dead-letter header repeats
SHOWN_CHARS = 200


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was: values from outside go
    into messages through this, so a 600 KB field never becomes a 600 KB log line."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


class StreamError(Exception):
    """Base class of every error disposal-watch raises on purpose."""


class ConfigError(StreamError):
    """A setting, file or command-line value is unusable."""


class StorageError(StreamError):
    """The worker's local store cannot be written: no space left, or a read-only file system."""


class KafkaSetupError(StreamError):
    """The local Kafka broker could not be resolved, started, stopped or reached."""


class _WithReason(StreamError):
    reason: str = "invalid"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        # the message repeats values from outside: cut, so that it is one readable log line
        super().__init__(shorten(message, 3 * SHOWN_CHARS))
        if reason is not None:
            self.reason = reason


class DecodeError(_WithReason):
    """Bytes that are not a readable disposal event."""

    reason = "undecodable"


class StateError(StreamError):
    """The worker's own stored state is unreadable: a bug or a foreign writer, never bad input."""


class InvariantError(StreamError):
    """The worker's own state broke a rule it keeps (a count below zero, an event class the
    reader does not know): a bug, never bad input."""


class NotStarted(InvariantError):
    """A part of the worker that is made when it starts (its Kafka clients bind to the running
    event loop) was used before ``start``."""


def started(part: T | None, what: str) -> T:
    """``part``, made at start; ``NotStarted`` naming ``what`` while it is not made yet."""
    if part is None:
        raise NotStarted(f"{what} is made when the worker starts, and was used before")
    return part


class EncodeError(StreamError):
    """A value that cannot be encoded with its schema."""


class RejectedEvent(_WithReason):
    """A well-formed event that breaks the contract (unknown force, outcome, too old...)."""

    reason = "schema_invalid"


class InputError(_WithReason):
    """A row of an input file that cannot become an event."""

    reason = "invalid_row"
