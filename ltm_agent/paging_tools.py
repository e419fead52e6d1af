"""The paging functions as LangChain tools, bound to one :class:`~ltm_agent.paging.PagedContext`.

:func:`paging_tools` returns five :class:`~langchain_core.tools.BaseTool` s:
``core_memory_append``, ``core_memory_replace``, ``archival_memory_insert``,
``archival_memory_search`` and ``conversation_search``. Bind them to a chat
model (``model.bind_tools(tools)``) or put them in a LangGraph ``ToolNode``.

Errors are answers, not exceptions: a tool that cannot do what was asked
returns ``"Error: ..."`` text written for the model (what went wrong and what
to call instead), and a ``ToolMessage`` built from a tool call gets
``status="error"``. The context's Python methods raise the matching
:class:`~ltm_agent.errors.LTMError` instead.

Core function: :func:`paging_tools`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ltm_agent.errors import LTMError
from ltm_agent.paging_search import PAGE_SIZE

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from ltm_agent.paging import PagedContext

__all__ = [
    "ArchivalInsertArgs",
    "ArchivalSearchArgs",
    "ConversationSearchArgs",
    "CoreAppendArgs",
    "CoreReplaceArgs",
    "paging_tools",
]


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


def _for_model(call: Callable[..., str]) -> Callable[..., str]:
    """Run ``call``; turn an LTMError into a ToolException whose text the model reads."""
    from langchain_core.tools import ToolException

    def run(**kwargs: Any) -> str:
        try:
            return call(**kwargs)
        except LTMError as exc:
            raise ToolException(f"Error: {exc}") from exc

    run.__name__ = call.__name__
    return run


def _bad_arguments(error: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in error.errors()[:3]
    )
    return f"Error: invalid arguments ({problems}). Check the argument names and types and call the tool again."


def paging_tools(ctx: PagedContext) -> list[BaseTool]:
    """The five MemGPT paging functions as LangChain tools bound to ``ctx``.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.paging import PagedContext
        >>> ctx = PagedContext(InMemoryStore(), ("user-1",), window_tokens=2000)
        >>> tools = {t.name: t for t in paging_tools(ctx)}
        >>> tools["core_memory_append"].invoke({"label": "human", "content": "Name: Ana"})
        "Appended to core memory block 'human' (9/2000 characters)."
        >>> tools["core_memory_replace"].invoke({"label": "human", "old": "Name: Bob", "new": "x"})[:40]
        'Error: core_memory_replace changed nothi'
    """
    from langchain_core.tools import StructuredTool

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
    return [
        StructuredTool.from_function(
            func=_for_model(func),
            name=func.__name__,
            description=description,
            args_schema=schema,
            handle_tool_error=True,
            handle_validation_error=_bad_arguments,
        )
        for func, schema, description in specs
    ]
