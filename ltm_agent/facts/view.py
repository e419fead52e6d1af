"""The fact-aware view a reader uses: the user's facts at one time, then the top turns.

Core type: :class:`MemoryView` (a :class:`~ltm_agent.retrieval.Retriever`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, tzinfo

from ltm_agent.dates import day_label
from ltm_agent.facts.memory import FactMemory
from ltm_agent.namespaces import Namespace
from ltm_agent.records import Fact, MemoryItem
from ltm_agent.retrieval import HybridRetriever, to_memory_item
from ltm_agent.store import MemoryStore
from ltm_agent.tokens import count_tokens

__all__ = ["MemoryView"]


class MemoryView:
    """A :class:`~ltm_agent.retrieval.Retriever`: the user's facts at one time, then the top turns.

    ``as_of=None``: every current fact (a short profile; invalidated facts
    never appear) followed by the top ``k`` raw turns from the default
    :class:`~ltm_agent.retrieval.HybridRetriever`. ``as_of=D``: the facts valid
    in the world at ``D`` (the bi-temporal "as of" view) and only turns said by
    ``D``. Facts get a date prefix like any retrieved record (in the user's
    ``local`` time), and ALR² grounds quotes of them like quotes of turns.
    Remembers the items of its last call (:attr:`last`) so a caller can show their source turns.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> store = InMemoryStore()
        >>> view = MemoryView(store, FactMemory(store, ("user-42",)))
        >>> view.retrieve(("user-42",), "Where do I live?")
        []
    """

    def __init__(
        self, store: MemoryStore, facts: FactMemory, as_of: datetime | None = None, local: tzinfo | None = None
    ) -> None:
        self.turns = HybridRetriever(store)
        self.facts = facts
        self.as_of = as_of
        self.local = local
        self.last: dict[str, MemoryItem] = {}

    def retrieve(
        self,
        namespace: Namespace,
        query: str,
        *,
        reference_time: datetime | None = None,
        budget_tokens: int | None = None,
        k: int = 10,
    ) -> list[MemoryItem]:
        chosen = self.facts.current() if self.as_of is None else self.facts.as_of(self.as_of)
        facts = [self._render(fact) for fact in chosen]
        left = None if budget_tokens is None else max(1, budget_tokens - sum(f.tokens for f in facts))
        turns = self.turns.retrieve(
            namespace, query, reference_time=reference_time, budget_tokens=left, k=k, as_of=self.as_of
        )
        items = facts + turns
        self.last = {item.id: item for item in items}
        return items

    def _render(self, fact: Fact) -> MemoryItem:
        # A fact valid from local midnight ("last weekend") would print as the previous day in UTC.
        item = to_memory_item(fact.to_item(), 1.0, render_dates=False)
        day = fact.valid_at.astimezone(self.local)
        text = f"{day_label(day)} {item.text}"
        return replace(item, text=text, tokens=count_tokens(text))
