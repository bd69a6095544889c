"""The oversight dashboard in a real browser: Debian's chromium, driven by Playwright.

Chromium must be installed (``scripts/tools.sh`` installs it for ``make test``); without it these
tests fail, they never skip.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.lifecycle import fingerprint
from streams.model import OutcomeEvent
from streams.simulate import simulate

from .conftest import Deployment, Worker

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "policeuk"
END = dt.date(2025, 6, 30)

POLICEUK_RULES = """\
rules:
  - {id: vso-rate, description: violence and sexual offences settled out of court above 1%,
     severity: medium, category: [violence-and-sexual-offences], measure: rate, window: 365d,
     threshold: 0.01, min_volume: 20}
  - {id: vso-peer, description: violence and sexual offences settled out of court far above other forces,
     severity: low, category: [violence-and-sexual-offences], measure: peer, window: 365d, z: 3.09}
"""

RULES = """\
rules:
  - {id: harassment-peer, description: harassment settled out of court far above other forces,
     severity: medium, category: [harassment], measure: peer, window: 365d, z: 3.09, min_volume: 20}
  - {id: da-cr, description: community resolution on a domestic-abuse case, severity: high,
     category: [harassment, stalking], domestic_abuse: true, disposals: [community-resolution],
     measure: case, window: 365d}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "the dashboard tests need Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


def api(worker: Worker, path: str, token: str | None = None) -> Any:
    req = urllib.request.Request(worker.url + path)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def case_breach(force: str, ref: str, day: dt.date) -> OutcomeEvent:
    """A harassment crime of ``force`` settled by community resolution on a domestic-abuse case."""
    return OutcomeEvent(
        event_id=f"breach-{force}-{ref}",
        force_id=force,
        crime_ref=ref,
        disposal="community-resolution",
        outcome_date=day,
        recorded_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
        source_system="test",
        offence_code="8L",
        outcome_number=8,
        domestic_abuse=True,
    )


def page_fingerprints(page: Any, list_id: str = "firing") -> set[str]:
    script = "els => els.map(e => e.dataset.fingerprint)"
    return set(page.eval_on_selector_all(f"#{list_id} [data-fingerprint]", script))


def wait_settled(worker: Worker, token: str | None = None, quiet_s: float = 3.0) -> None:
    """Until the alerts topic has not moved for ``quiet_s`` (the evaluator has caught up)."""
    last, since = None, time.monotonic()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pos = api(worker, "/api/alerts?state=all", token)["position"]
        if pos != last:
            last, since = pos, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.5)
    raise AssertionError("alerts kept changing for 120 s")


def test_police_uk_replay_lists_exactly_the_firing_alerts(
    deployment: Deployment, tmp_path: Path, browser: Any
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(POLICEUK_RULES)
    deployment.env.update(
        DW_RULES=str(rules), DW_CLOCK="stream", DW_ALERT_INTERVAL_S="0.5", DW_RETENTION_DAYS="3650"
    )
    worker = deployment.start_worker()
    r = deployment.cli("ingest", "policeuk", *map(str, sorted(SAMPLES.glob("*/*.csv"))))
    assert r.returncode == 0, r.stderr
    deployment.wait()
    wait_settled(worker)
    firing = {a["fingerprint"] for a in api(worker, "/api/alerts?state=firing")["alerts"]}
    assert firing, "the rules should find City of London's out-of-court share"

    page = browser.new_page()
    page.goto(worker.url + "/")
    assert page_fingerprints(page) == firing
    # one funnel, one point per force in scope (the rule covers all 45 forces)
    points = page.eval_on_selector_all(
        'figure[data-rule="vso-peer"] circle[data-force]', "els => els.map(e => e.dataset.force)"
    )
    assert len(points) == len(set(points)) == 45
    # the data's date is stated, and it is the stream clock's
    assert "Data up to 2025-" in page.inner_text("#as-of")
    # a point's numbers on focus, and the same numbers in the table
    page.focus('circle[data-force="city-of-london"]')
    label = page.get_attribute('circle[data-force="city-of-london"]', "aria-label") or ""
    assert label.startswith("City of London Police: ") and " of " in label
    assert page.is_visible(".tip")
    page.close()


def test_alerts_arrive_live_and_a_kent_token_sees_kent_only(
    deployment: Deployment, tmp_path: Path, browser: Any
) -> None:
    from streams.access import digest

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        f"tokens:\n  - {{name: kent, sha256: {digest('kent-secret')}, forces: [kent]}}\n"
        f"  - {{name: all, sha256: {digest('all-secret')}, forces: all}}\n"
    )
    deployment.env.update(
        DW_RULES=str(rules), DW_CLOCK="stream", DW_ALERT_INTERVAL_S="0.5", DW_TOKENS_FILE=str(tokens)
    )
    events = [
        dataclasses.replace(e, domestic_abuse=False) if e.domestic_abuse else e
        for e in simulate(15000, seed=4, end=END)
    ]
    deployment.produce([*events, case_breach("kent", "K/1", END), case_breach("durham", "D/1", END)])
    worker = deployment.start_worker()
    deployment.wait()
    wait_settled(worker, "all-secret")

    # without a token: the sign-in form, not the data
    page = browser.new_context().new_page()
    page.goto(worker.url + "/")
    assert page.is_visible("form.signin")
    page.fill("#token", "wrong")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text("main")

    # signed in with a token for every force: exactly the firing alerts of the API
    page.fill("#token", "all-secret")
    page.click("button[type=submit]")
    page.wait_for_selector("#firing")
    firing = {a["fingerprint"] for a in api(worker, "/api/alerts?state=firing", "all-secret")["alerts"]}
    assert fingerprint("da-cr", "kent", "harassment") in firing
    assert page_fingerprints(page) == firing
    page.wait_for_function("document.getElementById('live').textContent === 'live'", timeout=10_000)

    # an alert made to fire now appears without a reload, within 2 s of the event being produced
    new = fingerprint("da-cr", "essex", "harassment")
    assert new not in firing
    t0 = time.monotonic()
    deployment.produce([case_breach("essex", "E/1", END)])
    page.wait_for_selector(f'#firing [data-fingerprint="{new}"]', timeout=2_000)
    assert time.monotonic() - t0 < 2.0

    # a kent token sees kent only: alerts, funnel points, force pages
    kent = browser.new_context().new_page()
    kent.goto(worker.url + "/signin")
    kent.fill("#token", "kent-secret")
    kent.click("button[type=submit]")
    kent.wait_for_selector("#firing")
    shown = kent.eval_on_selector_all("[data-fingerprint]", "els => els.map(e => e.dataset.fingerprint)")
    kents = api(worker, "/api/alerts?state=all", "kent-secret")["alerts"]
    assert shown and set(shown) == {a["fingerprint"] for a in kents}
    assert fingerprint("da-cr", "durham", "harassment") not in shown
    forces = kent.eval_on_selector_all("circle[data-force]", "els => els.map(e => e.dataset.force)")
    assert forces == ["kent"]
    assert kent.goto(worker.url + "/force/kent").status == 200
    assert kent.goto(worker.url + "/force/durham").status == 403
    csv_status = kent.goto(worker.url + "/force/durham/counts.csv").status
    assert csv_status == 403
    # the session cookie is the only credential the browser holds: HttpOnly, this session only
    cookie = next(c for c in kent.context.cookies() if c["name"] == "dw_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] == -1
