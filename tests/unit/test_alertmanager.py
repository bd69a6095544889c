"""What the leader posts to Alertmanager, from the alerts' latest transitions."""

from __future__ import annotations

import datetime as dt

from streams.alerting.alertmanager import payload

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def alert(state: str, at: dt.datetime, fired: dt.datetime | None = None, **kw: object) -> dict[str, object]:
    return {
        "id": 7,
        "rule_id": "stalking-cr-rate",
        "force_id": "durham",
        "category": "stalking",
        "severity": "high",
        "state": state,
        "measure": "rate",
        "value": 0.4583,
        "numerator": 22,
        "denominator": 48,
        "p0": None,
        "summary": "Durham: 22 of 48 ...",
        "description": "community resolutions for stalking",
        "crime_refs": [],
        "transition_at": at.isoformat(),
        "fired_at": (fired or at).isoformat(),
        **kw,
    }


def test_a_firing_alert_is_sent_with_its_labels_evidence_and_an_end_four_intervals_ahead() -> None:
    (posted,) = payload([alert("firing", NOW - dt.timedelta(hours=1))], NOW, 60, "http://w:6066")
    assert posted["labels"] == {
        "alertname": "stalking-cr-rate",
        "force": "durham",
        "category": "stalking",
        "severity": "high",
    }
    assert posted["annotations"]["summary"] == "Durham: 22 of 48 ..."
    assert posted["annotations"]["value"] == "0.4583" and "p0" not in posted["annotations"]
    assert posted["startsAt"] == "2026-11-24T11:00:00Z" and posted["endsAt"] == "2026-11-24T12:04:00Z"
    assert posted["generatorURL"].startswith("http://w:6066/api/alerts?")


def test_a_resolved_alert_ends_when_it_resolved_and_is_sent_only_while_recent() -> None:
    fired = NOW - dt.timedelta(hours=2)
    recent = alert("resolved", NOW - dt.timedelta(minutes=3), fired)
    old = alert("resolved", NOW - dt.timedelta(minutes=5), fired, force_id="kent")
    (posted,) = payload([recent, old], NOW, 60, "http://w:6066")
    assert posted["labels"]["force"] == "durham"
    assert posted["startsAt"] == "2026-11-24T10:00:00Z" and posted["endsAt"] == "2026-11-24T11:57:00Z"
