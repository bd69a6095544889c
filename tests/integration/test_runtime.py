"""The counting runtime's claims against the real broker: a kill at each step of a checkpoint
loses and doubles nothing; a hung loop is seen by the watchdog, which exits for its supervisor;
a restart on the same data directory reads nothing back, one without it reads the changelog."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from streams.simulate import simulate

from .conftest import Deployment, Worker, expected_counts, reference_category


def restored(worker: Worker) -> float:
    m = re.search(r"^disposal_changelog_restored_records_total (\S+)$", worker.metrics(), re.M)
    assert m, "no restore counter in /metrics"
    return float(m.group(1))


@pytest.mark.parametrize("step", ["changelog", "store", "commit"])
def test_a_kill_after_any_checkpoint_step_loses_and_doubles_nothing(
    deployment: Deployment, step: str
) -> None:
    events = list(simulate(12000, seed=61))
    deployment.produce(events)
    # small checkpoints, so that the third comes mid-replay
    deployment.env.update(DW_CHECKPOINT_MAX_PENDING="1500", DW_BATCH_RECORDS="500")
    killed = deployment.start_worker(ready=False, DW_FAULT_KILL_AFTER=f"{step}:3")
    assert killed.proc.wait(120) == -9
    assert f"SIGKILL after {step} of checkpoint 3" in killed.log.read_text()
    before = len(killed.log.read_text())
    worker = deployment.start_worker()
    deployment.wait()
    expected = expected_counts(events, reference_category)
    assert deployment.counts(worker) == expected
    # the restart read back the counts the last checkpoint saved with the crimes (moved with
    # the changelog records committed after the store's last write): none was derived again
    # from every crime in the store
    restores = re.findall(r"cells of counts (.+?), in", worker.log.read_text()[before:])
    assert restores and "derived from the store" not in restores, restores
    assert step != "commit" or "loaded and moved" in restores, restores
    deployment.produce(events)  # and every event once more
    deployment.wait()
    assert deployment.counts(worker) == expected
    # the changelog alone holds every crime: a worker without the store ends with the same counts
    worker.stop()
    shutil.rmtree(deployment.dir / "w1")
    worker = deployment.start_worker()
    assert deployment.counts(worker) == expected


def test_a_hung_loop_is_seen_by_the_watchdog_which_exits_for_a_restart(
    deployment: Deployment, tmp_path: Path
) -> None:
    hang = tmp_path / "hang"
    hang.touch()
    events = list(simulate(10000, seed=62))
    deployment.produce(events)
    deployment.env.update(DW_STALL_EXIT_S="6", DW_BATCH_RECORDS="500")
    worker = deployment.start_worker(ready=False, DW_FAULT_HANG_FILE=str(hang))
    deployment.wait(timeout_s=120)
    assert not hang.exists() and worker.restarts == 1
    log = worker.log.read_text()
    assert "the counting loop hangs" in log
    assert re.search(r"no progress for \d+ s while records wait: lag .*exiting with code 75", log)
    worker.wait_ready()
    assert deployment.counts(worker) == expected_counts(events, reference_category)
    # the restart on purpose stays visible to ops (counted in the data directory)
    assert 'disposal_worker_exits_total{code="75"} 1.0' in worker.metrics()


def test_restart_reads_back_only_what_the_store_lacks(deployment: Deployment) -> None:
    events = list(simulate(8000, seed=63))
    deployment.produce(events)
    expected = expected_counts(events, reference_category)
    worker = deployment.start_worker()
    deployment.wait()
    assert deployment.counts(worker) == expected
    worker.stop()

    worker = deployment.start_worker()  # the same data directory
    assert restored(worker) == 0
    assert deployment.counts(worker) == expected
    worker.stop()

    shutil.rmtree(deployment.dir / "w1")  # a new machine: the store comes back from the changelog
    worker = deployment.start_worker()
    assert restored(worker) >= sum(expected.values())
    assert deployment.counts(worker) == expected


def test_transactional_input_counts_committed_events_only_and_its_markers_do_not_hold_lag(
    deployment: Deployment,
) -> None:
    """A producer that writes in transactions: an aborted batch never counts, and the commit
    markers (which take offsets) are committed past, so `wait` sees no lag and the watchdog no
    stall (DW_STALL_EXIT_S is short here)."""
    from kafka import KafkaProducer

    from streams.codec import encode_outcome

    kept, dropped = list(simulate(3000, seed=64)), list(simulate(500, seed=65))
    s = deployment.settings
    producer = KafkaProducer(bootstrap_servers=s.kafka.split(","), transactional_id=f"{s.app_id}-test")
    producer.init_transactions()
    for events, commit in ((dropped, False), (kept, True)):
        producer.begin_transaction()
        for ev in events:
            producer.send(s.disposals_topic, key=ev.crime_key.encode(), value=encode_outcome(ev))
        producer.flush()
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()
    deployment.env.update(DW_STALL_EXIT_S="8")
    worker = deployment.start_worker()
    deployment.wait(timeout_s=60)
    assert deployment.counts(worker) == expected_counts(kept, reference_category)
    time.sleep(12)  # longer than DW_STALL_EXIT_S: a lag held by markers would make the watchdog exit
    assert worker.proc.poll() is None and worker.restarts == 0
