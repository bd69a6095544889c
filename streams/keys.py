"""The deployment's secrets: one master key, ``DW_PSEUDONYM_KEY``, and the keys derived from it.

Each use has its own key, derived from the master with HMAC-SHA256 under a label of its own
(a key-derivation step in the manner of HKDF's expand), so that no derived value reveals another:

- ``pseudonym``: keys the pseudonyms of crime references (``streams.core.counting.pseudonym``);
- ``peer``: the credential workers present to each other (``X-DW-Peer``), which unlocks the
  workers' own endpoints (partial counts, re-identification of a pseudonym);
- ``session``: signs the dashboard's session cookies (``streams.access.Sessions``).

Knowing pseudonyms (alerts carry them) gives nothing towards the peer credential, and knowing the
peer credential gives nothing towards re-identifying a pseudonym, because both are outputs of
HMAC under the secret master, with different labels.

Where the master comes from (``master_key``):
- ``DW_PSEUDONYM_KEY``, when set. A value written anywhere in this repository (``PUBLISHED``:
  the old development default, the compose file's placeholder, examples in the docs) is refused,
  because anyone can read it.
- Unset, on a worker that serves only localhost: a random key made at first start and kept in
  ``DW_DATA_DIR/pseudonym.key`` (mode 0600), so a local deployment's pseudonyms stay stable
  across restarts (``make run`` keeps it under ``var/``).
- Unset, on a worker that serves more than localhost (``DW_TOKENS_FILE`` set, or ``DW_WEB_HOST``
  not a loopback address): refused, since every worker of a deployment must share one key and
  only the operator can give it to all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from streams.errors import ConfigError
from streams.settings import Settings

log = logging.getLogger(__name__)

#: every value of DW_PSEUDONYM_KEY ever written in this repository (tests/unit/test_keys.py
#: scans the repository's files and fails on a value missing here)
PUBLISHED = frozenset(
    {
        "disposal-watch-development-only",
        "change-me-to-a-long-random-secret",
    }
)
#: the fewest characters a master key may have (``openssl rand -hex 32`` gives 64)
MIN_KEY_CHARS = 32
KEY_FILE = "pseudonym.key"
HOW_TO_MAKE = "make one with: openssl rand -hex 32"


@dataclass(frozen=True)
class Keys:
    """The keys derived from the master key, one per purpose."""

    pseudonym: bytes
    #: the worker-to-worker credential, as sent in the X-DW-Peer header
    peer: str
    session: bytes
    #: orders the crimes of a scrutiny sample (``streams.dashboard.scrutiny``): a force that
    #: knew it could tell in advance which of its cases a panel will review
    scrutiny: bytes


def _derive(master: bytes, label: str) -> bytes:
    return hmac.new(master, f"disposal-watch/{label}/v2".encode(), hashlib.sha256).digest()


def derive(master: bytes) -> Keys:
    return Keys(
        pseudonym=_derive(master, "pseudonym"),
        peer=_derive(master, "peer").hex(),
        session=_derive(master, "session"),
        scrutiny=_derive(master, "scrutiny"),
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serves_beyond_localhost(settings: Settings) -> bool:
    """Whether anyone but this machine's own users can reach the worker's HTTP server."""
    return settings.tokens_file is not None or not is_loopback(settings.web_host)


def check_key(value: str) -> str:
    """``value`` if it may be the master key; else ``ConfigError`` naming the variable, never the value."""
    if value.strip() in PUBLISHED:
        raise ConfigError(
            f"DW_PSEUDONYM_KEY is a value published in the disposal-watch repository: anyone can "
            f"read it and re-identify crimes; {HOW_TO_MAKE}"
        )
    if len(value) < MIN_KEY_CHARS:
        raise ConfigError(
            f"DW_PSEUDONYM_KEY is too short ({len(value)} characters; at least {MIN_KEY_CHARS}); "
            + HOW_TO_MAKE
        )
    return value


def master_key(settings: Settings) -> bytes:
    """The master key for this worker (see the module docstring), or ``ConfigError``."""
    given = settings.pseudonym_key.get_secret_value() if settings.pseudonym_key is not None else None
    if given is not None:
        return check_key(given).encode()
    if serves_beyond_localhost(settings):
        why = (
            "DW_TOKENS_FILE is set"
            if settings.tokens_file is not None
            else f"DW_WEB_HOST={settings.web_host}"
        )
        raise ConfigError(
            f"DW_PSEUDONYM_KEY is not set, and this worker serves more than localhost ({why}): give "
            f"every worker of the deployment the same secret key; {HOW_TO_MAKE}"
        )
    return _local_key(settings.data_dir / KEY_FILE)


def _local_key(path: Path) -> bytes:
    """The key kept in ``path``, made (random, mode 0600) if there is none yet."""
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
            log.warning(
                "DW_PSEUDONYM_KEY is not set: made a random key in %s for this local deployment "
                "(every worker of a deployment must share one key: set DW_PSEUDONYM_KEY for more than one)",
                path,
            )
        value = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ConfigError(
            f"DW_DATA_DIR: cannot keep the local pseudonym key in {path}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"DW_DATA_DIR: {path} is not a key this worker wrote; remove it") from None
    return check_key(value).encode()
