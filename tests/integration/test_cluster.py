"""On a real three-node KRaft cluster (`disposal-watch kafka start --brokers 3`): every topic the
project creates has three replicas, and one with fewer is refused; a worker paused past its
session timeout is fenced, and nothing it held counts; then (last: the cluster is the module's)
the broker leading most `disposals` partitions is killed mid-stream and stays down; two workers
reach idle without a restart, with exact counts; and a third worker with an empty data
directory restores the same counts from the changelog alone."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka_local import free_port, nodes_of, running
from streams.model import OutcomeEvent
from streams.producer import admin
from streams.simulate import simulate

from .conftest import CLI, Deployment, Worker, expected_counts, reference_category
from .test_alerts import topic_records


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A fresh three-node cluster: its bootstrap list and state directory."""
    where = tmp_path_factory.mktemp("cluster")
    r = subprocess.run(
        [CLI, "kafka", "start", "--dir", str(where), "--port", str(free_port()), "--brokers", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    yield r.stdout.strip(), where
    subprocess.run([CLI, "kafka", "stop", "--dir", str(where)], capture_output=True, timeout=120)


@pytest.fixture
def on_cluster(deployment: Deployment, cluster: tuple[str, Path]) -> Deployment:
    from streams.producer import ensure_topics

    deployment.env["DW_KAFKA"] = cluster[0]
    ensure_topics(deployment.settings)
    return deployment


def leaders(d: Deployment, topic: str) -> dict[int, int]:
    """Partition -> the id of the broker leading it."""
    client = admin(d.settings)
    try:
        (meta,) = client.describe_topics([topic])
        return {p["partition_index"]: p["leader_id"] for p in meta["partitions"]}
    finally:
        client.close()


def test_every_topic_has_three_replicas(on_cluster: Deployment) -> None:
    s = on_cluster.settings
    topics = [s.disposals_topic, s.dlq_topic, s.alerts_topic, s.changelog_topic]
    client = admin(s)
    try:
        deadline = time.monotonic() + 30
        while True:  # a topic just created may take a moment to show its partitions
            described = client.describe_topics(topics)
            if all(meta["partitions"] for meta in described) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for meta in described:
            assert meta["partitions"], meta["name"]
            assert {len(p["replica_nodes"]) for p in meta["partitions"]} == {3}, meta["name"]
    finally:
        client.close()


def test_a_topic_with_fewer_replicas_than_asked_is_refused_in_one_line(
    deployment: Deployment, cluster: tuple[str, Path]
) -> None:
    from kafka.admin import NewTopic

    from streams.errors import ConfigError
    from streams.producer import ensure_topics

    deployment.env["DW_KAFKA"] = cluster[0]
    s = deployment.settings
    client = admin(s)
    try:  # as a single-broker deployment left it: one copy
        client.create_topics([NewTopic(s.disposals_topic, s.partitions, 1)], timeout_ms=15000)
    finally:
        client.close()
    with pytest.raises(ConfigError) as refused:
        ensure_topics(s)
    assert f"topic {s.disposals_topic} has 1 replica(s), fewer than DW_REPLICATION_FACTOR=3" in str(
        refused.value
    )
    r = deployment.cli(
        "worker", timeout=120, DW_WEB_PORT=str(free_port()), DW_DATA_DIR=str(deployment.dir / "w")
    )
    assert r.returncode == 2 and "DW_REPLICATION_FACTOR" in r.stderr and "Traceback" not in r.stderr
    # accepted when the operator says so
    ensure_topics(s.model_copy(update={"replication_factor": 1}))


def owner_of(workers: list[Worker], partition: int) -> Worker | None:
    for w in workers:
        try:
            if partition in w.get("/healthz")["partitions"]:
                return w
        except OSError:  # a stopped worker does not answer
            continue
    return None


def pause_and_wake(d: Deployment, events: list[OutcomeEvent], seed: int) -> tuple[Worker, Worker]:
    """Two workers count ``events``; the owner of partition 0 (the alert leader) is SIGSTOPped
    mid-stream with changes not yet committed, stays stopped until the other owns every
    partition and has counted everything, then is SIGCONTed. Returns (paused, other)."""
    rng = random.Random(seed)
    # checkpoints every 4 s: a worker stopped mid-stream holds seconds of uncommitted changes
    d.env.update(DW_BATCH_RECORDS="500", DW_COMMIT_INTERVAL_S="4", DW_CHECKPOINT_MAX_PENDING="1000000")
    workers = [d.start_worker("w1"), d.start_worker("w2")]
    d.produce(events)
    deadline = time.monotonic() + 120
    while (paused := owner_of(workers, 0)) is None or paused.get("/healthz")[
        "records_processed"
    ] < rng.randrange(len(events) // 10, len(events) // 4):
        assert time.monotonic() < deadline, [w.log_tail() for w in workers]
        time.sleep(0.05)
    other = workers[1] if paused is workers[0] else workers[0]
    paused.proc.send_signal(signal.SIGSTOP)
    try:
        while len(other.get("/healthz")["partitions"]) < d.settings.partitions:  # past the session timeout
            assert time.monotonic() < deadline + 60, other.log_tail()
            time.sleep(0.2)
        d.wait(timeout_s=300)
    finally:
        paused.proc.send_signal(signal.SIGCONT)
    return paused, other


#: pause runs: one in `make test`; `make bench-pause` runs ten (DW_PAUSE_RUNS=10)
PAUSE_RUNS = int(os.environ.get("DW_PAUSE_RUNS", "1"))


@pytest.mark.parametrize("run", range(PAUSE_RUNS))
def test_a_paused_worker_is_fenced_and_what_it_held_never_counts(on_cluster: Deployment, run: int) -> None:
    d = on_cluster
    d.env.update(DW_CLOCK="stream")
    events = list(simulate(60_000, seed=72 + run))
    expected = expected_counts(events, reference_category)
    paused, other = pause_and_wake(d, events, seed=72 + run)
    # the woken worker's transactions are refused; it gives its partitions up and rejoins
    deadline = time.monotonic() + 120
    while "fenced (claimed by another worker" not in paused.log.read_text():
        assert time.monotonic() < deadline, paused.log_tail()
        time.sleep(0.2)
    d.wait(timeout_s=300)
    assert all(w.proc.poll() is None and w.restarts == 0 for w in (paused, other))
    assert d.counts(paused) == expected
    assert d.counts(other) == expected
    # the changelog alone holds exactly the committed states
    for w in (paused, other):
        w.stop()
    fresh = d.start_worker("w3")
    d.wait(timeout_s=300)
    assert d.counts(fresh) == expected
    # no alert transition was written twice: per alert, states alternate from firing
    transitions = [r for _, r in topic_records(d)]
    assert transitions, "the stream made no alert fire"
    per_alert: dict[str, list[str]] = {}
    for r in transitions:
        per_alert.setdefault(r["fingerprint"], []).append(r["state"])
    for fp, states in per_alert.items():
        assert states[0] == "firing" and all(a != b for a, b in zip(states, states[1:], strict=False)), (
            fp,
            states,
        )


def test_a_broker_lost_mid_stream_loses_and_doubles_nothing(
    on_cluster: Deployment, cluster: tuple[str, Path]
) -> None:
    d = on_cluster
    events = list(simulate(100_000, seed=71))
    d.produce(events)
    expected = expected_counts(events, reference_category)
    d.env.update(DW_BATCH_RECORDS="500")  # many checkpoints while the broker goes
    workers = [d.start_worker("w1"), d.start_worker("w2")]
    # mid-stream: once a fifth of the events are counted, the broker leading most partitions goes
    while sum(w.get("/healthz")["records_processed"] for w in workers) < len(events) // 5:
        time.sleep(0.2)
    victim, _ = Counter(leaders(d, d.settings.disposals_topic).values()).most_common(1)[0]
    node = nodes_of(cluster[1])[victim - 1]
    broker = running(node)
    assert broker is not None
    os.kill(broker.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    d.wait(timeout_s=600)
    idle_s = time.monotonic() - killed_at
    print(f"broker {victim} killed; idle {idle_s:.1f} s later")
    assert all(w.proc.poll() is None and w.restarts == 0 for w in workers), [w.log_tail() for w in workers]
    assert d.counts(workers[0]) == expected
    assert d.counts(workers[1]) == expected
    # the changelog alone (two replicas left) holds every crime
    for w in workers:
        w.stop()
    fresh = d.start_worker("w3")
    d.wait(timeout_s=600)
    assert d.counts(fresh) == expected
