"""National scale over years: one worker replays years of simulated events in date order with
400-day retention, as a backfill arrives; its state must follow the crimes within the horizon.

Usage (a broker in DW_KAFKA; `make bench-national` starts one):
    python bench/national.py [--crimes-per-year 6000000] [--years 3] [--retention 400]
        [--partitions 8] [--compare-years 1] [--short-rate EVENTS_PER_S]

For each of two runs, one after the other on fresh topics: a one-year replay (--compare-years)
and the --years replay, at the same crimes per year (--short-rate: the one-year rate of an
earlier run instead of the first):
1. one worker (RocksDB store, DW_CLOCK=stream, DW_RETENTION_DAYS=--retention) starts and settles;
   `disposal-watch simulate --order date` sends the events as fast as it can while the worker
   counts them. events/s is from the first event sent to idle (lag 0 after the last).
2. (the long run) the sweep is given until the store holds at most 1.1x the crimes within the
   horizon (``disposal_store_crimes`` against ``disposal_crimes_held``, at most 300 s); both are
   reported at idle and after, with the resident memory (RSS) and the store on disk.
3. stopped (SIGTERM: a last checkpoint, the counts saved; seconds to exit), then restarted on
   the same data directory; one new event produced as it starts: seconds from the start to that
   event being processed.
4. restore with the data directory deleted: seconds to ready, changelog records read. The counts
   must equal those before the restarts.
Writes bench/results/national-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path

from harness import (
    CLI,
    Workers,
    differing,
    du_mb,
    metric,
    parse,
    rss_mb,
    settings_of,
    stream_deployment,
    write_results,
)

from streams.model import OutcomeEvent
from streams.producer import EventProducer, lag
from streams.reference import HOME_OFFICE_OUTCOMES

END = dt.date(2026, 10, 31)


def replay(env: dict[str, str], workdir: Path, events: int, days: int) -> tuple[Workers, dict[str, float]]:
    """Start a worker, send ``events`` over ``days`` in date order, wait for idle."""
    w = Workers(env, 1, workdir, profile=False)
    w.start()
    w.wait_settled()
    t0 = time.perf_counter()
    sender = subprocess.run(
        [
            CLI,
            "simulate",
            "--events",
            str(events),
            "--days",
            str(days),
            "--end",
            END.isoformat(),
            "--seed",
            "9",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if sender.returncode != 0:
        raise SystemExit(f"simulate failed: {sender.stderr[-2000:]}")
    ingest_s = time.perf_counter() - t0
    while any(lag(w.settings).values()):
        time.sleep(0.5)
    idle_s = time.perf_counter() - t0
    out = {
        "events": events,
        "days": days,
        "ingest_s": ingest_s,
        "idle_s": idle_s,
        "events_per_s": events / idle_s,
    }
    print(f"{days} days, {events:,} events: ingest {ingest_s:.0f} s, idle after {idle_s:.0f} s, "
          f"{events / idle_s:,.0f} events/s", flush=True)  # fmt: skip
    return w, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crimes-per-year", type=int, default=6_000_000)
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--compare-years", type=int, default=1)
    ap.add_argument("--retention", type=int, default=400)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--short-rate", type=float, help="the one-year replay's events/s from an earlier run")
    args = parse(ap, crimes_per_year=2000, years=1, compare_years=1, short_rate=1.0, partitions=2)
    events_per_year = int(args.crimes_per_year * 1.5)  # streams.simulate.EVENTS_PER_CRIME
    results: dict[str, object] = {
        "crimes_per_year": args.crimes_per_year,
        "retention_days": args.retention,
        "date": dt.datetime.now(dt.UTC).date().isoformat(),
        "cpus": os.cpu_count(),
    }
    if args.short_rate:  # the one-year rate measured before, given: only the long run
        results[f"years_{args.compare_years}"] = {"events_per_s": args.short_rate, "given": True}
    for years in (args.years,) if args.short_rate else (args.compare_years, args.years):
        env, workdir = stream_deployment("national", args.partitions, args.retention)
        w, row = replay(env, workdir, events_per_year * years, 365 * years)
        results[f"years_{years}"] = row
        url = w.urls[0]
        try:
            if years != args.years:
                continue
            time.sleep(3)  # a checkpoint: what was pending at idle reaches the store
            row["store_crimes_at_idle"] = metric(url, "disposal_store_crimes")
            row["crimes_held_at_idle"] = metric(url, "disposal_crimes_held")
            t = time.perf_counter()
            while metric(url, "disposal_store_crimes") > 1.1 * metric(url, "disposal_crimes_held"):
                if time.perf_counter() - t > 300:
                    break
                time.sleep(1)
            row["sweep_after_idle_s"] = time.perf_counter() - t
            row["store_crimes"] = store = metric(url, "disposal_store_crimes")
            row["crimes_held"] = held = metric(url, "disposal_crimes_held")
            row["store_over_held"] = store / held
            row["rss_mb"] = rss_mb(w.procs[0].pid)
            row["store_on_disk_mb"] = du_mb(workdir / "w0" / "store")
            before = w.counts()
            print(
                f"store {store:,.0f} crimes for {held:,.0f} within the horizon ({store / held:.2f}x), "
                f"{row['sweep_after_idle_s']:.0f} s after idle; RSS {row['rss_mb']:.0f} MB, "
                f"store {row['store_on_disk_mb']:.0f} MB on disk",
                flush=True,
            )
            # restart on the same data directory; a new event produced as it starts
            t = time.perf_counter()
            w.stop()  # SIGTERM: a last checkpoint, then the counts are saved
            row["clean_stop_s"] = time.perf_counter() - t
            late = OutcomeEvent(
                event_id="late-1",
                force_id="kent",
                crime_ref="LATE-1",
                disposal=HOME_OFFICE_OUTCOMES[1],
                outcome_date=END,
                recorded_at=dt.datetime(END.year, END.month, END.day, 12, tzinfo=dt.UTC),
                source_system="bench",
                offence_code="8Q",
                outcome_number=1,
                domestic_abuse=False,
            )
            t = time.perf_counter()
            w.start()
            with EventProducer(settings_of(env)) as p:
                p.send(late)
            while w.processed() < 1:
                time.sleep(0.02)
            row["restart_new_event_processed_s"] = time.perf_counter() - t
            row["rss_mb_after_restart"] = rss_mb(w.procs[0].pid)
            after_late = w.counts()
            row["cells_differing_after_restart"] = differing(
                {k: v for k, v in after_late.items() if k[0] != "kent" or k[1] != "stalking"},
                {k: v for k, v in before.items() if k[0] != "kent" or k[1] != "stalking"},
            )
            print(f"restart: new event processed {row['restart_new_event_processed_s']:.1f} s after start")
            # restore with the data directory deleted
            w.stop()
            shutil.rmtree(workdir / "w0")
            t = time.perf_counter()
            w.start()
            w.wait_settled(timeout_s=1800)
            row["restore_ready_s"] = time.perf_counter() - t
            row["restore_records_read"] = metric(url, "disposal_changelog_restored_records_total")
            row["restore_store_crimes"] = metric(url, "disposal_store_crimes")
            row["cells_differing_after_restore"] = differing(w.counts(), after_late)
            row["rss_mb_after_restore"] = rss_mb(w.procs[0].pid)
            print(
                f"restore without the data directory: ready in {row['restore_ready_s']:.1f} s, "
                f"{row['restore_records_read']:,.0f} changelog records read; "
                f"cells differing {row['cells_differing_after_restore']}",
                flush=True,
            )
        finally:
            w.stop()
    short, long = (results[f"years_{y}"] for y in (args.compare_years, args.years))
    assert isinstance(short, dict) and isinstance(long, dict)
    results["rate_long_over_short"] = long["events_per_s"] / short["events_per_s"]
    write_results("national", results, str(results["date"]))


if __name__ == "__main__":
    main()
