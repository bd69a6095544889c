"""Throughput of the worker against a raw consume-and-decode loop, on the same topic in one run.

Usage (a broker in DW_KAFKA; `make bench` starts one):
    python bench/throughput.py [--events 200000] [--partitions 8] [--workers 1,2]
        [--feeds policeuk,simulate] [--rules default,none]
        [--guarantees exactly_once] [--profile]

1. Builds the events of each feed: `policeuk`, the real City of London 2016-17 street and
   outcomes rows, replicated with fresh Crime IDs and spread over the 45 forces (police.uk types:
   few of them are in the default rules' categories); `simulate`, the national simulator's
   events (Home Office codes, domestic-abuse flags, a year of dates: the default rules act on
   them, case breaches included).
2. Produces them to a fresh topic in one Kafka transaction, held back: the workers read
   committed records only, so the group can start and settle before there is anything to read.
3. The real worker(s) (`disposal-watch worker`, fresh consumer group, default RocksDB store,
   DW_RULES the default rules or an empty list) start; once the group has settled (every worker
   ok, every partition owned) the transaction is committed, and events/s is timed from then to
   the last record processed once the group's lag is 0 (polling /healthz, which is cheap). Their
   counts are compared with the independent model of tests/integration/conftest.py: "exact" or
   the number of cells that differ. With rules, the alert leader's evaluation time in that span
   (``disposal_alert_evaluation_seconds``) is reported as a share of it.
4. Raw loop, in this process, over the same topic: aiokafka reads it from the start and decodes
   every record with the project's Avro codec, nothing else: the baseline a Python consumer pays.
5. The workers stopped, the same events produced again (all duplicates) and held back, the
   workers started on their data directories (time to settled), the duplicates released: the
   rate at which they are recognised, and the counts unchanged.
Every feed runs with each rules choice on one worker; the other worker counts and guarantees
(DW_PROCESSING_GUARANTEE) run on the first feed with the first rules choice, so that the cost of
alerts (default rules against none) and of exactly-once (against at-least-once) are each
measured in one run. The raw loop runs right after each worker measurement. Timings drift on
shared machines: compare the ratio, not absolute rates. Prints a table; writes
bench/results/throughput-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import pstats
import time
import uuid

from harness import (
    ROOT,
    HeldBack,
    Workers,
    differing,
    metric,
    policeuk_shaped,
    raw_loop,
    rss_mb,
    settings_of,
)

from streams.model import OutcomeEvent
from streams.producer import ensure_topics
from streams.resources import DEFAULT_RULES
from streams.simulate import simulate
from tests.integration.conftest import expected_counts, reference_category


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--feeds", default="policeuk,simulate")
    ap.add_argument("--rules", default="default,none")
    ap.add_argument("--guarantees", default="exactly_once")
    ap.add_argument("--profile", action="store_true", help="profile the single worker with cProfile")
    args = ap.parse_args()
    bootstrap = os.environ["DW_KAFKA"]
    feeds = {
        "policeuk": policeuk_shaped,
        "simulate": lambda n: list(simulate(n, seed=3, end=dt.date(2026, 10, 31), days=365)),
    }
    results: dict[str, object] = {
        "events": args.events,
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
        "DW_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
    }
    no_rules = ROOT / "var" / f"bench-{tag}-no-rules.yaml"
    no_rules.parent.mkdir(parents=True, exist_ok=True)
    no_rules.write_text("rules: []\n")
    rules_files = {"default": str(DEFAULT_RULES), "none": str(no_rules)}
    feed_names, rule_names = args.feeds.split(","), args.rules.split(",")
    counts_, guarantees = [int(c) for c in args.workers.split(",")], args.guarantees.split(",")
    runs = [(f, r, 1, guarantees[0]) for f in feed_names for r in rule_names]
    runs += [
        (feed_names[0], rule_names[0], c, g)
        for c in counts_
        for g in guarantees
        if (c, g) != (1, guarantees[0])
    ]
    made: dict[str, tuple[list[OutcomeEvent], dict[tuple[str, ...], int]]] = {}
    for feed, rules, count, guarantee in runs:
        if feed not in made:
            evs = feeds[feed](args.events)
            made[feed] = (evs, expected_counts(evs, reference_category))
            results[f"crimes/{feed}"] = sum(made[feed][1].values())
        events, want = made[feed]
        name = f"{feed}-{rules}-{count}-{guarantee.replace('_', '')}"
        env = {
            **base_env,
            "DW_TOPIC_PREFIX": f"b{tag}-{name}.",
            "DW_APP_ID": f"bench-{tag}-{name}",
            "DW_PROCESSING_GUARANTEE": guarantee,
            "DW_RULES": rules_files[rules],
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
            evaluating = sum(metric(u, "disposal_alert_evaluation_seconds_sum") for u in w.urls)
            started = time.perf_counter()
            rate = w.rate(held)
            spent = time.perf_counter() - started
            evaluating = sum(metric(u, "disposal_alert_evaluation_seconds_sum") for u in w.urls) - evaluating
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
        results[f"{feed}/{rules}/{guarantee}/workers_{count}"] = row = {
            "raw_consume_decode_per_s": raw,
            "events_per_s": rate,
            "ratio": rate / raw,
            "evaluation_share": evaluating / spent,
            "cells_differing": exact,
            "rss_mb": rss,
            "restart_to_ready_s": restart_s,
            "duplicates_per_s": rate_dup,
            "cells_differing_after_duplicates": exact_dup,
            "rss_mb_after_duplicates": rss_dup,
        }
        print(
            f"{feed}, rules {rules}, {count} worker(s), {guarantee}: {rate:,.0f} events/s, "
            f"raw consume+decode {raw:,.0f}/s, ratio {rate / raw:.2f}, "
            f"evaluation {evaluating / spent:.1%} of the time, "
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
    first = f"{feed_names[0]}/{rule_names[0]}"
    for count in counts_:
        fenced, plain = (
            results.get(f"{first}/{g}/workers_{count}") for g in ("exactly_once", "at_least_once")
        )
        if isinstance(fenced, dict) and isinstance(plain, dict):
            results[f"exactly_once_cost/workers_{count}"] = cost = 1 - fenced["ratio"] / plain["ratio"]
            print(f"{count} worker(s): exactly-once's ratio is {cost:.1%} below at-least-once's")
    for feed in feed_names:
        on, off = (results.get(f"{feed}/{r}/{guarantees[0]}/workers_1") for r in ("default", "none"))
        if isinstance(on, dict) and isinstance(off, dict):
            results[f"alerts_cost/{feed}"] = cost = 1 - on["ratio"] / off["ratio"]
            print(f"{feed}: with the default rules the ratio is {cost:.1%} below that with none")
    out = ROOT / "bench" / "results" / f"throughput-{dt.datetime.now(dt.UTC).date().isoformat()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
