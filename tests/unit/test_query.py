"""Query parameters: what the OpenAPI document calls valid is read, the rest is a ValueError
(a 400), never an OverflowError (a 500). Each row below was an input that got a 500 or was
accepted against the document before."""

import datetime as dt

import pytest

from streams.core.query import parse_day, window_days

AT = dt.date(2025, 6, 30)


@pytest.mark.parametrize(
    ("window", "first"),
    [
        ("1d", AT),
        ("28d", dt.date(2025, 6, 3)),
        ("99999d", AT - dt.timedelta(days=99998)),
        ("all", AT - dt.timedelta(days=400)),
    ],
)
def test_windows_the_document_allows(window: str, first: dt.date) -> None:
    assert window_days(window, at=AT, keep_days=400) == (first, AT)


@pytest.mark.parametrize(
    "window",
    [
        "0d",
        "01d",  # a leading zero: the document's pattern refuses it
        "100000d",  # six digits: past the document's 99999
        "9999999999d",  # was OverflowError (500)
        "\u0661\u0662d",  # Arabic-Indic digits: str.isdigit() took them
        "28",
        "d",
        "-5d",
        " 28d",
        "",
    ],
)
def test_windows_the_document_refuses_are_value_errors(window: str) -> None:
    with pytest.raises(ValueError, match="window"):
        window_days(window, at=AT, keep_days=400)


def test_a_window_reaching_before_year_one_is_a_value_error_not_an_overflow() -> None:
    with pytest.raises(ValueError, match="before the year 1"):
        window_days("99999d", at=dt.date(1, 3, 1), keep_days=400)
    with pytest.raises(ValueError, match="before the year 1"):
        window_days("all", at=dt.date(1, 3, 1), keep_days=400)


@pytest.mark.parametrize("text", ["2025-06-30", "0001-01-01", "9999-12-31"])
def test_days_as_rfc3339_full_dates(text: str) -> None:
    assert parse_day(text, "at") == dt.date.fromisoformat(text)


# date.fromisoformat also reads the basic and week forms, which the document's format: date refuses
@pytest.mark.parametrize(
    "text", ["20250630", "2025-W26-1", "2025-02-30", "2025-6-30", "２０２５-06-30", "x" * 500]
)
def test_other_dates_are_value_errors_naming_the_parameter(text: str) -> None:
    with pytest.raises(ValueError, match="^at must be a date") as caught:
        parse_day(text, "at")
    assert len(str(caught.value)) < 120
