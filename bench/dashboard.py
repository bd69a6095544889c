"""How long the dashboard takes to show its alerts, on a worker holding a year of national data.

Usage (a broker in DW_KAFKA; chromium installed):
    python bench/dashboard.py [--events 500000] [--days 365] [--loads 10] [--screenshots docs]

1. Simulated events for all 45 forces over the --days to today (the national simulator) and
   the demo's story (`simulate --story`: forces that settle high-risk crimes out of court), to a
   fresh topic; one worker with the default rules reads them to lag 0; the alerts settle.
2. A headless chromium (Debian's, through Playwright) opens `/` --loads times, each in a fresh
   context (no cache): the time from navigation to the first alert shown, and to the page's
   load event, median and worst; and the server's time for `/`, a force page, the national page
   and a scrutiny sample alone; and the national sentences as `/api/summary` prints them.
3. With --screenshots DIR: the views as an analyst sees them (laptop and phone widths), saved
   as PNG for the README.
Writes bench/results/dashboard-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from harness import Workers, parse, settings_of, write_results

from streams.producer import EventProducer, ensure_topics, lag
from streams.simulate import simulate, story


def timed_get(url: str) -> float:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        r.read()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--loads", type=int, default=10)
    ap.add_argument("--screenshots", type=Path, default=None)
    ap.add_argument(
        "--days",
        type=int,
        default=365,
        help="days the events span (730: two years, a national page with a comparison)",
    )
    args = parse(ap, events=3000, loads=1)
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        raise SystemExit("needs Debian's chromium: apt-get install -y chromium")
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "DW_TOPIC_PREFIX": f"dash-{tag}.",
        "DW_APP_ID": f"dash-{tag}",
        "DW_PARTITIONS": "8",
        "DW_ALERT_INTERVAL_S": "1",
        # the year before the last held too, for the national page's comparison
        "DW_RETENTION_DAYS": str(max(400, args.days + 60)),
    }
    settings = settings_of(env)
    ensure_topics(settings)
    today = dt.datetime.now(dt.UTC).date()
    with EventProducer(settings) as p:
        for ev in simulate(args.events, seed=11, end=today, days=args.days):
            p.send(ev)
        for ev in story(today):
            p.send(ev)
    work = Path(tempfile.mkdtemp(prefix="dw-bench-dash-"))
    workers = Workers(env, 1, work, profile=False)
    workers.start()
    try:
        workers.wait_settled()
        while any(lag(settings).values()):
            time.sleep(0.5)
        url = workers.urls[0]
        last, since = None, time.monotonic()
        while time.monotonic() - since < 5:  # alerts settled: the topic has not moved for 5 s
            with urllib.request.urlopen(url + "/api/alerts?state=all", timeout=60) as r:
                pos = json.load(r)["position"]
            if pos != last:
                last, since = pos, time.monotonic()
            time.sleep(0.5)
        with urllib.request.urlopen(url + "/api/alerts?state=firing", timeout=60) as r:
            firing = len(json.load(r)["alerts"])
        server_index = [timed_get(url + "/") for _ in range(args.loads)]
        server_force = [timed_get(url + "/force/durham") for _ in range(args.loads)]
        server_national = [timed_get(url + "/national") for _ in range(args.loads)]
        server_scrutiny = [timed_get(url + "/force/durham/scrutiny") for _ in range(args.loads)]
        with urllib.request.urlopen(url + "/api/summary", timeout=60) as r:
            sentences = json.load(r)["sentences"]
        first_alert, loaded = [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            for _ in range(args.loads):
                ctx = browser.new_context()
                page = ctx.new_page()
                t = time.perf_counter()
                page.goto(url + "/", wait_until="commit")
                page.wait_for_selector("#firing > li")  # an alert, or a group of case alerts
                first_alert.append(time.perf_counter() - t)
                page.wait_for_load_state("load")
                loaded.append(time.perf_counter() - t)
                ctx.close()
            if args.screenshots:
                shots = args.screenshots
                shots.mkdir(parents=True, exist_ok=True)
                for name, path, width in (
                    ("dashboard", "/", 1280),
                    ("dashboard-phone", "/", 390),
                    ("force", "/force/durham", 1280),
                    ("national", "/national", 1280),
                    ("scrutiny", "/force/durham/scrutiny", 1280),
                    ("signin", "/signin", 800),
                ):
                    page = browser.new_page(viewport={"width": width, "height": 900})
                    page.goto(url + path)
                    page.wait_for_load_state("load")
                    page.screenshot(path=str(shots / f"{name}.png"), full_page=name in ("force", "national"))
                    if name == "dashboard":  # the funnel plots, further down the page
                        page.locator("figure").first.screenshot(path=str(shots / "funnel.png"))
                    page.close()
            browser.close()
        results = {
            "date": today.isoformat(),
            "events": args.events,
            "firing_alerts": firing,
            "first_alert_shown_s": {"median": statistics.median(first_alert), "max": max(first_alert)},
            "load_event_s": {"median": statistics.median(loaded), "max": max(loaded)},
            "server_index_s": {"median": statistics.median(server_index), "max": max(server_index)},
            "server_force_page_s": {"median": statistics.median(server_force), "max": max(server_force)},
            "server_national_page_s": {
                "median": statistics.median(server_national),
                "max": max(server_national),
            },
            "server_scrutiny_page_s": {
                "median": statistics.median(server_scrutiny),
                "max": max(server_scrutiny),
            },
            "national_sentences": sentences,
        }
        write_results("dashboard", results, today.isoformat())
    finally:
        workers.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
