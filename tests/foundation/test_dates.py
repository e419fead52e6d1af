"""parse_date: the benchmark formats, ISO 8601, timezones and clear refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ltm_agent.dates import parse_date
from ltm_agent.errors import InvalidDateError, InvalidInputError, InvalidTypeError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("12:09 am on 13 September, 2023", datetime(2023, 9, 13, 0, 9, tzinfo=UTC)),
        ("10:04 am on 19 December, 2023", datetime(2023, 12, 19, 10, 4, tzinfo=UTC)),
        ("2023/05/20 (Sat) 02:21", datetime(2023, 5, 20, 2, 21, tzinfo=UTC)),
        ("2023/05/20 02:21", datetime(2023, 5, 20, 2, 21, tzinfo=UTC)),
        ("2023-05-20", datetime(2023, 5, 20, tzinfo=UTC)),
        ("2023-05-20T02:21:00", datetime(2023, 5, 20, 2, 21, tzinfo=UTC)),
        ("2023-05-20T02:21:00Z", datetime(2023, 5, 20, 2, 21, tzinfo=UTC)),
        ("8 May 2023", datetime(2023, 5, 8, tzinfo=UTC)),
        ("  8 May 2023  ", datetime(2023, 5, 8, tzinfo=UTC)),
    ],
)
def test_accepted_forms(text: str, expected: datetime) -> None:
    parsed = parse_date(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_explicit_offset_is_kept() -> None:
    parsed = parse_date("2023-05-20T02:21:00+02:00")
    assert parsed.utcoffset() == timedelta(hours=2)
    assert parsed == datetime(2023, 5, 20, 0, 21, tzinfo=UTC)


def test_default_tz_applies_to_naive_results_only() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_date("2023/05/20 (Sat) 02:21", default_tz=berlin).tzinfo is berlin
    assert parse_date("2023-05-20T02:21:00+00:00", default_tz=berlin).utcoffset() == timedelta(0)


def test_datetime_and_date_inputs() -> None:
    aware = datetime(2024, 1, 1, 9, tzinfo=timezone(timedelta(hours=-5)))
    assert parse_date(aware) is aware
    assert parse_date(datetime(2024, 1, 1, 9)) == datetime(2024, 1, 1, 9, tzinfo=UTC)
    assert parse_date(date(2024, 1, 1)) == datetime(2024, 1, 1, tzinfo=UTC)


def test_dateparser_fallback_reads_other_languages() -> None:
    assert parse_date("8 de mayo de 2023") == datetime(2023, 5, 8, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "   ", "garbage", "yesterday", "in 2 days", "May 2023", "2023", "13:56"])
def test_unparseable_relative_and_partial_dates_are_refused(text: str) -> None:
    with pytest.raises(InvalidDateError) as info:
        parse_date(text)
    message = str(info.value)
    assert repr(text) in message
    assert "LoCoMo" in message and "LongMemEval" in message  # lists the accepted forms
    assert isinstance(info.value, InvalidInputError) and isinstance(info.value, ValueError)


def test_wrong_type_is_a_type_error() -> None:
    with pytest.raises(InvalidTypeError, match="int"):
        parse_date(20230520)  # type: ignore[arg-type]
