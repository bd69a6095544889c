import datetime as dt

import pytest

from streams.core.classify import Cell, category_of, check_retention, classify
from streams.errors import RejectedEvent
from streams.model import OutcomeEvent
from streams.reference import (
    DISPOSAL_CLASSES,
    FORCE_NAMES,
    HOME_OFFICE_OUTCOMES,
    OUT_OF_COURT,
    POLICEUK_CRIME_TYPES,
    POLICEUK_OUTCOMES,
)

DAY = dt.date(2025, 3, 1)
TODAY = dt.date(2025, 6, 1)


def event(**kw: object) -> OutcomeEvent:
    base: dict[str, object] = dict(
        event_id="e1",
        force_id="kent",
        crime_ref="K/1",
        disposal="community-resolution",
        outcome_date=DAY,
        recorded_at=dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC),
        source_system="test",
        offence_code="8Q",
        outcome_number=8,
    )
    base.update(kw)
    return OutcomeEvent(**base)  # type: ignore[arg-type]


# The issue's table, verbatim: police.uk outcome string -> disposal class.
ISSUE_TABLE = {
    "community-resolution": ["Local resolution"],
    "caution": ["Offender given a caution"],
    "penalty-notice": ["Offender given penalty notice"],
    "drugs-warning": ["Offender given a drugs possession warning"],
    "charge": [
        "Suspect charged",
        "Suspect charged as part of another case",
        "Awaiting court outcome",
        "Court case unable to proceed",
        "Court result unavailable",
        "Defendant found not guilty",
        "Defendant sent to Crown Court",
        "Offender deprived of property",
        "Offender fined",
        "Offender given absolute discharge",
        "Offender given community sentence",
        "Offender given conditional discharge",
        "Offender given suspended prison sentence",
        "Offender ordered to pay compensation",
        "Offender otherwise dealt with",
        "Offender sent to prison",
    ],
    "no-further-action": [
        "Formal action is not in the public interest",
        "Further action is not in the public interest",
        "Further investigation is not in the public interest",
        "Investigation complete; no suspect identified",
        "Unable to prosecute suspect",
    ],
    "other": ["Action to be taken by another organisation"],
    "pending": ["Under investigation", "Status update unavailable"],
}


@pytest.mark.parametrize(("text", "cls"), [(t, c) for c, texts in ISSUE_TABLE.items() for t in texts])
def test_policeuk_outcome_strings_map_exactly(text: str, cls: str) -> None:
    assert POLICEUK_OUTCOMES[text] == cls


def test_every_policeuk_outcome_is_mapped_and_nothing_else() -> None:
    assert set(POLICEUK_OUTCOMES) == {t for texts in ISSUE_TABLE.values() for t in texts}


@pytest.mark.parametrize(
    ("number", "cls"),
    [
        (1, "charge"),
        (2, "caution"),
        (3, "caution"),
        (6, "penalty-notice"),
        (7, "drugs-warning"),
        (8, "community-resolution"),
        (22, "diversion"),
        (18, "no-further-action"),
        (20, "other"),
    ],
)
def test_home_office_numbers(number: int, cls: str) -> None:
    assert HOME_OFFICE_OUTCOMES[number] == cls


def test_out_of_court_is_home_office_2_3_6_7_8() -> None:
    assert {HOME_OFFICE_OUTCOMES[n] for n in (2, 3, 6, 7, 8)} == OUT_OF_COURT
    assert "diversion" not in OUT_OF_COURT
    assert set(DISPOSAL_CLASSES) >= OUT_OF_COURT


def test_45_forces() -> None:
    assert len(FORCE_NAMES) == 45
    assert FORCE_NAMES["city-of-london"] == "City of London Police"


@pytest.mark.parametrize(
    ("code", "crime_type", "category"),
    [
        ("8Q", None, "stalking"),
        ("8L", None, "harassment"),
        ("8M", None, "harassment"),
        ("19C", None, "rape"),
        ("88E", None, "sexual"),
        ("17A", None, "sexual"),
        ("73", None, "sexual"),
        ("10D", None, "knife"),
        ("90", None, "knife"),
        ("11A", None, "child-cruelty"),
        ("8q", None, "stalking"),
        ("ZZZ", None, "other"),
        (None, "Violence and sexual offences", "violence-and-sexual-offences"),
        (None, "Possession of weapons", "possession-of-weapons"),
        (None, "Anti-social behaviour", "anti-social-behaviour"),
    ],
)
def test_category(code: str | None, crime_type: str | None, category: str) -> None:
    assert category_of(event(offence_code=code, crime_type=crime_type)) == category


def test_policeuk_crime_types_are_slugged() -> None:
    assert POLICEUK_CRIME_TYPES["Criminal damage and arson"] == "criminal-damage-and-arson"


def test_classify_gives_the_cell() -> None:
    cell = classify(event(domestic_abuse=True), latest_day=TODAY)
    assert cell == Cell("kent", "stalking", "community-resolution", DAY, True)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"force_id": "gotham"}, "unknown_force"),
        ({"outcome_number": 99}, "unknown_outcome"),
        ({"outcome_number": 1}, "unknown_outcome"),  # 1 is charge, event says community-resolution
        ({"disposal": "banished"}, "unknown_outcome"),
        ({"offence_code": None, "crime_type": "Piracy"}, "unknown_crime_type"),
        ({"offence_code": None, "crime_type": None}, "schema_invalid"),
        ({"crime_ref": ""}, "schema_invalid"),
        ({"event_id": ""}, "schema_invalid"),
        ({"outcome_date": TODAY + dt.timedelta(days=1)}, "future_outcome"),
    ],
)
def test_classify_rejects_with_a_reason(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(RejectedEvent) as info:
        classify(event(**changes), latest_day=TODAY)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("day", "today", "keep", "ok"),
    [
        (dt.date(2025, 1, 1), dt.date(2025, 1, 1), 400, True),
        (dt.date(2023, 11, 28), dt.date(2025, 1, 1), 400, True),  # exactly 400 days before
        (dt.date(2023, 11, 27), dt.date(2025, 1, 1), 400, False),  # 401 days before
        (dt.date(2000, 1, 1), None, 400, True),  # stream clock not started
    ],
)
def test_retention(day: dt.date, today: dt.date | None, keep: int, ok: bool) -> None:
    if ok:
        check_retention(day, today=today, keep_days=keep)
    else:
        with pytest.raises(RejectedEvent) as info:
            check_retention(day, today=today, keep_days=keep)
        assert info.value.reason == "beyond_retention"
