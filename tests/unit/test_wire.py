"""What workers send each other decodes to what was encoded; garbage is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from alerts.aggregates import Totals
from streams.alerting.evaluator import retired, to_millis
from streams.codec import decode_alert, encode_alert
from streams.wire import TotalsReply, alert_json, decode_totals, encode_totals

#: an alert transition as the feed gives it (without its ``id``, the offset)
ENTRY = {
    "schema_version": 2, "fingerprint": "ab", "rule_id": "r", "force_id": "kent",
    "category": "stalking", "state": "firing", "severity": "high", "measure": "case", "value": 1.0,
    "threshold": 1.0, "numerator": 1, "denominator": None, "window_start": "2025-06-03",
    "window_end": "2025-06-30", "p0": None, "limit": None, "crime_refs": ["x"],
    "transition_at": "2025-06-30T00:00:00+00:00", "description": "d", "summary": "s",
    "confidence": None, "interval_low": None, "interval_high": None, "resolve_at": 1.0,
    "baseline_numerator": None, "baseline_denominator": None, "p_value": None, "fired_at": None,
}  # fmt: skip


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


def test_the_leaders_remembered_transition_is_what_the_topic_gives_back() -> None:
    """The leader remembers the transitions it wrote (``Evaluator``) and the other workers read
    them from the topic, which keeps milliseconds: both must serve the same feed entry."""
    entry = {"id": 3, **ENTRY}
    now = dt.datetime(2026, 12, 1, 9, 12, 15, 111941, tzinfo=dt.UTC)
    exact = retired(entry, to_millis(now))
    assert alert_json(decode_alert(encode_alert(exact)), 7) == alert_json(exact, 7)
    assert alert_json(exact, 7)["transition_at"] == "2026-12-01T09:12:15.111000+00:00"
    finer = retired(entry, now)  # what the leader remembered before: the feed differed by worker
    assert alert_json(decode_alert(encode_alert(finer)), 7) != alert_json(finer, 7)
