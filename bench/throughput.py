"""End-to-end throughput of the worker against a raw consume-and-decode loop, same topic, same run.

Usage (a broker in DW_KAFKA; `make bench` starts one):
    python bench/throughput.py [--events 200000] [--partitions 8] [--workers 1,2] [--profile]

1. Builds police.uk-shaped events: the real City of London 2016-17 street and outcomes rows,
   replicated with fresh Crime IDs and spread over the 45 forces, until --events.
2. Produces them to a fresh topic (while the workers of step 4 consume).
3. Raw loop, in this process: aiokafka consumes the topic from the start and decodes every
   record with the project's Avro codec. Events/s = baseline.
   (Steps 2 and 3 in the order: workers first, then the raw loop over the topic they read.)
4. The real worker (`disposal-watch worker`, fresh consumer group) is started on the empty
   topic; once the group has settled the events are produced, and events/s is measured from
   the worker's first processed record to its last (polling /healthz, which is cheap).
   Then the same events again (all duplicates: no new crimes) to show memory does not grow
   and counts do not change. Then the workers are stopped and started again on their data
   directories: the time until they are ready again (the memory store rebuilds from the
   changelog) and the crimes they hold then.
5. The same with two workers in one group.
Prints a table and writes bench/results/throughput-<date>.json. Timings drift on shared
machines: compare the ratio, not absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import pstats
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streams.codec import decode_outcome  # noqa: E402
from streams.kafka_local import free_port  # noqa: E402
from streams.model import OutcomeEvent  # noqa: E402
from streams.policeuk import Tally, events_from_files  # noqa: E402
from streams.producer import EventProducer, ensure_topics  # noqa: E402
from streams.reference import FORCE_NAMES  # noqa: E402
from streams.settings import load_settings  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "data" / "policeuk" / "city-of-london-2016-2017"
CLI = str(Path(sys.executable).parent / "disposal-watch")


def policeuk_shaped(n: int) -> list[OutcomeEvent]:
    base = list(events_from_files(sorted(SAMPLES.glob("*.csv")), Tally()))
    forces = sorted(FORCE_NAMES)
    out: list[OutcomeEvent] = []
    copy = 0
    while len(out) < n:
        force = forces[copy % len(forces)]
        for ev in base:
            out.append(
                dataclasses.replace(
                    ev,
                    force_id=force,
                    crime_ref=f"{ev.crime_ref}-{copy}",
                    event_id=f"{ev.event_id}-{copy}",
                )
            )
            if len(out) == n:
                break
        copy += 1
    return out


async def raw_loop(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    t0 = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                if t0 is None:
                    t0 = time.perf_counter()
                for r in records:
                    decode_outcome(r.value)
                    seen += 1
        return seen / (time.perf_counter() - (t0 or time.perf_counter()))
    finally:
        await consumer.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def run_workers(env: dict[str, str], count: int, workdir: Path, profile: bool) -> dict[str, float]:
    """Start `count` workers on an empty topic, let the group settle, then produce and time them."""
    ports = [free_port() for _ in range(count)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]

    def start(i: int, log_mode: str = "w") -> subprocess.Popen[bytes]:
        wenv = {**env, "DW_DATA_DIR": str(workdir / f"w{i}"), "DW_WEB_PORT": str(ports[i])}
        cmd = [CLI, "worker"]
        if profile and i == 0 and log_mode == "w":
            cmd = [sys.executable, "-m", "cProfile", "-o", str(workdir / "worker.prof")]
            cmd += ["-m", "streams.cli", "worker"]
        log = (workdir / f"w{i}.log").open(log_mode)
        return subprocess.Popen(cmd, env=wenv, stdout=log, stderr=subprocess.STDOUT)

    def stop_all() -> None:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)

    procs = [start(i) for i in range(count)]
    settings = load_settings(**{k[3:].lower(): v for k, v in env.items() if k.startswith("DW_")})
    n = len(EVENTS)

    def processed() -> int:
        total = 0
        for u in urls:  # /healthz is cheap; rendering /metrics every 50 ms would slow the worker
            with contextlib.suppress(OSError):
                total += get_json(u + "/healthz")["records_processed"]
        return total

    def settled() -> bool:
        try:
            parts = [get_json(u + "/healthz") for u in urls]
        except OSError:
            return False
        owned = sorted(p for h in parts for p in h["partitions"])
        return all(h["status"] == "ok" and h["partitions"] for h in parts) and owned == list(
            range(settings.partitions)
        )

    def produce() -> None:
        with EventProducer(settings) as p:
            for ev in EVENTS:
                p.send(ev)

    def drain(target: int, timeout_s: float = 900) -> float:
        deadline = time.monotonic() + timeout_s
        t0 = n0 = None
        while True:
            done = processed()
            now = time.perf_counter()
            if t0 is None and done > target - n:
                t0, n0 = now, done
            if done >= target:
                return (done - (n0 or 0)) / max(1e-9, now - (t0 or now))
            if time.monotonic() > deadline:
                raise SystemExit(f"workers processed {done} of {target} in {timeout_s}s; logs in {workdir}")
            time.sleep(0.05)

    try:
        deadline = time.monotonic() + 120
        while not settled():
            if time.monotonic() > deadline:
                raise SystemExit(f"workers did not settle; logs in {workdir}")
            time.sleep(0.5)
        t = time.perf_counter()
        producer = threading.Thread(target=produce)
        producer.start()
        rate = drain(n)
        producer.join()
        produce_rate = n / (time.perf_counter() - t)
        rss = [rss_mb(p.pid) for p in procs]
        crimes = sum(r["count"] for r in get_json(urls[0] + "/api/counts?group_by=&window=all")["rows"])
        produce()  # the same events again: all duplicates, so no new per-crime state
        rate_dup = drain(2 * n)
        rss_after = [rss_mb(p.pid) for p in procs]
        crimes_after = sum(r["count"] for r in get_json(urls[0] + "/api/counts?group_by=&window=all")["rows"])
        # restart: the memory store rebuilds from the changelog, so this is what a deploy costs
        stop_all()
        t = time.perf_counter()
        procs[:] = [start(i, "a") for i in range(count)]
        deadline = time.monotonic() + 900
        while not settled():
            if time.monotonic() > deadline:
                raise SystemExit(f"workers did not recover; logs in {workdir}")
            time.sleep(0.2)
        restart_s = time.perf_counter() - t
        crimes_restarted = sum(
            r["count"] for r in get_json(urls[0] + "/api/counts?group_by=&window=all")["rows"]
        )
        return {
            "events_per_s": rate,
            "duplicates_per_s": rate_dup,
            "produce_per_s_while_consuming": produce_rate,
            "rss_mb": sum(rss),
            "rss_mb_after_duplicates": sum(rss_after),
            "crimes": crimes,
            "crimes_after_duplicates": crimes_after,
            "restart_to_ready_s": restart_s,
            "crimes_after_restart": crimes_restarted,
        }
    finally:
        stop_all()


EVENTS: list[OutcomeEvent] = []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--profile", action="store_true", help="profile the single worker with cProfile")
    args = ap.parse_args()
    bootstrap = os.environ["DW_KAFKA"]
    EVENTS.extend(policeuk_shaped(args.events))
    results: dict[str, object] = {
        "events": args.events,
        "partitions": args.partitions,
        "date": dt.datetime.now(dt.UTC).date().isoformat(),
        "cpus": os.cpu_count(),
    }
    for count in [int(c) for c in args.workers.split(",")]:
        tag = uuid.uuid4().hex[:8]
        env = {
            **os.environ,
            "DW_KAFKA": bootstrap,
            "DW_TOPIC_PREFIX": f"b{tag}.",
            "DW_APP_ID": f"bench-{tag}",
            "DW_PARTITIONS": str(args.partitions),
            "DW_CLOCK": "stream",
            "DW_RETENTION_DAYS": "3650",
            "DW_LOG_LEVEL": "warning",
        }
        settings = load_settings(**{k[3:].lower(): v for k, v in env.items() if k.startswith("DW_")})
        ensure_topics(settings)
        workdir = ROOT / "var" / f"bench-{tag}"
        workdir.mkdir(parents=True, exist_ok=True)
        w = run_workers(env, count, workdir, args.profile and count == 1)
        # the raw loop reads the same topic afterwards, in this process
        raw = asyncio.run(raw_loop(bootstrap, settings.disposals_topic, args.events))
        results[f"workers_{count}"] = {
            "raw_consume_decode_per_s": raw,
            **w,
            "ratio": w["events_per_s"] / raw,
        }
        print(
            f"{count} worker(s): {w['events_per_s']:,.0f} events/s end to end; "
            f"raw consume+decode {raw:,.0f}/s; "
            f"ratio {w['events_per_s'] / raw:.2f}; duplicates {w['duplicates_per_s']:,.0f}/s; "
            f"RSS {w['rss_mb']:.0f} MB -> {w['rss_mb_after_duplicates']:.0f} MB after duplicates; "
            f"crimes {w['crimes']:,} -> {w['crimes_after_duplicates']:,}; "
            f"restart to ready {w['restart_to_ready_s']:.1f} s with {w['crimes_after_restart']:,} crimes",
            flush=True,
        )
        prof = workdir / "worker.prof"
        if prof.exists():
            print("\nprofile of the worker (top 25 by own time):")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
    out = ROOT / "bench" / "results" / f"throughput-{dt.datetime.now(dt.UTC).date().isoformat()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
