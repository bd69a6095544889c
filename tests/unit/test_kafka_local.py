"""Errors of the broker manager that need no broker: each is one line that says what to do."""

import os
import socket
from pathlib import Path

import pytest

from streams import kafka_local
from streams.errors import KafkaSetupError


def test_taken_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(
            KafkaSetupError, match=f"port {port} on 127.0.0.1 is taken: choose another with --port"
        ):
            kafka_local.start(tmp_path, port)


def test_already_running(tmp_path: Path) -> None:
    (tmp_path / "broker.pid").write_text(f"{os.getpid()} 9999\n")  # a live pid
    with pytest.raises(KafkaSetupError, match="already running .* stop it with: disposal-watch kafka stop"):
        kafka_local.start(tmp_path, kafka_local.free_port())


def test_missing_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaSetupError, match="java not found on PATH: install a Java 17"):
        kafka_local.start(tmp_path, kafka_local.free_port())


def test_missing_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_local, "CACHE", tmp_path / "cache")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaSetupError, match="mvn not found on PATH: install Maven"):
        kafka_local.classpath()


def test_stop_when_nothing_runs(tmp_path: Path) -> None:
    with pytest.raises(KafkaSetupError, match="no broker is running from"):
        kafka_local.stop(tmp_path)


def test_cluster_id_beginning_with_a_dash_formats(tmp_path: Path) -> None:
    """About one random id in 32 begins with '-'; formatting must not take it for an option.
    Uses the real Kafka storage tool (the classpath `make test` has already resolved)."""
    java = kafka_local._require("java", "install Java")
    props = tmp_path / "server.properties"
    data = tmp_path / "data"
    props.write_text(kafka_local.server_properties(19092, 19093, data))
    kafka_local.format_storage(java, kafka_local.classpath(), props, data, cluster_id="-" + "A" * 21)
    assert "cluster.id=-AAAA" in (data / "meta.properties").read_text()
