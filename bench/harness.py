"""What the benchmarks share: events, a transaction that holds them back, worker processes, the
raw consume-and-decode loop."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fastavro

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streams.codec import EVENT_CODEC, HEADER_LEN, MAGIC, decode_outcome, outcome_record  # noqa: E402
from streams.framing import SINGLE_OBJECT, Framing  # noqa: E402
from streams.kafka_local import free_port  # noqa: E402
from streams.model import OutcomeEvent  # noqa: E402
from streams.policeuk import Tally, events_from_files  # noqa: E402
from streams.producer import ensure_topics, lag  # noqa: E402
from streams.reference import FORCE_NAMES  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "data" / "policeuk" / "city-of-london-2016-2017"
CLI = str(Path(sys.executable).parent / "disposal-watch")


def policeuk_shaped(n: int) -> list[OutcomeEvent]:
    base = list(events_from_files(sorted(SAMPLES.glob("*.csv")), Tally()))
    if not base:
        raise SystemExit(f"no police.uk samples in {SAMPLES} (../shared beside the checkout)")
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


SINGLE_OBJECT_HEADER = MAGIC + EVENT_CODEC.fingerprint
_PARSED = fastavro.parse_schema(EVENT_CODEC.schema)


def _project_decode(value: bytes) -> object:
    if value[0] == 0:  # Confluent's framing: the same body under a registry id
        value = SINGLE_OBJECT_HEADER + value[5:]
    return decode_outcome(value)


def _fastavro_decode(value: bytes) -> object:
    """What a plain Python consumer does: fastavro's public reader into a dict."""
    buf = io.BytesIO(value)
    buf.seek(5 if value[0] == 0 else HEADER_LEN)
    return fastavro.schemaless_reader(buf, _PARSED)


#: the raw loops' decoders: the project's own (the written-out reader, into the event) and
#: issue 18's baseline, ``fastavro.schemaless_reader`` into a dict
RAW_DECODERS = {"project": _project_decode, "fastavro": _fastavro_decode}


async def raw_loop(bootstrap: str, topic: str, n: int, decoder: str = "project") -> float:
    """Events/s of aiokafka consume + an Avro decode (``RAW_DECODERS``), from first record to last."""
    from aiokafka import AIOKafkaConsumer

    decode = RAW_DECODERS[decoder]
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    seen = 0
    t0 = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for records in batch.values():
                if t0 is None:
                    t0 = time.perf_counter()
                for r in records:
                    decode(r.value)
                    seen += 1
        return seen / (time.perf_counter() - (t0 or time.perf_counter()))
    finally:
        await consumer.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, its own threads only."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu_s() -> float:
    """CPU seconds every core of the machine has spent busy (not idle, not waiting on I/O)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / CLK_TCK


def get_json(url: str) -> Any:
    """The JSON a worker answers at ``url``."""
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.load(r)


class Workers:
    """`count` worker processes of one deployment, each with its own data directory and port."""

    def __init__(self, env: dict[str, str], count: int, workdir: Path, profile: bool) -> None:
        # one deployment: every worker shares one secret (each would otherwise make its own)
        env = {"DW_PSEUDONYM_KEY": secrets.token_hex(32), **env}
        self.env, self.count, self.workdir, self.profile = env, count, workdir, profile
        self.settings = settings_of(env)
        self.ports = [free_port() for _ in range(count)]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.procs = []
        for i in range(self.count):
            wenv = {**self.env, "DW_DATA_DIR": str(self.workdir / f"w{i}"), "DW_WEB_PORT": str(self.ports[i])}
            cmd = [CLI, "worker"]
            if self.profile and i == 0:
                cmd = [sys.executable, "-m", "cProfile", "-o", str(self.workdir / "worker.prof")]
                cmd += ["-m", "streams.cli", "worker"]
            log = (self.workdir / f"w{i}.log").open("a")
            self.procs.append(subprocess.Popen(cmd, env=wenv, stdout=log, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(120)

    def cpu_s(self) -> float:
        """CPU seconds the live worker processes have used."""
        return sum(cpu_s(p.pid) for p in self.procs)

    def processed(self) -> int:
        total = 0
        for u in self.urls:
            with contextlib.suppress(OSError):
                total += get_json(u + "/healthz")["records_processed"]
        return total

    def settled(self) -> bool:
        """Every worker ok, and every partition owned by one of them."""
        try:
            health = [get_json(u + "/healthz") for u in self.urls]
        except OSError:
            return False
        owned = sorted(p for h in health for p in h["partitions"])
        return all(h["status"] == "ok" for h in health) and owned == list(range(self.settings.partitions))

    def wait_settled(self, timeout_s: float = 300) -> float:
        """Seconds until the group has settled."""
        t = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while not self.settled():
            if time.monotonic() > deadline:
                raise SystemExit(f"workers did not settle; logs in {self.workdir}")
            time.sleep(0.05)
        return time.perf_counter() - t

    def rate(self, held: HeldBack, timeout_s: float = 1800) -> float:
        """Events/s of a settled group over ``held`` events, released now: from the release to
        the last record processed, once the group's lag is 0."""
        deadline = time.monotonic() + timeout_s
        n0 = self.processed()
        held.release()
        t0 = time.perf_counter()
        last_t, last_n, next_lag_check = t0, n0, 0.0
        while True:
            done, now = self.processed(), time.perf_counter()
            if done != last_n:
                last_t, last_n = now, done
            if now >= next_lag_check:
                next_lag_check = now + 0.5
                if not any(lag(self.settings).values()):
                    return (last_n - n0) / max(1e-9, last_t - t0)
            if time.monotonic() > deadline:
                raise SystemExit(f"workers processed {done} in {timeout_s}s; logs in {self.workdir}")
            time.sleep(0.05)

    def counts(self) -> dict[tuple[str, ...], int]:
        data = get_json(self.urls[0] + "/api/counts?group_by=force,category,disposal,day&window=all")
        return {(r["force"], r["category"], r["disposal"], r["day"]): r["count"] for r in data["rows"]}


def metric(url: str, name: str) -> float:
    """One unlabelled series of a worker's /metrics (0 when absent)."""
    with urllib.request.urlopen(url + "/metrics", timeout=60) as r:
        text = r.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def du_mb(path: Path) -> float:
    """Size of a directory on disk, in MB."""
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[0])


def differing(got: dict[tuple[str, ...], int], want: dict[tuple[str, ...], int]) -> int:
    return sum(1 for k in set(got) | set(want) if got.get(k, 0) != want.get(k, 0))


class HeldBack:
    """Events produced in one Kafka transaction, invisible to the workers (who read committed
    records only) until ``release``: so that a group of workers can settle before it reads."""

    def __init__(
        self, settings: Settings, events: list[OutcomeEvent], framing: Framing = SINGLE_OBJECT
    ) -> None:
        from kafka import KafkaProducer

        self._producer = KafkaProducer(
            bootstrap_servers=settings.kafka.split(","),
            transactional_id=f"bench-{uuid.uuid4().hex[:8]}",
            transaction_timeout_ms=900_000,
            linger_ms=20,
            batch_size=256 * 1024,
        )
        self._producer.init_transactions()
        self._producer.begin_transaction()
        t = time.perf_counter()
        for ev in events:
            key, value = outcome_record(ev)
            self._producer.send(settings.disposals_topic, key=key, value=framing.frame(value))
        self._producer.flush()
        self.produce_per_s = len(events) / (time.perf_counter() - t)
        self.released = False

    def release(self) -> None:
        self._producer.commit_transaction()
        self._producer.close()
        self.released = True


def distinct_crimes(n: int) -> list[OutcomeEvent]:
    """``n`` events, each of a crime of its own (so ``n`` crimes held): police.uk-shaped."""
    base = list(events_from_files(sorted(SAMPLES.glob("*.csv")), Tally()))
    if not base:
        raise SystemExit(f"no police.uk samples in {SAMPLES} (../shared beside the checkout)")
    forces = sorted(FORCE_NAMES)
    return [
        dataclasses.replace(
            base[i % len(base)],
            force_id=forces[(i // len(base)) % len(forces)],
            crime_ref=f"R{i}",
            event_id=f"r{i}",
        )
        for i in range(n)
    ]


def settings_of(env: dict[str, str]) -> Settings:
    return load_settings(**{k[3:].lower(): v for k, v in env.items() if k.startswith("DW_")})


#: set by ``parse``: a smoke run (``--smoke``) writes no results
SMOKE = False


def parse(ap: argparse.ArgumentParser, **tiny: object) -> argparse.Namespace:
    """The script's arguments, with ``--smoke``: the sizes ``tiny`` gives, which take seconds and
    show only that the script still runs against the code it measures (``make test`` runs every
    script so). A smoke run's figures mean nothing, and are printed but never written."""
    global SMOKE
    ap.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds: only that the script still runs"
    )
    args = ap.parse_args()
    if args.smoke:
        SMOKE = True
        for name, value in tiny.items():
            if not hasattr(args, name):
                raise SystemExit(f"--smoke sets {name}, which the script has no argument for")
            setattr(args, name, value)
    return args


def write_results(name: str, results: Mapping[str, Any], date: str | None = None) -> Path | None:
    """Print ``results`` and write them to bench/results/<name>-<date>.json (today, UTC, unless
    given), never over an earlier file of the same day (then ``-run2`` and on). Nothing is
    written for a smoke run."""
    text = json.dumps(results, indent=2)
    print(text)
    if SMOKE:
        print("a smoke run: no results written")
        return None
    day = date or dt.datetime.now(dt.UTC).date().isoformat()
    out = ROOT / "bench" / "results" / f"{name}-{day}.json"
    n = 1
    while out.exists():
        n += 1
        out = out.with_name(f"{name}-{day}-run{n}.json")
    out.write_text(text + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return out


def stream_deployment(
    name: str, partitions: int, retention_days: int = 3650, log_level: str = "info"
) -> tuple[dict[str, str], Path]:
    """A new deployment under the stream clock: its environment (topics of its own, made here,
    and an app id of its own, both ``<name>-<tag>``) and an empty working directory under var/."""
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DW_TOPIC_PREFIX": f"{tag}.",
        "DW_APP_ID": tag,
        "DW_PARTITIONS": str(partitions),
        "DW_CLOCK": "stream",
        "DW_RETENTION_DAYS": str(retention_days),
        "DW_LOG_LEVEL": log_level,
    }
    ensure_topics(settings_of(env))
    workdir = ROOT / "var" / tag
    workdir.mkdir(parents=True)
    return env, workdir
