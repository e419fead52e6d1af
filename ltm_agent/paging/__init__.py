"""MemGPT-style paging: a token-budgeted main context, core memory blocks, a FIFO queue with a
recursive summary, memory-pressure warnings, recall/archival storage and the page-in functions.

Modules: ``context`` (:class:`PagedContext`), ``queue`` (warning, flush, summary fitting),
``blocks`` (core memory), ``messages``, ``summary``, ``search`` (recall and archival pages),
``tools`` (the functions' argument models; LangChain tools are built in the LangGraph plugin).

Example:
    >>> from ltm_agent.memory_stores import InMemoryStore
    >>> from ltm_agent.paging import PagedContext
    >>> context = PagedContext(InMemoryStore(), ("user-42",), window_tokens=2048)
"""

from ltm_agent.paging.blocks import DEFAULT_BLOCKS, CoreMemory, MemoryBlock
from ltm_agent.paging.context import PagedContext, PagingState
from ltm_agent.paging.queue import PagingEvents, QueueSettings
from ltm_agent.paging.summary import ExtractiveSummarizer, ModelSummarizer, Summarizer

__all__ = [
    "DEFAULT_BLOCKS",
    "CoreMemory",
    "ExtractiveSummarizer",
    "MemoryBlock",
    "ModelSummarizer",
    "PagedContext",
    "PagingEvents",
    "PagingState",
    "QueueSettings",
    "Summarizer",
]
