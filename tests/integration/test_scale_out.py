"""Two workers in one consumer group share the partitions; either answers for all of them."""

import time
from typing import Any

from streams.producer import lag
from streams.simulate import simulate

from .conftest import Deployment, Worker, expected_counts, reference_category
from .test_exactness import kill_after


def settled(a: Worker, b: Worker, partitions: int, timeout_s: float = 120.0) -> tuple[Any, Any]:
    """Both workers' /healthz once the group has settled: both ok, every partition owned by
    exactly one of them. A rebalance can follow the first one (a slow join, a missed heartbeat),
    so a snapshot with both members owning something is not yet the settled state."""
    deadline = time.monotonic() + timeout_s
    while True:
        ha, hb = a.get("/healthz"), b.get("/healthz")
        owned = sorted(ha["partitions"] + hb["partitions"])
        if ha["status"] == hb["status"] == "ok" and owned == list(range(partitions)):
            return ha, hb
        if time.monotonic() > deadline:
            raise AssertionError(
                f"group not settled in {timeout_s}s: a={ha} b={hb}\n"
                f"--- a.log\n{a.log_tail()}\n--- b.log\n{b.log_tail()}"
            )
        time.sleep(0.5)


def test_two_workers_each_answer_for_all_partitions(deployment: Deployment) -> None:
    events = list(simulate(8000, seed=41))
    deployment.produce(events)
    a = deployment.start_worker("a")
    b = deployment.start_worker("b")
    deployment.wait()
    expected = expected_counts(events, reference_category)
    ha, hb = settled(a, b, deployment.settings.partitions)
    assert ha["partitions"] and hb["partitions"]
    assert set(ha["partitions"]).isdisjoint(hb["partitions"])
    for w in (a, b):
        data = w.get("/api/counts?group_by=force&window=all")
        assert data["workers"] == 2
        assert deployment.counts(w) == expected


def test_two_workers_one_killed_mid_replay_end_exact(deployment: Deployment) -> None:
    """Both workers own partitions before the replay arrives, so the kill lands in b's share
    (one worker alone drains 40,000 events in about a second, before a second one joins)."""
    events = list(simulate(40000, seed=42))
    deployment.env.update(DW_BATCH_RECORDS="500")
    a = deployment.start_worker("a")
    b = deployment.start_worker("b")
    settled(a, b, deployment.settings.partitions)
    deployment.produce(events)
    kill_after(b, 4000)
    assert sum(lag(deployment.settings).values()) > 0, "the kill came after the replay"
    b = deployment.start_worker("b")  # the same data directory
    deployment.wait()
    expected = expected_counts(events, reference_category)
    settled(a, b, deployment.settings.partitions)
    for w in (a, b):
        assert w.get("/api/counts?group_by=force&window=all")["workers"] == 2
        assert deployment.counts(w) == expected
