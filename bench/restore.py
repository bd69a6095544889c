"""Restore from the changelog alone, timed per phase: how fast an empty store is rebuilt.

Usage (a broker in DW_KAFKA):
    python bench/restore.py [--crimes 1000000] [--partitions 8] [--repeat-share 0.2]
        [--store rocksdb|memory] [--topic CHANGELOG]

1. A changelog topic is filled the way workers fill it: per partition, packed crime states
   (``streams.codec.encode_held``) keyed by crime, in transactions of 5,000 records (a
   checkpoint's), a ``--repeat-share`` of the crimes written twice (a later outcome before
   compaction).
2. Each partition is restored into an empty store (``Recovery.restore``, as a worker does on
   assignment), one after the other; the reader's consumer is started once.
3. Reported: seconds and records/s over all partitions, where the time went (the changelog
   read and store writes, then the counts), the peak resident memory of the restoring process
   (the changelog is written by another), and that the counts hold each crime once.

National scale (6.6 million crimes within the horizon, 7.8 million changelog records) is about
``--crimes 6500000``; the restore's time grows linearly with the records.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import parse  # noqa: E402

from streams.clients import KafkaClients  # noqa: E402
from streams.codec import encode_held  # noqa: E402
from streams.core.classify import Cell  # noqa: E402
from streams.core.clock import StreamClock  # noqa: E402
from streams.core.crimes import Held  # noqa: E402
from streams.reference import FORCE_NAMES  # noqa: E402
from streams.runtime import recovery as recovery_module  # noqa: E402
from streams.runtime.loop import LongLived  # noqa: E402
from streams.runtime.recovery import ChangelogReader, Recovery  # noqa: E402
from streams.runtime.store import Deployment, MemoryStore, RocksStore, Store  # noqa: E402

CATEGORIES = ("stalking", "harassment", "rape", "sexual-offences", "knife-possession", "child-cruelty")
DISPOSALS = ("charged", "caution", "community-resolution", "no-further-action", "pending")
END = dt.date(2026, 10, 31)


def fill(bootstrap: str, topic: str, crimes: int, partitions: int, repeat_share: float) -> int:
    """Write the changelog; returns the records written."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result()
    rng = random.Random(7)
    forces = sorted(FORCE_NAMES)
    written = 0
    for p in range(partitions):
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "transactional.id": f"{topic}-{p}",
                "linger.ms": 20,
                "batch.size": 1_000_000,
            }
        )
        producer.init_transactions()
        n = crimes // partitions + (1 if p < crimes % partitions else 0)
        keys = [f"{forces[i % len(forces)]}/{p}-{i}".encode() for i in range(n)]
        again = rng.sample(keys, int(n * repeat_share))
        order = keys + again
        for i in range(0, len(order), 5_000):
            producer.begin_transaction()
            for key in order[i : i + 5_000]:
                cell = Cell(
                    key.split(b"/")[0].decode(),
                    rng.choice(CATEGORIES),
                    rng.choice(DISPOSALS),
                    END - dt.timedelta(days=rng.randrange(400)),
                    rng.random() < 0.3,
                )
                seen = tuple(rng.getrandbits(64) for _ in range(rng.randint(1, 3)))
                value = encode_held(Held(cell, seen, rng.randrange(10**7)), p)
                producer.produce(topic, value, key, partition=p)
                producer.poll(0)
            producer.commit_transaction()
            written += min(5_000, len(order) - i)
        producer.flush()
    return written


async def restore_all(bootstrap: str, topic: str, partitions: int, store: Store) -> dict[str, float]:
    reader_clients = KafkaClients.plain([bootstrap])
    recovery = Recovery(store, StreamClock(), 400)
    phases = {"read_and_write_s": 0.0, "counts_s": 0.0}
    derive = recovery_module.derive_counts

    async def timed_derive(*args, **kwargs):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return await derive(*args, **kwargs)
        finally:
            phases["counts_s"] += time.perf_counter() - t

    recovery_module.derive_counts = timed_derive
    await recovery.start(ChangelogReader(reader_clients, topic))
    held = 0
    t0 = time.perf_counter()
    with LongLived().restoring():  # as the worker restores
        for p in range(partitions):
            state = await recovery.restore(p, None)
            held += state.counts.total
    total = time.perf_counter() - t0
    await recovery.stop()
    recovery_module.derive_counts = derive
    phases["read_and_write_s"] = total - phases["counts_s"]
    return {"seconds": total, "records": recovery.records_read, "crimes_held": held, **phases}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--crimes", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--repeat-share", type=float, default=0.2)
    ap.add_argument("--store", choices=("rocksdb", "memory"), default="rocksdb")
    ap.add_argument("--topic", help="restore this changelog (written by an earlier run) again")
    args = parse(ap, crimes=2000, partitions=2)
    bootstrap = os.environ.get("DW_KAFKA", "localhost:9092")
    topic = args.topic or f"restore-bench-{uuid.uuid4().hex[:8]}-changelog"
    if not args.topic:
        t = time.perf_counter()
        with ProcessPoolExecutor(1) as pool:  # its memory is not the restore's
            job = pool.submit(fill, bootstrap, topic, args.crimes, args.partitions, args.repeat_share)
            written = job.result()
        print(f"changelog {topic}: {written:,} records in {time.perf_counter() - t:.1f} s", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="restore-bench-"))
    try:
        store: Store = (
            RocksStore(tmp / "store", Deployment("bench", topic, args.partitions))
            if args.store == "rocksdb"
            else MemoryStore()
        )
        out = asyncio.run(restore_all(bootstrap, topic, args.partitions, store))
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"restore: {out['records']:,} records, {out['crimes_held']:,} crimes in {out['seconds']:.1f} s "
        f"({out['records'] / out['seconds']:,.0f} records/s): read and store writes "
        f"{out['read_and_write_s']:.1f} s, counts {out['counts_s']:.1f} s; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB",
        flush=True,
    )
    if out["crimes_held"] != args.crimes:
        raise SystemExit(f"counts hold {out['crimes_held']:,} crimes, not {args.crimes:,}")


if __name__ == "__main__":
    main()
