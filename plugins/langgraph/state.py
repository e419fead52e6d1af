"""Graph state the memory nodes read and write, and how a run names its tenant.

Every value the nodes put into graph state is JSON-serialisable (strings,
numbers, lists and dicts), so any LangGraph checkpointer can save it.

Tenancy comes from the run, never from the node: a namespace is a template
such as ``("memories", "{user_id}")`` filled from ``config["configurable"]``
(and from the run's ``context`` when it is a dict or dataclass) on every call,
or a function of the config. A missing value is an error, not a default.

Core types: :class:`MemoryState`, :data:`NamespaceSpec`; functions
:func:`resolve_namespace`, :func:`resolve_session`, :func:`resolve_store`,
:func:`reference_time`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import MessagesState

from ltm_agent.dates import parse_date, require_aware
from ltm_agent.errors import InvalidInputError, InvalidTypeError, describe
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.store import MemoryStore

__all__ = [
    "MEMORY_MESSAGE_NAME",
    "MemoryState",
    "NamespaceSpec",
    "is_memory_message",
    "merge_paging_edits",
    "message_role",
    "message_text",
    "reference_time",
    "resolve_namespace",
    "resolve_session",
    "resolve_store",
]

MEMORY_MESSAGE_NAME = "ltm_memory"
"""``name`` of the system messages the memory nodes add; the write and paging nodes skip them."""

NamespaceSpec = Sequence[str] | Callable[[RunnableConfig], Sequence[str]]
"""A namespace template (labels with ``{key}`` fields) or a function of the run config."""


def merge_paging_edits(left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Reducer of ``paging_edits``: tools append edits, the paging node clears them with ``None``."""
    if right is None:
        return []
    return [*(left or []), *right]


class MemoryState(MessagesState, total=False):
    """``MessagesState`` plus the keys the memory nodes write (all JSON-serialisable)."""

    memory_context: str
    """Memories for the latest user message, rendered as quoted data (``""`` when none)."""
    memory_citations: list[dict[str, Any]]
    """What ``memory_context`` cites: memory ids, kinds, times, scores (and quotes when grounded)."""
    memory_answer: str | None
    """The grounded answer from memory (``grounded=True`` only; ``None`` when it abstained)."""
    memory_cursor: str | None
    """Id of the last message the write node recorded."""
    memory_buffer: dict[str, Any] | None
    """The entropy-decay buffer (``EntropyDecayBuffer.state()``)."""
    memory_facts: list[dict[str, Any]]
    """Facts extracted from the turns of the last write (when a fact memory is configured)."""
    paging: dict[str, Any] | None
    """The paged main context (``PagedContext.state()``)."""
    paging_cursor: str | None
    """Id of the last message the paging node appended."""
    paging_events: list[dict[str, Any]]
    """What the last paging step did: warnings, flushes, evictions, token counts."""
    paging_edits: Annotated[list[dict[str, Any]], merge_paging_edits]
    """Core-memory edits made by memory tools, applied by the paging node on its next step."""


# ---------------------------------------------------------------------------
# Where a run's tenant, session and time come from


def _run_values(config: RunnableConfig | None) -> dict[str, Any]:
    values = {k: v for k, v in ((config or {}).get("configurable") or {}).items() if not k.startswith("__")}
    context = _runtime_context()
    if isinstance(context, Mapping):
        values.update(context)
    elif dataclasses.is_dataclass(context) and not isinstance(context, type):
        values.update(dataclasses.asdict(context))
    return values


def _runtime_context() -> Any:
    try:
        from langgraph.runtime import get_runtime

        runtime = get_runtime()
    except (RuntimeError, KeyError):  # outside a graph run
        return None
    return getattr(runtime, "context", None)


def _fill(label: str, values: Mapping[str, Any], who: str, template: Sequence[str]) -> str:
    class _Strict(dict):  # type: ignore[type-arg]
        def __missing__(self, key: str) -> str:
            raise KeyError(key)

    usable = {k: v for k, v in values.items() if isinstance(v, (str, int)) and not isinstance(v, bool) and v != ""}
    try:
        return label.format_map(_Strict(usable))
    except KeyError as exc:
        key = exc.args[0]
        raise InvalidInputError(
            f"{who} needs config['configurable'][{key!r}] to choose the memory namespace {tuple(template)!r}, "
            f"and this run has none (got {describe(values.get(key))}); call "
            f"graph.invoke(state, {{'configurable': {{{key!r}: 'user-42', 'thread_id': 'thread-1'}}}})"
        ) from None


def resolve_namespace(spec: NamespaceSpec, config: RunnableConfig | None, *, who: str) -> Namespace:
    """The namespace of this run, from its config (never from node or module state).

    Raises:
        InvalidInputError: A template field has no value in the config, or the
            result is not a valid namespace.
    """
    if callable(spec):
        labels = tuple(spec(config or {}))
    else:
        values = _run_values(config)
        labels = tuple(_fill(label, values, who, spec) for label in spec)
    return validate_namespace(labels)


def resolve_session(key: str, config: RunnableConfig | None, *, who: str) -> str:
    """The session id of this run (by default the LangGraph ``thread_id``)."""
    value = _run_values(config).get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise InvalidInputError(
            f"{who} records turns under a session id from config['configurable'][{key!r}], and this run has "
            f"none; call graph.invoke(state, {{'configurable': {{{key!r}: 'thread-1', ...}}}})"
        )
    return str(value)


def reference_time(config: RunnableConfig | None, clock: Callable[[], datetime]) -> datetime:
    """``config['configurable']['reference_time']`` (datetime or ISO string) or the clock's now."""
    value = ((config or {}).get("configurable") or {}).get("reference_time")
    if value is None:
        return clock()
    if isinstance(value, str):
        return parse_date(value)
    return require_aware(value, "reference_time")


def resolve_store(store: MemoryStore | None, *, who: str) -> MemoryStore:
    """The node's own store, else the ltm-agent store under the graph's ``LTMStore``."""
    if store is not None:
        return store
    try:
        from langgraph.config import get_store

        graph_store = get_store()
    except (RuntimeError, KeyError, AttributeError):
        graph_store = None
    inner = getattr(graph_store, "store", None)
    if isinstance(inner, MemoryStore):
        return inner
    raise InvalidInputError(
        f"{who} has no ltm-agent store: pass store=... (e.g. ChromaStore.persistent(path)), or compile the "
        f"graph with store=LTMStore(...) so the node can use the store under it (got {describe(graph_store)})"
    )


# ---------------------------------------------------------------------------
# Messages


def is_memory_message(message: BaseMessage) -> bool:
    """True for the system messages the memory nodes add."""
    return isinstance(message, SystemMessage) and message.name == MEMORY_MESSAGE_NAME


def message_text(message: BaseMessage) -> str:
    """The text of a message (content blocks joined)."""
    return str(message.text)


def message_role(message: BaseMessage) -> str | None:
    """``user``, ``assistant``, ``tool`` or ``system`` (``None`` for other message types)."""
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, SystemMessage):
        return "system"
    return None


def messages_after(messages: Sequence[BaseMessage], cursor: str | None) -> list[BaseMessage]:
    """Messages after the one whose id is ``cursor`` (all of them when it is absent)."""
    if cursor is not None:
        for i, message in enumerate(messages):
            if message.id == cursor:
                return list(messages[i + 1 :])
    return list(messages)


def state_messages(state: Mapping[str, Any], who: str) -> list[BaseMessage]:
    """``state['messages']``, checked."""
    if not isinstance(state, Mapping):
        raise InvalidTypeError(f"{who} takes the graph state (a dict), got {describe(state)}")
    messages = state.get("messages") or []
    return [m for m in messages if isinstance(m, BaseMessage)]
