"""Ops, against the real tools (Debian's prometheus and prometheus-alertmanager, installed by
`make test`): every PromQL expression of the rules and the dashboard runs on a Prometheus
scraping a busy worker; `promtool check metrics` is clean; Alertmanager receives the alerts, their
resolution, and gets them back after it was down; the compose file parses; and the newcomer's
frictions of issue 9 stay fixed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.kafka_local import free_port
from streams.simulate import simulate

from .conftest import CLI, Deployment
from .test_alerts import END, RULES, settled_alerts, signals

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make test` installs it (scripts/tools.sh)")
    return path


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def wait_for(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout_s} s (last: {last!r})")


@dataclasses.dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def ready(server: Server) -> bool:
    if server.proc.poll() is not None:
        raise AssertionError(
            f"{server.log.name}: exited {server.proc.returncode}: {server.log.read_text()[-2000:]}"
        )
    with urllib.request.urlopen(server.url + "/-/ready", timeout=5) as r:
        status: int = r.status
    return status == 200


def start_prometheus(tmp: Path, target: str) -> Server:
    port = free_port()
    shutil.copy(DEPLOY / "prometheus" / "rules.yml", tmp / "rules.yml")
    (tmp / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": ["rules.yml"],
                "scrape_configs": [{"job_name": "disposal-watch", "static_configs": [{"targets": [target]}]}],
            }
        )
    )
    log = tmp / "prometheus.log"
    proc = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    wait_for(lambda: ready(server), 60, "prometheus ready")
    return server


def start_alertmanager(tmp: Path, port: int) -> Server:
    (tmp / "alertmanager.yml").write_text(
        "route: {receiver: nowhere, group_by: [alertname, force], group_wait: 1s}\n"
        "receivers: [{name: nowhere}]\n"
    )
    log = tmp / f"alertmanager-{time.monotonic_ns()}.log"
    proc = subprocess.Popen(
        [
            tool("prometheus-alertmanager"),
            f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / f'am-{time.monotonic_ns()}'}",  # a fresh state every start
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    wait_for(lambda: ready(server), 60, "alertmanager ready")
    return server


def expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every recording and alerting rule, and every dashboard target."""
    for group in yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("record") or rule["alert"], rule["expr"]
    dashboard = json.loads((DEPLOY / "grafana" / "disposal-watch.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield f"panel {panel['title']!r}", target["expr"].replace("$rule", ".*")


def test_every_rule_and_dashboard_expression_runs_on_prometheus_scraping_a_busy_worker(
    deployment: Deployment, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    deployment.env.update(DW_RULES=str(rules), DW_CLOCK="stream", DW_ALERT_INTERVAL_S="0.5")
    worker = deployment.start_worker()
    feeding = threading.Thread(target=deployment.produce, args=(list(simulate(30000, seed=5, end=END)),))
    feeding.start()
    prometheus = start_prometheus(tmp_path, worker.url.removeprefix("http://"))
    try:
        # promtool on the exposition of a busy worker
        check = subprocess.run(
            [tool("promtool"), "check", "metrics"], input=worker.metrics(), capture_output=True, text=True
        )
        assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check
        feeding.join()
        deployment.wait()
        wait_for(
            lambda: get(
                prometheus.url + "/api/v1/query?query=" + urllib.parse.quote("force:disposal_events:rate5m")
            )["data"]["result"],
            60,
            "a recorded events rate",
        )
        failures = []
        for where, expr in expressions():
            answer = get(prometheus.url + "/api/v1/query?query=" + urllib.parse.quote(expr))
            if answer.get("status") != "success":
                failures.append(f"{where}: {expr}: {answer}")
        assert not failures, "\n".join(failures)
        # the shares the dashboard draws come from the leader's rule totals
        shares = get(prometheus.url + "/api/v1/query?query=rule_force_category:disposal_share:ratio")
        assert shares["data"]["result"]
    finally:
        prometheus.stop()


def alertmanager_firing(am: Server) -> set[tuple[str, str, str]]:
    alerts = get(am.url + "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true")
    return {(a["labels"]["alertname"], a["labels"]["force"], a["labels"]["category"]) for a in alerts}


def cli_firing(deployment: Deployment, url: str) -> set[tuple[str, str, str]]:
    r = deployment.cli("alerts", "--state", "firing", "--format", "json", "--url", url)
    assert r.returncode == 0, r.stderr
    return {(a["rule_id"], a["force_id"], a["category"]) for a in json.loads(r.stdout)}


def test_alertmanager_gets_the_firing_set_its_resolution_and_the_state_again_after_a_restart(
    deployment: Deployment, tmp_path: Path
) -> None:
    port = free_port()
    am = start_alertmanager(tmp_path, port)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    deployment.env.update(
        DW_RULES=str(rules),
        DW_CLOCK="stream",
        DW_ALERT_INTERVAL_S="0.5",
        DW_ALERTMANAGER_URL=am.url,
        DW_ALERTMANAGER_RESEND_S="1",
    )
    events = list(simulate(20000, seed=8, end=END)) + signals(END)
    deployment.produce(events)
    worker = deployment.start_worker()
    deployment.wait()
    settled_alerts(worker)
    try:
        firing = cli_firing(deployment, worker.url)
        assert firing
        wait_for(
            lambda: alertmanager_firing(am) == firing, 30, "Alertmanager's firing set equal to the CLI's"
        )
        pushed = get(am.url + "/api/v2/alerts")
        one = next(a for a in pushed if a["labels"]["alertname"] == "harassment-rate")
        assert one["annotations"]["summary"] and one["labels"]["severity"] == "medium"

        # down for a while (and back without its state): the firing set comes back
        am.stop()
        time.sleep(3)
        am = start_alertmanager(tmp_path, port)
        wait_for(lambda: alertmanager_firing(am) == cli_firing(deployment, worker.url), 30, "the state again")
        assert 'disposal_alertmanager_pushes_total{outcome="failed"}' in worker.metrics()

        # half a year later, with nothing new for them: every alert resolves, in Alertmanager too
        later = dataclasses.replace(
            events[0],
            force_id="kent",
            crime_ref="LATER",
            event_id="later",
            outcome_date=END + dt.timedelta(days=200),
        )
        deployment.produce([later])
        deployment.wait()
        wait_for(lambda: not cli_firing(deployment, worker.url), 60, "every alert resolved")
        wait_for(lambda: not alertmanager_firing(am), 30, "Alertmanager's alerts resolved")
    finally:
        am.stop()


def test_compose_file_parses_and_everything_it_mounts_exists(tmp_path: Path) -> None:
    def config(**env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if k != "DW_PSEUDONYM_KEY"}
        return subprocess.run(
            [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**clean, **env},
        )

    # the deployment's secret is required: no default anyone could read here
    unset = config()
    assert unset.returncode != 0 and "DW_PSEUDONYM_KEY" in unset.stderr
    r = config(DW_PSEUDONYM_KEY="0f" * 32)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = [
        v.split(":")[0] for s in doc["services"].values() for v in s.get("volumes", []) if v.startswith("./")
    ]
    assert mounts and all((ROOT / m).exists() for m in mounts), [m for m in mounts if not (ROOT / m).exists()]
    assert all(s.get("restart") for s in doc["services"].values())
    assert "feeder" in doc["services"] and "grafana" in doc["services"] and "alertmanager" in doc["services"]


def test_a_worker_on_a_port_already_taken_says_so_in_one_line(deployment: Deployment) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        r = deployment.cli("worker", DW_WEB_PORT=str(port), timeout=60)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"DW_WEB_PORT={port}" in lines[0] and "Traceback" not in r.stderr


def test_counts_into_a_closed_pipe_and_wait_with_a_live_feed(deployment: Deployment) -> None:
    deployment.produce(simulate(3000, seed=4))
    worker = deployment.start_worker()
    deployment.wait()
    env = {**os.environ, **deployment.env}
    r = subprocess.run(
        f"{CLI} counts --group-by force,category,disposal,day --url {worker.url} | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0 and r.stdout.startswith("force,") and "Error" not in r.stderr, r.stderr
    # a feed that never stops: `wait` waits for what was produced when it started, not forever
    feed = subprocess.Popen(
        [CLI, "simulate", "--events", "100000", "--rate", "100", "--seed", "5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        assert deployment.cli("wait", "--timeout", "60").returncode == 0
    finally:
        feed.terminate()
        feed.wait(10)


def test_a_kafka_error_names_itself_once(deployment: Deployment) -> None:
    r = deployment.cli("simulate", "--events", "5", DW_KAFKA="localhost:1")
    assert r.returncode == 2
    assert not re.search(r"(\w+Error): \1", r.stderr), r.stderr
