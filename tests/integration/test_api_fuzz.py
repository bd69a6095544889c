"""The HTTP API against its OpenAPI document, fuzzed by schemathesis on a live worker with tokens.

For every operation of ``/api/openapi.json`` (the live stream excepted: it never ends, and
``test_alerts`` covers it), schemathesis generates valid and invalid requests, bounded in
examples. Each is sent with a token for every force and with one scoped to kent, and must:
- never answer 5xx (503, "not every worker answered", is documented and cannot happen with one
  worker, so it counts as a failure here too);
- answer with a status, content type, headers and body the document gives;
- reject what the document calls invalid with a 4xx;
- with the kent token, never show another force's data, through any parameter.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from streams.access import digest
from streams.reference import FORCE_NAMES
from streams.simulate import simulate

from .conftest import Deployment
from .test_dashboard import case_breach

END = dt.date(2025, 6, 30)
EXAMPLES = 30  # per operation, per generation mode
TOKENS = {"all": "all-secret", "kent": "kent-secret"}
SKIPPED = {"/api/alerts/stream"}
RULES = """\
rules:
  - {id: da-cr, description: community resolution on a domestic-abuse case, severity: high,
     category: [harassment, stalking], domestic_abuse: true, disposals: [community-resolution],
     measure: case, window: 365d}
  - {id: harassment-peer, description: harassment settled out of court far above other forces,
     severity: medium, category: [harassment], measure: peer, window: 365d, z: 3.09, min_volume: 20}
"""
_FORCE_IN_HTML = re.compile(r'(?:data-force="|href="/force/)([a-z-]+)')


def other_forces_shown(body: str, content_type: str) -> set[str]:
    """Force ids other than kent that an answer shows."""
    seen: set[str] = set()
    if content_type.startswith("application/json"):

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in ("force", "force_id") and isinstance(value, str):
                        seen.add(value)
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(json.loads(body))
    elif content_type.startswith("text/html"):
        seen.update(_FORCE_IN_HTML.findall(body))
    elif content_type.startswith("text/csv"):
        seen.update(f for f in FORCE_NAMES if f"{f}," in body)  # rows never name a force; none should
    return {f for f in seen if f in FORCE_NAMES and f != "kent"}


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A worker with tokens, holding crimes and alerts of many forces; its URL."""
    import secrets
    import uuid

    from streams.producer import ensure_topics

    tmp = tmp_path_factory.mktemp("fuzz")
    tag = uuid.uuid4().hex[:10]
    rules, tokens = tmp / "rules.yaml", tmp / "tokens.yaml"
    rules.write_text(RULES)
    tokens.write_text(
        f"tokens:\n  - {{name: kent, sha256: {digest(TOKENS['kent'])}, forces: [kent],"
        " permissions: [reidentify]}\n"
        f"  - {{name: all, sha256: {digest(TOKENS['all'])}, forces: all, permissions: [reidentify]}}\n"
    )
    env = {
        "DW_KAFKA": kafka_bootstrap,
        "DW_TOPIC_PREFIX": f"t{tag}.",
        "DW_APP_ID": f"dw-{tag}",
        "DW_PARTITIONS": "2",
        "DW_PSEUDONYM_KEY": secrets.token_hex(32),
        "DW_RULES": str(rules),
        "DW_TOKENS_FILE": str(tokens),
        "DW_CLOCK": "stream",
        "DW_ALERT_INTERVAL_S": "0.5",
    }
    d = Deployment(env, tmp)
    ensure_topics(d.settings)
    d.produce(
        [*simulate(3000, seed=5, end=END), case_breach("kent", "K/1", END), case_breach("essex", "E/1", END)]
    )
    worker = d.start_worker()
    d.wait()
    time.sleep(2)  # the evaluator's first rounds
    yield worker.url
    worker.stop()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def carried(value: Any) -> bool:
    """Whether a query string carries ``value`` (None, an object or an empty list vanish)."""
    if isinstance(value, list):
        return bool(value) and all(carried(v) for v in value)
    return isinstance(value, str | int | float | bool)


def fuzz(op: Any, mode: GenerationMode, base_url: str, ran: dict[str, int], leaks: list[str]) -> None:
    """``EXAMPLES`` generated requests of one operation, each sent with every token and checked."""
    negative = mode is GenerationMode.NEGATIVE

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        # an invalid value a query string cannot carry (None, an object, an empty list) is dropped on the way,
        # so the server rightly sees a valid request: only ask for a rejection when it arrives
        sent = all(carried(v) for v in (case.query or {}).values())
        checks = CHECKS + ([negative_data_rejection] if negative and sent else [])
        for name, token in TOKENS.items():
            headers = {"Authorization": f"Bearer {token}"}
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            case.validate_response(response, checks=checks, headers=headers)
            ran[op.label] = ran.get(op.label, 0) + 1
            if name == "kent" and response.status_code == 200:
                shown = other_forces_shown(response.text, response.headers.get("Content-Type", ""))
                if shown:
                    leaks.append(f"{op.label} {case.path_parameters} {case.query}: {sorted(shown)}")

    run()


def test_the_api_answers_as_its_openapi_document_says(live: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live}/api/openapi.json")
    ran: dict[str, int] = {}
    leaks: list[str] = []
    no_invalid: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    assert len(operations) >= 17
    for op in operations:
        if op.path in SKIPPED:
            continue
        fuzz(op, GenerationMode.POSITIVE, live, ran, leaks)
        try:
            fuzz(op, GenerationMode.NEGATIVE, live, ran, leaks)
        except Unsatisfiable:  # every parameter takes any string: no request can be invalid
            no_invalid.append(op.label)
    assert not leaks, leaks
    total = sum(ran.values())
    print(f"schemathesis: {total} requests over {len(ran)} operations; none invalid for {no_invalid}")
    assert len(ran) == len(operations) - len(SKIPPED)


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/api/counts?at=0001-01-05&window=all", 400, "application/json"),  # was 500 (OverflowError)
        ("/api/counts?at=0001-01-05&window=99999d", 400, "application/json"),
        ("/api/counts?window=9999999999d", 400, "application/json"),  # was 500 (OverflowError)
        ("/api/counts?at=", 400, "application/json"),  # an empty date was read as none given
        ("/api/counts?at=20250630", 400, "application/json"),  # date.fromisoformat's basic form
        ("/api/counts?window=01d", 400, "application/json"),
        ("/static/0", 404, "text/plain"),  # was application/octet-stream with no body
    ],
)
def test_requests_schemathesis_found_failing_now_answer_as_documented(
    live: str, path: str, status: int, content_type: str
) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(live + path, headers={"Authorization": f"Bearer {TOKENS['all']}"})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=30)
    assert answer.value.code == status
    assert answer.value.headers["Content-Type"].startswith(content_type)
    assert answer.value.read()
