"""Budget packing: fit ranked memories into a context-token budget.

Core functions: :func:`pack`, :func:`render_context`.
"""

from __future__ import annotations

from typing import Sequence

from ltm_agent.errors import InvalidInputError, describe
from ltm_agent.records import MemoryItem

__all__ = ["pack", "render_context"]


def pack(
    items: Sequence[MemoryItem],
    budget_tokens: int | None,
    *,
    skip_covered: bool = True,
    greedy: bool = True,
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

    Example:
        >>> from ltm_agent.records import MemoryItem
        >>> a = MemoryItem("a", "turn", "x", 1.0, None, 5, ("t1",), ("n",))
        >>> b = MemoryItem("b", "turn", "y", 0.5, None, 9, ("t2",), ("n",))
        >>> [i.id for i in pack([a, b], 10)]
        ['a']
    """
    if budget_tokens is not None and (not isinstance(budget_tokens, int) or budget_tokens < 0):
        raise InvalidInputError(f"budget_tokens must be a non-negative int, got {describe(budget_tokens)}")
    kept: list[MemoryItem] = []
    covered: set[str] = set()
    total = 0
    for item in items:
        if skip_covered and item.sources and covered.issuperset(item.sources):
            continue
        if budget_tokens is not None and total + item.tokens > budget_tokens:
            if greedy:
                continue
            break
        kept.append(item)
        covered.update(item.sources)
        total += item.tokens
    return kept


def render_context(items: Sequence[MemoryItem]) -> str:
    """Items as plain lines in the order given (their text already carries dates)."""
    return "\n".join(item.text for item in items)
