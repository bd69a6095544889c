"""Latency from an event being produced to its alert reaching an SSE client, under load.

    DW_KAFKA=... python bench/alert_latency.py [--rate 1000] [--probes 60]

A worker runs with one case rule (community resolution on a domestic-abuse case). A background
thread produces synthetic events at --rate events/s (none of them breaching the rule); every
1.5 s a probe event breaches it for a (force, category) not yet firing, so it opens a new alert.
An SSE client on /api/alerts/stream records when each alert arrives. Prints p50/p99/max of
produce -> SSE and writes bench/results/alert-latency-<date>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import parse, write_results  # noqa: E402

from streams.producer import EventProducer, ensure_topics  # noqa: E402
from streams.reference import FORCE_NAMES  # noqa: E402
from streams.simulate import simulate  # noqa: E402
from tests.integration.conftest import Deployment  # noqa: E402

RULES = """\
rules:
  - {id: da-cr, description: community resolution on a domestic-abuse case, severity: high,
     category: [other-violence, harassment, stalking], domestic_abuse: true,
     disposals: [community-resolution], measure: case}
"""


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--probes", type=int, default=60)
    args = parse(ap, rate=200.0, probes=2)
    tmp = Path(tempfile.mkdtemp(prefix="dw-latency-"))
    (tmp / "rules.yaml").write_text(RULES)
    tag = uuid.uuid4().hex[:8]
    env = {
        "DW_KAFKA": os.environ["DW_KAFKA"],
        "DW_TOPIC_PREFIX": f"l{tag}.",
        "DW_APP_ID": f"lat-{tag}",
        "DW_RULES": str(tmp / "rules.yaml"),
        "DW_LOG_LEVEL": "warning",
    }
    d = Deployment(env, tmp)
    ensure_topics(d.settings)
    worker = d.start_worker()
    arrived: dict[tuple[str, str], float] = {}
    stop = threading.Event()

    def listen() -> None:
        with urllib.request.urlopen(worker.url + "/api/alerts/stream", timeout=600) as resp:
            for raw in resp:
                line = raw.decode()
                if line.startswith("data: "):
                    a = json.loads(line[6:])
                    if a["state"] == "firing":
                        arrived.setdefault((a["force_id"], a["category"]), time.perf_counter())
                if stop.is_set():
                    return

    sent_bg = [0]

    def background() -> None:
        with EventProducer(d.settings) as p:
            start = time.perf_counter()
            for ev in simulate(10_000_000, seed=5, days=300):
                if ev.domestic_abuse and ev.disposal == "community-resolution":
                    continue
                if stop.is_set():
                    return
                ahead = start + sent_bg[0] / args.rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
                p.send(ev)
                sent_bg[0] += 1

    threading.Thread(target=listen, daemon=True).start()
    bg = threading.Thread(target=background, daemon=True)
    bg.start()
    time.sleep(5)
    template = next(iter(simulate(1, seed=1)))
    today = dt.datetime.now(dt.UTC).date()
    pairs = [(f, c) for c in ("other-violence", "harassment", "stalking") for f in sorted(FORCE_NAMES)]
    sent: dict[tuple[str, str], float] = {}
    with EventProducer(d.settings) as probe:  # each probe flushed at once: no linger
        for i, (force, cat) in enumerate(pairs[: args.probes]):
            code = {"other-violence": "8N", "harassment": "8L", "stalking": "8Q"}[cat]
            ev = dataclasses.replace(
                template,
                event_id=f"probe-{tag}-{i}",
                crime_ref=f"PROBE-{i}",
                force_id=force,
                offence_code=code,
                outcome_number=8,
                disposal="community-resolution",
                domestic_abuse=True,
                outcome_date=today,
            )
            sent[(force, cat)] = time.perf_counter()
            probe.send(ev)
            probe._producer.flush()
            time.sleep(1.5)
    deadline = time.monotonic() + 30
    while len([k for k in sent if k in arrived]) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.2)
    elapsed_bg = sent_bg[0]
    stop.set()
    worker.stop()
    lat = [arrived[k] - sent[k] for k in sent if k in arrived]
    missing = len(sent) - len(lat)
    if not lat:
        raise SystemExit(f"none of the {len(sent)} probe alerts arrived within 30 s")
    result = {
        "date": today.isoformat(),
        "background_rate_target": args.rate,
        "background_events": elapsed_bg,
        "probes": len(sent),
        "missing": missing,
        "p50_s": percentile(lat, 0.5),
        "p99_s": percentile(lat, 0.99),
        "max_s": max(lat),
    }
    ms = {k: f"{result[k] * 1000:.0f} ms" for k in ("p50_s", "p99_s", "max_s")}
    print(
        f"produce -> SSE latency over {len(lat)} alerts at {args.rate:.0f} events/s background: "
        f"p50 {ms['p50_s']}, p99 {ms['p99_s']}, max {ms['max_s']}"
        + (f"; {missing} alerts never arrived" if missing else "")
    )
    write_results("alert-latency", result, str(result["date"]))


if __name__ == "__main__":
    main()
