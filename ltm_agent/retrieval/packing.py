"""Budget packing: fit ranked memories into a context-token budget.

Core functions: :func:`pack` (with ``share_dates``: each day's date once), :func:`own_dates`,
:func:`day_order`, :func:`render_context`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Sequence

from ltm_agent.dates import day_label
from ltm_agent.errors import InvalidInputError, describe
from ltm_agent.records import MemoryItem
from ltm_agent.tokens import count_tokens

__all__ = ["day_order", "own_dates", "pack", "render_context", "with_day_label"]


def with_day_label(item: MemoryItem, shown: bool) -> MemoryItem:
    """``item`` with its text starting with its day's label (``[8 May 2023] ...``) or not.

    Items without a time are returned as they are; so is one already as asked.
    """
    if item.time is None:
        return item
    label = day_label(item.time)
    has = item.text.startswith(label + " ")
    if has == shown:
        return item
    text = f"{label} {item.text}" if shown else item.text[len(label) + 1 :]
    return replace(item, text=text, tokens=count_tokens(text))


def pack(
    items: Iterable[MemoryItem],
    budget_tokens: int | None,
    *,
    skip_covered: bool = True,
    greedy: bool = True,
    share_dates: bool = False,
    limit: int | None = None,
) -> list[MemoryItem]:
    """Keep items in rank order while their total tokens stay within the budget.

    Args:
        items: Ranked items.
        budget_tokens: Token budget; ``None`` keeps everything.
        skip_covered: Drop an item whose sources are all covered by items
            already kept (a turn after the round that contains it).
        greedy: Skip an item that does not fit and try smaller ones after it;
            ``False`` stops at the first item that does not fit (the benchmark
            metric's rule).
        share_dates: Items render each day's date once (a retriever with
            ``RetrievalConfig.shares_dates``): the first kept item of a day is
            given its day's label and later ones lose it, so every kept day keeps
            its date even when the item that carried it was skipped, and each
            item is charged what it renders.
        limit: Stop once this many items are kept (``items`` may be a lazy
            iterator: nothing after that point is consumed), or once the budget
            is full.

    Example:
        >>> from ltm_agent.records import MemoryItem
        >>> a = MemoryItem("a", "turn", "x", 1.0, None, 5, ("t1",), ("n",))
        >>> b = MemoryItem("b", "turn", "y", 0.5, None, 9, ("t2",), ("n",))
        >>> [i.id for i in pack([a, b], 10)]
        ['a']
    """
    if budget_tokens is not None and (not isinstance(budget_tokens, int) or budget_tokens < 0):
        raise InvalidInputError(f"budget_tokens must be a non-negative int, got {describe(budget_tokens)}")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"limit must be a non-negative int or None, got {describe(limit)}")
    kept: list[MemoryItem] = []
    if limit == 0:
        return kept
    covered: set[str] = set()
    days: set[str] = set()
    total = 0
    for item in items:
        if skip_covered and item.sources and covered.issuperset(item.sources):
            continue
        label = day_label(item.time) if share_dates and item.time is not None else None
        if label:
            item = with_day_label(item, label not in days)
        if budget_tokens is not None and total + item.tokens > budget_tokens:
            if greedy:
                continue
            break
        kept.append(item)
        covered.update(item.sources)
        total += item.tokens
        if label:
            days.add(label)
        if (limit is not None and len(kept) >= limit) or total == budget_tokens:
            break
    return kept


def own_dates(items: Sequence[MemoryItem]) -> list[MemoryItem]:
    """Undo shared dates (:func:`pack` with ``share_dates``, the read path's rendering) for a reader that takes memories one by one: an item whose day's
    label another item of ``items`` carries gets it too. Items of days no item labels stay as
    they are (a retriever that renders no dates).

    Example:
        >>> from datetime import datetime, UTC
        >>> day = datetime(2023, 5, 8, tzinfo=UTC)
        >>> a = MemoryItem("a", "turn", "[8 May 2023] Tea.", 1.0, day, 6, ("t1",), ("n",))
        >>> b = MemoryItem("b", "turn", "Cake.", 0.5, day, 2, ("t2",), ("n",))
        >>> c = MemoryItem("c", "turn", "Milk.", 0.4, day.replace(day=9), 2, ("t3",), ("n",))
        >>> [i.text for i in own_dates([a, b, c])]
        ['[8 May 2023] Tea.', '[8 May 2023] Cake.', 'Milk.']
    """
    labelled = {
        label for item in items if item.time is not None and item.text.startswith((label := day_label(item.time)) + " ")
    }
    return [
        with_day_label(item, True) if item.time is not None and day_label(item.time) in labelled else item
        for item in items
    ]


def day_order(items: Sequence[MemoryItem]) -> list[int]:
    """Positions of ``items`` with each day's items together: items without a time first, then the
    days in the order they first appear, each opened by the item that shows the day's label, the
    others in the order given.

    A block of memories that share dates (``RetrievalConfig.share_dates``) reads right in this order:
    a memory without a date comes after one that gives its day, and none comes after a
    memory of another day it could be taken for.

    Example:
        >>> from datetime import datetime, UTC
        >>> d1, d2 = datetime(2023, 5, 8, tzinfo=UTC), datetime(2023, 6, 1, tzinfo=UTC)
        >>> a = MemoryItem("a", "turn", "[8 May 2023] Tea.", 1.0, d1, 6, ("t1",), ("n",))
        >>> b = MemoryItem("b", "turn", "[1 Jun 2023] Cake.", 0.9, d2, 6, ("t2",), ("n",))
        >>> c = MemoryItem("c", "turn", "Milk.", 0.8, d1, 2, ("t3",), ("n",))
        >>> note = MemoryItem("d", "note", "Likes tea.", 0.7, None, 3, (), ("n",))
        >>> day_order([a, b, c, note])
        [3, 0, 2, 1]
    """
    timeless = [position for position, item in enumerate(items) if item.time is None]
    groups: dict[str, list[int]] = {}
    for position, item in enumerate(items):
        if item.time is None:
            continue
        label = day_label(item.time)
        group = groups.setdefault(label, [])
        if item.text.startswith(label + " "):
            group.insert(0, position)  # the item that shows the date opens its day
        else:
            group.append(position)
    return timeless + [position for group in groups.values() for position in group]


def render_context(items: Sequence[MemoryItem]) -> str:
    """Items as plain lines, each day's together (:func:`day_order`; their text carries the dates)."""
    return "\n".join(items[i].text for i in day_order(items))
