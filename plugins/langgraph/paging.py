"""The MemGPT paging node: a bounded main context kept in graph state.

:class:`PagingNode` keeps one :class:`~ltm_agent.paging.PagedContext` per
thread in ``state["paging"]`` (its JSON state). Each step it applies the
core-memory edits that memory tools queued in ``paging_edits``, appends the
messages added since its last step (each goes to recall storage first), and
reports what the queue manager did (memory-pressure warning, flush, evicted
ids, token counts) in ``paging_events``. The model then reads
:meth:`PagingNode.context_messages`, never more than ``window_tokens``.

Tools bound to the paged context: :func:`ltm_agent.plugins.langgraph.memory_tools`.

Core types: :class:`PagingNode`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

from ltm_agent.dates import utcnow
from ltm_agent.errors import InvalidInputError, LTMError
from ltm_agent.paging import PagedContext
from ltm_agent.paging.summary import Summarizer
from ltm_agent.plugins.langgraph._base import DEFAULT_NAMESPACE, MemoryNode
from ltm_agent.plugins.langgraph.state import (
    NamespaceSpec,
    is_memory_message,
    message_role,
    messages_after,
    reference_time,
    resolve_namespace,
    resolve_session,
    resolve_store,
    state_messages,
)
from ltm_agent.store import MemoryStore

__all__ = ["EDITING_TOOLS", "PagingNode"]

EDITING_TOOLS = ("core_memory_append", "core_memory_replace")
"""Tools whose effect lives in the paged context's state (queued as ``paging_edits``)."""


class PagingNode(MemoryNode):
    """Keep the thread's main context within ``window_tokens``, MemGPT-style.

    Args:
        store: The ltm-agent store for recall and archival storage; ``None``
            uses the store under the graph's ``LTMStore``.
        window_tokens: Hard cap on the main context (cl100k tokens).
        namespace: Namespace template filled from the run config.
        session_key: Config key of the session id (default ``thread_id``).
        system: System instructions at the top of the main context.
        summarizer: Folds evicted messages into the recursive summary
            (default: the extractive fallback, no model).
        name: Node name.
        clock: Time of appended messages when the run config has no ``reference_time``.
        **settings: Further :class:`~ltm_agent.paging.PagedContext` settings
            (``warning``, ``flush``, ``keep_recent``, ``evict_fraction``,
            ``summary_fraction``, ``blocks``).

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> node = PagingNode(InMemoryStore(HashingEmbedder()), window_tokens=2000)
        >>> config = {"configurable": {"user_id": "ana", "thread_id": "t1"}}
        >>> state = {"messages": [HumanMessage("Hi, I live in Lisbon", id="m1")]}
        >>> state.update(node.invoke(state, config))
        >>> state["paging_events"][0]["tokens_after"] <= 2000
        True
        >>> [m.type for m in node.context_messages(state)]
        ['system', 'human']
    """

    def __init__(
        self,
        store: MemoryStore | None = None,
        *,
        window_tokens: int,
        namespace: NamespaceSpec = DEFAULT_NAMESPACE,
        session_key: str = "thread_id",
        system: str = "",
        summarizer: Summarizer | None = None,
        name: str = "paging",
        clock: Callable[[], datetime] = utcnow,
        **settings: Any,
    ) -> None:
        allowed = {"warning", "flush", "keep_recent", "evict_fraction", "summary_fraction", "blocks", "search_pool"}
        unknown = set(settings) - allowed
        if unknown:
            raise InvalidInputError(f"unknown PagingNode settings {sorted(unknown)}; use {sorted(allowed)}")
        self.store = store
        self.window_tokens = window_tokens
        self.namespace = namespace
        self.session_key = session_key
        self.system = system
        self.summarizer = summarizer
        self.settings = settings
        self.name = name
        self.clock = clock
        # Fail on bad settings now, not on the first message of a run (a throwaway
        # context on an empty in-process store: no I/O).
        from ltm_agent.memory_stores import InMemoryStore

        PagedContext(InMemoryStore(), ("check",), window_tokens=window_tokens, system=system, **settings)

    # -- the context of a run ------------------------------------------------

    def context(self, state: Mapping[str, Any], config: RunnableConfig | None) -> PagedContext:
        """The thread's paged context as saved in ``state`` (a new one on the first step).

        Edits queued by memory tools are applied. The saved context must belong
        to this run's namespace.

        Raises:
            InvalidInputError: The saved context belongs to another namespace.
        """
        return self._load(state, config)[0]

    def _load(self, state: Mapping[str, Any], config: RunnableConfig | None) -> tuple[PagedContext, list[str]]:
        who = self.name or "PagingNode"
        store = resolve_store(self.store, who=who)
        namespace = resolve_namespace(self.namespace, config, who=who)
        saved = state.get("paging")
        if saved:
            search_pool = self.settings.get("search_pool", 50)
            ctx = PagedContext.from_state(saved, store, summarizer=self.summarizer, search_pool=search_pool)
            if ctx.namespace != namespace:
                raise InvalidInputError(
                    f"{who}: this thread's paged context belongs to namespace {ctx.namespace!r}, but the run is "
                    f"for {namespace!r}; use one thread_id per user"
                )
        else:
            session = resolve_session(self.session_key, config, who=who)
            ctx = PagedContext(
                store,
                namespace,
                window_tokens=self.window_tokens,
                system=self.system,
                summarizer=self.summarizer,
                session_id=session,
                **self.settings,
            )
        return ctx, _apply_edits(ctx, state.get("paging_edits"))

    def context_messages(self, state: Mapping[str, Any], config: RunnableConfig | None = None) -> list[BaseMessage]:
        """The main context as LangChain messages, ready for ``model.invoke`` (within the window)."""
        saved = state.get("paging")
        if not saved:
            raise InvalidInputError(
                f"state has no paged context yet; run the {self.name!r} node before the model "
                f"(START -> {self.name} -> agent)"
            )
        store = self.store if self.store is not None else resolve_store(None, who=self.name or "PagingNode")
        ctx = PagedContext.from_state(saved, store, summarizer=self.summarizer)
        _apply_edits(ctx, state.get("paging_edits"))
        return ctx.to_messages()

    # -- the step -------------------------------------------------------------

    def _run(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        messages = state_messages(state, self.name or "PagingNode")
        ctx, failed = self._load(state, config)
        when = reference_time(config, self.clock)
        events: list[dict[str, Any]] = [{"edit_failed": reason} for reason in failed]
        for message in messages_after(messages, state.get("paging_cursor")):
            if is_memory_message(message) or message_role(message) in (None, "system"):
                continue
            event = dataclasses.asdict(ctx.append_message(message, time=when))
            events.append({**event, "evicted_ids": list(event["evicted_ids"])})
        return {
            "paging": ctx.state(),
            "paging_cursor": messages[-1].id if messages else state.get("paging_cursor"),
            "paging_events": events,
            "paging_edits": None,  # applied: the reducer clears the queue
        }


def _apply_edits(ctx: PagedContext, edits: Any) -> list[str]:
    """Apply queued core-memory edits in order; return why any failed.

    Each tool validated its edit on its own copy of the context; parallel edits
    can still fail together (two appends that each fit, but not both), and
    such a failure is reported in ``paging_events`` rather than hidden.
    """
    failed: list[str] = []
    for edit in edits or ():
        tool, args = edit.get("tool"), dict(edit.get("args") or {})
        if tool not in EDITING_TOOLS:
            failed.append(f"unknown paging edit {tool!r}; expected one of {list(EDITING_TOOLS)}")
            continue
        try:
            getattr(ctx, str(tool))(**args)
        except (LTMError, TypeError) as exc:
            failed.append(f"{tool}: {exc}")
    return failed
