"""Throughput of the worker against a raw consume-and-decode loop, on the same topic in one run.

Usage (a broker in DW_KAFKA; `make bench` starts one):
    python bench/throughput.py [--events 200000] [--partitions 8] [--workers 1,2]
        [--guarantees exactly_once,at_least_once] [--profile]

1. Builds police.uk-shaped events: the real City of London 2016-17 street and outcomes rows,
   replicated with fresh Crime IDs and spread over the 45 forces, until --events.
2. Produces them to a fresh topic in one Kafka transaction, held back: the workers read
   committed records only, so the group can start and settle before there is anything to read.
3. The real worker(s) (`disposal-watch worker`, fresh consumer group, default RocksDB store)
   start; once the group has settled (every worker ok, every partition owned) the transaction is
   committed, and events/s is timed from then to the last record processed once the group's lag
   is 0 (polling /healthz, which is cheap). Their counts are compared with the independent model
   of tests/integration/conftest.py: "exact" or the number of cells that differ.
4. Raw loop, in this process, over the same topic: aiokafka reads it from the start and decodes
   every record with the project's Avro codec, nothing else: the baseline a Python consumer pays.
5. The workers stopped, the same events produced again (all duplicates) and held back, the
   workers started on their data directories (time to settled), the duplicates released: the
   rate at which they are recognised, and the counts unchanged.
Each worker count runs under each processing guarantee (DW_PROCESSING_GUARANTEE), one after the
other, so the cost of exactly-once's transactions is measured against at-least-once in the same
run. The raw loop runs right after each worker measurement. Timings drift on shared machines:
compare the ratio, not absolute rates. Prints a table; writes bench/results/throughput-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import pstats
import uuid

from harness import (
    ROOT,
    HeldBack,
    Workers,
    differing,
    policeuk_shaped,
    raw_loop,
    rss_mb,
    settings_of,
)

from streams.producer import ensure_topics
from tests.integration.conftest import expected_counts, reference_category


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--guarantees", default="exactly_once,at_least_once")
    ap.add_argument("--profile", action="store_true", help="profile the single worker with cProfile")
    args = ap.parse_args()
    bootstrap = os.environ["DW_KAFKA"]
    events = policeuk_shaped(args.events)
    want = expected_counts(events, reference_category)
    results: dict[str, object] = {
        "events": args.events,
        "crimes": sum(want.values()),
        "partitions": args.partitions,
        "date": dt.datetime.now(dt.UTC).date().isoformat(),
        "cpus": os.cpu_count(),
    }
    tag = uuid.uuid4().hex[:8]
    base_env = {
        **os.environ,
        "DW_KAFKA": bootstrap,
        "DW_PARTITIONS": str(args.partitions),
        "DW_CLOCK": "stream",
        "DW_RETENTION_DAYS": "3650",
        "DW_LOG_LEVEL": "warning",
    }
    runs = [(int(c), g) for c in args.workers.split(",") for g in args.guarantees.split(",")]
    for count, guarantee in runs:
        name = f"{count}-{guarantee.replace('_', '')}"
        env = {
            **base_env,
            "DW_TOPIC_PREFIX": f"b{tag}-{name}.",
            "DW_APP_ID": f"bench-{tag}-{name}",
            "DW_PROCESSING_GUARANTEE": guarantee,
        }
        settings = settings_of(env)
        ensure_topics(settings)
        workdir = ROOT / "var" / f"bench-{tag}-{name}"
        workdir.mkdir(parents=True, exist_ok=True)
        w = Workers(env, count, workdir, args.profile and count == 1)
        held = HeldBack(settings, events)
        results["produce_per_s"] = held.produce_per_s
        w.start()
        try:
            w.wait_settled()
            rate = w.rate(held)
            rss = sum(rss_mb(p.pid) for p in w.procs)
            exact = differing(w.counts(), want)
            # the raw loop reads the same topic now, in this process
            raw = asyncio.run(raw_loop(bootstrap, settings.disposals_topic, args.events))
            # every event again (all duplicates), held back; a restart on the same data
            # directories, timed to settled; then the duplicates released
            w.stop()
            held = HeldBack(settings, events)
            w.start()
            restart_s = w.wait_settled()
            rate_dup = w.rate(held)
            exact_dup = differing(w.counts(), want)
            rss_dup = sum(rss_mb(p.pid) for p in w.procs)
        finally:
            w.stop()
        results[f"{guarantee}/workers_{count}"] = row = {
            "raw_consume_decode_per_s": raw,
            "events_per_s": rate,
            "ratio": rate / raw,
            "cells_differing": exact,
            "rss_mb": rss,
            "restart_to_ready_s": restart_s,
            "duplicates_per_s": rate_dup,
            "cells_differing_after_duplicates": exact_dup,
            "rss_mb_after_duplicates": rss_dup,
        }
        print(
            f"{count} worker(s), {guarantee}: {rate:,.0f} events/s, raw consume+decode {raw:,.0f}/s, "
            f"ratio {rate / raw:.2f}, "
            f"{'exact' if not exact else f'{exact} cells DIFFER'}; RSS {rss:.0f} MB; "
            f"restart to ready {restart_s:.1f} s; duplicates {rate_dup:,.0f}/s, "
            f"{'exact' if not exact_dup else f'{exact_dup} cells DIFFER'}, RSS {rss_dup:.0f} MB",
            flush=True,
        )
        prof = workdir / "worker.prof"
        if prof.exists():
            print("\nprofile of the worker (top 25 by own time):")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
        if row["cells_differing"] or row["cells_differing_after_duplicates"]:
            raise SystemExit(f"counts differ; logs in {workdir}")
    for count in sorted({c for c, _ in runs}):
        fenced, plain = (results.get(f"{g}/workers_{count}") for g in ("exactly_once", "at_least_once"))
        if isinstance(fenced, dict) and isinstance(plain, dict):
            results[f"exactly_once_cost/workers_{count}"] = cost = 1 - fenced["ratio"] / plain["ratio"]
            print(f"{count} worker(s): exactly-once's ratio is {cost:.1%} below at-least-once's")
    out = ROOT / "bench" / "results" / f"throughput-{dt.datetime.now(dt.UTC).date().isoformat()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
