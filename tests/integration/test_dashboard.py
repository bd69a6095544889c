"""The oversight dashboard in a real browser: Debian's chromium, driven by Playwright.

Chromium must be installed (``scripts/tools.sh`` installs it for ``make test``); without it these
tests fail, they never skip.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import shutil
import time
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.lifecycle import fingerprint
from streams.core.classify import category_of
from streams.core.counting import pseudonym
from streams.dashboard.national import Change, Figures, Line, Period, Quarter
from streams.dashboard.national_page import national_page
from streams.dashboard.scrutiny import Candidate, in_scope
from streams.dashboard.scrutiny_page import scrutiny_page
from streams.model import OutcomeEvent
from streams.reference import OUT_OF_COURT
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


def squeeze(text: str) -> str:
    """Text without its spaces and line breaks: a PDF's text breaks lines where the page did."""
    return "".join(text.split())


def pdf_text(pdf: bytes) -> str:
    """The text of an A4 PDF (checked: every page is A4), squeezed."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    assert reader.pages
    for p in reader.pages:  # A4: 595 x 842 points
        assert abs(float(p.mediabox.width) - 595.3) < 2 and abs(float(p.mediabox.height) - 841.9) < 2
    # NFKC: the PDF writes "ff" and "fi" as ligatures
    return squeeze(unicodedata.normalize("NFKC", "".join(p.extract_text() for p in reader.pages)))


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
        f"  - {{name: kent-cases, sha256: {digest('kent-cases')}, forces: [kent],\n"
        "      permissions: [reidentify]}\n"
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
    # the page's "all forces" is every force (a kent token may see it only as this comparison)
    req = urllib.request.Request(
        worker.url + "/force/kent/counts.csv", headers={"Authorization": "Bearer kent-secret"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        table = list(csv.DictReader(io.StringIO(resp.read().decode())))
    every = api(worker, "/api/counts?group_by=category,disposal,day&window=365d", "all-secret")["rows"]
    for row in table:
        month = [r for r in every if r["category"] == row["category"] and r["day"][:7] == row["month"]]
        assert int(row["all_forces_outcomes"]) == sum(r["count"] for r in month if r["disposal"] != "pending")
        assert int(row["all_forces_out_of_court"]) == sum(
            r["count"] for r in month if r["disposal"] in OUT_OF_COURT
        )
    assert any(int(r["all_forces_outcomes"]) > int(r["force_outcomes"]) for r in table)
    boxes = kent.eval_on_selector_all(
        "figure svg",
        """svgs => svgs.map(svg => [...svg.querySelectorAll('text.tick')].map(t => {
             const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }))""",
    )
    assert boxes and all(len(b) >= 6 for b in boxes)  # a year of months, some labelled
    # printed to A4: every chart, every table (those folded away on screen too), the alerts,
    # the date the data runs to and the funnel method
    printed = pdf_text(kent.pdf(format="A4"))
    on_screen = kent.eval_on_selector_all(
        "main figcaption, main h2, main table tbody tr:first-child td:first-child, p.methods, #as-of",
        "els => els.map(e => e.textContent)",
    )
    assert len(on_screen) > 6
    for text in on_screen:
        assert squeeze(text) in printed, text
    assert printed.count("Month") >= len(boxes)  # each chart's table header
    for labels in boxes:  # no two tick labels of a chart overlap
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    assert kent.goto(worker.url + "/force/durham").status == 403
    csv_status = kent.goto(worker.url + "/force/durham/counts.csv").status
    assert csv_status == 403
    # the session cookie is the only credential the browser holds: HttpOnly, this session only,
    # and it is a signed session, not the token
    cookie = next(c for c in kent.context.cookies() if c["name"] == "dw_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] == -1
    assert "kent-secret" not in cookie["value"] and digest("kent-secret") not in cookie["value"]
    assert not cookie["secure"]  # plain HTTP here; over TLS the flag is set (test_security)

    # the national page: its figures are /api/summary's, which are /api/counts' over the same days
    summary = api(worker, "/api/summary?period=12m&compare=previous", "all-secret")
    assert summary["rows"] and summary["sentences"] and summary["quarters"]
    for when in ("current", "previous"):
        first, last = (dt.date.fromisoformat(summary[when][k]) for k in ("first", "last"))
        days = (last - first).days + 1
        counted = api(
            worker, f"/api/counts?group_by=force,category,disposal&window={days}d&at={last}", "all-secret"
        )
        for line in summary["rows"]:
            force = line["force"]
            mine = [
                r for r in counted["rows"]
                if r["category"] == line["category"] and (force is None or r["force"] == force)
            ]  # fmt: skip
            assert line[when]["outcomes"] == sum(r["count"] for r in mine if r["disposal"] != "pending")
            assert line[when]["out_of_court"] == sum(
                r["count"] for r in mine if r["disposal"] in OUT_OF_COURT
            )
    page.goto(worker.url + "/national")
    for line in summary["rows"]:
        cells = page.eval_on_selector_all(
            f'section[data-category="{line["category"]}"] tr[data-force="{line["force"] or "all"}"] td',
            "els => els.map(e => e.textContent)",
        )
        assert cells[:2] == [f"{line['current']['out_of_court']:,}", f"{line['current']['outcomes']:,}"], line
        assert cells[3:5] == [
            f"{line['previous']['out_of_court']:,}",
            f"{line['previous']['outcomes']:,}",
        ], line
    shown = page.eval_on_selector_all("ul.sentences li", "els => els.map(e => e.textContent)")
    assert shown == summary["sentences"]
    printed = pdf_text(page.pdf(format="A4"))
    for text in [
        *shown,
        *page.eval_on_selector_all("main h2, main figcaption, #as-of", "els => els.map(e => e.textContent)"),
    ]:
        assert squeeze(text) in printed, text
    assert squeeze("Funnel limits of the peer rules") in printed and squeeze("All forces") in printed
    # a kent token: kent's lines only, no national figure
    kents = api(worker, "/api/summary", "kent-secret")
    assert kents["rows"] and {r["force"] for r in kents["rows"]} == {"kent"}
    assert kents["sentences"] == [] and kents["quarters"] == {}
    kent.goto(worker.url + "/national")
    assert set(kent.eval_on_selector_all("tr[data-force]", "els => els.map(e => e.dataset.force)")) == {
        "kent"
    }

    # the scrutiny sample: reproducible, in scope, pseudonymised, references only with permission
    def sample(p: Any) -> list[str]:
        assert p.goto(worker.url + "/force/kent/scrutiny?quarter=2025-Q2").status == 200
        refs: list[str] = p.eval_on_selector_all("#sample tbody tr", "els => els.map(e => e.dataset.ref)")
        return refs

    pseudonyms = sample(kent)
    assert 1 <= len(pseudonyms) <= 20 and all(len(x) == 16 for x in pseudonyms)
    assert sample(kent) == pseudonyms  # the same quarter gives the same sample
    assert kent.goto(worker.url + "/force/durham/scrutiny").status == 403
    cases = browser.new_context(extra_http_headers={"Authorization": "Bearer kent-cases"}).new_page()
    refs = sample(cases)
    assert [pseudonym(f"kent/{r}", deployment.keys.pseudonym) for r in refs] == pseudonyms
    latest: dict[str, OutcomeEvent] = {}
    for e in [*events, case_breach("kent", "K/1", END)]:
        if e.crime_key not in latest or e.outcome_date >= latest[e.crime_key].outcome_date:
            latest[e.crime_key] = e
    population = {
        k for k, e in latest.items()
        if e.force_id == "kent"
        and in_scope(category_of(e), e.disposal, e.outcome_date, dt.date(2025, 4, 1), dt.date(2025, 6, 30))
    }  # fmt: skip
    assert {f"kent/{r}" for r in refs} <= population and len(refs) == min(20, len(population))
    assert "scrutiny sample of 2025-Q2" in worker.log.read_text()


# --- markup stays data -------------------------------------------------------------------------

#: each tries a way out of its context: a script element, an attribute, HTML, a line of script
HOSTILE = (
    "</script><script>window.__pwned=(window.__pwned||0)+1</script>"
    '<img src=x onerror="window.__pwned=1">"\'><svg onload=window.__pwned=1>'
    "<!--<script>\u2028\u2029'-window.__pwned-'&lt;javascript:window.__pwned=1"
)


def hostile_pages(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every page, rendered with the hostile text as a rule's description and id words, a force's
    name, a category, an alert's summary, the scope note and the data's date."""
    from alerts.rules import Rule
    from streams import reference
    from streams.dashboard import render
    from streams.dashboard.funnel import funnel
    from streams.dashboard.trend import Month

    monkeypatch.setitem(reference.FORCE_NAMES, "kent", HOSTILE)  # the one the pages read
    rule = Rule.model_validate(
        {
            "id": "hostile-peer",
            "description": HOSTILE,
            "severity": "high",
            "category": [HOSTILE],
            "measure": "peer",
            "window": "365d",
            "z": 3.09,
        }
    )
    counts: dict[tuple[str, ...], int] = {
        ("kent", HOSTILE, "community-resolution"): 40,
        ("kent", HOSTILE, "charge"): 2,
    }
    counts |= {("durham", HOSTILE, "charge"): 50, ("durham", HOSTILE, "community-resolution"): 2}
    alert = {
        "fingerprint": HOSTILE,
        "state": "firing",
        "severity": "high",
        "transition_at": HOSTILE,
        "rule_id": "hostile-peer",
        "force_id": "kent",
        "category": HOSTILE,
        "summary": HOSTILE,
    }
    words = {"hostile-peer": HOSTILE}
    index = render.index_page(
        [alert, {**alert, "state": "resolved", "force_id": HOSTILE}],
        [funnel(rule, HOSTILE, counts, ["kent", "durham"], 365)],
        rule_words=words,
        after=0,
        window="365d",
        as_of=HOSTILE,
        scope_note=HOSTILE,
        category_names={HOSTILE: HOSTILE},
    )
    month = Month("2025-01", 3, 4, 5, 9)
    force = render.force_page(
        HOSTILE, {HOSTILE: [month, month]}, [alert], [alert], rule_words=words, as_of=HOSTILE
    )
    figures = Figures({"caution": 3}, 9)
    lines = [
        Line(HOSTILE, None, figures, figures, {"caution": Change.of(3, 1)}),
        Line(HOSTILE, "kent", figures, figures, {}),
    ]
    period = Period(dt.date(2025, 1, 1), dt.date(2025, 12, 31), False)
    national = national_page(
        lines, {HOSTILE: [Quarter(HOSTILE, {"caution": 3}, 9, False)]}, months=12, now=period, before=period,
        as_of=HOSTILE, scope_note=HOSTILE, csv_link=HOSTILE,
    )  # fmt: skip
    crime = Candidate(HOSTILE, HOSTILE, HOSTILE, dt.date(2025, 1, 2), True)
    scrutiny = scrutiny_page("kent", "2025-Q1", [crime], [HOSTILE], {HOSTILE: 1}, references=True)
    return {
        "/": index,
        "/force/kent": force,
        "/signin": render.signin_page(HOSTILE),
        "/national": national,
        "/force/kent/scrutiny": scrutiny,
    }


def test_hostile_words_in_every_page_never_run_as_script(
    browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escaping alone must hold: the pages are served here without the CSP (which would block
    inline script anyway), and the live feed sends a hostile alert to the page's own script."""
    from streams.resources import DASHBOARD_STATIC

    pages = hostile_pages(monkeypatch)
    feed = (
        "event: alert\nid: 1\ndata: "
        + json.dumps(
            {
                "fingerprint": "feed" + HOSTILE,
                "state": "firing",
                "severity": HOSTILE,
                "transition_at": "2025-01-01T00:00:00Z",
                "rule_id": "hostile-peer",
                "force_id": HOSTILE,
                "category": HOSTILE,
                "summary": HOSTILE,
            }
        )
        + "\n\n"
    )

    def serve(route: Any) -> None:
        path = route.request.url.split("dw.test", 1)[1].split("?")[0]
        if path.startswith("/static/"):
            kind = "text/css" if path.endswith(".css") else "application/javascript"
            route.fulfill(body=(DASHBOARD_STATIC / path[len("/static/") :]).read_text(), content_type=kind)
        elif path == "/api/alerts/stream":
            route.fulfill(body=feed, content_type="text/event-stream")
        else:
            route.fulfill(body=pages[path], content_type="text/html")

    context = browser.new_context()
    context.route("http://dw.test/**", serve)
    dialogs: list[str] = []

    def dismissed(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    for path in pages:
        page = context.new_page()
        page.on("dialog", dismissed)
        page.goto("http://dw.test" + path)
        if path == "/":  # the page's own script ran, and took the hostile alert in as text
            page.wait_for_function("document.querySelectorAll('#firing li').length >= 2", timeout=5_000)
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None, path
        assert HOSTILE[:20] in page.inner_text("body"), path  # shown as text, whole
        page.close()
    assert dialogs == []
    context.close()


def test_every_answer_carries_a_strict_policy_and_hostile_rule_text_stays_text(
    deployment: Deployment, tmp_path: Path, browser: Any
) -> None:
    """A real worker with an analyst's rules file holding script: the page works (its own script,
    from /static/, runs under the CSP) and the rule text runs nowhere."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        f"  - id: da-cr\n    description: {json.dumps(HOSTILE)}\n    severity: high\n"
        "    category: [harassment]\n    domestic_abuse: true\n    disposals: [community-resolution]\n"
        "    measure: case\n    window: 365d\n"
        f"  - id: peer\n    description: {json.dumps(HOSTILE)}\n    severity: low\n"
        "    category: [harassment]\n    measure: peer\n    window: 365d\n    z: 3.09\n"
    )
    deployment.env.update(DW_RULES=str(rules), DW_CLOCK="stream", DW_ALERT_INTERVAL_S="0.5")
    deployment.produce([case_breach("kent", "K/1", END)])
    worker = deployment.start_worker()
    deployment.wait()
    wait_settled(worker)
    for path in (
        "/",
        "/force/kent",
        "/signin",
        "/healthz",
        "/api/alerts",
        "/metrics",
        "/nowhere",
        "/static/x",
    ):
        headers = headers_of(worker.url + path)
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        assert "aiohttp" not in headers.get("Server", ""), path
    page = browser.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(worker.url + "/")
    page.wait_for_function("document.getElementById('live').textContent === 'live'", timeout=10_000)
    assert page.locator("#firing [data-fingerprint]").count() == 1
    assert page.evaluate("window.__pwned") is None
    page.goto(worker.url + "/force/kent")
    assert page.evaluate("window.__pwned") is None
    page.close()
    assert violations == []  # the pages themselves need nothing the policy forbids


def headers_of(url: str) -> Any:
    """The headers of the answer to GET ``url``, an error's too."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.headers
    except urllib.error.HTTPError as exc:
        return exc.headers
