"""A police.uk year, ingest to idle: the real CLI ingests police.uk CSV files while workers count.

Usage (a broker in DW_KAFKA):
    python bench/policeuk_year.py [--copies 29] [--workers 1,2] [--year-rows 4370000]

The samples in ../shared/data/policeuk (both City of London years, 38,121 rows) are copied
--copies times, each copy's crime ids made distinct (the last 6 hex digits of each id replaced
by the copy's number and the id's own position), so that every copy is new crimes, not
redeliveries. For each worker count: workers of a fresh deployment start and settle; then
`disposal-watch ingest policeuk` of all copies, as a subprocess, from its start until the
workers reach lag 0. Reported: rows, seconds from ingest start to idle, rows/s, the ingest's own
seconds, the CPU seconds of the ingest (with its pool), the workers and the rest of the machine
(the broker, this bench), whether the counts hold every crime once, and the year's estimate:
--year-rows (a year of all 41 forces' outcomes and street files, 4.37 million rows) over the
rate measured. The estimate assumes the rate holds at 4x the rows; on these machines the
worker's rate did not fall between 200,000 and 1,000,000 simulated events
(bench/evaluation.py --replay).
Writes bench/results/policeuk-year-<date>.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness import CLI, ROOT, Workers, machine_cpu_s, parse, stream_deployment, write_results

from streams.policeuk import Tally, events_from_files
from streams.producer import lag

SAMPLES = ROOT.parent / "shared" / "data" / "policeuk"


def copies(out: Path, n: int) -> int:
    """Write ``n`` copies of the samples with distinct crime ids; returns the rows written."""
    rows = 0
    files = sorted(SAMPLES.glob("*/*.csv"))
    for i in range(n):
        for f in files:
            with (
                f.open(newline="") as src,
                (out / f"c{i:03d}-{f.parent.name}-{f.name}").open("w", newline="") as dst,
            ):
                reader, writer = csv.reader(src), csv.writer(dst)
                writer.writerow(next(reader))
                for row in reader:
                    if row[0]:
                        row[0] = f"{row[0][:-6]}{i:03x}{row[0][-3:]}"
                    writer.writerow(row)
                    rows += 1
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=29)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--year-rows", type=int, default=4_370_000)
    args = parse(ap, copies=1, workers="1", partitions=2)
    results: dict[str, object] = {"date": dt.datetime.now(dt.UTC).date().isoformat(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="policeuk-year-") as tmp:
        work = Path(tmp)
        rows = copies(work, args.copies)
        files = sorted(str(p) for p in work.glob("*.csv"))
        results["rows"] = rows
        one = {(e.force_id, e.crime_ref) for e in events_from_files(sorted(SAMPLES.glob("*/*.csv")), Tally())}
        expected = len(one) * args.copies
        for count in (int(c) for c in args.workers.split(",")):
            env, workdir = stream_deployment("policeuk-year", args.partitions, log_level="warning")
            w = Workers(env, count, workdir, profile=False)
            w.start()
            try:
                w.wait_settled()
                cpu0 = (machine_cpu_s(), w.cpu_s(), resource.getrusage(resource.RUSAGE_CHILDREN))
                t0 = time.perf_counter()
                ingest = subprocess.run(
                    [CLI, "ingest", "policeuk", *files], env=env, capture_output=True, text=True
                )
                ingest_s = time.perf_counter() - t0
                if ingest.returncode != 0:
                    raise SystemExit(f"ingest exited {ingest.returncode}: {ingest.stderr[-2000:]}")
                while any(lag(w.settings).values()):
                    time.sleep(0.2)
                idle_s = time.perf_counter() - t0
                children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the ingest and its pool
                machine_s, workers_s = machine_cpu_s() - cpu0[0], w.cpu_s() - cpu0[1]
                ingest_cpu_s = sum(
                    getattr(children, f) - getattr(cpu0[2], f) for f in ("ru_utime", "ru_stime")
                )
                held = sum(w.counts().values())
            finally:
                w.stop()
                shutil.rmtree(workdir, ignore_errors=True)
            row = {
                "workers": count,
                "ingest_s": ingest_s,
                "idle_s": idle_s,
                "rows_per_s": rows / idle_s,
                "cpu_s": {
                    "machine": machine_s,
                    "ingest": ingest_cpu_s,
                    "workers": workers_s,
                    "rest": machine_s - ingest_cpu_s - workers_s,
                },
                "crimes_counted": held,
                "crimes_expected": expected,
                "year_estimate_s": args.year_rows / (rows / idle_s),
            }
            results[f"workers_{count}"] = row
            print(
                f"{count} worker(s): {rows:,} rows, ingest {ingest_s:.1f} s, idle after {idle_s:.1f} s "
                f"({rows / idle_s:,.0f} rows/s); {held:,} crimes counted of {expected:,}; a year of "
                f"{args.year_rows:,} rows: {row['year_estimate_s']:.0f} s; CPU s: ingest {ingest_cpu_s:.1f}, "
                f"workers {workers_s:.1f}, the rest (broker, bench) {row['cpu_s']['rest']:.1f} "
                f"of the machine's {machine_s:.1f}",
                flush=True,
            )
    write_results("policeuk-year", results, str(results["date"]))
    if any(isinstance(r, dict) and r["crimes_counted"] != r["crimes_expected"] for r in results.values()):
        raise SystemExit("the counts do not hold every crime once")


if __name__ == "__main__":
    main()
