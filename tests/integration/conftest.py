"""Integration fixtures: the real broker `make test` started (DW_KAFKA), and factories for
isolated deployments (unique topics, consumer group, data dir and web port per test)."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_local import free_port
from streams.keys import Keys, derive
from streams.model import OutcomeEvent
from streams.producer import EventProducer, ensure_topics
from streams.runtime.exits import ExitCode
from streams.settings import Settings, load_settings

BIN = Path(sys.executable).parent
CLI = str(BIN / "disposal-watch")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is marked ``integration``: ``pytest -m "not integration"`` runs the
    rest without a broker (conftest hooks see every item, so only this directory's are marked)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("DW_KAFKA")
    if not bootstrap:
        pytest.fail("DW_KAFKA is not set: run integration tests with `make test`, which starts a broker")
    return bootstrap


#: the worker's exit code when it stalled (streams/runtime/exits.py): a supervisor restarts it
EXIT_STALLED = int(ExitCode.STALLED)


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    #: starts the same worker again (same port, data dir and log); set by Deployment
    respawn: Any = None
    #: times the supervisor restarted it after it exited as stalled
    restarts: int = 0
    stopping: bool = False

    def supervise(self) -> None:
        """Restart the worker when it exits as stalled, as a production supervisor would;
        any other exit (a test's SIGKILL, a crash) is left for the test to see."""

        def run() -> None:
            while not self.stopping:
                if self.proc.poll() == EXIT_STALLED and not self.stopping:
                    self.restarts += 1
                    self.proc = self.respawn()
                time.sleep(0.5)

        threading.Thread(target=run, daemon=True).start()

    def kill(self) -> None:
        self.stopping = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return json.load(resp)

    def log_tail(self, lines: int = 40) -> str:
        """The last timestamped lines of the worker's log (Faust's tables left out)."""
        text = self.log.read_text(errors="replace")
        stamped = [ln for ln in text.splitlines() if ln.startswith(("[", "20"))]
        return "\n".join(stamped[-lines:])

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as resp:
            body: bytes = resp.read()
        return body.decode()

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                if self.get("/healthz")["status"] == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout_s}s:\n{self.log.read_text()[-3000:]}")


@dataclass
class Deployment:
    env: dict[str, str]
    dir: Path
    workers: list[Worker] = field(default_factory=list)

    @property
    def keys(self) -> Keys:
        """The keys every worker of this deployment derives from its DW_PSEUDONYM_KEY."""
        return derive(self.env["DW_PSEUDONYM_KEY"].encode())

    @property
    def settings(self) -> Settings:
        return load_settings(**{k[3:].lower(): v for k, v in self.env.items() if k.startswith("DW_")})

    def cli(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args],
            env={**os.environ, **self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_worker(self, name: str = "w1", ready: bool = True, **env: str) -> Worker:
        port = free_port()
        wenv = {
            **os.environ,
            **self.env,
            "DW_DATA_DIR": str(self.dir / name),
            "DW_WEB_PORT": str(port),
            **env,
        }
        log = self.dir / f"{name}.log"

        def spawn() -> subprocess.Popen[bytes]:
            with log.open("ab") as out:
                return subprocess.Popen([CLI, "worker"], env=wenv, stdout=out, stderr=subprocess.STDOUT)

        w = Worker(spawn(), f"http://127.0.0.1:{port}", log, respawn=spawn)
        w.supervise()
        self.workers.append(w)
        if ready:
            w.wait_ready()
        return w

    def produce(self, events: Iterable[OutcomeEvent]) -> int:
        with EventProducer(self.settings) as p:
            for ev in events:
                p.send(ev)
        assert p.stats.failed == 0, p.stats.errors
        return p.stats.sent

    def produce_raw(self, records: Iterable[tuple[bytes | None, bytes]]) -> None:
        with EventProducer(self.settings) as p:
            for key, value in records:
                p.send_raw(key, value)
        assert p.stats.failed == 0, p.stats.errors

    def wait(self, timeout_s: float = 180) -> None:
        r = self.cli("wait", "--timeout", str(timeout_s), timeout=timeout_s + 30)
        assert r.returncode == 0, r.stderr

    def counts(
        self, worker: Worker, group_by: str = "force,category,disposal,day", **params: str
    ) -> dict[tuple[str, ...], int]:
        q = "&".join(f"{k}={v}" for k, v in {"group_by": group_by, "window": "all", **params}.items())
        data = worker.get(f"/api/counts?{q}")
        dims = data["group_by"]
        return {tuple(row[d] for d in dims): row["count"] for row in data["rows"]}


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    tag = uuid.uuid4().hex[:10]
    env = {
        "DW_KAFKA": kafka_bootstrap,
        "DW_TOPIC_PREFIX": f"t{tag}.",
        "DW_APP_ID": f"dw-{tag}",
        "DW_PARTITIONS": "4",
        "DW_LOG_LEVEL": "info",
        # a stalled worker exits sooner than in production, so the supervisor restarts it
        # well within the tests' waits
        "DW_STALL_EXIT_S": "40",
        # the deployment's own secret, as an operator would make one (a worker refuses a known one)
        "DW_PSEUDONYM_KEY": secrets.token_hex(32),
    }
    d = Deployment(env, tmp_path)
    ensure_topics(d.settings)
    yield d
    for w in d.workers:
        w.stop()


# --- an independent model of the contract, to compare the worker's counts with ---------------


def expected_counts(
    events: Iterable[OutcomeEvent], category: Any, keep: Any = lambda ev: True
) -> dict[tuple[str, ...], int]:
    """Each crime once, in the cell of its latest-dated outcome (ties: last produced wins;
    a repeated event id is ignored); events failing ``keep`` are left out."""
    latest: dict[str, OutcomeEvent] = {}
    seen: set[tuple[str, str]] = set()
    for ev in events:
        if not keep(ev) or (ev.crime_key, ev.event_id) in seen:
            continue
        seen.add((ev.crime_key, ev.event_id))
        held = latest.get(ev.crime_key)
        if held is None or ev.outcome_date >= held.outcome_date:
            latest[ev.crime_key] = ev
    out: dict[tuple[str, ...], int] = {}
    for ev in latest.values():
        k = (ev.force_id, category(ev), ev.disposal, ev.outcome_date.isoformat())
        out[k] = out.get(k, 0) + 1
    return out


def reference_category(ev: OutcomeEvent) -> str:
    """Category straight from the reference files (not through streams.core.classify)."""
    import re

    from streams.reference import OFFENCE_CATEGORIES

    if ev.offence_code is not None:
        return OFFENCE_CATEGORIES.get(ev.offence_code.upper(), "other")
    assert ev.crime_type is not None
    return re.sub(r"[^a-z0-9]+", "-", ev.crime_type.lower()).strip("-")


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def self_signed(where: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and its key for localhost (PEM), made with openssl."""
    cert, key = where / f"{name}.pem", where / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Apicurio Registry (Maven Central, Java 21+), one for the session: every test's
    subjects are its own, named after its deployment's topics. Never skipped: a machine without
    Java 21 fails here, saying so."""
    from streams import registry_local

    started = registry_local.start(tmp_path_factory.mktemp("registry"), free_port())
    yield started
    registry_local.stop(started.dir)
