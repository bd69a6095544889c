"""`/metrics` under load: scrape latency while one worker processes at full speed.

Usage (a broker in DW_KAFKA; Debian's prometheus for promtool):
    python bench/scrape.py [--events 300000] [--interval 0.25]

Simulated national events (45 forces, a year, the default rules) are produced in one Kafka
transaction and held back until the worker has settled, then released; while the worker reads
them at full speed, `/metrics` is scraped every --interval seconds (Prometheus scrapes every
15 s; this is 60 times as often) and each scrape's time is recorded, up to the last record
processed. Reports the scrape latency (median, p99, worst), the worker's events/s while scraped,
the number of series and bytes of one scrape at the end, and `promtool check metrics` on it.
Writes bench/results/scrape-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from harness import HeldBack, Workers, parse, settings_of, write_results

from streams.producer import ensure_topics
from streams.simulate import simulate


def scrape(url: str) -> tuple[float, bytes]:
    t = time.perf_counter()
    with urllib.request.urlopen(url + "/metrics", timeout=60) as r:
        body = r.read()
    return time.perf_counter() - t, body


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--keep", action="store_true", help="keep the worker's directory and log")
    args = parse(ap, events=3000)
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "DW_TOPIC_PREFIX": f"scrape-{tag}.", "DW_APP_ID": f"scrape-{tag}"}
    env["DW_PARTITIONS"] = "8"
    settings = settings_of(env)
    ensure_topics(settings)
    today = dt.datetime.now(dt.UTC).date()
    held = HeldBack(settings, list(simulate(args.events, seed=3, end=today, days=365)))
    work = Path(tempfile.mkdtemp(prefix="dw-bench-scrape-"))
    workers = Workers(env, 1, work, profile=False)
    workers.start()
    try:
        workers.wait_settled()
        url = workers.urls[0]
        times: list[float] = []
        done = threading.Event()

        def scraper() -> None:
            while not done.is_set():
                took, _ = scrape(url)
                times.append(took)
                time.sleep(args.interval)

        n0 = workers.processed()
        thread = threading.Thread(target=scraper, daemon=True)
        thread.start()
        held.release()
        t0 = time.perf_counter()
        while workers.processed() - n0 < args.events:  # every record processed
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        done.set()
        thread.join()
        rate = (workers.processed() - n0) / elapsed
        _, body = scrape(url)
        text = body.decode()
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
        ordered = sorted(times)
        results = {
            "date": today.isoformat(),
            "events": args.events,
            "events_per_s_while_scraped": round(rate),
            "scrapes": len(times),
            "scrape_ms": {
                "median": round(statistics.median(times) * 1000, 1),
                "p99": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 1),
                "max": round(max(times) * 1000, 1),
            },
            "series": series,
            "bytes": len(body),
            "promtool_check_metrics": (check.stdout + check.stderr).decode().strip() or "clean",
        }
        write_results("scrape", results, today.isoformat())
    finally:
        workers.stop()
        if args.keep:
            print(f"worker log and data in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
