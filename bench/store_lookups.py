"""The store's lookups: what the counting loop pays to find (or not find) a crime's state.

Usage (no broker):
    python bench/store_lookups.py [--crimes 1000000] [--lookups 100000] [--rounds 3]

1. Two RocksDB stores (``streams.runtime.store.RocksStore``) of one partition get the same
   ``--crimes`` packed crime states, in writes of 5,000 (a checkpoint's), then a flush, so that
   they are in table files as a long replay leaves them: one with the store's options, one with
   the column family options it had before the bloom filter (RocksDB's defaults).
2. Each is read through ``RocksStore.reader`` (the loop's lookup) for ``--lookups`` crimes it
   holds and as many it does not (a new crime: most of a replay's events), best of
   ``--rounds``, alternating between the stores.
3. Prints microseconds per lookup; writes bench/results/store-lookups-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import parse, write_results  # noqa: E402

from streams.codec import encode_held  # noqa: E402
from streams.core.classify import Cell  # noqa: E402
from streams.core.crimes import Held  # noqa: E402
from streams.runtime.store import Deployment, Positions, RocksStore  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class PlainStore(RocksStore):
    """The store as it was: every column family with RocksDB's default options."""

    @staticmethod
    def _cf_options(point_reads: bool = False) -> Any:
        return RocksStore._cf_options(point_reads=False)


def fill(store: RocksStore, keys: list[bytes]) -> None:
    cell = Cell("kent", "stalking", "caution", dt.date(2026, 1, 1), False)
    value = encode_held(Held(cell, (1,), 0), 0)
    for i in range(0, len(keys), 5000):
        store.write(0, dict.fromkeys(keys[i : i + 5000], value), Positions(i, i))
    store._family(0).flush()


def per_lookup(store: RocksStore, keys: list[bytes]) -> float:
    get = store.reader(0)
    started = time.perf_counter()
    for key in keys:
        get(key)
    return (time.perf_counter() - started) / len(keys) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crimes", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = parse(ap, crimes=2000, lookups=200, rounds=1)
    rng = random.Random(1)
    keys = [f"kent/{i:09d}/{rng.randrange(10**6)}".encode() for i in range(args.crimes)]
    rng.shuffle(keys)
    held = rng.sample(keys, min(args.lookups, len(keys)))
    new = [k + b"/new" for k in held]
    results: dict[str, Any] = {
        "crimes": args.crimes,
        "lookups": len(held),
        "date": dt.datetime.now(dt.UTC).date().isoformat(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        stores = {
            name: cls(Path(tmp) / name, Deployment("bench", "changelog", 1))
            for name, cls in (("bloom_filter", RocksStore), ("defaults", PlainStore))
        }
        for store in stores.values():
            fill(store, keys)
        for name in stores:
            results[name] = {"held_us": float("inf"), "new_us": float("inf")}
        for _ in range(args.rounds):
            for name, store in stores.items():
                row = results[name]
                row["held_us"] = min(row["held_us"], per_lookup(store, held))
                row["new_us"] = min(row["new_us"], per_lookup(store, new))
        for store in stores.values():
            store.close()
    for name in stores:
        row = results[name]
        print(f"{name:13s} crime held {row['held_us']:.2f} us, new crime {row['new_us']:.2f} us a lookup")
    write_results("store-lookups", results, str(results["date"]))


if __name__ == "__main__":
    main()
