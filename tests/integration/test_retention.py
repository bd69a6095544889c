"""State stays bounded: crimes whose latest outcome leaves the retention horizon are deleted from
the store and tombstoned in the changelog, without changing a count, live or restored."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time

from kafka import KafkaConsumer

from streams.simulate import simulate

from .conftest import Deployment, Worker, expected_counts, reference_category

END = dt.date(2026, 6, 30)
KEEP = 60


def gauge(worker: Worker, name: str) -> float:
    m = re.search(rf"^{name} (\S+)$", worker.metrics(), re.M)
    assert m, f"no {name} in /metrics"
    return float(m.group(1))


def test_crimes_past_the_horizon_leave_the_store_and_the_changelog_and_no_count_changes(
    deployment: Deployment,
) -> None:
    d = deployment
    d.env.update(DW_CLOCK="stream", DW_RETENTION_DAYS=str(KEEP), DW_BATCH_RECORDS="500")
    events = list(simulate(40_000, seed=81, end=END, days=2 * 365, ordered=True))
    d.produce(events)
    worker = d.start_worker()
    d.wait()
    # the sweep goes on at each checkpoint: the store comes down to the crimes within the horizon
    deadline = time.monotonic() + 60
    while gauge(worker, "disposal_store_crimes") > 1.1 * gauge(worker, "disposal_crimes_held"):
        assert time.monotonic() < deadline, (worker.metrics(), worker.log_tail())
        time.sleep(0.5)
    time.sleep(2)  # a checkpoint more: nothing pending
    held, store = gauge(worker, "disposal_crimes_held"), gauge(worker, "disposal_store_crimes")
    assert held <= store <= 1.1 * held  # every crime counted is in the store
    crimes = len({e.crime_key for e in events})
    assert 0 < held < crimes / 5
    live = d.counts(worker)
    # the counts are those of the crimes within the horizon (the days at its edge left out:
    # each partition's clock is its own newest day)
    want = expected_counts(events, reference_category)
    edge = END - dt.timedelta(days=KEEP)
    inner = {k: n for k, n in live.items() if k[3] > (edge + dt.timedelta(days=2)).isoformat()}
    assert inner == {k: n for k, n in want.items() if k[3] > (edge + dt.timedelta(days=2)).isoformat()}
    assert all(k[3] >= (edge - dt.timedelta(days=2)).isoformat() for k in live)
    # the changelog holds a tombstone for each crime swept
    s = d.settings
    c = KafkaConsumer(
        s.changelog_topic, bootstrap_servers=s.kafka, auto_offset_reset="earliest",
        consumer_timeout_ms=3000, isolation_level="read_committed",
    )  # fmt: skip
    tombstones = sum(1 for m in c if m.value is None)
    c.close()
    assert tombstones >= crimes - 1.1 * held - 1000
    # a restart keeps the store as it was; the changelog alone gives the same counts
    worker.stop()
    worker = d.start_worker()
    d.wait()
    assert d.counts(worker) == live
    # counted afresh in the store at the start: what the live gauge said
    assert gauge(worker, "disposal_store_crimes") == store
    worker.stop()
    shutil.rmtree(d.dir / "w1")
    worker = d.start_worker()
    d.wait()
    assert d.counts(worker) == live
    assert gauge(worker, "disposal_store_crimes") <= 1.1 * held
