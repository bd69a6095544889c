"""Exact under failure: SIGKILL mid-replay and restart, and every event produced twice."""

import contextlib
import random
import time

from streams.producer import lag
from streams.simulate import simulate

from .conftest import Deployment, Worker, expected_counts, reference_category


def kill_after(worker: Worker, records: int, timeout_s: float = 120) -> None:
    """SIGKILL the worker as soon as it has taken `records` records since it started. A worker
    that never takes that many is a broken test (the replay ended before the kill), not a kill."""
    deadline = time.monotonic() + timeout_s
    taken = 0
    while taken < records:
        if time.monotonic() > deadline:
            worker.kill()
            raise AssertionError(f"the worker took {taken} records in {timeout_s}s, never {records}")
        with contextlib.suppress(OSError):
            taken = worker.get("/healthz")["records_processed"]
        time.sleep(0.01)
    worker.kill()


def test_killed_worker_and_duplicates_end_with_the_counts_of_one_clean_run(deployment: Deployment) -> None:
    """With the default (RocksDB) store: each restart keeps the data directory of the killed one."""
    store = deployment.settings.store
    assert store == "rocksdb"
    events = list(simulate(40000, seed=31))
    deployment.produce(events)
    expected = expected_counts(events, reference_category)
    rng = random.Random(store)

    mid_replay_kills = 0
    for _ in range(4):
        worker = deployment.start_worker(ready=False)
        kill_after(worker, rng.randrange(500, 8000))
        behind = sum(lag(deployment.settings).values())
        mid_replay_kills += behind > 0
    worker = deployment.start_worker()
    deployment.wait()
    assert mid_replay_kills >= 3, "the kills did not land while the replay was under way"
    assert deployment.counts(worker) == expected

    deployment.produce(events)  # every event a second time
    deployment.wait()
    assert deployment.counts(worker) == expected
    # and no worker stalled: the watchdog never had one exit for its supervisor to restart
    assert [w.restarts for w in deployment.workers] == [0] * len(deployment.workers)
