"""Alerts against the real broker: every measure compared with values computed directly from
the events; SIGKILL mid-replay loses and doubles no transition; the SSE feed resumes."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import random
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from alerts.lifecycle import fingerprint
from streams.codec import AvroCodec
from streams.model import OutcomeEvent
from streams.reference import FORCE_NAMES, OUT_OF_COURT
from streams.simulate import simulate

from .conftest import Deployment, Worker, reference_category
from .test_exactness import kill_after

END = dt.date(2025, 6, 30)
# keep_firing_for 0d: a firing alert resolves at the first evaluation whose resolve condition
# holds, so the final states follow from the final day's conditions (up to the band between)
RULES = """\
rules:
  - {id: sexual-count, description: d, severity: high, category: [sexual], measure: count,
     window: 91d, threshold: 2, keep_firing_for: 0d}
  - {id: harassment-rate, description: d, severity: medium, category: [harassment], measure: rate,
     window: 91d, threshold: 0.1, min_volume: 15, keep_firing_for: 0d}
  - {id: violence-spike, description: d, severity: medium, category: [other-violence], measure: spike,
     window: 30d, threshold: 0.5, min_volume: 15, keep_firing_for: 0d}
  - {id: violence-peer, description: d, severity: low, category: [other-violence, other], measure: peer,
     window: 91d, z: 1.96, min_volume: 30, keep_firing_for: 0d}
  - {id: da-cr, description: d, severity: high, category: [other-violence, harassment, stalking],
     domestic_abuse: true, disposals: [community-resolution], measure: case}
"""


def signals(end: dt.date) -> list[OutcomeEvent]:
    """Real changes on top of the simulator's steady data, so that the rate and spike rules have
    something to find: the Metropolitan Police cautions 40 more violence crimes in the last 30
    days; Dorset settles 25 harassment crimes by community resolution."""
    out = []
    for force, code, disposal, number, k in (
        ("metropolitan", "8N", "caution", 3, 40),
        ("dorset", "8L", "community-resolution", 8, 25),
    ):
        for i in range(k):
            day = end - dt.timedelta(days=1 + i % 25)
            out.append(
                OutcomeEvent(
                    event_id=f"signal-{force}-{i}",
                    force_id=force,
                    crime_ref=f"SIGNAL-{force}-{i}",
                    disposal=disposal,
                    outcome_number=number,
                    outcome_date=day,
                    recorded_at=dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC),
                    source_system="test",
                    offence_code=code,
                )
            )
    return out


# --- the statistics, computed independently of alerts/stats.py (closed forms, no scipy) -------


def wilson_low(y: int, n: int, z: float = 1.959964) -> float:
    p = y / n
    centre, margin = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / (1 + z * z / n)


def binom_cdf(k: int, n: int, p: float) -> float:
    if k < 0:
        return 0.0
    lp, lq = math.log(p), math.log(1 - p)
    return sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
        for i in range(0, min(k, n) + 1)
    )


def exact_limit(p0: float, n: int, z: float) -> float:
    """Spiegelhalter (2005) appendix A.1.1: interpolated binomial quantile."""
    prob = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    r = 0
    while binom_cdf(r, n, p0) < prob:
        r += 1
    below, at = binom_cdf(r - 1, n, p0), binom_cdf(r, n, p0)
    return (r - (at - prob) / (at - below)) / n


def fisher_greater(y1: int, n1: int, y0: int, n0: int) -> float:
    """P(at least y1 of the K = y1 + y0 hits fall in the first n1 of n1 + n0), hypergeometric."""
    k, total = y1 + y0, n1 + n0

    def lcomb(a: int, b: int) -> float:
        return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)

    return sum(
        math.exp(lcomb(k, x) + lcomb(total - k, n1 - x) - lcomb(total, n1))
        for x in range(y1, min(k, n1) + 1)
        if n1 - x <= total - k
    )


def direct(events: list[Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(rule, force, category) -> {breached, cleared, numerator, denominator}, straight from the
    events, for RULES: the evidence to fire, and the condition to resolve, on the last day."""
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
        res[("sexual-count", f, "sexual")] = {"breached": y >= 2, "cleared": y < 2, "numerator": y}
    for f, (y, n) in tally("harassment", 91, 0, ooc, None).items():
        enough = n >= 15
        res[("harassment-rate", f, "harassment")] = {
            "breached": enough and wilson_low(y, n) >= 0.1,
            "cleared": not enough or y / n < 0.1,
            "numerator": y,
            "denominator": n,
        }
    now, before = tally("other-violence", 30, 0, ooc, None), tally("other-violence", 30, 1, ooc, None)
    for f in FORCE_NAMES:
        (y, n), (y0, n0) = now[f], before[f]
        measurable = n >= 15 and n0 >= 15 and y0 > 0
        rise = (y / n - y0 / n0) / (y0 / n0) if measurable else 0.0
        res[("violence-spike", f, "other-violence")] = {
            "breached": measurable and rise >= 0.5 and fisher_greater(y, n, y0, n0) <= 0.05,
            "cleared": not measurable or rise < 0.25,
            "numerator": y,
            "denominator": n,
        }
    for cat in ("other-violence", "other"):
        t = tally(cat, 91, 0, ooc, None)
        p0 = sum(y for y, _ in t.values()) / sum(n for _, n in t.values())
        for f, (y, n) in t.items():
            enough = n >= 30
            res[("violence-peer", f, cat)] = {
                "breached": enough and y / n > exact_limit(p0, n, 1.96),
                "cleared": not enough or y / n <= exact_limit(p0, n, 1.46),
                "numerator": y,
                "denominator": n,
            }
    for cat in ("other-violence", "harassment", "stalking"):
        for f, (y, _) in tally(cat, 28, 0, {"community-resolution"}, True).items():
            res[("da-cr", f, cat)] = {"breached": y >= 1, "cleared": y == 0, "numerator": y}
    return res


def expect_firing(want: dict[tuple[str, str, str], dict[str, Any]], got: set[tuple[str, str, str]]) -> None:
    """Every alert with the evidence to fire is firing; none whose resolve condition holds is;
    an alert between the two may be either (it depends on the way there)."""
    breached = {k for k, v in want.items() if v["breached"]}
    cleared = {k for k, v in want.items() if v["cleared"]}
    assert breached <= got, f"should fire: {sorted(breached - got)}"
    assert not got & cleared, f"should have resolved: {sorted(got & cleared)}"


def pseudonyms_in_scope(events: list[Any], key: bytes) -> dict[tuple[str, str, str], set[str]]:
    """Pseudonyms (under ``key``) of every crime each count/case alert could cite."""
    from streams.core.counting import pseudonym

    out: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for ev in events:
        p = pseudonym(ev.crime_key, key)
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
            settled: dict[str, Any] = data
            return settled
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
    events = list(simulate(30000, seed=8, end=END)) + signals(END)
    deployment.produce(events)
    rng = random.Random(3)
    for _ in range(2):  # killed twice while replaying and alerting
        kill_after(deployment.start_worker(ready=False), rng.randrange(3000, 12000))
    worker = deployment.start_worker()
    deployment.wait()
    data = settled_alerts(worker)

    want = direct(events)
    in_scope = pseudonyms_in_scope(events, deployment.keys.pseudonym)
    for measure_rule in ("sexual-count", "harassment-rate", "violence-spike", "violence-peer", "da-cr"):
        assert any(
            k[0] == measure_rule and v["breached"] for k, v in want.items()
        ), f"the data makes no {measure_rule} alert fire"
    got_firing = {
        (a["rule_id"], a["force_id"], a["category"]) for a in data["alerts"] if a["state"] == "firing"
    }
    expect_firing(want, got_firing)
    # evidence is as of the transition (alerts that fired mid-replay keep the counts of then),
    # so check that it justifies the state it records
    for a in data["alerts"]:
        assert a["fingerprint"] == fingerprint(a["rule_id"], a["force_id"], a["category"])
        assert a["summary"], a
        if a["state"] != "firing":
            continue
        if a["measure"] in ("count", "case", "spike"):
            assert a["value"] >= a["threshold"], a
        if a["measure"] == "peer":
            assert a["value"] > a["limit"] and a["limit"] > a["p0"] > 0 and a["denominator"] >= 30, a
        if a["measure"] == "rate":  # the evidence: the Wilson lower bound reaches the threshold
            assert a["denominator"] >= 15 and a["value"] == a["numerator"] / a["denominator"], a
            assert a["interval_low"] >= a["threshold"] and a["confidence"] == 0.95, a
            assert a["interval_low"] == pytest.approx(wilson_low(a["numerator"], a["denominator"])), a
        if a["measure"] == "spike":  # the baseline, and a rise that is not noise
            assert a["baseline_denominator"] >= 15 and a["p_value"] <= 0.05, a
            assert a["p_value"] == pytest.approx(
                fisher_greater(
                    a["numerator"], a["denominator"], a["baseline_numerator"], a["baseline_denominator"]
                )
            ), a
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
    assert {k for k, s in last.items() if s == "firing"} == got_firing

    # the CLI prints the same alerts, with their evidence, rounded for people
    printed = deployment.cli("alerts", "--url", worker.url)
    assert printed.returncode == 0, printed.stderr
    rows = list(csv.DictReader(io.StringIO(printed.stdout)))
    assert list(rows[0]) == [
        "rule", "force", "category", "state", "severity", "measure", "value", "threshold", "numerator",
        "denominator", "p0", "limit", "interval_low", "interval_high", "window_start", "window_end",
        "fired_at", "summary", "description", "refs",
    ]  # fmt: skip
    assert {(x["rule"], x["force"], x["category"]) for x in rows} == got_firing
    assert all(x["summary"] and len(x["value"]) <= 7 for x in rows)

    # SSE: everything from the start, then a reconnect with Last-Event-ID resumes after it
    offsets = [offset for offset, _ in topic_records(deployment)]
    assert sse_ids(worker, None, len(offsets)) == offsets
    k = len(offsets) // 2
    assert sse_ids(worker, offsets[k], len(offsets) - k - 1) == offsets[k + 1 :]

    # a stop with a stream open: the stream ends at once, before any keep-alive, and the worker exits 0
    with urllib.request.urlopen(worker.url + "/api/alerts/stream", timeout=30) as resp:
        while not resp.readline().startswith(b"data: "):
            pass
        worker.proc.terminate()
        rest = resp.read().decode()  # to the end of the stream
    assert "keep-alive" not in rest
    worker.stop()
    assert worker.proc.returncode == 0, worker.log_tail()

    # a rules change takes effect on restart: the alerts of a removed rule resolve, others stay
    rules.write_text(RULES.split("  - {id: da-cr")[0])
    worker = deployment.start_worker()
    after = settled_alerts(worker)
    firing = {(a["rule_id"], a["force_id"], a["category"]) for a in after["alerts"] if a["state"] == "firing"}
    assert firing == {k for k in got_firing if k[0] != "da-cr"}
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
    deployment.produce(list(simulate(20000, seed=8, end=END)) + signals(END))
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
    assert get_status(url + "&force=kent", "met-secret")[0] == 403  # another force: refused, not empty
    assert get_status(worker.url + "/api/alerts/stream?force=kent", "met-secret")[0] == 403
    assert get_status(worker.url + "/api/counts?group_by=category", "met-secret")[0] == 403
    status, counts = get_status(worker.url + "/api/counts?group_by=force", "met-secret")
    assert status == 200 and [r["force"] for r in counts["rows"]] == ["metropolitan"]
    # the workers' own endpoints answer only the peer credential, even on localhost
    from streams.access import PEER_HEADER

    local = worker.url + "/api/counts/local?group_by=force"
    assert get_status(local)[0] == 401
    assert get_status(worker.url + "/api/refs/local?first=2024-01-01&last=2024-12-31")[0] == 401
    req = urllib.request.Request(local, headers={PEER_HEADER: deployment.keys.peer})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.load(resp)["rows"]
    # scraping and health stay open; refusals are counted
    assert worker.get("/healthz")["status"] == "ok"
    metrics = worker.metrics()
    assert 'disposal_api_denied_total{reason="missing_peer"} 2.0' in metrics
    assert 'disposal_api_denied_total{reason="missing_token"} 1.0' in metrics
    assert 'disposal_api_denied_total{reason="wrong_token"} 1.0' in metrics
    assert 'disposal_api_denied_total{reason="forbidden_force"} 3.0' in metrics
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
        if n >= 50 and wilson_low(y, n) >= 0.005:
            want.add(("vso-rate", "city-of-london", cat))
    assert want, "the samples make no alert fire"
    got = {(a["rule_id"], a["force_id"], a["category"]) for a in data["alerts"] if a["state"] == "firing"}
    assert got == want

    # events elsewhere, half a year later and a week after that: the stream clock moves on, City
    # of London's windows empty, and once they have been clear for the 7 evaluation days a firing
    # alert is held (keep_firing_for), its alerts resolve although no event of its own arrived
    template = next(iter(simulate(1, seed=2)))
    for days in (183, 191):
        later = dataclasses.replace(
            template,
            force_id="kent",
            crime_ref=f"LATER-{days}",
            event_id=f"later-{days}",
            outcome_date=at + dt.timedelta(days=days),
            outcome_number=1,
            disposal="charge",
        )
        deployment.produce([later])
        deployment.wait()
        time.sleep(2)
    time.sleep(2)
    after = settled_alerts(worker)
    assert {a["fingerprint"] for a in after["alerts"] if a["state"] == "firing"} == set()
    assert {
        (a["rule_id"], a["force_id"], a["category"]) for a in after["alerts"] if a["state"] == "resolved"
    } == want


def test_two_workers_alert_as_one_from_every_workers_totals(deployment: Deployment, tmp_path: Path) -> None:
    """The leader adds the other worker's rule totals (/api/aggregates/local) and asks it for the
    evidence of count and case alerts: the alerts are those of the direct model."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    deployment.env.update(DW_RULES=str(rules), DW_CLOCK="stream", DW_ALERT_INTERVAL_S="0.5")
    events = list(simulate(20000, seed=9, end=END)) + signals(END)
    deployment.produce(events)
    a = deployment.start_worker("a")
    b = deployment.start_worker("b")
    deployment.wait()
    from .test_scale_out import settled

    settled(a, b, deployment.settings.partitions)
    data = settled_alerts(a)
    got = {(x["rule_id"], x["force_id"], x["category"]) for x in data["alerts"] if x["state"] == "firing"}
    expect_firing(direct(events), got)
    assert {k[0] for k in got} >= {"harassment-rate", "violence-spike", "violence-peer", "da-cr"}
    in_scope = pseudonyms_in_scope(events, deployment.keys.pseudonym)
    for x in data["alerts"]:
        if x["state"] == "firing" and x["measure"] in ("count", "case"):
            assert 1 <= len(x["crime_refs"]) <= min(10, x["numerator"]), x
            assert set(x["crime_refs"]) <= in_scope[(x["rule_id"], x["force_id"], x["category"])], x
    assert settled_alerts(b)["alerts"] == data["alerts"]  # both serve the same feed


def test_a_case_officer_reidentifies_a_cited_crime_and_nobody_else_can(
    deployment: Deployment, tmp_path: Path
) -> None:
    from streams.access import digest
    from streams.core.counting import pseudonym

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        "tokens:\n"
        f"  - {{name: officer, sha256: {digest('officer')}, forces: all, permissions: [reidentify]}}\n"
        f"  - {{name: reader, sha256: {digest('reader')}, forces: all}}\n"
        f"  - {{name: kent-officer, sha256: {digest('kent')}, forces: [kent], permissions: [reidentify]}}\n"
    )
    deployment.env.update(
        DW_RULES=str(rules), DW_CLOCK="stream", DW_ALERT_INTERVAL_S="0.5", DW_TOKENS_FILE=str(tokens)
    )
    events = list(simulate(20000, seed=8, end=END)) + signals(END)
    deployment.produce(events)
    worker = deployment.start_worker()
    deployment.wait()
    time.sleep(3)
    status, data = get_status(worker.url + "/api/alerts?state=all", "officer")
    cited = next(a for a in data["alerts"] if a["crime_refs"] and a["force_id"] != "kent")
    force, p = cited["force_id"], cited["crime_refs"][0]
    url = f"{worker.url}/api/refs/{p}?force={force}"

    status, found = get_status(url, "officer")
    assert status == 200 and found["force"] == force and found["pseudonym"] == p
    assert pseudonym(f"{force}/{found['crime_ref']}", deployment.keys.pseudonym) == p
    assert found["crime_ref"] in {ev.crime_ref for ev in events if ev.force_id == force}
    assert get_status(url, "reader")[0] == 403  # no permission
    assert get_status(url, "kent")[0] == 403  # another force
    assert get_status(url, None)[0] == 401
    assert get_status(f"{worker.url}/api/refs/0123456789abcdef?force={force}", "officer")[0] == 404
    metrics = worker.metrics()
    assert f'disposal_reidentifications_total{{force="{force}",outcome="found"}} 1.0' in metrics
    assert f'disposal_reidentifications_total{{force="{force}",outcome="refused"}} 2.0' in metrics
    assert 'disposal_api_denied_total{reason="no_permission"} 1.0' in metrics
    log = worker.log.read_text()
    assert f"re-identification found: token officer, force {force}, pseudonym {p}" in log
    assert found["crime_ref"] not in log  # the reference itself is never logged
