"""A real single-node Apache Kafka broker (KRaft, combined broker + controller) on localhost.

No Docker: the broker's jars come from Maven Central (``streams/broker/pom.xml``, package data),
resolved once into the Maven cache (~/.m2) and a classpath file cached under
``~/.cache/disposal-watch``; storage is formatted under ``DIR`` the first time, and the broker
runs as a detached Java process whose pid, ports and log live in ``DIR``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from streams.errors import KafkaSetupError
from streams.resources import BROKER_POM

KAFKA_VERSION = "3.9.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "disposal-watch"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://localhost:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=8
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=-1
log.segment.bytes=268435456
"""

LOG4J = """\
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""


@dataclass(frozen=True)
class Broker:
    dir: Path
    port: int
    pid: int

    @property
    def bootstrap(self) -> str:
        return f"localhost:{self.port}"


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise KafkaSetupError(f"{tool} not found on PATH: {hint}")
    return path


def classpath(*, quiet: bool = True) -> str:
    """Classpath of the broker, resolving it with Maven the first time (cached afterwards)."""
    cached = CACHE / f"kafka-{KAFKA_VERSION}.classpath"
    if cached.exists():
        cp = cached.read_text().strip()
        if cp and all(Path(j).exists() for j in cp.split(os.pathsep)):
            return cp
    mvn = _require("mvn", "install Maven (apt-get install maven) to resolve Kafka from Maven Central")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    # a copy of the coordinates in the cache: the installed package may be read-only
    pom = CACHE / f"kafka-{KAFKA_VERSION}.pom.xml"
    shutil.copyfile(BROKER_POM, pom)
    cmd = [mvn, "-B", "-f", str(pom), "dependency:build-classpath", f"-Dmdep.outputFile={tmp}"]
    if quiet:
        cmd.insert(1, "-q")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.exists():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise KafkaSetupError(
            "Maven could not resolve org.apache.kafka:kafka_2.13:"
            f"{KAFKA_VERSION} (is Maven Central reachable?):\n  " + "\n  ".join(tail)
        )
    tmp.replace(cached)
    return cached.read_text().strip()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def running(dir: Path) -> Broker | None:
    """The broker started from ``dir``, if it is still running."""
    pidfile = dir / "broker.pid"
    if not pidfile.exists():
        return None
    try:
        pid_s, port_s = pidfile.read_text().split()
        pid, port = int(pid_s), int(port_s)
    except ValueError:
        return None
    return Broker(dir, port, pid) if _alive(pid) else None


def answers_metadata(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True if a broker at ``bootstrap`` answers a metadata request."""
    from kafka import KafkaAdminClient  # local import: kafka-python is slow to import
    from kafka.errors import KafkaError

    ms = int(timeout_s * 1000)
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ms, bootstrap_timeout_ms=ms)
    except (KafkaError, OSError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID, URL-safe base64 (22 characters; may begin with '-')."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def format_storage(java: str, cp: str, props: Path, data: Path, cluster_id: str | None = None) -> None:
    """Format KRaft storage under ``data``. The id is passed as ``--cluster-id=ID``: one id in 32
    begins with '-', which the tool's argument parser would take for an option after ``-t``."""
    fmt = subprocess.run(
        [
            java,
            "-cp",
            cp,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id or new_cluster_id()}",
            "-c",
            str(props),
        ],
        capture_output=True,
        text=True,
    )
    if fmt.returncode != 0:
        raise KafkaSetupError(f"formatting KRaft storage in {data} failed: {fmt.stdout}{fmt.stderr}".strip())


def start(dir: Path, port: int = 9092, *, timeout_s: float = 90.0, heap: str = "1g") -> Broker:
    """Start a broker whose state lives under ``dir``; returns once it answers metadata requests."""
    dir = dir.resolve()
    java = _require("java", "install a Java 17 runtime (apt-get install openjdk-17-jre-headless)")
    existing = running(dir)
    if existing is not None:
        raise KafkaSetupError(
            f"a broker is already running from {dir} (pid {existing.pid}, {existing.bootstrap}); "
            f"stop it with: disposal-watch kafka stop --dir {dir}"
        )
    if not _port_free(port):
        raise KafkaSetupError(f"port {port} on 127.0.0.1 is taken: choose another with --port")
    cp = classpath()
    dir.mkdir(parents=True, exist_ok=True)
    data = dir / "data"
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    props = dir / "server.properties"
    props.write_text(SERVER_PROPERTIES.format(port=port, controller_port=controller_port, data=data))
    (dir / "log4j.properties").write_text(LOG4J.format(log=dir / "server.log"))
    if not (data / "meta.properties").exists():
        format_storage(java, cp, props, data)
    log = (dir / "broker.log").open("ab")
    proc = subprocess.Popen(
        [
            java,
            f"-Xmx{heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            f"-Dlog4j.configuration=file:{dir / 'log4j.properties'}",
            "-Djava.awt.headless=true",
            "-cp",
            cp,
            "kafka.Kafka",
            str(props),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (dir / "broker.pid").write_text(f"{proc.pid} {port}\n")
    broker = Broker(dir, port, proc.pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (dir / "broker.pid").unlink(missing_ok=True)
            raise KafkaSetupError(
                f"the broker exited with code {proc.returncode} while starting; last lines of "
                f"{dir / 'broker.log'}:\n" + _tail(dir / "broker.log") + _tail(dir / "server.log")
            )
        if answers_metadata(broker.bootstrap, timeout_s=2.0):
            return broker
        time.sleep(0.5)
    stop(dir)
    raise KafkaSetupError(
        f"the broker did not answer on {broker.bootstrap} within {timeout_s:.0f}s; see {dir}/server.log"
    )


def _tail(path: Path, n: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) + "\n"


def stop(dir: Path, *, timeout_s: float = 30.0) -> Broker:
    """Stop the broker started from ``dir``: SIGTERM (controlled shutdown), SIGKILL after ``timeout_s``."""
    dir = dir.resolve()
    broker = running(dir)
    if broker is None:
        (dir / "broker.pid").unlink(missing_ok=True)
        raise KafkaSetupError(f"no broker is running from {dir}")
    os.kill(broker.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(broker.pid):
        time.sleep(0.2)
    if _alive(broker.pid):
        os.kill(broker.pid, signal.SIGKILL)
    (dir / "broker.pid").unlink(missing_ok=True)
    return broker
