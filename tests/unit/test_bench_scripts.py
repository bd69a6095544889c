"""Every benchmark script still starts: its imports resolve and its arguments parse.

The scripts in ``bench/`` run for minutes against a broker and are not part of ``make test``;
a change to what they import (a renamed function, a moved module) would otherwise go unnoticed
until someone measures. ``--help`` imports the script whole and builds its argument parser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name != "harness.py")


def test_every_script_is_here() -> None:
    assert {"throughput.py", "alert_latency.py", "store_lookups.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bench_script_imports_and_parses_its_arguments(script: str) -> None:
    r = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage:" in r.stdout
