"""A webhook receiver that is down while alerts fire gets every transition afterwards, in order,
grouped per rule and force, each call signed per Standard Webhooks."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import http.server
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from streams.kafka_local import free_port
from streams.simulate import simulate

from .conftest import Deployment
from .test_alerts import END, RULES, settled_alerts, signals, topic_records


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self, port: int) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N805
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                self.received.append(({k.lower(): v for k, v in handler.headers.items()}, body))
                handler.send_response(204)
                handler.end_headers()

            def log_message(handler, *args: Any) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", port), Handler)


def test_receiver_down_then_up_gets_every_transition_grouped_and_in_order(
    deployment: Deployment, tmp_path: Path
) -> None:
    port = free_port()
    key = os.urandom(24)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    hooks = tmp_path / "webhooks.yaml"
    secret = "whsec_" + base64.b64encode(key).decode()
    hooks.write_text(
        f"webhooks:\n  - {{name: panel, url: 'http://127.0.0.1:{port}/hook', secret: '{secret}'}}\n"
    )
    deployment.env.update(
        DW_RULES=str(rules),
        DW_CLOCK="stream",
        DW_ALERT_INTERVAL_S="0.5",
        DW_WEBHOOKS_FILE=str(hooks),
        DW_WEBHOOK_MAX_BACKOFF_S="1",
        DW_WEBHOOK_GROUP_S="2",
    )
    # two alerts of one group (rule da-cr, force kent): community resolutions on domestic-abuse
    # harassment and stalking
    template = next(iter(simulate(1, seed=2)))
    pair = [
        dataclasses.replace(
            template,
            force_id="kent",
            crime_ref=f"PAIR-{code}",
            event_id=f"pair-{code}",
            offence_code=code,
            domestic_abuse=True,
            outcome_number=8,
            disposal="community-resolution",
            outcome_date=END - dt.timedelta(days=1),
        )
        for code in ("8L", "8Q")
    ]
    deployment.produce(list(simulate(20000, seed=8, end=END)) + signals(END) + pair)
    worker = deployment.start_worker()
    deployment.wait()
    settled_alerts(worker)
    time.sleep(3)  # the receiver is still down: deliveries fail and are retried
    assert 'disposal_webhook_attempts_total{outcome="failed",webhook="panel"}' in worker.metrics()

    receiver = Receiver(port)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    records = topic_records(deployment)
    assert records
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            delivered = [i for _, b in receiver.received for i in json.loads(b)["transition_ids"]]
            if len(delivered) >= len(records):
                break
            time.sleep(0.2)
    finally:
        receiver.shutdown()
    topic = deployment.settings.alerts_topic
    bodies = [json.loads(b) for _, b in receiver.received]
    # every transition, once, and in the order of each group's first transition
    assert sorted(i for b in bodies for i in b["transition_ids"]) == [off for off, _ in records]
    assert [b["transition_ids"][0] for b in bodies] == sorted(b["transition_ids"][0] for b in bodies)
    # one call per group (every transition happened while the receiver was down), each of one
    # rule and force, carrying the latest state of each of its alerts
    by_offset = dict(records)
    assert len(bodies) == len({(r["rule_id"], r["force_id"]) for _, r in records}) < len(records)
    assert any(b["rule_id"] == "da-cr" and b["force_id"] == "kent" and len(b["alerts"]) == 2 for b in bodies)
    for b in bodies:
        assert {(a["rule_id"], a["force_id"]) for a in b["alerts"]} == {(b["rule_id"], b["force_id"])}
        last = {by_offset[i]["fingerprint"]: by_offset[i]["state"] for i in b["transition_ids"]}
        assert {a["fingerprint"]: a["state"] for a in b["alerts"]} == last
    for (h, body), b in zip(receiver.received, bodies, strict=True):
        assert h["webhook-id"] == f"{topic}-{b['transition_ids'][0]}-{b['transition_ids'][-1]}"
        signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert h["webhook-signature"] == f"v1,{expected}"
        assert abs(int(h["webhook-timestamp"]) - time.time()) < 120
