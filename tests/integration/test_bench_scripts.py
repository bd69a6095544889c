"""Every benchmark script still runs against the code it measures: each is run with ``--smoke``
(tiny sizes; it writes no results), against the broker ``make test`` starts.

The scripts in ``bench/`` run for minutes and are not part of ``make test``; a change to what they
import or call (a renamed function, a moved module, a new argument) would otherwise go unnoticed
until someone measures, as a producer change once broke ``alert_latency.py``. The figures of a
smoke run mean nothing and are not checked; that the script finishes (exit 0) is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name != "harness.py")


def test_every_script_is_here() -> None:
    assert {"throughput.py", "alert_latency.py", "store_lookups.py", "soak_kill.py"} <= set(SCRIPTS)


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bench_script_runs_in_its_smoke_mode(script: str, tmp_path: Path) -> None:
    if not os.environ.get("DW_KAFKA"):
        pytest.fail("DW_KAFKA is not set: run through make test, which starts a broker")
    r = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert (
        r.returncode == 0
    ), f"{script} --smoke exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
