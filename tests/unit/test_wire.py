"""What workers send each other decodes to what was encoded; garbage is refused."""

from __future__ import annotations

import pytest

from alerts.aggregates import Totals
from streams.wire import TotalsReply, decode_totals, encode_totals


def test_totals_round_trip_and_leave_zero_rows_out() -> None:
    reply = TotalsReply(
        "abc123",
        False,
        {"r1": {("kent", "stalking"): Totals(3, 40, 1, 38), ("essex", "stalking"): Totals()}, "r2": {}},
    )
    doc = encode_totals(reply)
    assert doc["totals"] == {"r1": [["kent", "stalking", 3, 40, 1, 38]], "r2": []}
    back = decode_totals(doc)
    assert back.rules == "abc123" and not back.recovering
    assert back.totals == {"r1": {("kent", "stalking"): Totals(3, 40, 1, 38)}, "r2": {}}


@pytest.mark.parametrize("doc", [{}, {"v": 1, "rules": "x", "recovering": False, "totals": {"r": [["k"]]}}])
def test_a_reply_that_is_not_one_is_refused(doc: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match="not a totals reply"):
        decode_totals(doc)
