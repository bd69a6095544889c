"""Bounded fuzzing in ``make test``: the event decoder with the worker's per-record path, and both
police.uk readers. Only the project's own errors for bad input may come out; the longer run is
``bench/fuzz.py``. Inputs that once crashed stay here as examples."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings

from streams.core.classify import REASONS
from tests.fuzz.targets import (
    ALLOWED,
    OUTCOMES,
    STREET,
    policeuk_files,
    read_policeuk,
    record_path,
    record_values,
)


@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(value=record_values())
def test_any_record_value_is_counted_or_dead_lettered_with_a_reason(value: bytes) -> None:
    assert record_path(value) in {"counted", *REASONS}


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=policeuk_files())
# found by this test: a carriage return alone inside a line (the csv module raised _csv.Error)
@example(data=(STREET + "\nabc,2024-01,City of London Police\rx,y\n").encode())
# a field past the csv module's limit (131,072 characters)
@example(data=(STREET + '\n"' + "x" * 200_000 + '"\n').encode())
@example(data=OUTCOMES.encode() + b"\n\xe9")  # not UTF-8
# found by bench/fuzz.py: quotes inside unquoted fields ("0\"") open no quoted field, so the rows
# after them keep the numbers the csv module gives them (blocks once counted quotes in pairs)
@example(data=(STREET + '\r\n\r\n\r\n,,0"\r\n,,000"x\r\nabc123,,,,,,,,,,abc123').encode())
def test_any_police_uk_file_is_read_or_refused_in_one_line(data: bytes) -> None:
    try:
        read_policeuk(data, "2024-01-kent-street.csv")
    except ALLOWED as exc:
        assert "\n" not in str(exc)
