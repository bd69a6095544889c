"""End-to-end throughput of the worker against a raw consume-and-decode loop, same topic, same run.

Usage (a broker in DW_KAFKA; `make bench` starts one):
    python bench/throughput.py [--events 200000] [--partitions 8] [--workers 1,2] [--profile]

1. Builds police.uk-shaped events: the real City of London 2016-17 street and outcomes rows,
   replicated with fresh Crime IDs and spread over the 45 forces, until --events.
2. Produces them to a fresh topic.
3. Raw loop, in this process: aiokafka consumes the topic from the start and decodes every
   record with the project's Avro codec. Events/s = baseline.
4. The real worker (`disposal-watch worker`, fresh consumer group) processes the same topic;
   events/s is measured from its first processed event to its last (polling its /metrics).
   Then the same events again (all duplicates: no new crimes) to show memory does not grow.
5. The same with two workers in one group.
Prints a table and writes bench/results/throughput-<date>.json. Timings drift on shared
machines: compare the ratio, not absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import pstats
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streams.codec import decode_outcome, encode_outcome  # noqa: E402
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
            out.append(dataclasses.replace(ev, force_id=force, crime_ref=f"{ev.crime_ref}-{copy}", event_id=f"{ev.event_id}-{copy}"))
            if len(out) == n:
                break
        copy += 1
    return out


async def raw_loop(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
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


def metric_sum(url: str, name: str) -> float:
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_workers(env: dict[str, str], count: int, n: int, workdir: Path, profile: bool) -> dict[str, float]:
    procs, urls = [], []
    for i in range(count):
        port = free_port()
        wenv = {**env, "DW_DATA_DIR": str(workdir / f"w{i}"), "DW_WEB_PORT": str(port)}
        cmd = [CLI, "worker"]
        if profile and i == 0:
            cmd = [sys.executable, "-m", "cProfile", "-o", str(workdir / "worker.prof"), "-m", "streams.cli", "worker"]
        procs.append(subprocess.Popen(cmd, env=wenv, stdout=(workdir / f"w{i}.log").open("w"), stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}")

    def processed() -> float:
        return sum(metric_sum(u, "disposal_event_changes_total") for u in urls)

    def drain(target: float, timeout_s: float = 900) -> tuple[float, float]:
        deadline = time.monotonic() + timeout_s
        t0 = n0 = None
        while True:
            done = processed()
            now = time.perf_counter()
            if t0 is None and done > (0 if target == n else target - n):
                t0, n0 = now, done
            if done >= target:
                return (done - (n0 or 0)) / max(1e-9, now - (t0 or now)), now
            if time.monotonic() > deadline:
                raise SystemExit(f"workers processed {done} of {target} in {timeout_s}s; logs in {workdir}")
            time.sleep(0.05)

    try:
        rate, _ = drain(n)
        rss = [rss_mb(p.pid) for p in procs]
        crimes = sum(metric_sum(u, "disposal_crimes_held") for u in urls)
        # the same events again: all duplicates, so no new per-crime state
        with EventProducer(load_settings(**{k[3:].lower(): v for k, v in env.items() if k.startswith("DW_")})) as p:
            for ev in EVENTS:
                p.send(ev)
        rate_dup, _ = drain(2 * n)
        rss_after = [rss_mb(p.pid) for p in procs]
        return {"events_per_s": rate, "duplicates_per_s": rate_dup, "rss_mb": sum(rss), "rss_mb_after_duplicates": sum(rss_after), "crimes_held": crimes}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)


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
    results: dict[str, object] = {"events": args.events, "partitions": args.partitions, "date": dt.date.today().isoformat(), "cpus": os.cpu_count()}
    for count in [int(c) for c in args.workers.split(",")]:
        tag = uuid.uuid4().hex[:8]
        env = {**os.environ, "DW_KAFKA": bootstrap, "DW_TOPIC_PREFIX": f"b{tag}.", "DW_APP_ID": f"bench-{tag}",
               "DW_PARTITIONS": str(args.partitions), "DW_CLOCK": "stream", "DW_RETENTION_DAYS": "3650", "DW_LOG_LEVEL": "warning"}
        settings = load_settings(**{k[3:].lower(): v for k, v in env.items() if k.startswith("DW_")})
        ensure_topics(settings)
        t = time.perf_counter()
        with EventProducer(settings) as p:
            for ev in EVENTS:
                p.send(ev)
        produce_rate = args.events / (time.perf_counter() - t)
        raw = asyncio.run(raw_loop(bootstrap, settings.disposals_topic, args.events))
        workdir = ROOT / "var" / f"bench-{tag}"
        workdir.mkdir(parents=True, exist_ok=True)
        w = run_workers(env, count, args.events, workdir, args.profile and count == 1)
        results[f"workers_{count}"] = {"raw_consume_decode_per_s": raw, "produce_per_s": produce_rate, **w, "ratio": w["events_per_s"] / raw}
        print(f"{count} worker(s): {w['events_per_s']:,.0f} events/s end to end; raw consume+decode {raw:,.0f}/s; "
              f"ratio {w['events_per_s'] / raw:.2f}; duplicates {w['duplicates_per_s']:,.0f}/s; "
              f"RSS {w['rss_mb']:.0f} MB -> {w['rss_mb_after_duplicates']:.0f} MB after duplicates; crimes {w['crimes_held']:,.0f}", flush=True)
        prof = workdir / "worker.prof"
        if prof.exists():
            print("\nprofile of the worker (top 25 by own time):")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
    out = ROOT / "bench" / "results" / f"throughput-{dt.date.today().isoformat()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
