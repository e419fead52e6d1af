"""Paged searches over recall and archival storage.

* Recall storage holds every message a paged context ever saw, as
  ``Episode`` records of unit ``turn``. :func:`search_recall` ranks them with
  dense and keyword (BM25) search fused by reciprocal rank fusion, optionally
  inside a date range on ``event_ts``.
* Archival storage holds the agent's own notes (``Note`` records of kind
  ``note``). :func:`search_archival` ranks them by embedding similarity.

Both return a :class:`SearchPage` of at most :data:`PAGE_SIZE` hits, whose
:meth:`~SearchPage.render` is what the model reads::

    Showing 5 of 12 results (page 0/2)
    1. [2024-05-01 14:03 UTC] user: I moved to Lisbon in May.
    ...

``page`` is 0-based as the tools take it, and ``P`` is the last page's number
(the MemGPT convention), so "page 0/2" means pages 0, 1 and 2 exist.

Core types: :class:`SearchPage`, :class:`SearchHit`, :class:`DateRange`;
functions :func:`parse_date_range`, :func:`search_recall`, :func:`search_archival`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ltm_agent.dates import from_timestamp, require_aware, to_timestamp
from ltm_agent.errors import (
    EmptyTextError,
    InvalidDateError,
    InvalidInputError,
    describe,
)
from ltm_agent.namespaces import Namespace
from ltm_agent.records import RecordKind, StoredItem
from ltm_agent.retrieval.config import RetrievalConfig
from ltm_agent.retrieval.hybrid import HybridRetriever
from ltm_agent.store import MemoryStore
from ltm_agent.text import clip

__all__ = [
    "PAGE_SIZE",
    "DateRange",
    "SearchHit",
    "SearchPage",
    "parse_date_range",
    "search_archival",
    "search_recall",
]

PAGE_SIZE = 5
"""Results per page, as in MemGPT."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?$")
_DATE_HELP = "write it as YYYY-MM-DD (e.g. 2024-05-01) or YYYY-MM-DDTHH:MM:SS+00:00, or leave it out"


@dataclass(frozen=True, slots=True)
class DateRange:
    """A range of event times; either end may be open.

    Attributes:
        start: Earliest time included.
        end: Latest time; included when ``end_inclusive``, else the first time excluded.
        end_inclusive: False when ``end`` came from a date (the whole day counts).
    """

    start: datetime | None = None
    end: datetime | None = None
    end_inclusive: bool = True

    def to_filter(self) -> dict[str, Any]:
        """The ``event_ts`` conditions for a store filter (empty when open on both ends)."""
        ops: dict[str, float] = {}
        if self.start is not None:
            ops["$gte"] = to_timestamp(self.start)
        if self.end is not None:
            ops["$lte" if self.end_inclusive else "$lt"] = to_timestamp(self.end)
        return {"event_ts": ops} if ops else {}


def _parse_bound(value: str | date | datetime | None, name: str, *, end: bool) -> tuple[datetime | None, bool]:
    """(time, inclusive) for one end of a range; a date covers its whole day (UTC)."""
    if value is None:
        return None, True
    if isinstance(value, datetime):
        return require_aware(value, name), True
    if isinstance(value, date):
        day = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return (day + timedelta(days=1), False) if end else (day, True)
    if not isinstance(value, str):
        raise InvalidDateError(f"{name} must be an ISO 8601 string, got {describe(value)}; {_DATE_HELP}")
    text = value.strip()
    if not text:
        return None, True
    try:
        if _ISO_DATE.match(text):
            return _parse_bound(date.fromisoformat(text), name, end=end)
        if _ISO_DATETIME.match(text):
            parsed = datetime.fromisoformat(text)
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), True
    except ValueError:
        raise InvalidDateError(f"{name} {value!r} is not a real calendar date or time; {_DATE_HELP}") from None
    raise InvalidDateError(f"{name} {value!r} is not an ISO 8601 date; {_DATE_HELP}")


def parse_date_range(
    start_date: str | date | datetime | None = None, end_date: str | date | datetime | None = None
) -> DateRange:
    """Parse ``start_date``/``end_date`` strictly as ISO 8601; both ends are inclusive.

    ``YYYY-MM-DD`` covers the whole day in UTC; a datetime without an offset
    is read as UTC. Anything else (``"last week"``, ``"May 1"``) is refused.

    Raises:
        InvalidDateError: A value is not ISO 8601, not a real date, or the
            start is after the end.

    Example:
        >>> r = parse_date_range("2024-05-01", "2024-05-01")
        >>> (r.start.isoformat(), r.end.isoformat(), r.end_inclusive)
        ('2024-05-01T00:00:00+00:00', '2024-05-02T00:00:00+00:00', False)
    """
    start, _ = _parse_bound(start_date, "start_date", end=False)
    end, inclusive = _parse_bound(end_date, "end_date", end=True)
    if start is not None and end is not None and (start > end or (start == end and not inclusive)):
        raise InvalidDateError(
            f"start_date {start_date!s} is after end_date {end_date!s}; swap them or leave one out"
        )
    return DateRange(start, end, inclusive)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result.

    Attributes:
        id: Store id of the message or note.
        text: Its full text.
        time: When it was said (recall) or written (archival).
        role: Speaker role, for recall hits.
        tags: Tags, for archival hits.
        score: Fused (recall) or cosine (archival) score; only comparable within one search.
    """

    id: str
    text: str
    time: datetime | None
    role: str | None = None
    tags: tuple[str, ...] = ()
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results and how it renders for the model.

    Attributes:
        tool: The tool name to call for the next page.
        query: The query searched.
        page: The 0-based page number.
        total: How many results the search ranked (bounded by the search pool).
        hits: The results on this page, best first.
    """

    tool: str
    query: str
    page: int
    total: int
    hits: tuple[SearchHit, ...]

    @property
    def last_page(self) -> int:
        """Number of the last page (0 when there are no results)."""
        return max(0, math.ceil(self.total / PAGE_SIZE) - 1)

    @property
    def header(self) -> str:
        """``Showing k of N results (page p/P)``."""
        return f"Showing {len(self.hits)} of {self.total} results (page {self.page}/{self.last_page})"

    def render(self, *, max_chars: int = 1000) -> str:
        """The text the model reads: header, numbered hits with dates, a hint for more.

        Each hit's text is cut to ``max_chars`` characters.
        """
        lines = [self.header]
        first = self.page * PAGE_SIZE + 1
        for number, hit in enumerate(self.hits, start=first):
            when = f"[{hit.time.astimezone(UTC):%Y-%m-%d %H:%M} UTC]" if hit.time else "[undated]"
            text = " ".join(hit.text.split())
            text = clip(text, max_chars, mark="…")
            who = f" {hit.role}:" if hit.role else ""
            tags = f" (tags: {', '.join(hit.tags)})" if hit.tags else ""
            lines.append(f"{number}. {when}{who} {text}{tags}")
        if not self.hits:
            lines.append(
                "No results." if self.total == 0 else f"Page {self.page} is past the last page, {self.last_page}."
            )
        elif self.page < self.last_page:
            lines.append(f"More results: call {self.tool} again with page={self.page + 1}.")
        return "\n".join(lines)


def _check(query: object, page: object, tool: str) -> str:
    if not isinstance(query, str) or not query.strip():
        raise EmptyTextError(f"{tool} needs a non-empty query (the words to look for), got {describe(query)}")
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise InvalidInputError(f"{tool}: page must be an integer >= 0 (0 is the first page), got {describe(page)}")
    return query


_RECALL_CONFIG = RetrievalConfig(
    units=(str(RecordKind.TURN),), time_expansion=False, speaker_boost=0.0, feedback_docs=0, render_dates=False
)


def _page_of(ranked: list[tuple[StoredItem, float]], page: int) -> list[tuple[StoredItem, float]]:
    return ranked[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]


def search_recall(
    store: MemoryStore,
    namespace: Namespace,
    query: str,
    *,
    dates: DateRange | None = None,
    page: int = 0,
    pool: int = 50,
) -> SearchPage:
    """Hybrid (dense + BM25, RRF-fused) search over the namespace's recall storage.

    Args:
        store: The store.
        namespace: The namespace (only this one is read).
        query: Words to look for.
        dates: Event-time range; open by default.
        page: 0-based page of :data:`PAGE_SIZE` results.
        pool: Candidates taken from each ranking; the total never exceeds it.

    Raises:
        EmptyTextError: The query is empty.
        InvalidInputError: ``page`` is not an integer >= 0.
    """
    _check(query, page, "conversation_search")
    # The library's one hybrid search, with what a literal message search does not want switched
    # off (time expansion, speaker boost, feedback): recall pages are ranked like every other read.
    config = _RECALL_CONFIG.but(candidates=pool)
    ranked = HybridRetriever(store, config).ranked_items(
        namespace, query, filter=dates.to_filter() if dates else None, depth=pool
    )
    hits = tuple(
        SearchHit(
            id=item.id,
            text=item.text,
            time=from_timestamp(float(item.metadata["event_ts"])) if "event_ts" in item.metadata else None,
            role=str(item.metadata.get("role", "")) or None,
            score=score,
        )
        for item, score in _page_of(ranked, page)
    )
    return SearchPage("conversation_search", query, page, len(ranked), hits)


def search_archival(
    store: MemoryStore, namespace: Namespace, query: str, *, page: int = 0, pool: int = 50
) -> SearchPage:
    """Dense (embedding) search over the namespace's archival notes.

    Raises:
        EmptyTextError: The query is empty.
        InvalidInputError: ``page`` is not an integer >= 0.
    """
    _check(query, page, "archival_memory_search")
    found = store.search(namespace, query, mode="dense", filter={"kind": str(RecordKind.NOTE)}, limit=pool)
    ranked = [(hit.item, hit.score) for hit in found]
    hits = tuple(
        SearchHit(
            id=item.id,
            text=item.text,
            time=from_timestamp(float(item.metadata["created_ts"])) if "created_ts" in item.metadata else None,
            tags=tuple(json.loads(str(item.metadata.get("tags", "[]")))),
            score=score,
        )
        for item, score in _page_of(ranked, page)
    )
    return SearchPage("archival_memory_search", query, page, len(ranked), hits)
