"""Who may read the alert feed: bearer tokens, stored hashed, each scoped to forces or to all.

``DW_TOKENS_FILE`` is a YAML file::

    tokens:
      - name: kent-scrutiny-panel
        sha256: 5e88489...          # hex SHA-256 of the token; the token itself is never stored
        forces: [kent]
      - name: inspectorate
        sha256: 9f86d08...
        forces: all
      - name: kent-case-officer            # may turn kent's pseudonyms back into crime references
        sha256: 2c26b46...
        forces: [kent]
        permissions: [reidentify]

`disposal-watch token new --name N --forces kent,essex [--reidentify]` makes a token and prints
its entry. ``reidentify`` lets a token turn a pseudonym of its forces' crimes back into the crime
reference (``GET /api/refs/{pseudonym}``): each use is logged and counted.
Without a tokens file (local use) the API answers requests from localhost only.

The workers' own endpoints (partial counts, crime pseudonyms, clocks) answer only requests that
carry the peer credential in the ``X-DW-Peer`` header: an HMAC of a fixed label under
``DW_PSEUDONYM_KEY``, which every worker of a deployment already shares (pseudonyms must agree).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.errors import ConfigError

LOCALHOST = {"127.0.0.1", "::1"}


Permission = Literal["reidentify"]


class TokenEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    forces: Literal["all"] | tuple[str, ...]
    permissions: tuple[Permission, ...] = ()


@dataclass(frozen=True)
class Scope:
    """What one request may see, and do."""

    name: str
    forces: frozenset[str] | None  # None: every force
    permissions: frozenset[str] = frozenset()

    def allows(self, force: str) -> bool:
        return self.forces is None or force in self.forces


@dataclass(frozen=True)
class Denied:
    status: int  # 401 or 403
    #: metric label: missing_token, wrong_token, not_localhost, forbidden_force, no_permission,
    #: missing_peer, wrong_peer
    reason: str
    message: str


PEER_HEADER = "X-DW-Peer"


def peer_credential(secret: bytes) -> str:
    """What a worker presents to another worker of the same deployment."""
    return hmac.new(secret, b"disposal-watch peer v1", hashlib.sha256).hexdigest()


def authorize_peer(expected: str, presented: str | None) -> Denied | None:
    """None if ``presented`` is the peer credential; else why not."""
    if presented is None:
        return Denied(401, "missing_peer", f"worker-to-worker endpoint: the {PEER_HEADER} header is required")
    if not hmac.compare_digest(expected, presented):
        return Denied(401, "wrong_peer", f"the {PEER_HEADER} credential is not this deployment's")
    return None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: Path, known_forces: set[str]) -> list[TokenEntry]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = [TokenEntry.model_validate(t) for t in (doc or {}).get("tokens", [])]
    except (OSError, yaml.YAMLError, ValidationError, AttributeError) as exc:
        raise ConfigError(f"DW_TOKENS_FILE={path}: {exc}") from None
    for e in entries:
        bad = [] if e.forces == "all" else [f for f in e.forces if f not in known_forces]
        if bad:
            raise ConfigError(f"DW_TOKENS_FILE={path}: token {e.name}: unknown force id {', '.join(bad)}")
    return entries


def authorize(
    entries: list[TokenEntry] | None, authorization: str | None, remote: str | None
) -> Scope | Denied:
    """Scope of a request from its Authorization header and remote address."""
    if entries is None:
        if remote in LOCALHOST:  # local use: everything, re-identification included
            return Scope("local", None, frozenset({"reidentify"}))
        return Denied(403, "not_localhost", "no tokens are configured: the API answers on localhost only")
    if not authorization or not authorization.startswith("Bearer "):
        return Denied(401, "missing_token", "an Authorization: Bearer <token> header is required")
    given = digest(authorization[len("Bearer ") :].strip())
    for e in entries:
        if hmac.compare_digest(given, e.sha256):
            return Scope(e.name, None if e.forces == "all" else frozenset(e.forces), frozenset(e.permissions))
    return Denied(401, "wrong_token", "the bearer token is not valid")
