"""The long fuzz run: the same targets as ``tests/unit/test_fuzz.py`` (``tests/fuzz/targets.py``),
for as long as asked, with hypothesis' coverage-free generation. Prints executions and every
crash (an exception other than the project's own for bad input), and exits 1 if there was one.

    .venv/bin/python bench/fuzz.py --seconds 600

Each target runs in rounds of ``--batch`` examples with a fresh seed, so a long run is many
independent searches rather than one that shrinks forever on its first find."""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import parse  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis.strategies import SearchStrategy  # noqa: E402

from tests.fuzz.targets import (  # noqa: E402
    ALLOWED,
    policeuk_files,
    read_policeuk,
    record_path,
    record_values,
)


def record_target(value: bytes) -> None:
    record_path(value)


def policeuk_target(data: bytes) -> None:
    with contextlib.suppress(*ALLOWED):
        read_policeuk(data, "2024-01-kent-street.csv")


#: name -> (what hypothesis generates, what is done with each example)
TARGETS: dict[str, tuple[SearchStrategy[bytes], Callable[[bytes], None]]] = {
    "decoder": (record_values(), record_target),
    "policeuk": (policeuk_files(), policeuk_target),
}


def fuzz(name: str, seconds: float, batch: int) -> tuple[int, list[str]]:
    """Rounds of ``batch`` examples of one target until ``seconds`` pass: executions and crashes."""
    strategy, call = TARGETS[name]
    executions, crashes = 0, []
    rng = random.Random(name)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:

        @seed(rng.getrandbits(64))
        @settings(max_examples=batch, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(x=strategy)
        def run(x: bytes) -> None:
            nonlocal executions
            executions += 1
            call(x)

        try:
            run()
        except Exception:  # a crash: hypothesis has shrunk it
            crashes.append(traceback.format_exc(limit=8))
    return executions, crashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=120.0, help="per target")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--targets", default=",".join(TARGETS))
    args = parse(parser, seconds=1.0, batch=50)
    crashed = False
    for name in args.targets.split(","):
        t0 = time.monotonic()
        executions, crashes = fuzz(name, args.seconds, args.batch)
        took = time.monotonic() - t0
        rate = executions / took
        print(f"{name}: {executions:,} executions in {took:.0f} s ({rate:,.0f}/s), {len(crashes)} crashes")
        for c in crashes:
            print(c)
        crashed = crashed or bool(crashes)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
