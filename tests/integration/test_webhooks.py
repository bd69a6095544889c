"""A webhook receiver that is down while alerts fire gets every transition afterwards, in order,
each signed per Standard Webhooks."""

from __future__ import annotations

import base64
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
from .test_alerts import END, RULES, settled_alerts, topic_records


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


def test_receiver_down_then_up_gets_every_transition_in_order(deployment: Deployment, tmp_path: Path) -> None:
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
    )
    deployment.produce(simulate(20000, seed=8, end=END))
    worker = deployment.start_worker()
    deployment.wait()
    settled_alerts(worker)
    time.sleep(3)  # the receiver is still down: deliveries fail and are retried
    assert 'alert_webhook_attempts_total{outcome="failed",webhook="panel"}' in worker.metrics()

    receiver = Receiver(port)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        records = topic_records(deployment)
        assert records
        deadline = time.monotonic() + 60
        while len(receiver.received) < len(records) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        receiver.shutdown()
    topic = deployment.settings.alerts_topic
    assert [h["webhook-id"] for h, _ in receiver.received] == [f"{topic}-{off}" for off, _ in records]
    for h, body in receiver.received:
        signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert h["webhook-signature"] == f"v1,{expected}"
        assert abs(int(h["webhook-timestamp"]) - time.time()) < 120
    bodies = [json.loads(b) for _, b in receiver.received]
    assert [b["id"] for b in bodies] == [off for off, _ in records]
    assert [b["state"] for b in bodies] == [r["state"] for _, r in records]
