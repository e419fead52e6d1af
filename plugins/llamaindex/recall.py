"""The write/read core the LlamaIndex adapters share: messages in, memories out, per user.

Long-term memory belongs to a **user** (a tenant namespace) and outlives any one
chat: a LlamaIndex ``session_id`` is a session label inside the user's timeline,
so a user's new chat recalls what earlier chats stored. The tenant namespace is
fixed at construction (``namespace=("acme", "user-42")``) or derived per call
from the session id by a function you give (``tenant_for=lambda sid:
(sid.split(":")[0],)`` turns ``"user-42:chat-7"`` into ``("acme", "user-42")``).
Recall reads the whole user timeline (``scope="user"``, the default) or only the
calling session (``scope="session"``). :class:`SessionRecall` holds configuration
only: each call builds its namespace, timeline and filter from the ``session_id``
it is given, so nothing one call does can change what another reads.

Core types: :class:`SessionRecall`; helpers :func:`session_namespace`,
:func:`message_text`, :func:`latest_user_text`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import uuid
from datetime import datetime
from typing import Any, Callable, Collection, Iterable, Literal, Sequence

from llama_index.core.base.llms.types import ChatMessage, TextBlock

from ltm_agent.dates import utcnow
from ltm_agent.errors import InvalidInputError, InvalidNamespaceError, describe
from ltm_agent.namespaces import MAX_DEPTH, Namespace, validate_namespace
from ltm_agent.records import Episode, MemoryItem
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig, pack, render_items
from ltm_agent.store import MemoryStore
from ltm_agent.timeline import EpisodicTimeline

__all__ = [
    "DEFAULT_ROLES",
    "RecallScope",
    "TenantFor",
    "SessionRecall",
    "latest_user_text",
    "message_text",
    "resolve_sessions",
    "session_lock",
    "session_namespace",
    "tenant_namespace",
    "turn_id_of",
]

RecallScope = Literal["user", "session"]
"""``"user"``: recall from every session of the user; ``"session"``: only from the calling session."""
TenantFor = Callable[[str], Sequence[str]]
"""Labels of the user owning a session id, appended to the configured namespace."""

DEFAULT_ROLES: tuple[str, ...] = ("user", "assistant")
"""Roles whose messages are remembered; system prompts and tool output are not dialogue."""

_HASHED = "sha256="
# Rendered memories may carry a date prefix ("[7 May 2023] user: ..."); stored turn text starts with the role.
_DATE_PREFIX = re.compile(r"^\[[^\]\n]*\] ")
_LOCKS = tuple(threading.Lock() for _ in range(64))


def session_namespace(namespace: Namespace, session_id: str) -> Namespace:
    """The namespace one session's memories live in: ``(*namespace, label)``.

    A session id that is a valid namespace label is the label itself; any other
    id (spaces, slashes, over 128 characters, or one that starts with
    ``sha256=``) becomes ``sha256=<hex>``, so distinct ids never share a label.

    Example:
        >>> session_namespace(("acme",), "alice-1")
        ('acme', 'alice-1')
        >>> session_namespace(("acme",), "Alice Smith")[1][:7]
        'sha256='
    """
    if not isinstance(session_id, str) or not session_id:
        raise InvalidInputError(f"session_id must be a non-empty str, got {describe(session_id)}")
    try:
        label = validate_namespace((session_id,))[0]
    except InvalidNamespaceError:
        label = ""
    if not label or label.startswith(_HASHED):
        label = _HASHED + hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:48]
    return (*validate_namespace(namespace), label)


def session_lock(store: MemoryStore, namespace: Namespace) -> threading.Lock:
    """The in-process lock writers of one store namespace share (striped: bounded, never freed).

    Timeline and fact writes read the namespace before they write; two writers
    of one session at once would otherwise plan against the same snapshot.
    """
    return _LOCKS[hash((id(store), namespace)) % len(_LOCKS)]


def tenant_namespace(namespace: object) -> Namespace:
    """A valid tenant namespace with room for the session label (at most 7 labels)."""
    labels = validate_namespace(namespace)
    if len(labels) >= MAX_DEPTH:
        raise InvalidNamespaceError(
            f"the tenant namespace {labels!r} has {len(labels)} labels; blocks add one for the session, "
            f"so use at most {MAX_DEPTH - 1}"
        )
    return labels


def message_text(message: ChatMessage) -> str:
    """The text blocks of a chat message joined by newlines (tool calls and images are not text)."""
    return "\n".join(block.text for block in message.blocks if isinstance(block, TextBlock))


def latest_user_text(messages: Sequence[ChatMessage] | None) -> str:
    """Text of the newest user message with text, or ``""``."""
    for message in reversed(messages or ()):
        if message.role.value == "user":
            text = message_text(message).strip()
            if text:
                return text
    return ""


def _dedup_key(text: str) -> str:
    return _DATE_PREFIX.sub("", text, count=1)


def resolve_sessions(
    messages: Iterable[ChatMessage], explicit: str | None, fallback: str | None
) -> dict[str, list[ChatMessage]]:
    """Messages grouped by the session they belong to, in order (no message is modified)."""
    groups: dict[str, list[ChatMessage]] = {}
    for message in messages:
        session = explicit or message.additional_kwargs.get("session_id") or fallback
        if not isinstance(session, str) or not session:
            raise InvalidInputError(
                "no session id for this message: pass session_id=... (llama_index Memory does), tag the "
                "message's additional_kwargs['session_id'], or set session_id on the block"
            )
        groups.setdefault(session, []).append(message)
    return groups


def turn_id_of(message: ChatMessage, session_id: str) -> str:
    """A message's own turn id (``additional_kwargs["turn_id"]`` or ``["id"]``), else a random one.

    A message recorded twice under its own id (flushed by ``Memory`` and also
    recorded directly) is stored once.
    """
    for key in ("turn_id", "id"):
        value = message.additional_kwargs.get(key)
        if isinstance(value, str) and value:
            return value
    return f"{session_id}#{uuid.uuid4().hex[:16]}"


class SessionRecall:
    """Writes chat messages as turn episodes of a user's timeline and reads memories back.

    Holds configuration only; every call builds its namespace, timeline and
    filter locally from the ``session_id`` it is given.

    Args:
        store: Where episodes live.
        namespace: The tenant namespace (the user's), or the prefix ``tenant_for`` extends.
        config: Retrieval configuration (defaults to :class:`RetrievalConfig`).
        roles: Message roles that are recorded.
        clock: Event-time source for recorded turns and "now" for questions.
        tenant_for: Labels of the user owning a session id, appended to
            ``namespace`` on every call; ``None``: ``namespace`` is the user.
        scope: ``"user"`` (default) recalls from every session of the user,
            ``"session"`` only from the calling one.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> recall = SessionRecall(InMemoryStore(HashingEmbedder()), ("acme", "alice"))
        >>> _ = recall.record([ChatMessage(role="user", content="My cat is Miso.")], "chat-1")
        >>> [i.text.split("] ")[1] for i in recall.recall("cat name?", "chat-2", budget_tokens=100)]
        ['user: My cat is Miso.']
        >>> SessionRecall(recall.store, ("acme", "alice"), scope="session").recall("cat?", "chat-2", budget_tokens=100)
        []
    """

    def __init__(
        self,
        store: MemoryStore,
        namespace: Namespace,
        *,
        config: RetrievalConfig | None = None,
        roles: Collection[str] = DEFAULT_ROLES,
        clock: Callable[[], datetime] = utcnow,
        tenant_for: TenantFor | None = None,
        scope: RecallScope = "user",
    ) -> None:
        if scope not in ("user", "session"):
            raise InvalidInputError(f"scope must be 'user' or 'session', got {describe(scope)}")
        if tenant_for is not None and not callable(tenant_for):
            raise InvalidInputError(f"tenant_for must be a function session_id -> labels, got {describe(tenant_for)}")
        self.store = store
        self.namespace = tenant_namespace(namespace)
        self.retriever = HybridRetriever(store, config)
        self.roles = frozenset(roles)
        self.clock = clock
        self.tenant_for = tenant_for
        self.scope: RecallScope = scope

    def tenant(self, session_id: str) -> Namespace:
        """The user namespace a session's memories live in."""
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError(f"session_id must be a non-empty str, got {describe(session_id)}")
        if self.tenant_for is None:
            return self.namespace
        labels = self.tenant_for(session_id)
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise InvalidInputError(
                f"tenant_for({session_id!r}) must return a sequence of labels, got {describe(labels)}; "
                f"e.g. tenant_for=lambda sid: (sid.split(':')[0],)"
            )
        return validate_namespace((*self.namespace, *labels))

    def timeline(self, session_id: str) -> EpisodicTimeline:
        """The timeline of the user owning ``session_id`` (a new, I/O-free object per call)."""
        return EpisodicTimeline(self.store, self.tenant(session_id), clock=self.clock)

    def record(self, messages: Iterable[ChatMessage], session_id: str) -> list[Episode]:
        """Append the text of ``messages`` (recorded roles only) to the user's timeline, in session ``session_id``.

        Text longer than the store's limit is split into consecutive turns;
        messages without text (tool calls, images) are skipped. A message
        carrying its own id (``additional_kwargs["turn_id"]``) is stored once
        however often it is recorded; ``additional_kwargs["name"]`` (OpenAI's
        participant name) is kept as the speaker.
        """
        timeline = self.timeline(session_id)
        limit = max(1, self.store.limits.max_text_chars - 64)  # room for the "role: " prefix
        written: list[Episode] = []
        for message in messages:
            role = message.role.value
            text = message_text(message).replace("\x00", "")
            if role not in self.roles or not text.strip():
                continue
            # Concurrent writers of one session never share a position (see ltm_agent.live).
            turn_id = turn_id_of(message, session_id)
            pieces = [text[start : start + limit] for start in range(0, len(text), limit)]
            pieces = [p for p in pieces if p.strip()]
            name = message.additional_kwargs.get("name")
            speaker = name if isinstance(name, str) else ""
            for n, piece in enumerate(pieces):
                written.append(
                    timeline.add_turn(
                        piece, role=role, speaker=speaker, session_id=session_id,
                        turn_id=turn_id if n == 0 else f"{turn_id}~{n}",
                    )
                )
        return written

    async def arecord(self, messages: Iterable[ChatMessage], session_id: str) -> list[Episode]:
        """Async twin of :meth:`record` (the timeline is sync; runs in a worker thread)."""
        return await asyncio.to_thread(self.record, list(messages), session_id)

    def recall(
        self,
        query: str,
        session_id: str,
        *,
        budget_tokens: int | None,
        k: int = 10,
        reference_time: datetime | None = None,
        exclude_texts: Collection[str] = (),
    ) -> list[MemoryItem]:
        """Memories of the user owning ``session_id`` for ``query``, packed into ``budget_tokens``.

        Args:
            query: The message to recall for.
            session_id: The calling session (its user's namespace; only its
                own turns when ``scope="session"``).
            budget_tokens: Token budget of the returned items.
            k: Most items returned.
            reference_time: "Now" for time expressions (default: the clock).
            exclude_texts: Turn texts (``"role: text"``) already in the prompt;
                matching memories are left out before packing.
        """
        namespace = self.tenant(session_id)
        query = query.replace("\x00", "").strip()[-self.store.limits.max_text_chars :]
        if not query:
            return []
        ranked = self.retriever.ranked_items(
            namespace,
            query,
            reference_time=reference_time or self.clock(),
            # Built per call, never stored: run-llama/llama_index#22701.
            filter={"session_id": session_id} if self.scope == "session" else None,
        )
        config = self.retriever.config.for_query(query)
        items: Iterable[MemoryItem] = render_items(ranked, config, query)  # lazily: packing stops it
        if exclude_texts:
            skip = set(exclude_texts)
            items = (item for item in items if _dedup_key(item.text) not in skip)
        return pack(items, budget_tokens, share_dates=config.shares_dates, limit=k)

    async def arecall(self, query: str, session_id: str, **kwargs: Any) -> list[MemoryItem]:
        """Async twin of :meth:`recall` (runs in a worker thread)."""
        return await asyncio.to_thread(self.recall, query, session_id, **kwargs)
