"""Restart and memory of one worker holding many crimes.

Usage (a broker in DW_KAFKA; `make bench-restart` starts one):
    python bench/restart.py [--crimes 1000000] [--partitions 8]

1. Produces --crimes events, each of a crime of its own (police.uk-shaped), held back in one
   transaction; starts one worker; releases them; times the replay (events/s) to lag 0.
2. Resident memory (RSS) with every crime held, and the size of the store on disk; the time to
   answer `/`, a force page and `/api/counts?group_by=force,category,disposal&window=365d`
   (median of 7 requests each, from the request to the last byte, on this machine).
3. Stops the worker (SIGTERM) and starts it on the same data directory; one
   new event is produced as it starts: the time from the start to that event being processed,
   and to ready. Then kills it (SIGKILL) and starts it again, another new event produced: the
   time to that event; the counts are read back as the last checkpoint saved them.
4. Stops it, deletes its data directory, starts it again: the whole changelog is read back. The
   restore rate is changelog records read over the time to ready; the worker's own restore
   timer (``disposal_partition_restore_seconds``) is reported too. The counts are compared with
   the independent model after each start. RSS again.
Writes bench/results/restart-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import time
import urllib.request

from harness import (
    HeldBack,
    Workers,
    differing,
    distinct_crimes,
    du_mb,
    metric,
    parse,
    rss_mb,
    settings_of,
    stream_deployment,
    write_results,
)

from streams.producer import EventProducer
from tests.integration.conftest import expected_counts, reference_category

PAGES = {
    "index": "/",
    "force": "/force/kent",
    "api_counts_365d": "/api/counts?group_by=force,category,disposal&window=365d",
}


def page_times(url: str, rounds: int = 7) -> dict[str, float]:
    """Median milliseconds from request to the last byte of each of PAGES."""
    out = {}
    for name, path in PAGES.items():
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            with urllib.request.urlopen(url + path, timeout=60) as r:
                r.read()
                if r.status != 200:
                    raise SystemExit(f"{path}: HTTP {r.status}")
            times.append((time.perf_counter() - t) * 1000)
        out[name] = round(statistics.median(times), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crimes", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=8)
    args = parse(ap, crimes=2000, partitions=2)
    env, workdir = stream_deployment("restart", args.partitions)
    settings = settings_of(env)
    events = distinct_crimes(args.crimes)
    want = expected_counts(events, reference_category)
    held = HeldBack(settings, events)
    print(f"produced {len(events):,} events in a held transaction ({held.produce_per_s:,.0f}/s)", flush=True)
    w = Workers(env, 1, workdir, profile=False)
    url = w.urls[0]
    results: dict[str, object] = {"crimes": args.crimes, "date": dt.datetime.now(dt.UTC).date().isoformat()}
    w.start()
    try:
        w.wait_settled()
        results["replay_events_per_s"] = w.rate(held)
        results["rss_mb"] = rss_mb(w.procs[0].pid)
        results["store_on_disk_mb"] = du_mb(workdir / "w0" / "store")
        results["cells_differing"] = differing(w.counts(), want)
        print(
            f"replayed at {results['replay_events_per_s']:,.0f} events/s; RSS {results['rss_mb']:.0f} MB",
            flush=True,
        )
        results["pages_ms"] = page_times(url)
        print(f"pages (median ms): {results['pages_ms']}", flush=True)

        # 3. restart on the same data directory; a new event produced as it starts
        w.stop()
        late = distinct_crimes(args.crimes + 1)[-1]
        t = time.perf_counter()
        w.start()
        with EventProducer(settings) as p:
            p.send(late)
        ready_s = None
        while True:
            if ready_s is None and w.settled():
                ready_s = time.perf_counter() - t
            if w.processed() >= 1:
                break
            time.sleep(0.02)
        results["restart_new_event_processed_s"] = time.perf_counter() - t
        results["restart_ready_s"] = (
            ready_s if ready_s is not None else results["restart_new_event_processed_s"]
        )
        results["restart_changelog_records_read"] = metric(url, "disposal_changelog_restored_records_total")
        want_late = expected_counts([*events, late], reference_category)
        results["cells_differing_after_restart"] = differing(w.counts(), want_late)
        print(
            f"restart on the same data directory: ready in {results['restart_ready_s']:.1f} s, "
            f"new event processed {results['restart_new_event_processed_s']:.1f} s after start",
            flush=True,
        )

        # 3b. killed (SIGKILL) and started on the same data directory: the counts are read back
        # as the last checkpoint saved them; a second new event produced as it starts
        time.sleep(2)  # a checkpoint after the new event: its crime is in the store
        for proc in w.procs:
            proc.kill()
            proc.wait(60)
        later = distinct_crimes(args.crimes + 2)[-1]
        t = time.perf_counter()
        w.start()
        with EventProducer(settings) as p:
            p.send(later)
        while w.processed() < 1:
            time.sleep(0.02)
        results["crash_restart_new_event_processed_s"] = time.perf_counter() - t
        # the wait before it is the group's: the killed member holds its partitions until its
        # session times out (10 s), where a stopped one leaves at once
        results["crash_restart_restore_timer_s"] = metric(url, "disposal_partition_restore_seconds_sum")
        results["crash_restart_counts"] = {
            how: metric(url, f'disposal_partition_restores_total{{counts="{how}"}}')
            for how in (
                "loaded_as_saved",
                "loaded_and_moved",
                "derived_from_the_changelog",
                "derived_from_the_store",
            )
        }
        want_late = expected_counts([*events, late, later], reference_category)
        results["cells_differing_after_crash_restart"] = differing(w.counts(), want_late)
        print(
            "killed and started on the same data directory: new event processed "
            f"{results['crash_restart_new_event_processed_s']:.1f} s after start; partitions' counts "
            f"{results['crash_restart_counts']}",
            flush=True,
        )

        # 4. restart with the data directory deleted: everything from the changelog
        w.stop()
        shutil.rmtree(workdir / "w0")
        t = time.perf_counter()
        w.start()
        w.wait_settled(timeout_s=1800)
        restore_s = time.perf_counter() - t
        read = metric(url, "disposal_changelog_restored_records_total")
        results["restore_ready_s"] = restore_s
        results["restore_records_read"] = read
        results["restore_records_per_s_to_ready"] = read / restore_s
        restore_timer = metric(url, "disposal_partition_restore_seconds_sum")
        results["restore_timer_s"] = restore_timer
        results["restore_records_per_s_in_restore"] = read / restore_timer if restore_timer else None
        results["cells_differing_after_restore"] = differing(w.counts(), want_late)
        results["rss_mb_after_restore"] = rss_mb(w.procs[0].pid)
        print(
            f"restore without the data directory: {read:,.0f} changelog records, ready in {restore_s:.1f} s "
            f"({read / restore_s:,.0f} records/s to ready; {restore_timer:.1f} s in restore); "
            f"RSS {results['rss_mb_after_restore']:.0f} MB",
            flush=True,
        )
    finally:
        w.stop()
    for k in (
        "cells_differing",
        "cells_differing_after_restart",
        "cells_differing_after_crash_restart",
        "cells_differing_after_restore",
    ):
        print(f"{k}: {results[k]}")
    write_results("restart", results)


if __name__ == "__main__":
    main()
