"""How ranked memories become what a prompt gets: :class:`~ltm_agent.records.MemoryItem` s with
their text as rendered (dates, excerpts of long memories) and its cl100k token count.

Core functions: :func:`render_items` (the read path's rule, lazily), :func:`to_memory_item` (one item).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable, Iterator

from ltm_agent.dates import day_label, from_timestamp
from ltm_agent.records import MemoryItem, StoredItem
from ltm_agent.retrieval.config import RetrievalConfig
from ltm_agent.retrieval.excerpts import excerpt
from ltm_agent.tokens import count_tokens

__all__ = ["event_time", "render_items", "to_memory_item"]


def event_time(item: StoredItem) -> datetime | None:
    """When the memory happened (its ``event_ts``, else a fact's ``valid_ts``), or ``None``."""
    ts = item.metadata.get("event_ts", item.metadata.get("valid_ts"))
    return from_timestamp(ts) if ts is not None else None


def to_memory_item(
    item: StoredItem, score: float, *, render_dates: bool = True, query: str | None = None, excerpt_tokens: int = 0
) -> MemoryItem:
    """A store item as a retrieval result, its text rendered as it goes into a prompt.

    With ``query`` and ``excerpt_tokens`` a longer memory is rendered as its best-matching
    sentences (:func:`~ltm_agent.retrieval.excerpts.excerpt`); id and sources stay the turn's.
    """
    meta = item.metadata
    time = event_time(item)
    body = (excerpt(item.text, query, excerpt_tokens) if query and excerpt_tokens else None) or item.text
    text = f"{day_label(time)} {body}" if (render_dates and time is not None) else body
    return MemoryItem(
        id=item.id,
        kind=str(meta.get("kind", "")),
        text=text,
        score=score,
        time=time,
        tokens=count_tokens(text),
        sources=tuple(json.loads(str(meta.get("sources", "[]")))),
        namespace=item.namespace,
    )


def render_items(
    ranked: Iterable[tuple[StoredItem, float]], config: RetrievalConfig, query: str
) -> Iterator[MemoryItem]:
    """Ranked store items as the read path renders them for ``query``, in the order given, one
    at a time (rendering counts tokens and cuts excerpts: a caller stops when it has enough).

    Excerpts per ``config.excerpt_budget``; dates per ``config.render_dates``, and with
    ``config.share_dates`` each day's date only on the first item of that day (the
    later ones go under it in a prompt: :func:`~ltm_agent.llm.render_memory_block`).
    """
    excerpt_tokens = config.excerpt_budget(query)
    shown: set[str] = set()
    for item, score in ranked:
        dated = config.render_dates
        if dated and config.share_dates and (time := event_time(item)) is not None:
            label = day_label(time)
            dated = label not in shown
            shown.add(label)
        yield to_memory_item(item, score, render_dates=dated, query=query, excerpt_tokens=excerpt_tokens)
