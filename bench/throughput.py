"""Throughput of the worker against a raw consume-and-decode loop, on the same topic in one run.

Usage (a broker in DW_KAFKA; `make bench` starts one):
    python bench/throughput.py [--events 200000] [--partitions 8] [--workers 1,2]
        [--feeds policeuk,simulate] [--rules default,none]
        [--guarantees exactly_once] [--framings single,confluent] [--profile] [--rounds 1]

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
   (``disposal_alert_evaluation_seconds``) is reported as a share of it, and so is the time the
   checkpoints spent encoding the counts they save (``disposal_counts_save_seconds_total``).
   So is the CPU time an event in that span: the workers' (from /proc), the whole machine's,
   and the rest (the broker, mostly); a choice's cost is given as a rate and as CPU an event.
4. Raw loops, in this process, over the same topic: aiokafka reads it from the start and decodes
   every record, nothing else: with the project's Avro codec (its written-out reader, into the
   event: `ratio`), then with fastavro's public `schemaless_reader` into a dict, the baseline a
   plain Python consumer pays and issue 18's (`ratio_fastavro`).
5. The workers stopped, the same events produced again (all duplicates) and held back, the
   workers started on their data directories (time to settled), the duplicates released: the
   rate at which they are recognised, and the counts unchanged.
Every feed runs with each rules choice on one worker; the other worker counts, guarantees
(DW_PROCESSING_GUARANTEE) and framings run on the first feed with the first rules choice, so
that the cost of alerts (default rules against none), of exactly-once (against at-least-once)
and of Confluent's wire format (against single-object encoding) are each measured in one run.
Framing `confluent` starts a real Apicurio Registry (``streams.registry_local``: Maven Central,
Java 21+), registers the project's schemas there (DW_SCHEMA_REGISTRY_URL) and writes every
event under the id it gave. The raw loop runs right after each worker measurement. Timings drift on
shared machines: compare the ratio, not absolute rates. Prints a table; writes
bench/results/throughput-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import pstats
import resource
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from harness import (
    ROOT,
    HeldBack,
    Workers,
    differing,
    machine_cpu_s,
    metric,
    parse,
    policeuk_shaped,
    raw_loop,
    rss_mb,
    settings_of,
    write_results,
)

from streams import registry_local
from streams.framing import SINGLE_OBJECT
from streams.kafka_local import free_port
from streams.model import OutcomeEvent
from streams.producer import ensure_topics
from streams.resources import DEFAULT_RULES
from streams.schema_registry import register_now
from streams.simulate import simulate
from tests.integration.conftest import expected_counts, reference_category

#: feed name -> events of it, given how many
FEEDS: dict[str, Callable[[int], list[OutcomeEvent]]] = {
    "policeuk": policeuk_shaped,
    "simulate": lambda n: list(simulate(n, seed=3, end=dt.date(2026, 10, 31), days=365)),
}


@dataclass(frozen=True)
class Run:
    feed: str
    rules: str
    workers: int
    guarantee: str
    framing: str

    @property
    def key(self) -> str:
        """The row's name in the results file (single-object rows keep their old names)."""
        key = f"{self.feed}/{self.rules}/{self.guarantee}/workers_{self.workers}"
        return key if self.framing == "single" else f"{key}/framing_{self.framing}"


def _with(run: Run, field: str, value: str) -> Run:
    """``run`` with one of its text fields (``guarantee``, ``rules``, ``framing``) changed."""
    if field == "guarantee":
        return dataclasses.replace(run, guarantee=value)
    if field == "rules":
        return dataclasses.replace(run, rules=value)
    return dataclasses.replace(run, framing=value)


def runs_of(args: argparse.Namespace) -> list[Run]:
    feeds, rules = args.feeds.split(","), args.rules.split(",")
    counts, guarantees, framings = ([int(c) for c in args.workers.split(",")], args.guarantees.split(","),
                                    args.framings.split(","))  # fmt: skip
    runs = [Run(f, r, 1, guarantees[0], framings[0]) for f in feeds for r in rules]
    runs += [
        Run(feeds[0], rules[0], c, g, framings[0])
        for c in counts
        for g in guarantees
        if (c, g) != (1, guarantees[0])
    ]
    runs += [Run(feeds[0], rules[0], 1, guarantees[0], f) for f in framings[1:]]
    return runs


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bootstrap = os.environ["DW_KAFKA"]
        self.tag = uuid.uuid4().hex[:8]
        #: the round being measured (``--rounds``): each round is a fresh deployment
        self.round = 1
        self.results: dict[str, object] = {
            "events": args.events,
            "partitions": args.partitions,
            "date": dt.datetime.now(dt.UTC).date().isoformat(),
            "cpus": os.cpu_count(),
        }
        self.base_env = {
            **os.environ,
            "DW_KAFKA": self.bootstrap,
            "DW_PARTITIONS": str(args.partitions),
            "DW_CLOCK": "stream",
            "DW_RETENTION_DAYS": "3650",
            "DW_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
        }
        no_rules = ROOT / "var" / f"bench-{self.tag}-no-rules.yaml"
        no_rules.parent.mkdir(parents=True, exist_ok=True)
        no_rules.write_text("rules: []\n")
        self.rules_files = {"default": str(DEFAULT_RULES), "none": str(no_rules)}
        self.made: dict[str, tuple[list[OutcomeEvent], dict[tuple[str, ...], int]]] = {}
        self.registry: registry_local.Registry | None = None

    def events(self, feed: str) -> tuple[list[OutcomeEvent], dict[tuple[str, ...], int]]:
        if feed not in self.made:
            evs = FEEDS[feed](self.args.events)
            self.made[feed] = (evs, expected_counts(evs, reference_category))
            self.results[f"crimes/{feed}"] = sum(self.made[feed][1].values())
        return self.made[feed]

    def env(self, run: Run) -> dict[str, str]:
        name = f"{run.feed}-{run.rules}-{run.workers}-{run.guarantee.replace('_', '')}-{run.framing}"
        if self.round > 1:
            name += f"-r{self.round}"
        env = {
            **self.base_env,
            "DW_TOPIC_PREFIX": f"b{self.tag}-{name}.",
            "DW_APP_ID": f"bench-{self.tag}-{name}",
            "DW_PROCESSING_GUARANTEE": run.guarantee,
            "DW_RULES": self.rules_files[run.rules],
        }
        if run.framing == "confluent":
            if self.registry is None:
                self.registry = registry_local.start(ROOT / "var" / f"bench-{self.tag}-registry", free_port())
            env["DW_SCHEMA_REGISTRY_URL"] = self.registry.url
        return env

    def measure(self, run: Run) -> None:
        """One row: the worker(s) of a fresh deployment on one feed, the raw loop on the same
        topic, then a restart and every event again as duplicates."""
        events, want = self.events(run.feed)
        env = self.env(run)
        settings = settings_of(env)
        ensure_topics(settings)
        framing = register_now(settings).events if run.framing == "confluent" else SINGLE_OBJECT
        workdir = ROOT / "var" / f"bench-{self.tag}-{env['DW_APP_ID']}"
        workdir.mkdir(parents=True, exist_ok=True)
        w = Workers(env, run.workers, workdir, self.args.profile and run.workers == 1)
        held = HeldBack(settings, events, framing)
        self.results["produce_per_s"] = held.produce_per_s
        w.start()
        try:
            w.wait_settled()
            evaluating = sum(metric(u, "disposal_alert_evaluation_seconds_sum") for u in w.urls)
            saving = sum(metric(u, "disposal_counts_save_seconds_total") for u in w.urls)
            cpu0 = (w.cpu_s(), machine_cpu_s(), _own_cpu_s())
            started = time.perf_counter()
            rate = w.rate(held)
            spent = time.perf_counter() - started
            cpu = _cpu_us_per_event(
                w.cpu_s() - cpu0[0], machine_cpu_s() - cpu0[1], _own_cpu_s() - cpu0[2], events
            )
            evaluating = sum(metric(u, "disposal_alert_evaluation_seconds_sum") for u in w.urls) - evaluating
            saving = sum(metric(u, "disposal_counts_save_seconds_total") for u in w.urls) - saving
            rss = sum(rss_mb(p.pid) for p in w.procs)
            exact = differing(w.counts(), want)
            # the raw loops read the same topic now, in this process: the project's decoder, then
            # fastavro's public reader into a dict (issue 18's baseline)
            raw = asyncio.run(raw_loop(self.bootstrap, settings.disposals_topic, self.args.events))
            raw_fa = asyncio.run(
                raw_loop(self.bootstrap, settings.disposals_topic, self.args.events, "fastavro")
            )
            # every event again (all duplicates), held back; a restart on the same data
            # directories, timed to settled; then the duplicates released
            w.stop()
            held = HeldBack(settings, events, framing)
            w.start()
            restart_s = w.wait_settled()
            rate_dup = w.rate(held)
            exact_dup = differing(w.counts(), want)
            rss_dup = sum(rss_mb(p.pid) for p in w.procs)
        finally:
            w.stop()
        self.results[run.key] = row = {
            "raw_consume_decode_per_s": raw,
            "raw_consume_fastavro_per_s": raw_fa,
            "events_per_s": rate,
            "ratio": rate / raw,
            "ratio_fastavro": rate / raw_fa,
            "evaluation_share": evaluating / spent,
            "counts_saving_share": saving / spent,
            "cpu_us_per_event": cpu,
            "cells_differing": exact,
            "rss_mb": rss,
            "restart_to_ready_s": restart_s,
            "duplicates_per_s": rate_dup,
            "cells_differing_after_duplicates": exact_dup,
            "rss_mb_after_duplicates": rss_dup,
        }
        print(
            f"{run.feed}, rules {run.rules}, {run.workers} worker(s), {run.guarantee}, "
            f"{run.framing} framing: "
            f"{rate:,.0f} events/s, raw consume+decode {raw:,.0f}/s, ratio {rate / raw:.2f}, "
            f"raw with fastavro {raw_fa:,.0f}/s, ratio {rate / raw_fa:.2f}, "
            f"evaluation {evaluating / spent:.1%} of the time, counts saved in {saving / spent:.1%}, "
            f"CPU us an event: worker {cpu['worker']:.1f}, the rest of the machine {cpu['rest']:.1f}, "
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

    def costs(self, runs: list[Run]) -> None:
        """Each choice against its alternative, rows of one run: the ratio's drop."""
        rows = {r.key: r for r in runs}
        for run in runs:
            for field, base in (("guarantee", "at_least_once"), ("rules", "none"), ("framing", "single")):
                if getattr(run, field) == base:
                    continue
                other = _with(run, field, base).key
                on, off = self.results.get(run.key), self.results.get(other)
                if other in rows and isinstance(on, dict) and isinstance(off, dict):
                    # against fastavro's raw loop: the project-decoder loop is aiokafka plus the
                    # compiled reader, and its own variance hides the cost of a choice
                    cost = 1 - on["ratio_fastavro"] / off["ratio_fastavro"]
                    self.results[f"cost/{run.key} vs {field} {base}"] = cost
                    # the same choice in CPU time an event, which a busy machine disturbs less
                    # than a rate (time waiting for a core is not counted)
                    cpu_on, cpu_off = on["cpu_us_per_event"], off["cpu_us_per_event"]
                    assert isinstance(cpu_on, dict) and isinstance(cpu_off, dict)
                    worker = cpu_on["worker"] / cpu_off["worker"] - 1
                    machine = cpu_on["machine"] / cpu_off["machine"] - 1
                    self.results[f"cpu_cost/{run.key} vs {field} {base}"] = {
                        "worker": worker,
                        "machine": machine,
                    }
                    print(
                        f"{run.key}: ratio {cost:.1%} below that with {field} {base}; CPU an event "
                        f"{worker:+.1%} in the worker, {machine:+.1%} on the whole machine"
                    )

    def close(self) -> None:
        if self.registry is not None:
            registry_local.stop(self.registry.dir)


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_us_per_event(
    worker_s: float, machine_s: float, bench_s: float, events: list[OutcomeEvent]
) -> dict[str, float]:
    """CPU microseconds an event over a measured span: the worker processes', the whole
    machine's, and the rest (the machine's less the workers' and this bench's polling: the
    broker, mostly)."""
    per = 1e6 / len(events)
    return {
        "worker": worker_s * per,
        "machine": machine_s * per,
        "rest": (machine_s - worker_s - bench_s) * per,
    }


def median_row(rows: list[dict[str, object]]) -> dict[str, object]:
    """The row of the round with the median ``ratio_fastavro`` (rounds interleave the runs, so a
    slow spell of a shared machine falls on every run alike), with every round's row beside it;
    ``ratio`` and ``ratio_fastavro`` are each their own median, and so is each CPU time."""
    ordered = sorted(rows, key=lambda row: float(row["ratio_fastavro"]))  # type: ignore[arg-type]
    mid = dict(ordered[len(ordered) // 2])
    mid["ratio"] = statistics.median(float(row["ratio"]) for row in rows)  # type: ignore[arg-type]
    cpu: list[dict[str, float]] = [row["cpu_us_per_event"] for row in rows]  # type: ignore[misc]
    mid["cpu_us_per_event"] = {k: statistics.median(c[k] for c in cpu) for k in cpu[0]}
    mid["rounds"] = rows
    return mid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--feeds", default="policeuk,simulate")
    ap.add_argument("--rules", default="default,none")
    ap.add_argument("--guarantees", default="exactly_once")
    ap.add_argument("--framings", default="single,confluent")
    ap.add_argument("--profile", action="store_true", help="profile the single worker with cProfile")
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each run this many times: fresh deployments, order reversed",
    )
    args = parse(ap, events=2000, workers="1", feeds="simulate", rules="default,none", framings="single")
    bench = Bench(args)
    runs = runs_of(args)
    rounds: dict[str, list[dict[str, object]]] = {}
    try:
        for r in range(args.rounds):
            bench.round = r + 1
            if args.rounds > 1:
                print(f"round {r + 1} of {args.rounds}", flush=True)
            # every other round in reverse order: a run is not always first (or after the same one)
            for run in runs if r % 2 == 0 else runs[::-1]:
                bench.measure(run)
                row = bench.results[run.key]
                assert isinstance(row, dict)
                rounds.setdefault(run.key, []).append(row)
    finally:
        bench.close()
    if args.rounds > 1:
        for key, rows in rounds.items():
            bench.results[key] = mid = median_row(rows)
            print(f"{key}: median of {len(rows)} rounds: ratio {mid['ratio']:.2f}, "
                  f"ratio_fastavro {mid['ratio_fastavro']:.2f}")  # fmt: skip
    bench.costs(runs)
    write_results("throughput", bench.results)


if __name__ == "__main__":
    main()
