"""The paging functions an agent calls, framework-free: argument models and bound callables.

:func:`paging_functions` returns the five MemGPT functions (``core_memory_append``,
``core_memory_replace``, ``archival_memory_insert``, ``archival_memory_search``,
``conversation_search``) bound to one :class:`~ltm_agent.paging.PagedContext`, each with its
pydantic argument model and the description the model reads. The LangGraph plugin turns them
into LangChain tools (:func:`ltm_agent.plugins.langgraph.tools.paging_tools`).

Core types: :class:`PagingFunction`, :func:`paging_functions`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from ltm_agent.paging.search import PAGE_SIZE

if TYPE_CHECKING:
    from ltm_agent.paging.context import PagedContext

__all__ = [
    "ArchivalInsertArgs",
    "ArchivalSearchArgs",
    "ConversationSearchArgs",
    "CoreAppendArgs",
    "CoreReplaceArgs",
    "PagingFunction",
    "paging_functions",
]


class PagingFunction(NamedTuple):
    """One paging function bound to a context."""

    name: str
    """The function's name, as the model calls it."""
    call: Callable[..., str]
    """Runs the function with keyword arguments; returns the model-facing text or raises ``LTMError``."""
    args_schema: type[BaseModel]
    """The pydantic model of its arguments."""
    description: str
    """What the model reads about it."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CoreAppendArgs(_Args):
    label: str = Field(description="Label of the core memory block to edit, e.g. 'human' or 'persona'.")
    content: str = Field(description="Text to add at the end of the block (on a new line).")


class CoreReplaceArgs(_Args):
    label: str = Field(description="Label of the core memory block to edit, e.g. 'human' or 'persona'.")
    old: str = Field(description="Text to replace, copied exactly from the block (case and spacing matter).")
    new: str = Field(description="Replacement text; an empty string deletes `old`.")


class ArchivalInsertArgs(_Args):
    content: str = Field(description="The note to save, written so it makes sense on its own later.")
    tags: list[str] | None = Field(default=None, description="Optional short tags, e.g. ['travel', 'preferences'].")


class ArchivalSearchArgs(_Args):
    query: str = Field(description="What to look for, in words; matched by meaning.")
    page: int = Field(default=0, ge=0, description=f"0-based page of {PAGE_SIZE} results; 0 is the first page.")


class ConversationSearchArgs(_Args):
    query: str = Field(description="Words to look for in past messages (matched by words and meaning).")
    start_date: str | None = Field(
        default=None, description="Only messages on or after this ISO 8601 date, e.g. '2024-05-01'."
    )
    end_date: str | None = Field(
        default=None, description="Only messages on or before this ISO 8601 date (the whole day counts)."
    )
    page: int = Field(default=0, ge=0, description=f"0-based page of {PAGE_SIZE} results; 0 is the first page.")


def paging_functions(ctx: PagedContext) -> list[PagingFunction]:
    """The five MemGPT paging functions bound to ``ctx``, as plain callables with their schemas.

    Each callable returns the text the model reads and raises an :class:`~ltm_agent.errors.LTMError`
    when it cannot do what was asked; framework adapters (the LangGraph plugin's
    :func:`~ltm_agent.plugins.langgraph.tools.paging_tools`) turn that into a tool error.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.paging import PagedContext
        >>> ctx = PagedContext(InMemoryStore(), ("user-1",), window_tokens=2000)
        >>> functions = {f.name: f for f in paging_functions(ctx)}
        >>> functions["core_memory_append"].call(label="human", content="Name: Ana")
        "Appended to core memory block 'human' (9/2000 characters)."
    """
    labels = ", ".join(f"'{b.label}' ({b.limit:,} characters)" for b in ctx.blocks.values())

    def core_memory_append(label: str, content: str) -> str:
        value = ctx.core_memory_append(label, content)
        return f"Appended to core memory block '{label}' ({len(value)}/{ctx.blocks[label].limit} characters)."

    def core_memory_replace(label: str, old: str, new: str) -> str:
        count = ctx.blocks[label].value.count(old) if label in ctx.blocks and old else 0
        value = ctx.core_memory_replace(label, old, new)
        times = "1 occurrence" if count == 1 else f"{count} occurrences"
        return (
            f"Replaced {times} in core memory block '{label}' "
            f"({len(value)}/{ctx.blocks[label].limit} characters)."
        )

    def archival_memory_insert(content: str, tags: list[str] | None = None) -> str:
        note_id = ctx.archival_memory_insert(content, tags)
        return f"Saved to archival memory (id {note_id}). Find it later with archival_memory_search."

    def archival_memory_search(query: str, page: int = 0) -> str:
        return ctx.archival_memory_search(query, page=page).render()

    def conversation_search(
        query: str, start_date: str | None = None, end_date: str | None = None, page: int = 0
    ) -> str:
        return ctx.conversation_search(query, start_date=start_date, end_date=end_date, page=page).render()

    specs: list[tuple[Callable[..., str], type[BaseModel], str]] = [
        (
            core_memory_append,
            CoreAppendArgs,
            (
                "Add text to one of your core memory blocks, which are always in your context. Use it for "
                f"lasting facts about the user ('human') or yourself ('persona'). Blocks: {labels}."
            ),
        ),
        (
            core_memory_replace,
            CoreReplaceArgs,
            (
                "Replace text in a core memory block. `old` must match the block's text exactly; every "
                "occurrence is replaced. Pass new='' to delete. Use it to correct or condense core memory."
            ),
        ),
        (
            archival_memory_insert,
            ArchivalInsertArgs,
            (
                "Save a note to archival memory: long-term, unlimited, not in your context. Use it for "
                "details worth keeping that do not belong in core memory."
            ),
        ),
        (
            archival_memory_search,
            ArchivalSearchArgs,
            (
                f"Search your archival memory notes by meaning. Returns {PAGE_SIZE} results per page; "
                "call again with page+1 for more."
            ),
        ),
        (
            conversation_search,
            ConversationSearchArgs,
            (
                "Search every past message of the conversation, including ones no longer in your context, "
                f"by words and meaning, optionally between two ISO dates (YYYY-MM-DD). Returns {PAGE_SIZE} "
                "results per page with their dates; call again with page+1 for more."
            ),
        ),
    ]
    return [PagingFunction(func.__name__, func, schema, description) for func, schema, description in specs]
