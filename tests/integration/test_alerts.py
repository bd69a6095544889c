"""Alerts against the real broker: every measure compared with values computed directly from
the events; SIGKILL mid-replay loses and doubles no transition; the SSE feed resumes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import random
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from alerts.lifecycle import fingerprint
from kafka import KafkaConsumer
from streams.codec import AvroCodec
from streams.reference import FORCE_NAMES, OUT_OF_COURT
from streams.settings import DEV_PSEUDONYM_KEY
from streams.simulate import simulate

from .conftest import Deployment, Worker, reference_category
from .test_exactness import kill_after

END = dt.date(2025, 6, 30)
RULES = """\
rules:
  - {id: sexual-count, description: d, severity: high, category: [sexual], measure: count,
     window: 91d, threshold: 2}
  - {id: harassment-rate, description: d, severity: medium, category: [harassment], measure: rate,
     window: 91d, threshold: 0.1, min_volume: 15}
  - {id: violence-spike, description: d, severity: medium, category: [other-violence], measure: spike,
     window: 30d, threshold: 0.5, min_volume: 15}
  - {id: violence-peer, description: d, severity: low, category: [other-violence, other], measure: peer,
     window: 91d, z: 1.96, min_volume: 30}
  - {id: da-cr, description: d, severity: high, category: [other-violence, harassment, stalking],
     domestic_abuse: true, disposals: [community-resolution], measure: case}
"""


def direct(events: list[Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(rule, force, category) -> {firing, numerator, denominator}, straight from the events."""
    latest: dict[str, Any] = {}
    for ev in events:
        if ev.crime_key not in latest or ev.outcome_date >= latest[ev.crime_key].outcome_date:
            latest[ev.crime_key] = ev
    at = max(ev.outcome_date for ev in latest.values())  # DW_CLOCK=stream

    def tally(
        cat: str, days: int, back: int, disposals: set[str], da: bool | None
    ) -> dict[str, tuple[int, int]]:
        last = at - dt.timedelta(days=days * back)
        first = last - dt.timedelta(days=days - 1)
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for ev in latest.values():
            if reference_category(ev) != cat or not first <= ev.outcome_date <= last:
                continue
            if da is not None and bool(ev.domestic_abuse) != da:
                continue
            out[ev.force_id][0] += ev.disposal in disposals
            out[ev.force_id][1] += ev.disposal != "pending"
        return {f: (out[f][0], out[f][1]) for f in FORCE_NAMES}

    res: dict[tuple[str, str, str], dict[str, Any]] = {}
    ooc = set(OUT_OF_COURT)
    for f, (y, _) in tally("sexual", 91, 0, ooc, None).items():
        res[("sexual-count", f, "sexual")] = {"firing": y >= 2, "numerator": y}
    for f, (y, n) in tally("harassment", 91, 0, ooc, None).items():
        res[("harassment-rate", f, "harassment")] = {
            "firing": n >= 15 and y / max(n, 1) >= 0.1,
            "numerator": y,
            "denominator": n,
        }
    now, before = tally("other-violence", 30, 0, ooc, None), tally("other-violence", 30, 1, ooc, None)
    for f in FORCE_NAMES:
        (y, n), (y0, n0) = now[f], before[f]
        r, r0 = (y / n if n else 0), (y0 / n0 if n0 else 0)
        ok = n >= 15 and n0 >= 15 and r0 > 0 and (r - r0) / r0 >= 0.5
        res[("violence-spike", f, "other-violence")] = {"firing": ok, "numerator": y, "denominator": n}
    for cat in ("other-violence", "other"):
        t = tally(cat, 91, 0, ooc, None)
        p0 = sum(y for y, _ in t.values()) / sum(n for _, n in t.values())
        for f, (y, n) in t.items():
            limit = p0 + 1.96 * math.sqrt(p0 * (1 - p0) / n) if n else None
            firing = n >= 30 and limit is not None and y / n > limit
            res[("violence-peer", f, cat)] = {"firing": firing, "numerator": y, "denominator": n}
    for cat in ("other-violence", "harassment", "stalking"):
        for f, (y, _) in tally(cat, 28, 0, {"community-resolution"}, True).items():
            res[("da-cr", f, cat)] = {"firing": y >= 1, "numerator": y}
    return res


def pseudonyms_in_scope(events: list[Any]) -> dict[tuple[str, str, str], set[str]]:
    """Pseudonyms (development key) of every crime each count/case alert could cite."""
    from streams.core.counting import pseudonym
    from streams.settings import DEV_PSEUDONYM_KEY

    out: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for ev in events:
        p = pseudonym(ev.crime_key, DEV_PSEUDONYM_KEY.encode())
        cat = reference_category(ev)
        if ev.disposal in OUT_OF_COURT:
            out[("sexual-count", ev.force_id, cat)].add(p)
        if ev.disposal == "community-resolution" and ev.domestic_abuse:
            out[("da-cr", ev.force_id, cat)].add(p)
    return out


def settled_alerts(worker: Worker, timeout_s: float = 120) -> dict[str, Any]:
    """The alert view once it has stopped changing for longer than one evaluation can be held
    back: the leader skips an evaluation when its follower has not read past the last
    transaction's commit marker within 5 s (``AlertLog.caught_up``)."""
    deadline, last, same = time.monotonic() + timeout_s, None, 0
    while time.monotonic() < deadline:
        data = worker.get("/api/alerts?state=all")
        same = same + 1 if last is not None and data["position"] == last["position"] else 0
        if same >= 8:
            return data
        last = data
        time.sleep(1.0)
    raise AssertionError("alerts did not settle")


def topic_records(deployment: Deployment) -> list[tuple[int, dict[str, Any]]]:
    """(offset, transition) of every committed record on the alerts topic. Offsets are not
    contiguous: the leader writes in transactions, and each commit marker takes an offset."""
    codec = AvroCodec("disposalwatch.Alert")
    s = deployment.settings
    c = KafkaConsumer(
        s.alerts_topic,
        bootstrap_servers=s.kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        isolation_level="read_committed",
    )
    out = [(m.offset, codec.decode(m.value)) for m in c]
    c.close()
    return out


def test_alerts_of_every_measure_match_direct_values_and_survive_sigkill(
    deployment: Deployment, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    deployment.env.update(DW_RULES=str(rules), DW_CLOCK="stream", DW_ALERT_INTERVAL_S="0.5")
    events = list(simulate(30000, seed=8, end=END))
    deployment.produce(events)
    rng = random.Random(3)
    for _ in range(2):  # killed twice while replaying and alerting
        kill_after(deployment.start_worker(ready=False), rng.randrange(3000, 12000))
    worker = deployment.start_worker()
    deployment.wait()
    data = settled_alerts(worker)

    want = direct(events)
    in_scope = pseudonyms_in_scope(events)
    want_firing = {k for k, v in want.items() if v["firing"]}
    for measure_rule in ("sexual-count", "harassment-rate", "violence-spike", "violence-peer", "da-cr"):
        assert any(k[0] == measure_rule for k in want_firing), f"the data makes no {measure_rule} alert fire"
    got_firing = {
        (a["rule_id"], a["force_id"], a["category"]) for a in data["alerts"] if a["state"] == "firing"
    }
    assert got_firing == want_firing
    # evidence is as of the transition (alerts that fired mid-replay keep the counts of then),
    # so check that it justifies the state it records
    for a in data["alerts"]:
        assert a["fingerprint"] == fingerprint(a["rule_id"], a["force_id"], a["category"])
        if a["state"] != "firing":
            continue
        if a["measure"] in ("count", "case", "rate", "spike"):
            assert a["value"] >= a["threshold"], a
        if a["measure"] == "peer":
            assert a["value"] > a["limit"] and a["limit"] > a["p0"] > 0 and a["denominator"] >= 30, a
        if a["measure"] == "rate":
            assert a["denominator"] >= 15 and a["value"] == a["numerator"] / a["denominator"], a
        if a["measure"] in ("count", "case"):  # evidence: pseudonyms of crimes the rule counted
            assert 1 <= len(a["crime_refs"]) <= min(10, a["numerator"]), a
            assert set(a["crime_refs"]) <= in_scope[(a["rule_id"], a["force_id"], a["category"])], a

    # on the topic: per alert, states alternate starting with firing (nothing doubled), and
    # the last state is the expected one (nothing lost)
    per_alert: dict[str, list[str]] = defaultdict(list)
    last: dict[tuple[str, str, str], str] = {}
    for _, r in topic_records(deployment):
        per_alert[r["fingerprint"]].append(r["state"])
        last[(r["rule_id"], r["force_id"], r["category"])] = r["state"]
    for fp, states in per_alert.items():
        assert states[0] == "firing" and all(a != b for a, b in zip(states, states[1:], strict=False)), (
            fp,
            states,
        )
    assert {k for k, s in last.items() if s == "firing"} == want_firing

    # the CLI prints the same alerts
    r = deployment.cli("alerts", "--url", worker.url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = "rule,force,category,state,severity,value,threshold,numerator,denominator"
    assert lines[0] == header + ",window_start,window_end,fired_at"
    assert len(lines) - 1 == len(want_firing)

    # SSE: everything from the start, then a reconnect with Last-Event-ID resumes after it
    offsets = [offset for offset, _ in topic_records(deployment)]
    assert sse_ids(worker, None, len(offsets)) == offsets
    k = len(offsets) // 2
    assert sse_ids(worker, offsets[k], len(offsets) - k - 1) == offsets[k + 1 :]

    # a rules change takes effect on restart: the alerts of a removed rule resolve, others stay
    worker.stop()
    rules.write_text(RULES.split("  - {id: da-cr")[0])
    worker = deployment.start_worker()
    after = settled_alerts(worker)
    firing = {(a["rule_id"], a["force_id"], a["category"]) for a in after["alerts"] if a["state"] == "firing"}
    assert firing == {k for k in want_firing if k[0] != "da-cr"}
    assert all(a["state"] == "resolved" for a in after["alerts"] if a["rule_id"] == "da-cr")


def sse_ids(worker: Worker, last_event_id: int | None, n: int) -> list[int]:
    req = urllib.request.Request(worker.url + "/api/alerts/stream")
    if last_event_id is not None:
        req.add_header("Last-Event-ID", str(last_event_id))
    ids: list[int] = []
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        while len(ids) < n:
            line = resp.readline().decode()
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            elif line.startswith("data: "):
                assert json.loads(line[6:])["id"] == ids[-1]
    return ids


def get_status(url: str, token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_tokens_scope_the_feed_and_refusals_are_counted(deployment: Deployment, tmp_path: Path) -> None:
    from streams.access import digest

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        f"tokens:\n  - {{name: met, sha256: {digest('met-secret')}, forces: [metropolitan]}}\n"
        f"  - {{name: all, sha256: {digest('all-secret')}, forces: all}}\n"
    )
    deployment.env.update(
        DW_RULES=str(rules), DW_CLOCK="stream", DW_ALERT_INTERVAL_S="0.5", DW_TOKENS_FILE=str(tokens)
    )
    deployment.produce(simulate(20000, seed=8, end=END))
    worker = deployment.start_worker()
    deployment.wait()
    time.sleep(3)
    url = worker.url + "/api/alerts?state=all"
    assert get_status(url)[0] == 401
    assert get_status(url, "guess")[0] == 401
    status, every = get_status(url, "all-secret")
    assert status == 200 and len({a["force_id"] for a in every["alerts"]}) > 1
    status, met = get_status(url, "met-secret")
    assert status == 200 and met["alerts"]
    assert {a["force_id"] for a in met["alerts"]} == {"metropolitan"}
    assert [a for a in every["alerts"] if a["force_id"] == "metropolitan"] == met["alerts"]
    assert get_status(worker.url + "/api/counts?group_by=category", "met-secret")[0] == 403
    status, counts = get_status(worker.url + "/api/counts?group_by=force", "met-secret")
    assert status == 200 and [r["force"] for r in counts["rows"]] == ["metropolitan"]
    # the workers' own endpoints answer only the peer credential, even on localhost
    from streams.access import PEER_HEADER, peer_credential

    local = worker.url + "/api/counts/local?group_by=force"
    assert get_status(local)[0] == 401
    assert get_status(worker.url + "/api/refs/local?first=2024-01-01&last=2024-12-31")[0] == 401
    req = urllib.request.Request(local, headers={PEER_HEADER: peer_credential(DEV_PSEUDONYM_KEY.encode())})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.load(resp)["rows"]
    # scraping and health stay open; refusals are counted
    assert worker.get("/healthz")["status"] == "ok"
    metrics = worker.metrics()
    assert 'disposal_api_denied_total{reason="missing_peer"} 2.0' in metrics
    assert 'disposal_api_denied_total{reason="missing_token"} 1.0' in metrics
    assert 'disposal_api_denied_total{reason="wrong_token"} 1.0' in metrics
    assert 'disposal_api_denied_total{reason="forbidden_force"} 1.0' in metrics
    # the CLI sends DW_TOKEN
    r = deployment.cli(
        "alerts", "--state", "all", "--format", "json", "--url", worker.url, DW_TOKEN="met-secret"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == met["alerts"]
    r = deployment.cli("alerts", "--url", worker.url)
    assert r.returncode == 2 and "HTTP 401" in r.stderr


POLICEUK = Path(__file__).resolve().parents[3] / "shared" / "data" / "policeuk" / "city-of-london-2024-2025"
POLICEUK_RULES = """\
rules:
  - {id: vso-count, description: d, severity: high, category: [violence-and-sexual-offences],
     measure: count, window: 91d, threshold: 1}
  - {id: vso-rate, description: d, severity: medium,
     category: [violence-and-sexual-offences, theft-from-the-person],
     measure: rate, window: 182d, threshold: 0.005, min_volume: 50}
"""


def test_policeuk_samples_alert_and_alerts_resolve_when_only_time_passes(
    deployment: Deployment, tmp_path: Path
) -> None:
    from streams.policeuk import Tally, events_from_files

    files = sorted(POLICEUK.glob("*.csv"))
    assert files, f"police.uk samples missing under {POLICEUK}"
    rules = tmp_path / "rules.yaml"
    rules.write_text(POLICEUK_RULES)
    deployment.env.update(
        DW_RULES=str(rules), DW_CLOCK="stream", DW_ALERT_INTERVAL_S="0.5", DW_RETENTION_DAYS="3650"
    )
    worker = deployment.start_worker()
    r = deployment.cli("ingest", "policeuk", *map(str, files))
    assert r.returncode == 0, r.stderr
    deployment.wait()
    data = settled_alerts(worker)

    events = list(events_from_files(files, Tally()))
    latest: dict[str, Any] = {}
    for ev in events:
        if ev.crime_key not in latest or ev.outcome_date >= latest[ev.crime_key].outcome_date:
            latest[ev.crime_key] = ev
    at = max(ev.outcome_date for ev in latest.values())

    def tally(cat: str, days: int) -> tuple[int, int]:
        first = at - dt.timedelta(days=days - 1)
        sel = [e for e in latest.values() if reference_category(e) == cat and first <= e.outcome_date <= at]
        return sum(e.disposal in OUT_OF_COURT for e in sel), sum(e.disposal != "pending" for e in sel)

    want = set()
    if tally("violence-and-sexual-offences", 91)[0] >= 1:
        want.add(("vso-count", "city-of-london", "violence-and-sexual-offences"))
    for cat in ("violence-and-sexual-offences", "theft-from-the-person"):
        y, n = tally(cat, 182)
        if n >= 50 and y / n >= 0.005:
            want.add(("vso-rate", "city-of-london", cat))
    assert want, "the samples make no alert fire"
    got = {(a["rule_id"], a["force_id"], a["category"]) for a in data["alerts"] if a["state"] == "firing"}
    assert got == want

    # one event elsewhere, half a year later: the stream clock moves on, City of London's windows
    # empty, and its alerts resolve although no event of its own arrived
    later = dataclasses.replace(
        next(iter(simulate(1, seed=2))),
        force_id="kent",
        crime_ref="LATER-1",
        event_id="later-1",
        outcome_date=at + dt.timedelta(days=183),
        outcome_number=1,
        disposal="charge",
    )
    deployment.produce([later])
    deployment.wait()
    time.sleep(2)
    after = settled_alerts(worker)
    assert {a["fingerprint"] for a in after["alerts"] if a["state"] == "firing"} == set()
    assert {
        (a["rule_id"], a["force_id"], a["category"]) for a in after["alerts"] if a["state"] == "resolved"
    } == want
