"""Parsing dates from data files and user input into timezone-aware datetimes.

Memory compares times across sessions and users, so every datetime that
enters the library is aware. :func:`parse_date` is the one entry point; it
accepts ISO 8601, LoCoMo's ``"1:56 pm on 8 May, 2023"``, LongMemEval's
``"2023/05/20 (Sat) 02:21"`` and other absolute dates that ``python-dateutil``
or ``dateparser`` understand. Relative phrases ("yesterday") and partial dates
("May 2023") are refused: they would silently depend on the day the code runs.

Core function: :func:`parse_date`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from functools import lru_cache

from dateutil import parser as _dateutil_parser

from ltm_agent.errors import InvalidDateError, InvalidTypeError, describe

__all__ = ["ACCEPTED_FORMATS", "parse_date"]

ACCEPTED_FORMATS = (
    'ISO 8601 ("2023-05-08T13:56:00+00:00", "2023-05-08")',
    'LoCoMo ("1:56 pm on 8 May, 2023")',
    'LongMemEval ("2023/05/20 (Sat) 02:21")',
    'other absolute dates with day, month and year ("8 May 2023 13:56")',
)
"""Human-readable list of the forms :func:`parse_date` accepts (used in errors)."""

# Pre-cleaning only: LongMemEval writes the weekday in parentheses, which
# dateutil does not skip. The date itself is always parsed by a library.
_PARENTHESISED_WEEKDAY = re.compile(r"\(\s*[A-Za-z]{3,9}\.?\s*\)")

# Two defaults that differ in day, month and year: when a string leaves one of
# those out, dateutil fills it from the default and the two results differ.
_PROBE_A = datetime(2000, 1, 1)
_PROBE_B = datetime(2001, 2, 2)

_DATEPARSER_SETTINGS = {
    # No "relative-time": "yesterday" would depend on when the code runs.
    "PARSERS": ["timestamp", "custom-formats", "absolute-time"],
    "REQUIRE_PARTS": ["day", "month", "year"],
}


def parse_date(value: str | date | datetime, *, default_tz: tzinfo = UTC) -> datetime:
    """Parse a date or datetime into a timezone-aware :class:`~datetime.datetime`.

    Strings are tried as ISO 8601 first, then with ``python-dateutil``, then
    with ``dateparser`` (absolute dates only). A result without a timezone gets
    ``default_tz``; one with a timezone keeps it. A ``date`` becomes midnight.

    Args:
        value: The text or date to parse.
        default_tz: Timezone given to naive results (default UTC).

    Returns:
        An aware datetime.

    Raises:
        InvalidDateError: The text is empty, relative, partial or unparseable.
        InvalidTypeError: ``value`` is not a string, date or datetime.

    Example:
        >>> parse_date("1:56 pm on 8 May, 2023").isoformat()
        '2023-05-08T13:56:00+00:00'
        >>> parse_date("2023/05/20 (Sat) 02:21").isoformat()
        '2023-05-20T02:21:00+00:00'
        >>> parse_date("2023-05-20T02:21:00+02:00").isoformat()
        '2023-05-20T02:21:00+02:00'
    """
    if isinstance(value, datetime):
        return _aware(value, default_tz)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=default_tz)
    if not isinstance(value, str):
        raise InvalidTypeError(
            f"parse_date() takes a str, date or datetime, got {describe(value)}; "
            f"convert it first, e.g. parse_date(str(value))"
        )
    return _aware(_parse_text(value), default_tz)


def _aware(value: datetime, default_tz: tzinfo) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=default_tz)
    return value


@lru_cache(maxsize=4096)
def _parse_text(value: str) -> datetime:
    """Parse text to a datetime (naive when the text names no timezone)."""
    text = " ".join(_PARENTHESISED_WEEKDAY.sub(" ", value).split())
    if not text:
        raise _invalid(value, "it is empty")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        first = _dateutil_parser.parse(text, default=_PROBE_A)
        second = _dateutil_parser.parse(text, default=_PROBE_B)
    except (ValueError, OverflowError):
        pass
    else:
        if first == second:
            return first
        raise _invalid(value, "it lacks a day, month or year")
    return _parse_with_dateparser(value, text)


def _parse_with_dateparser(value: str, text: str) -> datetime:
    import dateparser  # slower to import; only needed for unusual forms

    parsed = dateparser.parse(text, settings=_DATEPARSER_SETTINGS)
    if parsed is None:
        raise _invalid(value, "no accepted form matches")
    return parsed


def _invalid(value: str, why: str) -> InvalidDateError:
    forms = "; ".join(ACCEPTED_FORMATS)
    return InvalidDateError(
        f"cannot parse date {describe(value)}: {why}. Accepted forms: {forms}. "
        f"Relative dates ('yesterday') and partial dates ('May 2023') are refused "
        f"because their meaning depends on today's date; give a full date."
    )
