"""Time-aware query expansion: the time window a question points at.

Time expressions in the question ("last Saturday", "two weeks ago", "in May
2023") are found and resolved by ``dateparser`` against the question's own
reference date, turned into a window by the expression's granularity (day,
week, month, year) and widened by ±2 days (LongMemEval's time-aware query
expansion). Retrieval then moves episodes inside the window to the front of the
ranking, keeping their order (a stable partition, not a filter).

Core types: :class:`TimeWindow`, :func:`query_time_window`, :func:`stable_partition`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Callable, Sequence, TypeVar

from ltm_agent.dates import DATEPARSER_LOCK, mentions_time, plausible_date_expression, require_aware

__all__ = ["TimeWindow", "query_time_window", "stable_partition"]

T = TypeVar("T")

@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A closed interval of event time, with the expression it came from."""

    start: datetime
    end: datetime
    expression: str

    def contains(self, when: datetime | None) -> bool:
        return when is not None and self.start <= when <= self.end


def _span(anchor: datetime, period: str, expression: str) -> tuple[datetime, datetime]:
    day = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
    relative = bool(re.search(r"\bago\b|\blast\b|\bpast\b|\bprevious\b", expression, re.IGNORECASE))
    if period == "week":
        return day - timedelta(days=7), day + timedelta(days=7)
    if period == "month":
        if relative:
            return day - timedelta(days=16), day + timedelta(days=16)
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end
    if period == "year":
        if relative:
            return day - timedelta(days=183), day + timedelta(days=183)
        return day.replace(month=1, day=1), day.replace(year=day.year + 1, month=1, day=1)
    return day, day + timedelta(days=1)


_BARE_ORDINAL = re.compile(r"(?:the\s+)?\d{1,2}(?:st|nd|rd|th)", re.IGNORECASE)
_AFTER_A_DAY = frozenset("of at in on and or i we you he she they it when did was is".split())


def _counts_things(question: str, expression: str) -> bool:
    """A bare ordinal that numbers a thing, not a day: "the 27th parameter", "the 3rd song"."""
    if not _BARE_ORDINAL.fullmatch(expression.strip()):
        return False
    after = question[question.find(expression) + len(expression) :].split()
    word = after[0].strip("?.,!;:").lower() if after else ""
    return word.isalpha() and word not in _AFTER_A_DAY


def query_time_window(
    question: str,
    reference_time: datetime,
    *,
    widen: timedelta = timedelta(days=2),
) -> TimeWindow | None:
    """The event-time window a question refers to, or ``None`` when it names no time.

    Args:
        question: The question text.
        reference_time: When the question is asked; relative expressions resolve
            against it (not against today).
        widen: Margin added on both sides (LongMemEval: ±2 days).

    Example:
        >>> from datetime import datetime, UTC
        >>> w = query_time_window("What did I do last Saturday?", datetime(2023, 5, 20, tzinfo=UTC))
        >>> (w.start.date().isoformat(), w.end.date().isoformat())
        ('2023-05-11', '2023-05-16')
    """
    require_aware(reference_time, "reference_time")
    if not mentions_time(question):
        return None  # cheap exit: most questions name no time at all
    from dateparser.date import DateDataParser
    from dateparser.search import search_dates

    base = reference_time.astimezone(UTC).replace(tzinfo=None)
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False}
    with DATEPARSER_LOCK:  # dateparser keeps module-level caches; keep it to one thread at a time
        found = search_dates(question, languages=["en"], settings=settings) or []
        parser = DateDataParser(languages=["en"], settings=settings)
        spans: list[tuple[datetime, datetime, str]] = []
        for expression, _ in found:
            if not plausible_date_expression(expression) or _counts_things(question, expression):
                continue
            data = parser.get_date_data(expression)
            if data.date_obj is None:
                continue
            start, end = _span(data.date_obj, data.period or "day", expression)
            spans.append((start, end, expression.strip()))
    if not spans:
        return None
    start = min(s for s, _, _ in spans).replace(tzinfo=UTC) - widen
    end = max(e for _, e, _ in spans).replace(tzinfo=UTC) + widen
    return TimeWindow(start, end, "; ".join(x for _, _, x in spans))


def stable_partition(items: Sequence[T], inside: Callable[[T], bool]) -> list[T]:
    """Items for which ``inside`` holds first, then the rest; order kept in both groups.

    Example:
        >>> stable_partition([1, 2, 3, 4], lambda x: x % 2 == 0)
        [2, 4, 1, 3]
    """
    return [x for x in items if inside(x)] + [x for x in items if not inside(x)]
