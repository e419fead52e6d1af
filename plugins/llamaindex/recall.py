"""The write/read core the LlamaIndex adapters share: messages in, memories out, per session.

A session's memories live in the namespace ``(*tenant, <session label>)``
(:func:`session_namespace`). :class:`SessionRecall` holds configuration only:
each call builds its namespace, timeline and filter from the ``session_id`` it
is given, so nothing one session does can change what another reads.

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
from typing import Any, Callable, Collection, Iterable, Sequence

from llama_index.core.base.llms.types import ChatMessage, TextBlock

from ltm_agent.dates import utcnow
from ltm_agent.errors import InvalidInputError, InvalidNamespaceError, describe
from ltm_agent.namespaces import MAX_DEPTH, Namespace, validate_namespace
from ltm_agent.records import Episode, MemoryItem
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig, pack
from ltm_agent.store import MemoryStore
from ltm_agent.timeline import EpisodicTimeline

__all__ = [
    "DEFAULT_ROLES",
    "SessionRecall",
    "latest_user_text",
    "message_text",
    "resolve_sessions",
    "session_lock",
    "session_namespace",
    "tenant_namespace",
]

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


class SessionRecall:
    """Writes chat messages as turn episodes and reads memories back, one session namespace per call.

    Holds configuration only; every call builds its namespace, timeline and
    filter locally from the ``session_id`` it is given.

    Args:
        store: Where episodes live.
        namespace: The tenant namespace (at most 7 labels; the session adds one).
        config: Retrieval configuration (defaults to :class:`RetrievalConfig`).
        roles: Message roles that are recorded.
        clock: Event-time source for recorded turns and "now" for questions.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> recall = SessionRecall(InMemoryStore(HashingEmbedder()), ("acme",))
        >>> _ = recall.record([ChatMessage(role="user", content="My cat is Miso.")], "s1")
        >>> [i.text.split("] ")[1] for i in recall.recall("cat name?", "s1", budget_tokens=100)]
        ['user: My cat is Miso.']
        >>> recall.recall("cat name?", "s2", budget_tokens=100)
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
    ) -> None:
        self.store = store
        self.namespace = tenant_namespace(namespace)
        self.retriever = HybridRetriever(store, config)
        self.roles = frozenset(roles)
        self.clock = clock

    def timeline(self, session_id: str) -> EpisodicTimeline:
        """The timeline of one session (a new, I/O-free object per call)."""
        return EpisodicTimeline(self.store, session_namespace(self.namespace, session_id), clock=self.clock)

    def record(self, messages: Iterable[ChatMessage], session_id: str) -> list[Episode]:
        """Append the text of ``messages`` (recorded roles only) to the session's timeline.

        Text longer than the store's limit is split into consecutive turns;
        messages without text (tool calls, images) are skipped.
        """
        timeline = self.timeline(session_id)
        limit = max(1, self.store.limits.max_text_chars - 64)  # room for the "role: " prefix
        written: list[Episode] = []
        with session_lock(self.store, timeline.namespace):
            for message in messages:
                role = message.role.value
                text = message_text(message).replace("\x00", "")
                if role not in self.roles or not text.strip():
                    continue
                for start in range(0, len(text), limit):
                    piece = text[start : start + limit]
                    if piece.strip():
                        # A random turn id: two writers of one session never overwrite each other.
                        turn_id = f"{session_id}#{uuid.uuid4().hex[:16]}"
                        written.append(timeline.add_turn(piece, role=role, session_id=session_id, turn_id=turn_id))
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
        """Memories of one session for ``query``, packed into ``budget_tokens``.

        Args:
            query: The message to recall for.
            session_id: The session to read (only its namespace).
            budget_tokens: Token budget of the returned items.
            k: Most items returned.
            reference_time: "Now" for time expressions (default: the clock).
            exclude_texts: Turn texts (``"role: text"``) already in the prompt;
                matching memories are left out before packing.
        """
        query = query.replace("\x00", "").strip()[-self.store.limits.max_text_chars :]
        if not query:
            return []
        ranked = self.retriever.rank(
            session_namespace(self.namespace, session_id),
            query,
            reference_time=reference_time or self.clock(),
            filter={"session_id": session_id},  # built per call, on top of the per-session namespace
        )
        if exclude_texts:
            skip = set(exclude_texts)
            ranked = [item for item in ranked if _dedup_key(item.text) not in skip]
        return pack(ranked, budget_tokens)[:k]

    async def arecall(self, query: str, session_id: str, **kwargs: Any) -> list[MemoryItem]:
        """Async twin of :meth:`recall` (runs in a worker thread)."""
        return await asyncio.to_thread(self.recall, query, session_id, **kwargs)
