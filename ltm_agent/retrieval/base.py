"""The retriever protocol every read-path consumer depends on.

Mechanisms that read memory (retrieve-then-reason, paging tools, framework
nodes) take any object with this ``retrieve`` method, so they can be tested
with a tiny fake and used with :class:`ltm_agent.retrieval.HybridRetriever`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from ltm_agent.namespaces import Namespace
from ltm_agent.records import MemoryItem

__all__ = ["Retriever"]


@runtime_checkable
class Retriever(Protocol):
    """Anything that returns ranked :class:`MemoryItem` s for a query in one namespace."""

    def retrieve(
        self,
        namespace: Namespace,
        query: str,
        *,
        reference_time: datetime | None = None,
        budget_tokens: int | None = None,
        k: int = 10,
    ) -> list[MemoryItem]:
        """Ranked items for ``query`` in ``namespace``.

        Args:
            namespace: The tenant namespace to read (only this one).
            query: The question or message.
            reference_time: "Now" for the question; relative time expressions
                ("last week") resolve against it.
            budget_tokens: When given, items are packed in rank order while
                their total cl100k tokens stay within the budget.
            k: Maximum number of items (before budget packing).
        """
        ...
