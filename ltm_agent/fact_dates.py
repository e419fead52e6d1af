"""Date expressions inside facts, resolved with ``dateparser`` against the episode's time.

"I moved to Berlin last weekend", said on 2024-03-20, became true on
2024-03-16, whatever day the code runs. Everything here anchors
``dateparser`` at the episode's own timestamp (``RELATIVE_BASE``); no date is
parsed with a regular expression.

Core functions: :func:`resolve_date_expression`, :func:`find_date_expressions`.
"""

from __future__ import annotations

import re
from datetime import datetime, time

from ltm_agent.records import require_aware
from ltm_agent.retrieval.time_window import DATEPARSER_LOCK, mentions_time, plausible_date_expression

__all__ = ["find_date_expressions", "resolve_date_expression"]


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
