"""The package as a user installs it: a wheel built from the repository, installed into a fresh
virtual environment, run from a directory outside the checkout, with an empty classpath cache.

Every command a user starts with works from it: ``--version``, ``kafka start``, ``worker``,
``simulate``, ``wait``, ``counts`` and the dashboard. The time from ``pip install`` to the first
count read back is printed (``-rP`` shows it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streams.kafka_local import free_port

ROOT = Path(__file__).resolve().parents[2]


def run(*cmd: str | Path, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    r = subprocess.run(list(map(str, cmd)), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_a_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    wheels, venv, away = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DW_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # no cached broker classpath
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT, cwd=away, env=env)
    (wheel,) = wheels.glob("disposal_watch-*.whl")

    t0 = time.monotonic()
    run(sys.executable, "-m", "venv", venv, cwd=away, env=env)
    run(venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel, cwd=away, env=env)
    installed = time.monotonic() - t0
    cli = venv / "bin" / "disposal-watch"
    # nothing of the checkout is on the path: the package finds its files in site-packages
    where = run(venv / "bin" / "python", "-c", "import streams; print(streams.__file__)", cwd=away, env=env)
    assert str(venv) in where and str(ROOT) not in where
    # the wheel carries the compiled event reader, and the installed package reads with it
    reader = run(
        venv / "bin" / "python", "-c", "import streams.codec as c; print(c.EVENT_READER)", cwd=away, env=env
    )
    assert reader.strip() == "compiled"
    assert run(cli, "--version", cwd=away, env=env).strip().endswith("0.1.0")

    broker_dir, port = tmp_path / "kafka", free_port()
    bootstrap = run(
        cli, "kafka", "start", "--dir", broker_dir, "--port", str(port), cwd=away, env=env
    ).strip()
    worker = None
    try:
        web_port = free_port()
        env |= {
            "DW_KAFKA": bootstrap,
            "DW_DATA_DIR": str(tmp_path / "data"),
            "DW_WEB_PORT": str(web_port),
            "DW_PARTITIONS": "2",
        }
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen([cli, "worker"], cwd=away, env=env, stdout=log, stderr=subprocess.STDOUT)
        run(cli, "simulate", "--events", "2000", "--seed", "3", cwd=away, env=env)
        run(cli, "wait", "--timeout", "120", cwd=away, env=env, timeout=200)
        rows = run(cli, "counts", "--group-by", "force", cwd=away, env=env).strip().splitlines()
        first_count = time.monotonic() - t0
        assert rows[0] == "force,count" and sum(int(r.rsplit(",", 1)[1]) for r in rows[1:]) > 0
        base = f"http://127.0.0.1:{web_port}"
        for path in ("/", "/static/dashboard.js", "/static/dashboard.css", "/api/openapi.json"):
            with urllib.request.urlopen(base + path, timeout=30) as resp:
                assert resp.status == 200 and resp.read(), path
        print(f"wheel: pip install {installed:.1f} s; install to first count {first_count:.1f} s")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        subprocess.run([cli, "kafka", "stop", "--dir", broker_dir], env=env, capture_output=True)
