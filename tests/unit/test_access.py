from pathlib import Path

import pytest

from streams.access import Denied, Scope, authorize, authorize_peer, digest, load_tokens, peer_credential
from streams.errors import ConfigError

FORCES = {"kent", "essex", "durham"}


def tokens(tmp_path: Path) -> list:  # type: ignore[type-arg]
    f = tmp_path / "tokens.yaml"
    f.write_text(
        f"tokens:\n  - {{name: kent, sha256: {digest('k-secret')}, forces: [kent]}}\n"
        f"  - {{name: all, sha256: {digest('a-secret')}, forces: all}}\n"
    )
    return load_tokens(f, FORCES)


def test_scopes(tmp_path: Path) -> None:
    t = tokens(tmp_path)
    kent = authorize(t, "Bearer k-secret", "10.0.0.1")
    assert isinstance(kent, Scope) and kent.allows("kent") and not kent.allows("essex")
    every = authorize(t, "Bearer a-secret", "10.0.0.1")
    assert isinstance(every, Scope) and every.allows("durham")


@pytest.mark.parametrize(
    ("header", "status", "reason"),
    [(None, 401, "missing_token"), ("Basic abc", 401, "missing_token"), ("Bearer nope", 401, "wrong_token")],
)
def test_denied(tmp_path: Path, header: str | None, status: int, reason: str) -> None:
    d = authorize(tokens(tmp_path), header, "127.0.0.1")
    assert isinstance(d, Denied) and (d.status, d.reason) == (status, reason)


def test_without_tokens_only_localhost() -> None:
    assert isinstance(authorize(None, None, "127.0.0.1"), Scope)
    d = authorize(None, None, "192.0.2.7")
    assert isinstance(d, Denied) and d.status == 403


def test_tokens_are_stored_hashed_and_checked(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("tokens:\n  - {name: x, sha256: plain-token, forces: all}\n")
    with pytest.raises(ConfigError, match="DW_TOKENS_FILE"):
        load_tokens(f, FORCES)
    f.write_text(f"tokens:\n  - {{name: x, sha256: {digest('t')}, forces: [gotham]}}\n")
    with pytest.raises(ConfigError, match="unknown force id gotham"):
        load_tokens(f, FORCES)


def test_peer_endpoints_need_this_deployments_credential() -> None:
    mine = peer_credential(b"deployment-key-0123456789")
    assert mine == peer_credential(b"deployment-key-0123456789")
    assert authorize_peer(mine, mine) is None
    missing = authorize_peer(mine, None)
    assert isinstance(missing, Denied) and (missing.status, missing.reason) == (401, "missing_peer")
    other = authorize_peer(mine, peer_credential(b"another-deployment-key"))
    assert isinstance(other, Denied) and other.reason == "wrong_peer"
