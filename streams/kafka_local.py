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
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://localhost:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=8
offsets.topic.replication.factor={replication}
offsets.topic.num.partitions=8
transaction.state.log.replication.factor={replication}
transaction.state.log.min.isr={min_isr}
min.insync.replicas={min_isr}
default.replication.factor={replication}
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=-1
log.segment.bytes=268435456
"""


def server_properties(port: int, controller_port: int, data: Path, *, node_id: int = 1, voters: str = "",
                      replication: int = 1, min_isr: int = 1) -> str:  # fmt: skip
    """One node's configuration; ``voters`` defaults to this node alone (a one-node cluster)."""
    return SERVER_PROPERTIES.format(
        node_id=node_id,
        voters=voters or f"{node_id}@127.0.0.1:{controller_port}",
        port=port,
        controller_port=controller_port,
        data=data,
        replication=replication,
        min_isr=min_isr,
    )


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


def live_pidfile(pidfile: Path) -> tuple[int, int] | None:
    """(pid, port) written in ``pidfile`` by a start, if that process is still running."""
    if not pidfile.exists():
        return None
    try:
        pid_s, port_s = pidfile.read_text().split()
        pid, port = int(pid_s), int(port_s)
    except ValueError:
        return None
    return (pid, port) if _alive(pid) else None


def terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM (a controlled shutdown), then SIGKILL after ``timeout_s``; SIGCONT first, as a
    paused process (a test's SIGSTOP) could not stop."""
    os.kill(pid, signal.SIGCONT)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def running(dir: Path) -> Broker | None:
    """The broker started from ``dir``, if it is still running."""
    found = live_pidfile(dir / "broker.pid")
    return Broker(dir, found[1], found[0]) if found else None


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


TLS_LISTENER = """\
listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{tls_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://localhost:{port},SSL://localhost:{tls_port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
"""


def start(
    dir: Path,
    port: int = 9092,
    *,
    timeout_s: float = 90.0,
    heap: str = "1g",
    tls: tuple[Path, Path, int] | None = None,
) -> Broker:
    """Start a broker whose state lives under ``dir``; returns once it answers metadata requests.
    ``tls``: (PEM certificate, PEM key, port) of an SSL listener besides the plaintext one (tests
    of the clients' TLS settings)."""
    dir = dir.resolve()
    java = _require("java", "install a Java 17 runtime (apt-get install openjdk-17-jre-headless)")
    _refuse_running(dir)
    if not _port_free(port):
        raise KafkaSetupError(f"port {port} on 127.0.0.1 is taken: choose another with --port")
    cp = classpath()
    controller_port = _other_port({port} | ({tls[2]} if tls else set()))
    text = server_properties(port, controller_port, dir / "data")
    if tls is not None:
        cert, key, tls_port = tls
        dir.mkdir(parents=True, exist_ok=True)
        keystore = dir / "keystore.pem"  # Kafka's PEM keystore: the key, then the certificate
        keystore.write_text(key.read_text() + cert.read_text())
        text += TLS_LISTENER.format(
            port=port, tls_port=tls_port, controller_port=controller_port, keystore=keystore
        )
    props = _configure(dir, text)
    if not (dir / "data" / "meta.properties").exists():
        format_storage(java, cp, props, dir / "data")
    broker = _launch(java, cp, dir, port, heap)
    _wait_ready([broker], timeout_s)
    return broker


def start_cluster(
    dir: Path, port: int = 9092, brokers: int = 3, *, timeout_s: float = 120.0, heap: str = "512m"
) -> list[Broker]:
    """Start ``brokers`` nodes, each broker and controller, on ``port`` and the next free ports,
    with their state under ``dir/node<i>``: internal topics replicated min(3, brokers) times,
    ``min.insync.replicas`` 2 from three nodes up. Returns once every node has registered."""
    dir = dir.resolve()
    java = _require("java", "install a Java 17 runtime (apt-get install openjdk-17-jre-headless)")
    for i in range(1, brokers + 1):
        _refuse_running(dir / f"node{i}")
    if not _port_free(port):
        raise KafkaSetupError(f"port {port} on 127.0.0.1 is taken: choose another with --port")
    cp = classpath()
    taken = {port}
    ports = [port] + [_other_port(taken) for _ in range(brokers - 1)]
    controllers = [_other_port(taken) for _ in range(brokers)]
    voters = ",".join(f"{i}@127.0.0.1:{c}" for i, c in enumerate(controllers, 1))
    replication = min(3, brokers)
    cluster_id = new_cluster_id()
    nodes: list[Broker] = []
    for i, (p, c) in enumerate(zip(ports, controllers, strict=True), 1):
        node = dir / f"node{i}"
        text = server_properties(
            p,
            c,
            node / "data",
            node_id=i,
            voters=voters,
            replication=replication,
            min_isr=2 if brokers >= 3 else 1,
        )
        props = _configure(node, text)
        if not (node / "data" / "meta.properties").exists():
            format_storage(java, cp, props, node / "data", cluster_id=cluster_id)
    for i, p in enumerate(ports, 1):
        nodes.append(_launch(java, cp, dir / f"node{i}", p, heap))
    _wait_ready(nodes, timeout_s)
    return nodes


def nodes_of(dir: Path) -> list[Path]:
    """The state directories of a cluster started from ``dir`` (``[dir]`` for one broker)."""
    found = sorted((p for p in dir.glob("node*") if p.is_dir()), key=lambda p: int(p.name[4:] or 0))
    return found or [dir]


def _refuse_running(dir: Path) -> None:
    existing = running(dir)
    if existing is not None:
        raise KafkaSetupError(
            f"a broker is already running from {dir} (pid {existing.pid}, {existing.bootstrap}); "
            f"stop it with: disposal-watch kafka stop --dir {dir}"
        )


def _other_port(taken: set[int]) -> int:
    p = free_port()
    while p in taken:
        p = free_port()
    taken.add(p)
    return p


def _configure(dir: Path, properties: str) -> Path:
    dir.mkdir(parents=True, exist_ok=True)
    props = dir / "server.properties"
    props.write_text(properties)
    (dir / "log4j.properties").write_text(LOG4J.format(log=dir / "server.log"))
    return props


def _launch(java: str, cp: str, dir: Path, port: int, heap: str) -> Broker:
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
            str(dir / "server.properties"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (dir / "broker.pid").write_text(f"{proc.pid} {port}\n")
    return Broker(dir, port, proc.pid)


def _wait_ready(nodes: list[Broker], timeout_s: float) -> None:
    """Until every node answers metadata requests (a cluster: and sees all nodes registered)."""
    bootstrap = ",".join(n.bootstrap for n in nodes)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for n in nodes:
            if not _alive(n.pid):
                for other in nodes:
                    with contextlib.suppress(KafkaSetupError):
                        stop(other.dir)
                (n.dir / "broker.pid").unlink(missing_ok=True)
                raise KafkaSetupError(
                    f"the broker in {n.dir} exited while starting; last lines of {n.dir / 'broker.log'}:\n"
                    + _tail(n.dir / "broker.log")
                    + _tail(n.dir / "server.log")
                )
        if registered(bootstrap) >= len(nodes):
            return
        time.sleep(0.5)
    for n in nodes:
        with contextlib.suppress(KafkaSetupError):
            stop(n.dir)
    raise KafkaSetupError(
        f"the broker did not answer on {bootstrap} within {timeout_s:.0f}s; see {nodes[0].dir}/server.log"
    )


def registered(bootstrap: str, timeout_s: float = 2.0) -> int:
    """How many brokers of the cluster at ``bootstrap`` answer and are registered (0: none answers)."""
    from kafka import KafkaAdminClient  # local import: kafka-python is slow to import
    from kafka.errors import KafkaError

    ms = int(timeout_s * 1000)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap.split(","), request_timeout_ms=ms, bootstrap_timeout_ms=ms
        )
    except (KafkaError, OSError):
        return 0
    try:
        return len(admin.describe_cluster().get("brokers") or [])
    except (KafkaError, OSError):
        return 0
    finally:
        admin.close()


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
    terminate(broker.pid, timeout_s)
    (dir / "broker.pid").unlink(missing_ok=True)
    return broker


def stop_all(dir: Path, *, timeout_s: float = 30.0) -> list[Broker]:
    """Stop the broker, or every node of the cluster, started from ``dir``: every node told at
    once (SIGTERM), then SIGKILL for any still up after ``timeout_s``. One node after another,
    the last found no controller quorum left for its controlled shutdown and waited out the
    whole timeout (30 s of a three-node cluster's 36 s stop)."""
    dir = dir.resolve()
    brokers = [b for b in (running(node) for node in nodes_of(dir)) if b is not None]
    if not brokers:
        raise KafkaSetupError(f"no broker is running from {dir}")
    for b in brokers:
        os.kill(b.pid, signal.SIGCONT)  # a paused node (a test's SIGSTOP) could not stop
        os.kill(b.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(b.pid) for b in brokers):
        time.sleep(0.2)
    for b in brokers:
        if _alive(b.pid):
            os.kill(b.pid, signal.SIGKILL)
        (b.dir / "broker.pid").unlink(missing_ok=True)
    return brokers
