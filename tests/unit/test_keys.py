"""The deployment's secrets: no value written in the repository unlocks anything, and each use
has a key of its own."""

import re
import stat
import subprocess
from pathlib import Path

import pytest

from streams.core.counting import pseudonym
from streams.errors import ConfigError
from streams.keys import MIN_KEY_CHARS, PUBLISHED, derive, master_key, serves_beyond_localhost
from streams.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
GOOD = "0f" * 32


def settings(tmp_path: Path, **env: object) -> object:
    return load_settings(data_dir=tmp_path / "data", **env)


def published_values() -> set[str]:
    """Every literal value DW_PSEUDONYM_KEY is given in a file git tracks (docs, compose, scripts...)."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    pattern = re.compile(r"DW_PSEUDONYM_KEY\s*[:=]\s*[\"']?([^\s\"'}]+)")
    found = set()
    for name in files.stdout.split():
        path = ROOT / name
        if path.suffix in {".png", ".jpg"} or not path.is_file():
            continue
        for value in pattern.findall(path.read_text(errors="replace")):
            default = re.match(r"\$\{\w+:?-(.+)", value)  # ${VAR:-default}: the default is published
            if default:
                value = default.group(1)
            # a reference ($VAR, ${VAR:?...}, $(command), a Python expression) is no published value
            if not value.startswith(("$", "{", "(", "secrets.", "os.", "<")) and len(value) >= 8:
                found.add(value)
    return found


def test_every_key_written_in_the_repository_is_refused() -> None:
    written = published_values()
    assert written <= PUBLISHED, f"add these to streams.keys.PUBLISHED: {sorted(written - PUBLISHED)}"


@pytest.mark.parametrize("value", sorted(PUBLISHED))
def test_a_published_key_is_refused_even_on_localhost(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="DW_PSEUDONYM_KEY is a value published") as caught:
        master_key(settings(tmp_path, pseudonym_key=value))  # type: ignore[arg-type]
    assert value not in str(caught.value)


def test_a_short_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="too short") as caught:
        master_key(settings(tmp_path, pseudonym_key="short-secret"))  # type: ignore[arg-type]
    assert "short-secret" not in str(caught.value) and str(MIN_KEY_CHARS) in str(caught.value)


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"tokens_file": "tokens.yaml"}, "DW_TOKENS_FILE is set"),
        ({"web_host": "0.0.0.0"}, "DW_WEB_HOST=0.0.0.0"),
        ({"web_host": "worker-1"}, "DW_WEB_HOST=worker-1"),
    ],
)
def test_a_worker_serving_more_than_localhost_needs_a_key(
    tmp_path: Path, env: dict[str, str], why: str
) -> None:
    s = settings(tmp_path, **env)
    assert serves_beyond_localhost(s)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=re.escape(why)) as caught:
        master_key(s)  # type: ignore[arg-type]
    assert str(caught.value).count("\n") == 0 and "DW_PSEUDONYM_KEY is not set" in str(caught.value)
    assert master_key(settings(tmp_path, pseudonym_key=GOOD, **env)) == GOOD.encode()  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_a_local_worker_makes_its_own_key_once_and_keeps_it(tmp_path: Path, host: str) -> None:
    s = settings(tmp_path, web_host=host)
    assert not serves_beyond_localhost(s)  # type: ignore[arg-type]
    first = master_key(s)  # type: ignore[arg-type]
    kept = tmp_path / "data" / "pseudonym.key"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and len(first) >= MIN_KEY_CHARS
    assert master_key(s) == first  # type: ignore[arg-type]
    assert master_key(settings(tmp_path / "other")) != first  # type: ignore[arg-type]


def test_each_use_has_its_own_key() -> None:
    keys = derive(GOOD.encode())
    assert len({keys.pseudonym, bytes.fromhex(keys.peer), keys.session, GOOD.encode()}) == 4
    # the peer credential is not the pseudonym of any label under the master or the pseudonym key
    for key in (GOOD.encode(), keys.pseudonym):
        assert pseudonym("disposal-watch peer v1", key) not in keys.peer
    assert derive(GOOD.encode()) == keys and derive(("1" * 64).encode()) != keys


def test_a_bad_webhook_secret_is_named_and_never_echoed(tmp_path: Path) -> None:
    from streams.alerting.webhooks import load_webhooks

    f = tmp_path / "hooks.yaml"
    f.write_text("webhooks:\n  - {name: a, url: 'https://x.example', secret: 'whsec_not*base64*secret'}\n")
    with pytest.raises(ConfigError, match="secret") as caught:
        load_webhooks(f)
    assert "not*base64*secret" not in str(caught.value)


def test_a_webhook_key_given_twice_is_refused_without_echoing_the_file(tmp_path: Path) -> None:
    from streams.alerting.webhooks import load_webhooks

    f = tmp_path / "hooks.yaml"
    secret = "c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw=="
    f.write_text(
        f"webhooks:\n  - name: a\n    url: 'https://x.example'\n    secret: {secret}\n    secret: {secret}\n"
    )
    with pytest.raises(ConfigError, match=r"(?s)'secret' is given twice.*line 5") as caught:
        load_webhooks(f)
    assert secret not in str(caught.value)
