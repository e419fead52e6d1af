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
from typing import Any, Callable, Mapping, Sequence, TypeVar

from ltm_agent.dates import utcnow
from ltm_agent.filters import matches
from ltm_agent.records import ScoredItem, StoredItem

__all__ = ["copy_item", "match_function", "page", "rank", "stamp"]

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


def match_function(normal: Mapping[str, Mapping[str, Any]]) -> Callable[[Mapping[str, Any]], bool]:
    """``matches(metadata, normal)`` as a function, fast for the filters every read sends.

    Searches test hundreds of candidates against one filter (the retriever's
    ``kind $in [...]``); conditions on str values (``$eq``, ``$in``) become a
    comparison or a set lookup. Any other filter uses
    :func:`ltm_agent.filters.matches` itself, so the semantics are one.
    """
    checks: list[tuple[str, bool, Any]] = []  # (key, is a set, str or set of str)
    for key, ops in normal.items():
        for op, expected in ops.items():
            if op == "$eq" and isinstance(expected, str):
                checks.append((key, False, expected))
            elif op == "$in" and all(isinstance(v, str) for v in expected):
                checks.append((key, True, frozenset(expected)))
            else:
                return lambda metadata: matches(metadata, normal)

    def fast(metadata: Mapping[str, Any]) -> bool:
        for key, is_set, expected in checks:
            actual = metadata.get(key)
            # A str condition holds only for a str value (filters.value_kind): never a number or a bool.
            if not isinstance(actual, str) or not (actual in expected if is_set else actual == expected):
                return False
        return True

    return fast
