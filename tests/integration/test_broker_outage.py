"""A broker that is away shows: with its only broker stopped for 60 s, a worker's /healthz says
degraded (503, with the reason) within 15 s and ok within 15 s of the broker's return, /livez stays
up, the lag gauge's refresh time stops, the log stays short, and the counts are exact after."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import kafka_local
from streams.simulate import simulate

from .conftest import Deployment, expected_counts, reference_category

OUTAGE_S = 60.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A broker of this test's own, which it may stop and start again."""
    where, port = tmp_path / "broker", kafka_local.free_port()
    kafka_local.start(where, port)
    yield where, port
    if kafka_local.running(where) is not None:
        kafka_local.stop(where)


def health(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def until(what: str, ok: object, limit_s: float) -> float:
    """Seconds until ``ok()``; fails past ``limit_s``."""
    t0 = time.monotonic()
    while not ok():  # type: ignore[operator]
        assert time.monotonic() - t0 < limit_s, f"{what}: not within {limit_s} s"
        time.sleep(0.25)
    return time.monotonic() - t0


def refreshed_at(url: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        m = re.search(r"^disposal_lag_refreshed_timestamp_seconds (\S+)$", r.read().decode(), re.M)
    assert m
    return float(m.group(1))


def test_a_broker_away_for_a_minute_shows_and_costs_nothing(
    deployment: Deployment, own_broker: tuple[Path, int]
) -> None:
    from streams.producer import ensure_topics

    where, port = own_broker
    deployment.env["DW_KAFKA"] = f"localhost:{port}"
    ensure_topics(deployment.settings)
    before, after = list(simulate(5000, seed=81)), list(simulate(5000, seed=82))
    deployment.produce(before)
    worker = deployment.start_worker()
    deployment.wait()
    lines_before = len(worker.log.read_text().splitlines())

    kafka_local.stop(where)
    stopped = time.monotonic()
    degraded_s = until("degraded", lambda: health(worker.url)[0] == 503, 15)
    status, body = health(worker.url)
    assert body["status"] == "degraded" and "DW_KAFKA" in str(body["reason"])
    with urllib.request.urlopen(worker.url + "/livez", timeout=5) as r:
        assert r.status == 200
    stale = refreshed_at(worker.url)
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    assert refreshed_at(worker.url) == stale  # the lag was not measured meanwhile, visibly
    logged = len(worker.log.read_text().splitlines()) - lines_before

    kafka_local.start(where, port)
    back_s = until("ok again", lambda: health(worker.url)[0] == 200, 15 + 5)  # start's own wait aside
    print(
        f"degraded after {degraded_s:.1f} s; ok {back_s:.1f} s after the broker answered; {logged} log lines"
    )
    assert logged < 100, worker.log.read_text().splitlines()[lines_before:][:200]
    assert worker.proc.poll() is None and worker.restarts == 0
    deployment.produce(after)
    deployment.wait()
    assert deployment.counts(worker) == expected_counts(before + after, reference_category)
