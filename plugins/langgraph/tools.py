"""The MemGPT memory tools for LangGraph agents.

:func:`memory_tools` returns the five paging tools (``core_memory_append``,
``core_memory_replace``, ``archival_memory_insert``, ``archival_memory_search``,
``conversation_search``) ready for ``model.bind_tools`` and a ``ToolNode``:

* given a :class:`~ltm_agent.plugins.langgraph.PagingNode`, each call works on
  the calling thread's paged context, restored from graph state through
  LangGraph's ``ToolRuntime`` (so one tool list serves every user and thread).
  Core-memory edits are queued in ``paging_edits`` with a ``Command`` and
  applied by the paging node on its next step; searches and archival inserts
  go straight to the store, inside the run's namespace.
* given a :class:`~ltm_agent.paging.PagedContext`, they are :func:`paging_tools`
  bound to it (outside graphs): the core's framework-free
  :func:`~ltm_agent.paging.tools.paging_functions` as LangChain ``StructuredTool`` s.

Errors are answers: a tool that cannot do what was asked returns a
``ToolMessage`` with ``status="error"`` and text written for the model.

Core functions: :func:`memory_tools`, :func:`paging_tools`.
"""

# No `from __future__ import annotations`: LangChain reads these tools' argument
# types (and LangGraph finds the injected ToolRuntime) from live annotations.
from collections.abc import Callable
from typing import Annotated, Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.prebuilt import ToolRuntime
from langgraph.types import Command
from pydantic import Field, ValidationError

from ltm_agent.errors import InvalidTypeError, LTMError, describe
from ltm_agent.paging import PagedContext
from ltm_agent.paging.tools import (
    ArchivalInsertArgs,
    ArchivalSearchArgs,
    ConversationSearchArgs,
    CoreAppendArgs,
    CoreReplaceArgs,
    paging_functions,
)
from ltm_agent.plugins.langgraph.paging import EDITING_TOOLS, PagingNode

__all__ = ["memory_tools", "paging_tools"]


def _for_model(call: Callable[..., str]) -> Callable[..., str]:
    """Run ``call``; turn an LTMError into a ToolException whose text the model reads."""
    from langchain_core.tools import ToolException

    def run(**kwargs: Any) -> str:
        try:
            return call(**kwargs)
        except LTMError as exc:
            raise ToolException(f"Error: {exc}") from exc

    return run


def _bad_arguments(error: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in error.errors()[:3]
    )
    return f"Error: invalid arguments ({problems}). Check the argument names and types and call the tool again."


def paging_tools(ctx: PagedContext) -> list[BaseTool]:
    """The five MemGPT paging functions as LangChain tools bound to ``ctx``.

    Errors are answers, not exceptions: a tool that cannot do what was asked returns
    ``"Error: ..."`` text written for the model, and a ``ToolMessage`` built from a tool call gets
    ``status="error"``. The context's Python methods raise the matching ``LTMError`` instead.

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
    return [
        StructuredTool.from_function(
            func=_for_model(function.call),
            name=function.name,
            description=function.description,
            args_schema=function.args_schema,
            handle_tool_error=True,
            handle_validation_error=_bad_arguments,
        )
        for function in paging_functions(ctx)
    ]


def _described(schema: Any, field: str) -> Any:
    return Field(description=schema.model_fields[field].description)


def memory_tools(source: PagingNode | PagedContext) -> list[BaseTool]:
    """The MemGPT paging tools, for a graph's paging node or for one paged context.

    Args:
        source: A :class:`PagingNode` (tools follow each run's thread and user)
            or a :class:`~ltm_agent.paging.PagedContext` (tools bound to it).

    Example:
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> tools = memory_tools(PagingNode(InMemoryStore(HashingEmbedder()), window_tokens=2000))
        >>> sorted(t.name for t in tools)  # doctest: +NORMALIZE_WHITESPACE
        ['archival_memory_insert', 'archival_memory_search', 'conversation_search',
         'core_memory_append', 'core_memory_replace']
        >>> "runtime" in tools[0].tool_call_schema.model_json_schema()["properties"]
        False
    """
    if isinstance(source, PagedContext):
        return paging_tools(source)
    if not isinstance(source, PagingNode):
        raise InvalidTypeError(f"memory_tools needs a PagingNode or a PagedContext, got {describe(source)}")
    node = source

    def call(name: str, runtime: ToolRuntime, **args: Any) -> Command | ToolMessage:
        ctx = node.context(runtime.state, runtime.config)
        tool = next(t for t in paging_tools(ctx) if t.name == name)
        text = str(tool.invoke(args))
        failed = text.startswith("Error:")
        message = ToolMessage(
            text, tool_call_id=runtime.tool_call_id or "", name=name, status="error" if failed else "success"
        )
        if name in EDITING_TOOLS and not failed:
            return Command(update={"paging_edits": [{"tool": name, "args": args}], "messages": [message]})
        return message

    def core_memory_append(
        label: Annotated[str, _described(CoreAppendArgs, "label")],
        content: Annotated[str, _described(CoreAppendArgs, "content")],
        runtime: ToolRuntime,
    ) -> Command | ToolMessage:
        return call("core_memory_append", runtime, label=label, content=content)

    def core_memory_replace(
        label: Annotated[str, _described(CoreReplaceArgs, "label")],
        old: Annotated[str, _described(CoreReplaceArgs, "old")],
        new: Annotated[str, _described(CoreReplaceArgs, "new")],
        runtime: ToolRuntime,
    ) -> Command | ToolMessage:
        return call("core_memory_replace", runtime, label=label, old=old, new=new)

    def archival_memory_insert(
        content: Annotated[str, _described(ArchivalInsertArgs, "content")],
        runtime: ToolRuntime,
        tags: Annotated[list[str] | None, _described(ArchivalInsertArgs, "tags")] = None,
    ) -> Command | ToolMessage:
        return call("archival_memory_insert", runtime, content=content, tags=tags)

    def archival_memory_search(
        query: Annotated[str, _described(ArchivalSearchArgs, "query")],
        runtime: ToolRuntime,
        page: Annotated[int, _described(ArchivalSearchArgs, "page")] = 0,
    ) -> Command | ToolMessage:
        return call("archival_memory_search", runtime, query=query, page=page)

    def conversation_search(
        query: Annotated[str, _described(ConversationSearchArgs, "query")],
        runtime: ToolRuntime,
        start_date: Annotated[str | None, _described(ConversationSearchArgs, "start_date")] = None,
        end_date: Annotated[str | None, _described(ConversationSearchArgs, "end_date")] = None,
        page: Annotated[int, _described(ConversationSearchArgs, "page")] = 0,
    ) -> Command | ToolMessage:
        return call("conversation_search", runtime, query=query, start_date=start_date, end_date=end_date, page=page)

    # The descriptions the model reads are the paging tools' own.
    descriptions = {t.name: t.description for t in paging_tools(_probe_context(node))}
    functions: list[Callable[..., Any]] = [
        core_memory_append,
        core_memory_replace,
        archival_memory_insert,
        archival_memory_search,
        conversation_search,
    ]
    return [
        StructuredTool.from_function(func=f, name=f.__name__, description=descriptions[f.__name__]) for f in functions
    ]


def _probe_context(node: PagingNode) -> PagedContext:
    """A throwaway context with the node's blocks, so descriptions name the right blocks and limits."""
    from ltm_agent.memory_stores import InMemoryStore

    return PagedContext(
        InMemoryStore(), ("probe",), window_tokens=node.window_tokens, system=node.system, **node.settings
    )
