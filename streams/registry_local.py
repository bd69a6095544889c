"""A real Apicurio Registry on localhost, for development and the tests: ``disposal-watch
registry start``.

Apicurio Registry 3 is on Maven Central as ``io.apicurio:apicurio-registry-app``, classifier
``all``, type ``tar.gz`` (about 159 MB): resolved once into the Maven cache (~/.m2) by
``mvn dependency:copy`` and unpacked under ``~/.cache/disposal-watch``. It is a Quarkus
application that needs Java 21 or newer (``find_java``); it keeps its schemas in memory, so a
registry started again knows none. It serves Confluent's REST API at ``/apis/ccompat/v7``, which
is what ``DW_SCHEMA_REGISTRY_URL`` takes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from streams.errors import KafkaSetupError
from streams.kafka_local import CACHE, _alive, _tail, free_port, live_pidfile, terminate

APICURIO_VERSION = "3.3.3"
ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
#: Quarkus class files are Java 21's (class file 65)
JAVA_MIN = 21
#: where Debian and Temurin put JDKs, searched after JAVA21_HOME, JAVA_HOME and PATH
JVM_DIRS = (Path("/usr/lib/jvm"), Path("/opt/java"), Path("/opt"))


class RegistrySetupError(KafkaSetupError):
    """The local registry could not be resolved, started or stopped."""


@dataclass(frozen=True)
class Registry:
    dir: Path
    port: int
    pid: int

    @property
    def url(self) -> str:
        """``DW_SCHEMA_REGISTRY_URL`` for this registry: its Confluent-compatible API."""
        return f"http://127.0.0.1:{self.port}/apis/ccompat/v7"


def java_major(java: str) -> int | None:
    """The major version of the ``java`` executable (17, 21, 25...), None if it does not run."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def find_java(minimum: int = JAVA_MIN) -> str:
    """A ``java`` of version ``minimum`` or newer: $JAVA21_HOME, $JAVA_HOME, PATH, then the JDKs
    under /usr/lib/jvm and /opt. Raises ``RegistrySetupError`` naming what was tried."""
    candidates: list[Path] = []
    for var in ("JAVA21_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    for root in JVM_DIRS:
        if root.is_dir():
            candidates += sorted(root.glob("*/bin/java"), reverse=True)
    seen: list[str] = []
    for java in candidates:
        if not java.is_file() or str(java) in seen:
            continue
        seen.append(str(java))
        major = java_major(str(java))
        if major is not None and major >= minimum:
            return str(java)
    raise RegistrySetupError(
        f"no Java {minimum} or newer found (Apicurio Registry {APICURIO_VERSION} needs it); tried "
        f"{', '.join(seen) or 'nothing'}. Install one (a Temurin or OpenJDK {minimum}+) and set JAVA21_HOME"
    )


def distribution(*, quiet: bool = True) -> Path:
    """The unpacked registry (its ``quarkus-run.jar``), resolving it with Maven the first time."""
    home = CACHE / f"apicurio-registry-{APICURIO_VERSION}"
    if (home / "quarkus-run.jar").is_file():
        return home
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RegistrySetupError("mvn not found on PATH: install Maven, which resolves the registry")
    CACHE.mkdir(parents=True, exist_ok=True)
    download = CACHE / f"apicurio-{APICURIO_VERSION}.download"
    shutil.rmtree(download, ignore_errors=True)
    cmd = [mvn, "-B", "dependency:copy", f"-Dartifact={ARTIFACT}", f"-DoutputDirectory={download}"]
    if quiet:
        cmd.insert(1, "-q")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=CACHE)
    archives = list(download.glob("*.tar.gz")) if download.is_dir() else []
    if proc.returncode != 0 or not archives:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise RegistrySetupError(
            f"Maven could not resolve {ARTIFACT} (is Maven Central reachable?):\n  " + "\n  ".join(tail)
        )
    partial = home.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(archives[0]) as tar:
        tar.extractall(partial, filter="data")
    shutil.rmtree(download, ignore_errors=True)
    partial.rename(home)
    return home


def running(dir: Path) -> Registry | None:
    """The registry started from ``dir``, if it is still running."""
    found = live_pidfile(dir / "registry.pid")
    return Registry(dir, found[1], found[0]) if found else None


def start(dir: Path, port: int = 8081, *, timeout_s: float = 120.0, heap: str = "384m") -> Registry:
    """Start a registry whose pid and log live in ``dir``; returns once its API answers."""
    dir = dir.resolve()
    if running(dir) is not None:
        raise RegistrySetupError(f"a registry is already running from {dir}; stop it first")
    java = find_java()
    home = distribution()
    dir.mkdir(parents=True, exist_ok=True)
    log = (dir / "registry.log").open("ab")
    proc = subprocess.Popen(
        [
            java,
            f"-Xmx{heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # starts in about half the time; the tests ask little of it
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={port}",
            "-Dquarkus.management.host=127.0.0.1",
            f"-Dquarkus.management.port={free_port()}",
            "-jar",
            str(home / "quarkus-run.jar"),
        ],
        cwd=dir,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (dir / "registry.pid").write_text(f"{proc.pid} {port}\n")
    registry = Registry(dir, port, proc.pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(proc.pid):
            (dir / "registry.pid").unlink(missing_ok=True)
            raise RegistrySetupError(
                f"the registry exited while starting; last lines of {dir / 'registry.log'}:\n"
                + _tail(dir / "registry.log")
            )
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{registry.url}/subjects", timeout=2) as answer,
        ):
            if answer.status == 200:
                return registry
        time.sleep(0.3)
    with contextlib.suppress(RegistrySetupError):
        stop(dir)
    raise RegistrySetupError(f"the registry did not answer on {registry.url} within {timeout_s:.0f} s")


def stop(dir: Path, *, timeout_s: float = 20.0) -> Registry:
    """Stop the registry started from ``dir``: SIGTERM, then SIGKILL after ``timeout_s``."""
    dir = dir.resolve()
    registry = running(dir)
    if registry is None:
        (dir / "registry.pid").unlink(missing_ok=True)
        raise RegistrySetupError(f"no registry is running from {dir}")
    terminate(registry.pid, timeout_s)
    (dir / "registry.pid").unlink(missing_ok=True)
    return registry
