"""Kafka client settings for a managed cluster: every client (the worker's aiokafka consumers and
producers, the kafka-python admin client, the CLI's librdkafka producer) speaks TLS to a local
broker with a self-signed certificate, from DW_KAFKA_* alone; settings pass through by prefix,
and a name a client does not know is refused in one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import kafka_local
from streams.simulate import simulate

from .conftest import Deployment, expected_counts, reference_category, self_signed


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A broker whose second listener speaks TLS with a self-signed certificate: (port, cert)."""
    cert, key = self_signed(tmp_path, "broker")
    where, tls_port = tmp_path / "broker", kafka_local.free_port()
    kafka_local.start(where, kafka_local.free_port(), tls=(cert, key, tls_port))
    yield tls_port, cert
    kafka_local.stop(where)


def test_every_client_speaks_tls_from_the_settings_alone(
    deployment: Deployment, tls_broker: tuple[int, Path]
) -> None:
    from streams.producer import ensure_topics

    port, cert = tls_broker
    deployment.env.update(
        DW_KAFKA=f"localhost:{port}",
        DW_KAFKA_SECURITY_PROTOCOL="SSL",
        DW_KAFKA_SSL_CAFILE=str(cert),
        DW_CONSUMER_SESSION_TIMEOUT_MS="15000",  # passed through to the worker's consumers
        DW_RDKAFKA_LINGER_MS="10",  # and to the CLI's producer
    )
    ensure_topics(deployment.settings)  # admin client over TLS
    events = list(simulate(5000, seed=91))
    deployment.produce(events)  # librdkafka over TLS
    worker = deployment.start_worker()  # aiokafka over TLS
    deployment.wait()  # kafka-python over TLS, and the worker's /healthz
    assert deployment.counts(worker) == expected_counts(events, reference_category)
    # trusting another authority, the same broker is refused rather than trusted
    other, _ = self_signed(deployment.dir, "other")
    r = deployment.cli("wait", "--timeout", "5", DW_KAFKA_SSL_CAFILE=str(other), timeout=120)
    assert r.returncode != 0


@pytest.mark.parametrize(
    ("variable", "named"),
    [
        ("DW_CONSUMER_NO_SUCH_OPTION", "the consumer (aiokafka) has no option 'no_such_option'"),
        ("DW_PRODUCER_TRANSACTIONAL_ID", "the worker sets transactional_id itself"),
        ("DW_CONSUMER_ISOLATION_LEVEL", "the worker sets isolation_level itself"),
        ("DW_ADMIN_NOPE", "the admin client (kafka-python) has no option 'nope'"),
    ],
)
def test_a_client_setting_the_client_does_not_take_is_one_line(
    deployment: Deployment, tmp_path: Path, variable: str, named: str
) -> None:
    where = {"DW_DATA_DIR": str(tmp_path / "w"), "DW_WEB_PORT": str(kafka_local.free_port())}
    r = deployment.cli("worker", timeout=120, **where, **{variable: "1"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"error: {variable}: {named}" in r.stderr
