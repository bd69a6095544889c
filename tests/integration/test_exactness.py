"""Exact under failure: SIGKILL mid-replay and restart, and every event produced twice."""

import random
import time

import pytest

from streams.producer import lag
from streams.simulate import simulate

from .conftest import Deployment, expected_counts, reference_category


@pytest.mark.parametrize("store", ["rocksdb", "memory"])
def test_killed_worker_and_duplicates_end_with_the_counts_of_one_clean_run(
    deployment: Deployment, store: str
) -> None:
    deployment.env["DW_STORE"] = store
    events = list(simulate(30000, seed=31))
    deployment.produce(events)
    expected = expected_counts(events, reference_category)
    rng = random.Random(store)

    worker = deployment.start_worker(ready=False)
    mid_replay_kills = 0
    for _ in range(4):
        time.sleep(rng.uniform(4.0, 9.0))
        behind = sum(lag(deployment.settings).values())
        worker.kill()
        if 0 < behind < len(events):
            mid_replay_kills += 1
        worker = deployment.start_worker(ready=False)
    worker.wait_ready()
    deployment.wait()
    assert mid_replay_kills >= 1, "no kill landed while the replay was under way"
    assert deployment.counts(worker) == expected

    deployment.produce(events)  # every event a second time
    deployment.wait()
    assert deployment.counts(worker) == expected
