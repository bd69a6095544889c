from pathlib import Path

import pytest

from streams.access import Denied, Scope, Sessions, authorize, authorize_peer, digest, load_tokens
from streams.errors import ConfigError
from streams.keys import derive

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
    mine = derive(b"deployment-key-0123456789" * 2).peer
    assert mine == derive(b"deployment-key-0123456789" * 2).peer
    assert authorize_peer(mine, mine) is None
    missing = authorize_peer(mine, None)
    assert isinstance(missing, Denied) and (missing.status, missing.reason) == (401, "missing_peer")
    other = authorize_peer(mine, derive(b"another-deployment-key" * 2).peer)
    assert isinstance(other, Denied) and other.reason == "wrong_peer"


HOUR = 3600.0


def test_a_session_names_its_token_and_expires_but_never_holds_it(tmp_path: Path) -> None:
    t = tokens(tmp_path)
    sessions = Sessions(b"s" * 32, HOUR)
    cookie = sessions.issue(t[0], now_s=1000.0)
    assert "k-secret" not in cookie and digest("k-secret") not in cookie
    scope = sessions.scope(cookie, t, now_s=1000.0 + HOUR - 1)
    assert (
        isinstance(scope, Scope)
        and scope.name == "kent"
        and scope.allows("kent")
        and not scope.allows("essex")
    )
    expired = sessions.scope(cookie, t, now_s=1000.0 + HOUR)
    assert isinstance(expired, Denied) and (expired.status, expired.reason) == (401, "expired_session")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c.replace(c.split(".")[0], "YWxs"),  # claims the token named "all"
        lambda c: c.split(".")[0] + ".OTk5OTk5OTk5OQ." + c.split(".")[2],  # a later expiry
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),  # another signature
        lambda c: "not-a-session",
        lambda c: "...",
        lambda c: "a.b.c.d",
        lambda c: "%%%.***.!!!",
    ],
)
def test_a_forged_or_altered_session_is_refused(tmp_path: Path, tamper: object) -> None:
    t = tokens(tmp_path)
    sessions = Sessions(b"s" * 32, HOUR)
    cookie = tamper(sessions.issue(t[0], now_s=1000.0))  # type: ignore[operator]
    denied = sessions.scope(cookie, t, now_s=1001.0)
    assert isinstance(denied, Denied) and (denied.status, denied.reason) == (401, "wrong_session")


def test_a_session_ends_when_its_token_is_replaced_or_removed(tmp_path: Path) -> None:
    t = tokens(tmp_path)
    sessions = Sessions(b"s" * 32, HOUR)
    cookie = sessions.issue(t[0], now_s=1000.0)
    replaced = [t[0].model_copy(update={"sha256": digest("new-secret")}), t[1]]
    assert isinstance(sessions.scope(cookie, replaced, now_s=1001.0), Denied)
    assert isinstance(sessions.scope(cookie, t[1:], now_s=1001.0), Denied)
    # and a session signed under another deployment's key is worthless here
    assert isinstance(Sessions(b"t" * 32, HOUR).scope(cookie, t, now_s=1001.0), Denied)


def test_a_key_or_a_name_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    """PyYAML would keep the last of a repeated key: the first token, or its scope, would go
    without a word. The error names the line and quotes none of the file."""
    f = tmp_path / "t.yaml"
    one = f"  - {{name: kent, sha256: {digest('k')}, forces: [kent]}}\n"
    f.write_text("tokens:\n" + one + "tokens:\n" + one)
    with pytest.raises(ConfigError, match=r"(?s)'tokens' is given twice.*line 3") as caught:
        load_tokens(f, FORCES)
    assert digest("k") not in str(caught.value)
    f.write_text(f"tokens:\n  - name: kent\n    sha256: {digest('k')}\n    forces: [kent]\n    forces: all\n")
    with pytest.raises(ConfigError, match=r"(?s)'forces' is given twice.*line 5"):
        load_tokens(f, FORCES)
    f.write_text("tokens:\n" + one + one.replace(digest("k"), digest("other")))
    with pytest.raises(ConfigError, match="token names must be unique: kent given twice"):
        load_tokens(f, FORCES)
