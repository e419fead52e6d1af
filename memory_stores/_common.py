"""Rules every store backend shares: timestamps, ranking, paging.

Keeping these in one place is what makes the backends agree to the last tie:
results are sorted by score (descending) and then by id, pages are cut after
sorting, and ``created_at`` survives a replace.

Filter semantics live in :mod:`ltm_agent.filters` and op validation in
:meth:`ltm_agent.store.MemoryStore.validate_ops`, so every backend gets both.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Sequence, TypeVar

from ltm_agent.dates import utcnow
from ltm_agent.records import ScoredItem, StoredItem

__all__ = ["copy_item", "page", "rank", "stamp"]

T = TypeVar("T")


def stamp(item: StoredItem, previous: StoredItem | None, now: datetime | None = None) -> StoredItem:
    """Return ``item`` with store-owned times set.

    ``created_at`` is kept from ``previous`` when the item replaces one,
    otherwise it is ``now``; any value the caller put on the item is ignored
    (the store, not the caller, records when it learned something; put event
    times in metadata). ``updated_at`` is always ``now``.
    """
    now = now or utcnow()
    created = previous.created_at if previous is not None and previous.created_at else now
    return replace(item, metadata=dict(item.metadata), created_at=created, updated_at=now)


def copy_item(item: StoredItem, vector: Any = None) -> StoredItem:
    """A copy with its own metadata dict, so a caller mutating a result never edits the store.

    ``vector``, when given, replaces the item's vector (searches with ``with_vectors``).
    (The constructor, not ``dataclasses.replace``: searches copy hundreds of items.)
    """
    return StoredItem(
        item.namespace, item.id, item.text, dict(item.metadata), item.key, item.created_at, item.updated_at,
        item.vector if vector is None else vector,
    )


def rank(scored: Sequence[ScoredItem]) -> list[ScoredItem]:
    """Sort by score, best first; equal scores by id."""
    return sorted(scored, key=lambda s: (-s.score, s.item.id))


def page(values: Sequence[T], limit: int | None, offset: int) -> list[T]:
    """``values[offset : offset + limit]`` (``limit=None`` means no limit)."""
    end = None if limit is None else offset + limit
    return list(values[offset:end])
