"""Soak: SIGKILL the worker mid-replay again and again; compare counts with one clean run.

    DW_KAFKA=... python bench/soak_kill.py [--store rocksdb|memory] [--rounds 20] [--events 40000]

Each round: a fresh deployment (topics, group), 40,000 simulated events, four SIGKILLs at random
points of progress (each restart on the killed worker's data directory), a final worker, then the
counts compared cell by cell with the independent model in tests/integration/conftest.py; then
the final worker is stopped, its data directory deleted, and a worker restored from the changelog
alone is compared too. A round that does not finish within its wait is reported as stalled.
Prints one line a round and exits 1 if any round differs or stalls.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import parse  # noqa: E402

from streams.model import OutcomeEvent  # noqa: E402
from streams.producer import ensure_topics  # noqa: E402
from streams.simulate import simulate  # noqa: E402
from tests.integration.conftest import Deployment, expected_counts, reference_category  # noqa: E402
from tests.integration.test_exactness import kill_after  # noqa: E402


def one_round(
    store: str, events_n: int, seed: int, kill_within: int = 8000, kills: int = 4
) -> tuple[bool, int | str]:
    """(exact, difference in crime-cells or "stalled"); each of ``kills`` workers is killed
    after 500 (fewer when ``kill_within`` is smaller) to ``kill_within`` records."""
    tag = uuid.uuid4().hex[:10]
    env = {
        "DW_KAFKA": os.environ["DW_KAFKA"],
        "DW_TOPIC_PREFIX": f"s{tag}.",
        "DW_APP_ID": f"soak-{tag}",
        "DW_PARTITIONS": "4",
        "DW_STORE": store,
    }
    d = Deployment(env, Path(tempfile.mkdtemp(prefix="dw-soak-")))
    ensure_topics(d.settings)
    events = list(simulate(events_n, seed=seed))
    d.produce(events)
    rng = random.Random(seed)
    try:
        for _ in range(kills):
            w = d.start_worker(ready=False)
            kill_after(w, rng.randrange(min(500, kill_within // 2), kill_within))
        w = d.start_worker()
        try:
            d.wait()
        except AssertionError as exc:  # the restarted worker stopped making progress
            print(f"  stalled: {exc}; logs under {d.dir}", flush=True)
            return False, "stalled"
        want = expected_counts(events, reference_category)
        got = d.counts(w)
        diff = sum(abs(got.get(k, 0) - want.get(k, 0)) for k in set(got) | set(want))
        if not diff:  # the changelog alone must give the same counts
            w.stop()
            shutil.rmtree(d.dir / "w1")
            w = d.start_worker()
            got = d.counts(w)
            diff = sum(abs(got.get(k, 0) - want.get(k, 0)) for k in set(got) | set(want))
        if diff:
            explain(d, events)
        return diff == 0, diff
    finally:
        for w in d.workers:
            w.stop()


def explain(d: Deployment, events: list[OutcomeEvent]) -> None:
    """Print the crimes whose state in the changelog is not their latest outcome."""
    from kafka import KafkaConsumer

    from streams.codec import decode_held

    latest: dict[str, OutcomeEvent] = {}
    for ev in events:
        if ev.crime_key not in latest or ev.outcome_date >= latest[ev.crime_key].outcome_date:
            latest[ev.crime_key] = ev
    s = d.settings
    c = KafkaConsumer(
        s.changelog_topic,
        bootstrap_servers=s.kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    table = {m.key.decode(): (decode_held(m.value), m.partition, m.offset) for m in c}
    for key, ev in latest.items():
        held = table.get(key)
        if held is None or held[0][0].cell.day != ev.outcome_date or held[0][0].cell.disposal != ev.disposal:
            mine = [(e.event_id, e.disposal, str(e.outcome_date)) for e in events if e.crime_key == key]
            print(f"  {key}: changelog {held}; events {mine}", flush=True)
    print(f"  logs and state under {d.dir}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="rocksdb", choices=["rocksdb", "memory"])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--events", type=int, default=40000)
    ap.add_argument("--kill-within", type=int, default=8000, help="kill each worker within N records")
    ap.add_argument("--kills", type=int, default=4, help="workers killed in a round before one finishes")
    args = parse(ap, rounds=1, events=3000, kill_within=600, kills=1)
    failed = 0
    for i in range(args.rounds):
        ok, diff = one_round(args.store, args.events, 100 + i, args.kill_within, args.kills)
        failed += not ok
        verdict = "exact" if ok else "STALLED" if diff == "stalled" else f"DIFFERS by {diff} crime-cells"
        print(f"round {i + 1}: {verdict}", flush=True)
    print(f"{args.store}: {args.rounds - failed}/{args.rounds} rounds exact")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
