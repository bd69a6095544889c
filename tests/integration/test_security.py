"""Safe to expose: no secret anyone else knows starts a worker that serves more than localhost;
errors name the setting or file and never print a secret; an unusable data directory is one
line at start and a full disk at run time exits 74, which the supervisor does not restart; an
outside value is cut in logs and dead letters; over TLS the session cookie is Secure.

The read-only and full file systems are real: small tmpfs mounts (these tests run as root, as
``make test`` does in CI)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from streams.access import digest
from streams.codec import encode_outcome
from streams.kafka_local import free_port
from streams.keys import PUBLISHED
from streams.simulate import simulate

from .conftest import CLI, Deployment, self_signed

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-secret-nobody-else-has-0123456789abcdef"


def worker_start(deployment: Deployment, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """``disposal-watch worker`` expected to refuse to start: its exit and output."""
    return deployment.cli("worker", timeout=timeout, DW_WEB_PORT=str(free_port()), **env)


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    return errors[0]


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    assert r.returncode == 0, f"these tests mount a small tmpfs and need root: {r.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> None:
    """Write until the file system is full."""
    with (directory / "filler").open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * (1 << 16))
            f.flush()


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["tokens_file", "web_host"])
def test_a_worker_serving_more_than_localhost_needs_a_secret_of_its_own(
    deployment: Deployment, tmp_path: Path, case: str
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n  - {{name: a, sha256: {digest('t')}, forces: all}}\n")
    env: dict[str, Any] = (
        {"DW_TOKENS_FILE": str(tokens)} if case == "tokens_file" else {"DW_WEB_HOST": "0.0.0.0"}
    )
    deployment.env.pop("DW_PSEUDONYM_KEY")
    r = worker_start(deployment, DW_DATA_DIR=str(tmp_path / "d"), **env)
    assert r.returncode == 2
    assert "DW_PSEUDONYM_KEY is not set" in one_error_line(r)
    for value in sorted(PUBLISHED):  # a key anyone can read in this repository: refused too
        r = worker_start(deployment, DW_DATA_DIR=str(tmp_path / "d"), DW_PSEUDONYM_KEY=value, **env)
        assert r.returncode == 2 and "published" in one_error_line(r) and value not in r.stderr


@pytest.mark.parametrize("value", ["s3cr3t-x", "0123456789abcdef-0123456789"])
def test_a_bad_key_is_named_and_never_echoed(deployment: Deployment, tmp_path: Path, value: str) -> None:
    r = worker_start(deployment, DW_DATA_DIR=str(tmp_path / "d"), DW_PSEUDONYM_KEY=value)
    assert r.returncode == 2 and "DW_PSEUDONYM_KEY" in one_error_line(r)
    assert value not in r.stderr and value not in r.stdout


def test_a_bad_token_setting_is_named_and_never_echoed(deployment: Deployment) -> None:
    r = deployment.cli("counts", DW_TOKEN=SECRET, DW_WEB_PORT="70000")
    assert r.returncode == 2 and "DW_WEB_PORT" in r.stderr and SECRET not in r.stderr


# --- the data directory -----------------------------------------------------------------------


def test_a_data_directory_that_is_a_file_read_only_or_full_is_one_line(
    deployment: Deployment, tmp_path: Path
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    r = worker_start(deployment, DW_DATA_DIR=str(a_file))
    assert (
        r.returncode == 2 and one_error_line(r) == f"error: DW_DATA_DIR={a_file} is a file, not a directory"
    )

    with tmpfs(tmp_path / "ro", "4m", read_only=True) as ro:
        r = worker_start(deployment, DW_DATA_DIR=str(ro / "data"))
        assert r.returncode == 2 and "read-only file system" in one_error_line(r)
        assert f"DW_DATA_DIR={ro / 'data'}" in one_error_line(r)

    with tmpfs(tmp_path / "full", "2m") as full:
        fill(full)
        r = worker_start(deployment, DW_DATA_DIR=str(full))
        assert r.returncode == 2 and "the disk is full" in one_error_line(r)


def test_a_disk_that_fills_at_run_time_exits_74_and_is_not_restarted(
    deployment: Deployment, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "data", "24m") as data:
        port = free_port()
        log = tmp_path / "worker.log"
        env = {**os.environ, **deployment.env, "DW_DATA_DIR": str(data), "DW_WEB_PORT": str(port)}
        with log.open("wb") as out:
            # as `make run` starts it: under scripts/supervise.sh, which restarts 70 and 75 only
            proc = subprocess.Popen(
                [str(ROOT / "scripts" / "supervise.sh"), CLI, "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r,
                ):
                    if json.load(r)["status"] == "ok":
                        break
                time.sleep(0.3)
            fill(data)
            deployment.produce(simulate(20000, seed=2))
            assert proc.wait(120) == 74
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    critical = [ln for ln in text.splitlines() if "CRITICAL" in ln]
    assert len(critical) == 1 and "DW_DATA_DIR" in critical[0] and "the disk is full" in critical[0], text[
        -3000:
    ]
    assert "exited with 74" in text and "not restarting" in text and text.count("CRITICAL") == 1


# --- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["jsonl", "policeuk"])
def test_an_undecodable_byte_names_the_file_line_and_encoding(
    deployment: Deployment, tmp_path: Path, kind: str
) -> None:
    if kind == "jsonl":
        f = tmp_path / "events.jsonl"
        f.write_bytes(b'{"event_id": "a"}\n{"event_id": "caf\xe9"}\n')
        where = "line 2"
    else:
        f = tmp_path / "2024-01-city-of-london-street.csv"
        header = (
            ROOT.parent / "shared/data/policeuk/city-of-london-2024-2025/2024-01-city-of-london-street.csv"
        )
        lines = header.read_bytes().splitlines(keepends=True)
        f.write_bytes(b"".join(lines[:4]) + lines[4].replace(b",", b",Caf\xe9 ", 1) + b"".join(lines[5:8]))
        where = "line 5"
    r = deployment.cli("ingest", kind, str(f))
    assert r.returncode == 2
    line = one_error_line(r)
    assert str(f) in line and where in line and "0xe9" in line and "UTF-8" in line


def test_a_huge_field_is_cut_in_the_log_and_the_dead_letter(deployment: Deployment) -> None:
    huge = "x" * 600_000
    (ev,) = simulate(1, seed=3)
    bad = dataclasses.replace(ev, force_id=huge)
    deployment.produce_raw([(b"huge", encode_outcome(bad))])
    worker = deployment.start_worker()
    deployment.wait()
    longest = max(len(ln) for ln in worker.log.read_text().splitlines())
    assert longest < 2_000
    assert "dead-lettered" in worker.log.read_text() and "600,0" in worker.log.read_text()
    s = deployment.settings
    consumer = KafkaConsumer(
        s.dlq_topic, bootstrap_servers=s.kafka, auto_offset_reset="earliest", consumer_timeout_ms=10_000
    )
    (dead,) = [m for m in consumer if m.key == b"huge"]
    consumer.close()
    headers = dict(dead.headers)
    assert headers["dw.reason"] == b"unknown_force" and len(headers["dw.error"]) <= 2_100
    assert dead.value == encode_outcome(bad)  # the original bytes, whole


# --- TLS --------------------------------------------------------------------------------------


def test_over_tls_the_session_cookie_is_secure_and_the_cli_trusts_the_worker(
    deployment: Deployment, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, "worker")
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n  - {{name: all, sha256: {digest('all-secret')}, forces: all}}\n")
    deployment.env.update(DW_WEB_TLS_CERT=str(cert), DW_WEB_TLS_KEY=str(key), DW_TOKENS_FILE=str(tokens))
    worker = deployment.start_worker(ready=False)
    worker.url = worker.url.replace("http://", "https://")
    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(worker.url + "/healthz", context=context, timeout=5) as r:
                if json.load(r)["status"] == "ok":
                    break
        except OSError:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.3)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
    form = urllib.parse.urlencode({"token": "all-secret"}).encode()
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(
            urllib.request.Request(
                worker.url + "/signin", data=form, headers={"Sec-Fetch-Site": "same-origin"}
            )
        )
    assert redirect.value.code == 303
    cookie = redirect.value.headers["Set-Cookie"]
    assert cookie.startswith("dw_session=") and "all-secret" not in cookie
    assert all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=Strict"))
    # a post from another site gets no session at all
    with pytest.raises(urllib.error.HTTPError) as cross:
        opener.open(
            urllib.request.Request(
                worker.url + "/signin", data=form, headers={"Sec-Fetch-Site": "cross-site"}
            )
        )
    assert cross.value.code == 403 and "Set-Cookie" not in cross.value.headers
    # the CLI speaks HTTPS to the worker and trusts its certificate file
    r = deployment.cli("counts", DW_TOKEN="all-secret", DW_WEB_PORT=worker.url.rsplit(":", 1)[1])
    assert r.returncode == 0 and r.stdout.startswith("force,category,disposal,count"), r.stderr
