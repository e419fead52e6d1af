"""MemGPT-style paging: a bounded main context over unbounded storage.

The main context a model sees is::

    system instructions + core memory blocks      (one system message)
    summary of evicted messages                   (recursive; after the first flush)
    FIFO message queue                            (newest last)

and it never exceeds ``window_tokens``. Every appended message goes to
**recall storage** first (an ``Episode`` of unit ``turn`` in the store), so
nothing is lost when the queue manager evicts it. At the **warning**
threshold a memory-pressure notice asks the agent to save what matters; past
the **flush** threshold the oldest messages are evicted and folded, with the
previous summary, into a new summary. **Archival storage** holds the
agent's own notes (``Note`` records). The agent edits and searches all of
this through tools (:func:`ltm_agent.paging.tools.paging_functions`).

Packer et al., "MemGPT: Towards LLMs as Operating Systems" (arXiv 2310.08560).

Core types: :class:`PagedContext`, :class:`PagingState`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ltm_agent.dates import utcnow
from ltm_agent.errors import (
    DataFormatError,
    EmptyTextError,
    InvalidInputError,
    InvalidTypeError,
    MemoryBlockLimitError,
    describe,
)
from ltm_agent.namespaces import validate_namespace
from ltm_agent.paging.blocks import DEFAULT_BLOCKS, CoreMemory, MemoryBlock
from ltm_agent.paging.messages import (
    MESSAGE_OVERHEAD,
    PagedMessage,
    Role,
    ToolCallRef,
    from_langchain,
    to_dict,
    to_langchain,
)
from ltm_agent.paging.queue import PagingEvents, QueueManager, QueueSettings
from ltm_agent.paging.search import (
    SearchPage,
    parse_date_range,
    search_archival,
    search_recall,
)
from ltm_agent.paging.summary import ExtractiveSummarizer, Summarizer
from ltm_agent.records import Episode, Note, RecordKind
from ltm_agent.store import MemoryStore
from ltm_agent.tokens import count_tokens

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = ["PagedContext", "PagingState"]

_ROLES = ("user", "assistant", "system", "tool")
_QUEUE_FLOOR = 64  # tokens the window must leave for messages next to system + blocks

_CORE_INTRO = (
    "Core memory (always in your context). Edit it with core_memory_append(label, content) and "
    "core_memory_replace(label, old, new); each block has a character limit."
)
_STORAGE_NOTE = (
    "Older messages leave your context when it fills up, but every message stays in recall "
    "storage: find them with conversation_search(query, start_date, end_date). Save long-term "
    "notes with archival_memory_insert(content, tags) and find them with archival_memory_search(query)."
)


class PagingState(BaseModel):
    """The JSON-ready state of a :class:`PagedContext` (for LangGraph state or a file)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    namespace: tuple[str, ...]
    session_id: str = Field(min_length=1)
    session_index: int = Field(ge=0)
    window_tokens: int
    system: str
    warning: float
    flush: float
    keep_recent: int
    evict_fraction: float
    summary_fraction: float
    blocks: list[MemoryBlock]
    summary: str
    evicted: int = Field(ge=0)
    """Conversation messages evicted so far."""
    position: int = Field(ge=0)
    """Position the next appended message gets in its session."""
    warned: bool
    queue: list[PagedMessage]


class PagedContext:
    """The main context of one agent session, paged MemGPT-style over a store.

    Not thread-safe: one context serves one conversation at a time.

    Args:
        store: Where recall (turns) and archival (notes) storage live.
        namespace: The tenant namespace; every read and write stays inside it.
        window_tokens: Hard cap on the rendered main context (cl100k tokens).
        system: System instructions, rendered before the core memory blocks.
        warning: Fraction of the window at which a memory-pressure notice is
            inserted (once per crossing; re-armed when usage drops below it).
        flush: Fraction of the window beyond which the oldest messages are evicted.
        keep_recent: Messages a flush always keeps (unless they alone overflow the window).
        evict_fraction: Share of the queue's tokens a flush evicts, oldest first.
        summarizer: Folds evicted messages and the previous summary into a new
            summary; default :class:`~ltm_agent.paging.summary.ExtractiveSummarizer`,
            the deterministic fallback (no model).
        blocks: Core memory blocks as ``{label: character limit}``; default
            :data:`DEFAULT_BLOCKS` (``persona`` and ``human``, 2,000 each).
        summary_fraction: Share of the window the recursive summary may take,
            so a flush leaves headroom (the summarizer is told the budget).
        session_id: Session id for recall storage; a random one when omitted.
        session_index: Order of this session in the conversation.
        search_pool: Candidates each search ranks (the ``N`` of a results header).

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> ctx = PagedContext(InMemoryStore(), ("user-1",), window_tokens=2000, system="Be brief.")
        >>> events = ctx.append("user", "Hi, I'm Ana and I live in Lisbon.")
        >>> events.tokens_after <= 2000
        True
        >>> ctx.conversation_search("Lisbon").header
        'Showing 1 of 1 results (page 0/0)'
    """

    def __init__(
        self,
        store: MemoryStore,
        namespace: Sequence[str],
        *,
        window_tokens: int,
        system: str = "",
        warning: float = 0.7,
        flush: float = 1.0,
        keep_recent: int = 3,
        evict_fraction: float = 0.75,
        summarizer: Summarizer | None = None,
        blocks: Mapping[str, int] | None = None,
        summary_fraction: float = 0.2,
        session_id: str | None = None,
        session_index: int = 0,
        search_pool: int = 50,
    ) -> None:
        if not isinstance(store, MemoryStore):
            raise InvalidTypeError(f"store must be a MemoryStore, got {describe(store)}")
        if not isinstance(system, str):
            raise InvalidTypeError(f"system must be str, got {describe(system)}")
        if isinstance(search_pool, bool) or not isinstance(search_pool, int) or search_pool < 1:
            raise InvalidInputError(f"search_pool must be an int >= 1, got {describe(search_pool)}")
        if isinstance(session_index, bool) or not isinstance(session_index, int) or session_index < 0:
            raise InvalidInputError(f"session_index must be an int >= 0, got {describe(session_index)}")
        self.store = store
        self.namespace = validate_namespace(namespace)
        self.system = system
        self.settings = QueueSettings.checked(
            window_tokens, warning, flush, keep_recent, evict_fraction, summary_fraction
        )
        self.session_id = session_id or uuid.uuid4().hex[:16]
        self.session_index = session_index
        self.search_pool = search_pool
        self._core = CoreMemory(DEFAULT_BLOCKS if blocks is None else blocks)
        self._queue = QueueManager(
            self.settings,
            summarizer if summarizer is not None else ExtractiveSummarizer(),
            system_tokens=self._system_tokens,
        )
        self._position = 0
        self._system_cache: int | None = None

    # -- reading the context ---------------------------------------------

    @property
    def window_tokens(self) -> int:
        return self.settings.window_tokens

    @property
    def summarizer(self) -> Summarizer:
        return self._queue.summarizer

    @property
    def blocks(self) -> Mapping[str, MemoryBlock]:
        """The core memory blocks by label (a copy)."""
        return self._core.blocks

    @property
    def summary(self) -> str:
        """The current recursive summary (``""`` before the first flush)."""
        return self._queue.summary

    @property
    def queue(self) -> tuple[PagedMessage, ...]:
        """The FIFO message queue, oldest first."""
        return tuple(self._queue.messages)

    @property
    def evicted_count(self) -> int:
        """Conversation messages evicted from context so far (all still in recall storage)."""
        return self._queue.evicted

    def system_text(self) -> str:
        """The system message: instructions, core memory blocks, storage note."""
        parts = [self.system.strip(), _CORE_INTRO, self._core.render(), _STORAGE_NOTE]
        return "\n\n".join(part for part in parts if part)

    def messages(self) -> list[PagedMessage]:
        """The whole main context as messages: system, summary (if any), queue."""
        now = utcnow()
        out = [PagedMessage(role="system", content=self.system_text(), time=now)]
        head = self._queue.summary_message(now)
        if head is not None:
            out.append(head)
        out.extend(self._queue.messages)
        return out

    def render(self) -> list[dict[str, Any]]:
        """The main context as OpenAI-style message dicts.

        The summary and memory-pressure notices are ``user`` messages with a
        bracketed prefix, as in MemGPT, because some providers accept only one
        leading system message.
        """
        return [to_dict(m) for m in self.messages()]

    def to_messages(self) -> list[BaseMessage]:
        """The main context as LangChain messages, ready for ``chat_model.invoke``."""
        return [to_langchain(m) for m in self.messages()]

    def tokens(self) -> int:
        """Tokens of the rendered main context: the sum of its messages' tokens.

        Each message counts ``count_tokens(content)`` plus tool-call JSON plus
        :data:`~ltm_agent.paging.messages.MESSAGE_OVERHEAD`.
        """
        return self._queue.total()

    # -- appending ---------------------------------------------------------

    def append(
        self,
        role: Role,
        content: str,
        *,
        time: datetime | None = None,
        tool_calls: Sequence[ToolCallRef | Mapping[str, Any]] = (),
        tool_call_id: str | None = None,
        name: str | None = None,
    ) -> PagingEvents:
        """Store a message in recall storage, queue it, and run the queue manager.

        Args:
            role: ``user``, ``assistant``, ``system`` or ``tool``.
            content: The message text.
            time: When it was said (timezone-aware); now when omitted.
            tool_calls: For an assistant message, the tools it called.
            tool_call_id: For a ``tool`` message, the call it answers (required).
            name: Optional speaker or tool name.

        Returns:
            What happened: warning, flush, tokens before/peak/after.

        Raises:
            InvalidInputError: Bad role, empty message, or a window too small
                for the system message and core memory.
            InvalidDateError: ``time`` is naive.

        Example:
            >>> from ltm_agent.memory_stores import InMemoryStore
            >>> ctx = PagedContext(InMemoryStore(), ("u",), window_tokens=1000)
            >>> ctx.append("user", "hello").flushed
            0
        """
        message = self._new_message(role, content, time, tool_calls, tool_call_id, name)
        self._require_room()
        episode = Episode(
            id=message.id or "",
            namespace=self.namespace,
            text=message.recall_text,
            unit=RecordKind.TURN,
            role=message.role,
            speaker=name or "",
            session_id=self.session_id,
            session_index=self.session_index,
            position=self._position,
            event_time=message.time,
        )
        self.store.put([episode.to_item()])  # recall storage first: nothing is ever only in context
        self._position += 1
        return self._queue.push(message)

    def append_message(self, message: BaseMessage, *, time: datetime | None = None) -> PagingEvents:
        """:meth:`append` for a LangChain message (tool calls and tool call ids kept)."""
        role, content, extra = from_langchain(message)
        return self.append(role, content, time=time, **extra)

    def _new_message(
        self,
        role: object,
        content: object,
        time: datetime | None,
        tool_calls: Sequence[ToolCallRef | Mapping[str, Any]],
        tool_call_id: str | None,
        name: str | None,
    ) -> PagedMessage:
        if role not in _ROLES:
            raise InvalidInputError(f"role must be one of {_ROLES}, got {describe(role)}")
        if not isinstance(content, str):
            raise InvalidTypeError(f"message content must be str, got {describe(content)}")
        if role == "tool" and not tool_call_id:
            raise InvalidInputError("a tool message needs tool_call_id: the id of the tool call it answers")
        calls = tuple(
            c if isinstance(c, ToolCallRef) else ToolCallRef(id=c["id"], name=c["name"], args=dict(c.get("args") or {}))
            for c in tool_calls
        )
        if calls and role != "assistant":
            raise InvalidInputError(f"only assistant messages make tool calls, got role {role!r}")
        message = PagedMessage(
            role=role,  # type: ignore[arg-type]
            content=content,
            time=time if time is not None else utcnow(),
            id=f"recall-{self.session_id}-{self._position:08d}",
            tool_calls=calls,
            tool_call_id=tool_call_id,
            name=name,
        )
        if not message.recall_text.strip():
            raise EmptyTextError("message content is empty and it makes no tool calls; skip empty messages")
        return message

    # -- core memory -------------------------------------------------------

    def core_memory_append(self, label: str, content: str) -> str:
        """Append ``content`` (on a new line) to a core memory block; return the new value.

        Raises:
            NotFoundError: No block has that label.
            EmptyTextError: ``content`` is empty.
            MemoryBlockLimitError: The block would exceed its character limit,
                or the system message would leave no room in the window.

        Example:
            >>> from ltm_agent.memory_stores import InMemoryStore
            >>> ctx = PagedContext(InMemoryStore(), ("u",), window_tokens=1000)
            >>> ctx.core_memory_append("human", "Name: Ana")
            'Name: Ana'
        """
        return self._commit(self._core.appended(label, content), "core_memory_append")

    def core_memory_replace(self, label: str, old: str, new: str) -> str:
        """Replace every exact occurrence of ``old`` in a block with ``new``; return the new value.

        ``new=""`` deletes the text.

        Raises:
            NotFoundError: No block has that label, or ``old`` does not occur in it exactly.
            InvalidInputError: ``old`` is empty.
            MemoryBlockLimitError: The result would exceed the block's limit,
                or the system message would leave no room in the window.
        """
        return self._commit(self._core.replaced(label, old, new), "core_memory_replace")

    def _commit(self, block: MemoryBlock, tool: str) -> str:
        previous = self._core.get(block.label)
        self._core.set(block)
        self._system_cache = None
        try:
            self._require_room()
        except InvalidInputError:
            used = self._system_tokens()
            self._core.set(previous)
            self._system_cache = None
            raise MemoryBlockLimitError(
                f"{tool} changed nothing: with this edit the system message and core memory would take "
                f"{used} tokens of the {self.window_tokens}-token window, leaving less than {_QUEUE_FLOOR} "
                f"for messages. Fix: condense core memory with core_memory_replace, or move details to "
                f"archival_memory_insert."
            ) from None
        self._queue.enforce_window()
        return block.value

    # -- archival and recall storage ---------------------------------------

    def archival_memory_insert(self, content: str, tags: Sequence[str] | None = None) -> str:
        """Save a note to archival storage; return its id.

        Raises:
            EmptyTextError: ``content`` is empty.
            InvalidInputError: A tag is not a non-empty string.
        """
        if not isinstance(content, str) or not content.strip():
            raise EmptyTextError(f"archival_memory_insert needs text to save, got {describe(content)}")
        if isinstance(tags, str):
            tags = [tags]
        clean: list[str] = []
        for tag in tags or ():
            if not isinstance(tag, str) or not tag.strip():
                raise InvalidInputError(f"archival_memory_insert: tags must be non-empty strings, got {describe(tag)}")
            clean.append(tag.strip())
        note = Note(id=f"archival-{uuid.uuid4().hex}", namespace=self.namespace, text=content, tags=tuple(clean))
        self.store.put([note.to_item()])
        return note.id

    def archival_memory_search(self, query: str, *, page: int = 0) -> SearchPage:
        """Archival notes ranked by embedding similarity, :data:`~ltm_agent.paging.search.PAGE_SIZE` per page."""
        return search_archival(self.store, self.namespace, query, page=page, pool=self.search_pool)

    def conversation_search(
        self,
        query: str,
        *,
        start_date: str | date | datetime | None = None,
        end_date: str | date | datetime | None = None,
        page: int = 0,
    ) -> SearchPage:
        """Every message ever appended in this namespace, hybrid-ranked, optionally in a date range.

        Args:
            query: Words to look for.
            start_date: ISO 8601 start (inclusive; ``YYYY-MM-DD`` is the whole day, UTC).
            end_date: ISO 8601 end (inclusive).
            page: 0-based page.

        Raises:
            InvalidDateError: A date is not strict ISO 8601, or start is after end.
            EmptyTextError: The query is empty.
        """
        dates = parse_date_range(start_date, end_date)
        return search_recall(self.store, self.namespace, query, dates=dates, page=page, pool=self.search_pool)

    # -- state -------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot; :meth:`from_state` restores it."""
        q = self._queue
        return PagingState(
            namespace=self.namespace,
            session_id=self.session_id,
            session_index=self.session_index,
            window_tokens=self.settings.window_tokens,
            system=self.system,
            warning=self.settings.warning,
            flush=self.settings.flush,
            keep_recent=self.settings.keep_recent,
            evict_fraction=self.settings.evict_fraction,
            summary_fraction=self.settings.summary_fraction,
            blocks=list(self._core.blocks.values()),
            summary=q.summary,
            evicted=q.evicted,
            position=self._position,
            warned=q.warned,
            queue=list(q.messages),
        ).model_dump(mode="json")

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any] | PagingState,
        store: MemoryStore,
        *,
        summarizer: Summarizer | None = None,
        search_pool: int = 50,
    ) -> PagedContext:
        """Rebuild a context from :meth:`state` output (the store and summarizer are not state).

        Raises:
            DataFormatError: ``state`` is not what :meth:`state` returned.
        """
        try:
            parsed = state if isinstance(state, PagingState) else PagingState.model_validate(state)
        except ValidationError as exc:
            raise DataFormatError(
                f"not a PagedContext state ({exc.error_count()} problem(s), first: {exc.errors()[0]['msg']} at "
                f"{'.'.join(map(str, exc.errors()[0]['loc']))}); pass the dict PagedContext.state() returned"
            ) from None
        ctx = cls(
            store,
            parsed.namespace,
            window_tokens=parsed.window_tokens,
            system=parsed.system,
            warning=parsed.warning,
            flush=parsed.flush,
            keep_recent=parsed.keep_recent,
            evict_fraction=parsed.evict_fraction,
            summarizer=summarizer,
            blocks={b.label: b.limit for b in parsed.blocks},
            summary_fraction=parsed.summary_fraction,
            session_id=parsed.session_id,
            session_index=parsed.session_index,
            search_pool=search_pool,
        )
        ctx._core = CoreMemory.from_blocks(parsed.blocks)
        ctx._position = parsed.position
        ctx._queue.restore(parsed.queue, parsed.summary, parsed.evicted, parsed.warned)
        return ctx

    # -- internals ---------------------------------------------------------

    def _system_tokens(self) -> int:
        if self._system_cache is None:
            self._system_cache = count_tokens(self.system_text()) + MESSAGE_OVERHEAD
        return self._system_cache

    def _require_room(self) -> None:
        used = self._system_tokens()
        if used + _QUEUE_FLOOR > self.window_tokens:
            raise InvalidInputError(
                f"window_tokens={self.window_tokens} leaves no room for messages: the system message and "
                f"core memory take {used} tokens and at least {_QUEUE_FLOOR} more are needed; raise "
                f"window_tokens or shorten system/core memory"
            )
