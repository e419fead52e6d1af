"""Parsing dates from data files and user input into timezone-aware datetimes.

Memory compares times across sessions and users, so every datetime that
enters the library is aware. :func:`parse_date` is the one entry point; it
accepts ISO 8601, LoCoMo's ``"1:56 pm on 8 May, 2023"``, LongMemEval's
``"2023/05/20 (Sat) 02:21"`` and other absolute dates that ``python-dateutil``
or ``dateparser`` understand. Relative phrases ("yesterday") and partial dates
("May 2023") are refused: they would silently depend on the day the code runs.

Everything about time lives here, so there is one rule and one lock:

* aware-datetime helpers: :func:`utcnow`, :func:`require_aware`, :func:`to_timestamp`,
  :func:`from_timestamp`;
* :func:`parse_date`, the one entry point for dates in data files and user input;
* date expressions inside text ("last weekend", "two weeks ago"), found and resolved
  against a reference time (an episode's or a question's), never against today:
  :func:`find_date_expressions`, :func:`resolve_date_expression`, :func:`mentions_time`,
  :func:`plausible_date_expression`.

``dateparser`` keeps module-level caches and is not thread-safe: every call to it in the
package runs under :data:`DATEPARSER_LOCK`.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, time, tzinfo
from functools import lru_cache

from dateutil import parser as _dateutil_parser

from ltm_agent.errors import InvalidDateError, InvalidTypeError, describe

__all__ = [
    "ACCEPTED_FORMATS",
    "DATEPARSER_LOCK",
    "day_label",
    "find_date_expressions",
    "from_timestamp",
    "mentions_time",
    "parse_date",
    "plausible_date_expression",
    "require_aware",
    "resolve_date_expression",
    "to_timestamp",
    "utcnow",
]

ACCEPTED_FORMATS = (
    'ISO 8601 ("2023-05-08T13:56:00+00:00", "2023-05-08")',
    'LoCoMo ("1:56 pm on 8 May, 2023")',
    'LongMemEval ("2023/05/20 (Sat) 02:21")',
    'other absolute dates with day, month and year ("8 May 2023 13:56")',
)
"""Human-readable list of the forms :func:`parse_date` accepts (used in errors)."""

# dateparser's search is eager: it matches words like "we" or "may" on their own.
# A match must contain a digit or one of these words before we trust it.
_TIME_WORDS = re.compile(
    r"\b(ago|yesterday|today|tonight|tomorrow|last|past|previous|next|this|week|weeks|month|months|year|years|"
    r"day|days|weekend|monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|"
    r"april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|"
    r"oct|nov|dec)\b",
    re.IGNORECASE,
)
_AMBIGUOUS_ALONE = {"may", "march", "this", "last", "next", "past", "day", "week", "month", "year", "today"}
DATEPARSER_LOCK = threading.Lock()
"""dateparser keeps module-level caches: every caller in the package parses under this lock."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def require_aware(value: object, name: str) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime, else raise a clear error."""
    if not isinstance(value, datetime):
        raise InvalidDateError(
            f"{name} must be a timezone-aware datetime, got {describe(value)}; "
            f"parse strings with ltm_agent.dates.parse_date()"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidDateError(
            f"{name} is naive ({value.isoformat()}): memory compares times across users, "
            f"so give it a timezone, e.g. value.replace(tzinfo=datetime.UTC)"
        )
    return value


def to_timestamp(value: datetime) -> float:
    """Seconds since the epoch, for range filters in store metadata."""
    return require_aware(value, "time").timestamp()


def from_timestamp(value: float) -> datetime:
    """The inverse of :func:`to_timestamp` (UTC)."""
    return datetime.fromtimestamp(float(value), UTC)


def day_label(value: datetime) -> str:
    """The day as a rendered memory starts with it: ``[8 May 2023]`` (in the datetime's own zone).

    Example:
        >>> day_label(datetime(2023, 5, 8, 13, 56, tzinfo=UTC))
        '[8 May 2023]'
    """
    return f"[{value.day} {value:%b %Y}]"



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

    with DATEPARSER_LOCK:
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


# ---------------------------------------------------------------------------
# Date expressions inside text

def mentions_time(text: str) -> bool:
    """Cheap pre-check: does ``text`` hold a digit or a time word at all? (dateparser's search is slow.)"""
    return bool(_TIME_WORDS.search(text) or re.search(r"\d", text))


def plausible_date_expression(match: str) -> bool:
    """True when a dateparser search match looks like a date, not a word like "we" or "may"."""
    words = re.findall(r"[A-Za-z]+", match.lower())
    if any(ch.isdigit() for ch in match):
        return True
    hits = [w for w in words if _TIME_WORDS.fullmatch(w)]
    # "may" or "this" alone is usually not a date ("you may", "this book").
    return bool(hits) and not (len(words) == 1 and words[0] in _AMBIGUOUS_ALONE)


# dateparser has no "weekend"; name the day it starts on, then let dateparser resolve it.
_WEEKEND = re.compile(r"\b(?:last|this past|past|over the)\s+weekend\b", re.IGNORECASE)
_CLOCK_TIME = re.compile(r"\d:\d\d|\b\d{1,2}\s*(?:am|pm)\b", re.IGNORECASE)


def resolve_date_expression(expression: str, reference: datetime) -> datetime | None:
    """Resolve a date expression against the episode's time, not today.

    ``dateparser`` does the parsing with ``RELATIVE_BASE`` set to the
    reference's local wall time and ``PREFER_DATES_FROM="past"``. Results
    without a clock time are the start of that day, in the reference's
    timezone. "last weekend" is read as "last Saturday" (dateparser has no
    weekend).

    Returns:
        An aware datetime, or ``None`` when dateparser cannot read the expression.

    Example:
        >>> from datetime import datetime, UTC
        >>> said = datetime(2024, 4, 1, 9, 30, tzinfo=UTC)  # a Monday
        >>> resolve_date_expression("last Tuesday", said).date().isoformat()
        '2024-03-26'
        >>> resolve_date_expression("two weeks ago", said).date().isoformat()
        '2024-03-18'
    """
    require_aware(reference, "reference")
    text = _WEEKEND.sub("last saturday", expression.strip())
    if not text:
        return None
    from dateparser.date import DateDataParser

    base = reference.replace(tzinfo=None)  # local wall time: "yesterday" is the local yesterday
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False}
    with DATEPARSER_LOCK:
        data = DateDataParser(languages=["en"], settings=settings).get_date_data(text)
    if data.date_obj is None:
        return None
    value = data.date_obj
    if not _CLOCK_TIME.search(text):
        value = datetime.combine(value.date(), time())
    return value.replace(tzinfo=reference.tzinfo)


def find_date_expressions(text: str, reference: datetime) -> list[str]:
    """Date expressions in ``text`` that dateparser can resolve, in order."""
    if not mentions_time(text) and not _WEEKEND.search(text):
        return []  # cheap exit: dateparser's search is slow
    from dateparser.search import search_dates

    base = reference.replace(tzinfo=None)
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False}
    weekend = _WEEKEND.search(text)
    with DATEPARSER_LOCK:
        found = search_dates(text, languages=["en"], settings=settings) or []
    hits = [(text.find(expr), expr.strip()) for expr, _ in found if plausible_date_expression(expr)]
    if weekend is not None:
        hits.append((weekend.start(), weekend.group(0)))
    return [expr for _, expr in sorted(hits)]
