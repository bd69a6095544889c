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

The dashboard's sign-in takes a token once and gives a session cookie (``Sessions``): the token's
name and an expiry, signed with a key derived for sessions alone (``streams.keys``). The cookie
never holds the token; a session ends when it expires or when its token leaves the tokens file
or is replaced (the signature covers the token's hash).

The workers' own endpoints (partial counts, crime pseudonyms, clocks) answer only requests that
carry the peer credential in the ``X-DW-Peer`` header: a key derived from the deployment's master
key for that purpose alone (``streams.keys``), which every worker of a deployment shares.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerts import strict_yaml
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
        doc = strict_yaml.load(path.read_text(encoding="utf-8"), quote=False)
        entries = [TokenEntry.model_validate(t) for t in (doc or {}).get("tokens", [])]
    except (OSError, yaml.YAMLError, ValidationError, AttributeError) as exc:
        raise ConfigError(f"DW_TOKENS_FILE={path}: {exc}") from None
    names = [e.name for e in entries]
    if len(set(names)) != len(names):  # a session names its token: two of one name are ambiguous
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(
            f"DW_TOKENS_FILE={path}: token names must be unique: {', '.join(twice)} given twice"
        )
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
    e = entry_of(entries, authorization[len("Bearer ") :].strip())
    if e is None:
        return Denied(401, "wrong_token", "the bearer token is not valid")
    return scope_of(e)


def scope_of(e: TokenEntry) -> Scope:
    return Scope(e.name, None if e.forces == "all" else frozenset(e.forces), frozenset(e.permissions))


class Sessions:
    """Signed, expiring dashboard sessions: ``name.expiry.signature``, all base64url."""

    def __init__(self, key: bytes, lifetime_s: float) -> None:
        self._key = key
        self.lifetime_s = lifetime_s

    def _sign(self, name: bytes, expires: int, entry: TokenEntry) -> bytes:
        message = b"%s\x00%d\x00%s" % (name, expires, entry.sha256.encode())
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def issue(self, entry: TokenEntry, now_s: float) -> str:
        name = entry.name.encode()
        expires = int(now_s + self.lifetime_s)
        parts = (name, str(expires).encode(), self._sign(name, expires, entry))
        return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in parts)

    def scope(self, cookie: str, entries: list[TokenEntry], now_s: float) -> Scope | Denied:
        """The scope of a session cookie's token, if the cookie is genuine and has not expired."""
        wrong = Denied(401, "wrong_session", "the session is not valid: sign in again")
        try:
            name, expires_text, signature = (
                base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in cookie.split(".")
            )
            expires = int(expires_text)
        except ValueError:  # binascii.Error and a wrong number of parts are ValueErrors too
            return wrong
        for e in entries:
            if e.name.encode() == name and hmac.compare_digest(self._sign(name, expires, e), signature):
                if now_s >= expires:
                    return Denied(401, "expired_session", "the session has expired: sign in again")
                return scope_of(e)
        return wrong


def entry_of(entries: list[TokenEntry], token: str) -> TokenEntry | None:
    """The entry of a bearer token, if it is one of ``entries``."""
    given = digest(token)
    for e in entries:
        if hmac.compare_digest(given, e.sha256):
            return e
    return None
