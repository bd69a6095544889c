"""Alert evaluation cost against the crimes held, and what it costs the counting.

Usage:
    python bench/evaluation.py [--sizes 100000,1000000,6000000]        # in-process, no broker
    DW_KAFKA=... python bench/evaluation.py --replay 1500000           # also end to end

In-process (the pure counting path, as the worker's loop runs it, without Kafka): simulated
events (national simulator, all 45 forces, Home Office codes, a year) are counted into 8
partitions' counts until each size of crimes is held, twice: with the default rules' aggregates
kept as counts move (``alerts.aggregates``), and without rules. At each size it reports
- counting cost per event (us) over the last 100,000 events, with rules and without;
- one evaluation as the alert leader computes it (totals for the day, rules evaluated,
  transitions), median and worst of 20, the evaluation day moving one day each time;
- the same evaluation recomputed from every count cell, as before aggregates were kept;
- the size of one worker's reply to the leader (``/api/aggregates/local``), in bytes.

End to end (``--replay N``): N simulated events produced once to a topic; a worker with the
default rules reads them, then a worker of another group with no rules reads the same topic.
For each: events/s over the first and the last 30% of the events, and the leader's evaluation
time from ``disposal_alert_evaluation_seconds``. Writes bench/results/evaluation-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

from harness import ROOT, HeldBack, Workers, get_json, parse, settings_of, write_results

from alerts.aggregates import RuleAggregates
from alerts.engine import evaluate_totals
from alerts.lifecycle import transitions
from alerts.rules import Rule, load_rules, rules_fingerprint
from streams.codec import decode_outcome, encode_outcome
from streams.core.buckets import DayCounts
from streams.core.counting import count_event
from streams.core.crimes import Held
from streams.producer import ensure_topics
from streams.reference import FORCE_NAMES
from streams.resources import DEFAULT_RULES
from streams.simulate import simulate
from streams.wire import TotalsReply, encode_totals

PARTITIONS = 8
SEGMENT = 100_000


def one_evaluation(rules: Sequence[Rule], aggregates: RuleAggregates, at: dt.date) -> float:
    t = time.perf_counter()
    totals = aggregates.totals(at)
    evals = evaluate_totals(rules, totals, at=at, forces=FORCE_NAMES)
    transitions(evals, {}, {r.id: r for r in rules}, day=at, at=dt.datetime.now(dt.UTC))
    return time.perf_counter() - t


def in_process(sizes: list[int], with_rules: bool) -> dict[int, dict[str, float]]:
    rules = load_rules(DEFAULT_RULES)
    aggregates = RuleAggregates(rules) if with_rules else None
    counts = [DayCounts(aggregates) for _ in range(PARTITIONS)]
    held: dict[str, Held] = {}
    wall = dt.datetime.now(dt.UTC).date()
    latest = wall + dt.timedelta(days=1)
    out: dict[int, dict[str, float]] = {}
    sizes = sorted(sizes)
    events = simulate(sizes[-1] * 2, seed=11, end=wall)
    seg_s, seg_n = 0.0, 0
    last_cost = 0.0
    clock = time.perf_counter
    for offset, ev in enumerate(events):
        ev = decode_outcome(encode_outcome(ev))  # as the loop sees it (no Kafka)
        key = ev.crime_key
        part = counts[hash(key) % PARTITIONS]
        t = clock()  # the counting only: the lookup, count_event, keeping the state
        applied = count_event(
            ev, held.get(key), part, today=wall, latest_day=latest, keep_days=400, offset=offset
        )
        if applied.state is not None:
            held[key] = applied.state
        seg_s += clock() - t
        seg_n += 1
        if seg_n == SEGMENT:
            last_cost = seg_s / SEGMENT * 1e6
            seg_s, seg_n = 0.0, 0
        if len(held) >= sizes[0]:
            size = sizes.pop(0)
            row: dict[str, float] = {"events": offset + 1, "count_us_per_event": last_cost}
            if aggregates is not None:
                times = [one_evaluation(rules, aggregates, wall + dt.timedelta(days=d)) for d in range(20)]
                row["evaluation_ms_median"] = statistics.median(times) * 1e3
                row["evaluation_ms_max"] = max(times) * 1e3
                merged: dict = {}  # type: ignore[type-arg]  # cells may repeat across partitions
                for c in counts:
                    for cell, n in c.cells():
                        merged[cell] = merged.get(cell, 0) + n
                t = time.perf_counter()
                every = RuleAggregates(rules)
                every.add_all(merged.items())
                evaluate_totals(rules, every.totals(wall), at=wall, forces=FORCE_NAMES)
                row["evaluation_from_every_cell_ms"] = (time.perf_counter() - t) * 1e3
                row["cells"] = len(merged)
                reply = TotalsReply(rules_fingerprint(rules), False, aggregates.totals(wall))
                row["peer_payload_bytes"] = len(json.dumps(encode_totals(reply)))
            out[size] = row
            print(f"{'rules' if with_rules else 'no rules'} at {size:,} crimes: {row}", flush=True)
            if not sizes:
                break
    return out


def rate(samples: list[tuple[float, int]], lo: float, hi: float) -> float:
    """Events/s between the samples (time, records processed) whose count lies in lo..hi."""
    pts = [(t, k) for t, k in samples if lo <= k <= hi]
    if len(pts) < 2 or pts[-1][0] == pts[0][0]:
        return float("nan")  # too few samples to tell (a smoke run's few events)
    return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=60) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def replay(n: int) -> dict[str, object]:
    tag = uuid.uuid4().hex[:8]
    base = {
        **os.environ,
        "DW_TOPIC_PREFIX": f"e{tag}.",
        "DW_PARTITIONS": str(PARTITIONS),
        "DW_CLOCK": "stream",
        "DW_LOG_LEVEL": "warning",
    }
    events = list(simulate(n, seed=11))
    no_rules = Path(tempfile.mkdtemp()) / "rules.yaml"
    no_rules.write_text("rules: []\n")
    out: dict[str, object] = {"events": n, "crimes": len({e.crime_key for e in events})}
    held: HeldBack | None = None
    for name, rules_file in (("default_rules", str(DEFAULT_RULES)), ("no_rules", str(no_rules))):
        env = {**base, "DW_APP_ID": f"eval-{tag}-{name}", "DW_RULES": rules_file}
        settings = settings_of(env)
        ensure_topics(settings)
        workdir = ROOT / "var" / f"eval-{tag}-{name}"
        workdir.mkdir(parents=True, exist_ok=True)
        w = Workers(env, 1, workdir, profile=False)
        if held is None:
            held = HeldBack(settings, events)
        w.start()
        try:
            w.wait_settled()
            samples: list[tuple[float, int]] = []
            if not held.released:
                held.release()
            while True:
                done = w.processed()
                samples.append((time.perf_counter(), done))
                if done >= n:
                    break
                time.sleep(0.2)

            first, last = rate(samples, 0, 0.3 * n), rate(samples, 0.7 * n, n)
            count_ = metric(w.urls[0], "disposal_alert_evaluation_seconds_count")
            total = metric(w.urls[0], "disposal_alert_evaluation_seconds_sum")
            out[name] = {
                "first_30pct_events_per_s": first,
                "last_30pct_events_per_s": last,
                "last_over_first": last / first if first else float("nan"),
                "evaluations": count_,
                "evaluation_ms_mean": 1e3 * total / count_ if count_ else None,
                "crimes_held": get_json(w.urls[0] + "/api/counts?group_by=&window=all")["rows"][0]["count"],
            }
            print(f"{name}: {out[name]}", flush=True)
        finally:
            w.stop()
    d, z = out["default_rules"], out["no_rules"]
    assert isinstance(d, dict) and isinstance(z, dict)
    base = z["last_30pct_events_per_s"]
    out["rules_over_no_rules_last_30pct"] = d["last_30pct_events_per_s"] / base if base else float("nan")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000,6000000")
    ap.add_argument("--replay", type=int, default=0, help="events for the end-to-end replay (0: skip)")
    args = parse(ap, sizes="2000", replay=3000)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict[str, object] = {"date": dt.datetime.now(dt.UTC).date().isoformat(), "cpus": os.cpu_count()}
    if sizes:
        with_rules = in_process(list(sizes), True)
        without = in_process(list(sizes), False)
        results["in_process"] = {
            str(s): {**with_rules[s], "count_us_per_event_no_rules": without[s]["count_us_per_event"]}
            for s in sizes
        }
    if args.replay:
        results["replay"] = replay(args.replay)
    write_results("evaluation", results)


if __name__ == "__main__":
    main()
