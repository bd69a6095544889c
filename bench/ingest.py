"""Ingest speed: `disposal-watch ingest` rows/s for both inputs, next to a raw produce loop of
pre-encoded records with the same client, in the same run.

Usage (a broker in DW_KAFKA; `make bench-ingest` starts one):
    python bench/ingest.py [--events 300000] [--copies 10] [--repeats 5] [--clients]

Inputs, built in a temporary directory:
- jsonl: `disposal-watch simulate --out` of --events events (all 45 forces);
- police.uk: the samples in ../shared/data/policeuk (both City of London years, as shipped), and
  the same files --copies times over (a larger input, to see the rate past start-up).
Each input is ingested --repeats times by the real CLI, as a subprocess, into a fresh topic
prefix. For each: the median wall time of the whole command (rows / wall: what a user sees), and
the median after subtracting the start-up, measured as the median of ingesting an empty file
(interpreter, imports, topic check, producer start and flush).

The raw loop, in this process, right after each input's ingests: the same records, encoded
beforehand, produced with the CLI's own producer (`streams.producer.EventProducer`, same
settings) and flushed: the ceiling the client gives. With --clients, kafka-python and aiokafka
produce the same records too (acks=all, the same linger and batch), so the choice of client
can be checked on this machine.

Timings drift on shared machines: compare the ratio to the raw loop, not absolute rates.
Prints a table; writes bench/results/ingest-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from harness import CLI, ROOT, parse, settings_of, write_results

from streams.ingest import encoded, jsonl_tasks, policeuk_encoded
from streams.producer import EventProducer, ensure_topics

SAMPLES = ROOT.parent / "shared" / "data" / "policeuk"


def run_cli(env: dict[str, str], *args: str) -> float:
    """Wall seconds of one `disposal-watch` command; exits on failure, showing its stderr."""
    t = time.perf_counter()
    r = subprocess.run([CLI, *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"`disposal-watch {' '.join(args)}` exited {r.returncode}:\n{r.stderr}")
    return took


def records_of(kind: str, files: list[Path]) -> tuple[int, list[tuple[bytes, bytes]]]:
    """(rows read, records) of an input, as the CLI makes them."""
    chunks = encoded(jsonl_tasks(files), 1) if kind == "jsonl" else policeuk_encoded(files, 1)
    rows, records = 0, []
    for chunk in chunks:
        rows += chunk.rows
        records += chunk.records
    return rows, records


def confluent_raw(env: dict[str, str], records: list[tuple[bytes, bytes]]) -> float:
    settings = settings_of(env)
    t = time.perf_counter()
    producer = EventProducer(settings)
    for key, value in records:
        producer.send_raw(key, value)
    stats = producer.close()
    if stats.failed:
        raise SystemExit(f"raw loop: {stats.failed} records failed: {stats.errors}")
    return len(records) / (time.perf_counter() - t)


def kafka_python_raw(env: dict[str, str], records: list[tuple[bytes, bytes]]) -> float:
    from kafka import KafkaProducer

    settings = settings_of(env)
    t = time.perf_counter()
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka.split(","), acks="all", linger_ms=20, batch_size=1_000_000
    )
    for key, value in records:
        producer.send(settings.disposals_topic, key=key, value=value)
    producer.flush()
    producer.close()
    return len(records) / (time.perf_counter() - t)


def aiokafka_raw(env: dict[str, str], records: list[tuple[bytes, bytes]]) -> float:
    from aiokafka import AIOKafkaProducer

    settings = settings_of(env)

    async def run() -> float:
        t = time.perf_counter()
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka, acks="all", linger_ms=20, max_batch_size=1_000_000
        )
        await producer.start()
        try:
            batch = []
            for key, value in records:
                batch.append(await producer.send(settings.disposals_topic, key=key, value=value))
                if len(batch) >= 10_000:
                    await asyncio.gather(*batch)
                    batch = []
            await asyncio.gather(*batch)
        finally:
            await producer.stop()
        return len(records) / (time.perf_counter() - t)

    return asyncio.run(run())


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000, help="simulated events in the jsonl input")
    ap.add_argument("--copies", type=int, default=10, help="police.uk samples copied this often")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--clients", action="store_true", help="also time kafka-python and aiokafka raw loops")
    args = parse(ap, events=2000, copies=1, repeats=1, clients=True)

    work = Path(tempfile.mkdtemp(prefix="dw-bench-ingest-"))
    env = {**os.environ, "DW_TOPIC_PREFIX": f"bench-{uuid.uuid4().hex[:6]}.", "DW_PARTITIONS": "8"}
    ensure_topics(settings_of(env))
    try:
        jsonl = work / "events.jsonl"
        run_cli(env, "simulate", "--events", str(args.events), "--out", str(jsonl), "--seed", "12")
        empty = work / "empty.jsonl"
        empty.write_text("")
        samples = sorted(SAMPLES.glob("*/*.csv"))
        big = work / "policeuk-copies"
        big.mkdir()
        for i in range(args.copies):
            for f in samples:
                shutil.copy(f, big / f"c{i}-{f.parent.name}-{f.name}")
        inputs = {
            "jsonl": ("jsonl", [jsonl]),
            "policeuk samples": ("policeuk", samples),
            f"policeuk samples x{args.copies}": ("policeuk", sorted(big.glob("*.csv"))),
        }
        startup = median([run_cli(env, "ingest", "jsonl", str(empty)) for _ in range(args.repeats)])
        results: dict[str, object] = {
            "date": dt.datetime.now(dt.UTC).date().isoformat(),
            "cores": len(os.sched_getaffinity(0)),
            "repeats": args.repeats,
            "startup_s": round(startup, 3),
            "inputs": {},
        }
        print(f"start-up (ingest of an empty file), median of {args.repeats}: {startup:.2f} s\n")
        print(f"{'input':<24}{'rows':>9}{'wall s':>9}{'rows/s':>10}", end="")
        print(f"{'past start-up':>15}{'raw loop/s':>12}{'ratio':>7}")
        for name, (kind, files) in inputs.items():
            rows, records = records_of(kind, files)
            walls = [run_cli(env, "ingest", kind, *map(str, files)) for _ in range(args.repeats)]
            raws = [confluent_raw(env, records) for _ in range(args.repeats)]
            wall = median(walls)
            whole, marginal, raw = rows / wall, rows / max(1e-9, wall - startup), median(raws)
            entry: dict[str, object] = {
                "rows": rows,
                "records": len(records),
                "wall_s": [round(w, 3) for w in walls],
                "rows_per_s": round(whole),
                "rows_per_s_past_startup": round(marginal),
                "raw_produce_per_s": round(raw),
                "ratio_to_raw": round(whole / raw, 3),
                "ratio_to_raw_past_startup": round(marginal / raw, 3),
            }
            if args.clients:
                entry["raw_kafka_python_per_s"] = round(kafka_python_raw(env, records))
                entry["raw_aiokafka_per_s"] = round(aiokafka_raw(env, records))
            results["inputs"][name] = entry  # type: ignore[index]
            print(f"{name:<24}{rows:>9,}{wall:>9.2f}{whole:>10,.0f}", end="")
            print(f"{marginal:>15,.0f}{raw:>12,.0f}{whole / raw:>7.2f}")
            if args.clients:
                print(
                    f"{'':<24}raw kafka-python {entry['raw_kafka_python_per_s']:,}/s, "
                    f"aiokafka {entry['raw_aiokafka_per_s']:,}/s"
                )
        write_results("ingest", results, str(results["date"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
