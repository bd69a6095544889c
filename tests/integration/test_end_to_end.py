"""Avro events to the real broker, counted by the worker, read back over HTTP and the CLI."""

import datetime as dt
from pathlib import Path

from streams.policeuk import Tally, events_from_files
from streams.simulate import simulate

from .conftest import Deployment, expected_counts, reference_category

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "policeuk" / "city-of-london-2016-2017"
END = dt.date(2017, 6, 30)


def test_policeuk_samples_and_synthetic_events_are_counted_exactly(deployment: Deployment) -> None:
    files = sorted(SAMPLES.glob("*.csv"))
    assert files, f"police.uk samples missing under {SAMPLES}"
    # replaying 2016-17 data: the stream's newest outcome date is "today"; nothing is too old
    deployment.env.update(DW_CLOCK="stream", DW_RETENTION_DAYS="3650")
    worker = deployment.start_worker()

    r = deployment.cli("ingest", "policeuk", *map(str, files))
    assert r.returncode == 0, r.stderr
    assert "rows read" in r.stderr and "events sent" in r.stderr
    synthetic = list(simulate(5000, seed=11, end=END))
    deployment.produce(synthetic)
    deployment.wait()

    policeuk = list(events_from_files(files, Tally()))
    everything = policeuk + synthetic
    expected = expected_counts(everything, reference_category)
    assert deployment.counts(worker) == expected

    # a 28-day window ending on a given day, grouped by disposal
    first = END - dt.timedelta(days=27)
    by_disposal: dict[tuple[str, ...], int] = {}
    for (_, _, disposal, day), n in expected.items():
        if first.isoformat() <= day <= END.isoformat():
            by_disposal[(disposal,)] = by_disposal.get((disposal,), 0) + n
    assert deployment.counts(worker, "disposal", window="28d", at=END.isoformat()) == by_disposal

    # every accepted event is in disposal_events_total
    metrics = worker.metrics()
    accepted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("disposal_events_total{")
    )
    assert accepted == len(everything)
    assert 'disposal_events_total{force="city-of-london"}' in metrics
    # no _created twins; closed sets exist at zero from the start
    assert "_created" not in metrics
    assert 'disposal_events_rejected_total{reason="beyond_retention"} 0.0' in metrics

    # the CLI prints the same as CSV: header, sorted rows, `count` last, no zero rows
    r = deployment.cli("counts", "--group-by", "force,disposal", "--url", worker.url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "force,disposal,count"
    rows = [line.split(",") for line in lines[1:]]
    assert rows == sorted(rows)
    totals: dict[tuple[str, str], int] = {}
    for (force, _, disposal, _), n in expected.items():
        totals[(force, disposal)] = totals.get((force, disposal), 0) + n
    assert {(f, d): int(n) for f, d, n in rows} == totals
