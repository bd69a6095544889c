"""No partial figure, ever: right after a worker starts with an empty data directory (it restores
its partitions' crimes from the changelog), `wait` waits for the restore and `counts` then gives
every crime; the API answers 503 with Retry-After rather than a part."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import threading
import time
import urllib.error
import urllib.request

from streams.model import OutcomeEvent
from streams.reference import FORCE_NAMES

from .conftest import Deployment

CRIMES = 200_000
DISPOSALS = ("charge", "caution", "community-resolution", "penalty-notice", "pending")


def crimes(n: int, today: dt.date) -> list[OutcomeEvent]:
    """``n`` distinct crimes, one outcome each, spread over forces, disposals and 300 days."""
    rng = random.Random(17)
    forces = sorted(FORCE_NAMES)
    out = []
    for i in range(n):
        day = today - dt.timedelta(days=rng.randrange(300))
        out.append(
            OutcomeEvent(
                event_id=f"r{i}",
                force_id=forces[i % len(forces)],
                crime_ref=f"R/{i}",
                disposal=DISPOSALS[rng.randrange(len(DISPOSALS))],
                outcome_date=day,
                recorded_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
                source_system="test",
                offence_code="8L",
            )
        )
    return out


def csv_total(text: str) -> int:
    return sum(int(line.rsplit(",", 1)[1]) for line in text.strip().splitlines()[1:])


def test_wait_then_counts_right_after_a_restore_gives_every_crime(deployment: Deployment) -> None:
    today = dt.datetime.now(dt.UTC).date()
    deployment.produce(crimes(CRIMES, today))
    first = deployment.start_worker("w1")
    deployment.wait(timeout_s=300)
    full = deployment.cli("counts", "--group-by", "force,disposal", DW_WEB_PORT=first.url.rsplit(":", 1)[1])
    assert full.returncode == 0 and csv_total(full.stdout) == CRIMES, full.stderr
    first.stop()
    shutil.rmtree(deployment.dir / "w1")

    # a worker with nothing on disk: every crime comes back from the changelog
    second = deployment.start_worker("w1", ready=False)
    port = second.url.rsplit(":", 1)[1]
    answers: list[int] = []

    def ask_api() -> None:  # meanwhile: 503 with Retry-After, never rows, until the restore is done
        while second.proc.poll() is None:
            try:
                with urllib.request.urlopen(second.url + "/api/counts?group_by=force", timeout=10) as r:
                    answers.append(r.status)
                    return
            except urllib.error.HTTPError as exc:
                assert exc.headers["Retry-After"], exc.code
                answers.append(exc.code)
            except OSError:
                time.sleep(0.05)  # not listening yet

    asking = threading.Thread(target=ask_api)
    asking.start()
    r = deployment.cli("wait", "--timeout", "300", timeout=330)
    assert r.returncode == 0, r.stderr
    # once `wait` is done, the API gives the whole figure at the first ask
    with urllib.request.urlopen(second.url + "/api/counts?group_by=force", timeout=30) as resp:
        assert resp.status == 200 and sum(row["count"] for row in json.load(resp)["rows"]) == CRIMES
    r = deployment.cli("counts", "--group-by", "force,disposal", DW_WEB_PORT=port)
    assert r.returncode == 0, r.stderr
    assert r.stdout == full.stdout and csv_total(r.stdout) == CRIMES
    asking.join(30)
    assert answers and set(answers[:-1]) == {503} and answers[-1] == 200, answers
    assert len(answers) > 1, "the restore was over before the API was asked"
