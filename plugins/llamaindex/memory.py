"""A LlamaIndex ``BaseMemory`` backed by ltm-agent: chat history plus long-term recall.

For code that takes a memory module directly (``FunctionAgent.run(...,
memory=...)``, chat engines) rather than ``Memory`` with blocks.

* **Short term**: the session's messages, exactly as put, in a LlamaIndex
  ``BaseChatStore`` (``SimpleChatStore`` unless you pass one) under the key
  ``session_id``; :meth:`LTMChatMemory.get` returns the newest of them that fit
  ``token_limit``.
* **Long term**: every text message put (user and assistant by default) is
  also written at once as a dated turn episode of the **user's** timeline
  (``namespace``), in session ``session_id``; ``get`` recalls the memories
  relevant to the newest user message (or ``input``) from all of the user's
  sessions (``scope="session"``: this one only) within ``budget_tokens`` and
  puts them, quoted as data, at the start of the newest user message
  (``insert_method="user"``, the default, so an agent's own system prompt stays
  the only system message) or into the leading system message
  (``insert_method="system"``). Memories whose turn is still in the returned
  history are left out.

``set`` and ``reset`` change the short-term history only: long-term memory is
append-only (``set`` may replay messages already recorded, and recording them
again would duplicate them). :meth:`LTMChatMemory.forget` deletes this
session's long-term memories; ``store.forget(namespace)`` erases the user.

Core type: :class:`LTMChatMemory`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Callable, List, Literal, Optional, Sequence

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
from llama_index.core.bridge.pydantic import Field, SerializeAsAny, field_serializer, field_validator
from llama_index.core.memory.types import BaseMemory
from llama_index.core.storage.chat_store import BaseChatStore, SimpleChatStore
from pydantic import InstanceOf

from ltm_agent.dates import utcnow
from ltm_agent.llm import render_memory_block
from ltm_agent.namespaces import Namespace
from ltm_agent.plugins.llamaindex.recall import (
    DEFAULT_ROLES,
    RecallScope,
    SessionRecall,
    latest_user_text,
    message_text,
    tenant_namespace,
)
from ltm_agent.records import MemoryItem
from ltm_agent.retrieval import RetrievalConfig
from ltm_agent.store import MemoryStore
from ltm_agent.tokens import count_tokens

__all__ = ["LTMChatMemory"]

_FRAMING_TOKENS = 4  # per-message chat framing, as ltm_agent.paging counts it


def _window(history: Sequence[ChatMessage], token_limit: int) -> list[ChatMessage]:
    """The newest messages within ``token_limit``, never starting on an assistant or tool message."""
    sizes = [count_tokens(message_text(m)) + _FRAMING_TOKENS for m in history]
    start, total = 0, sum(sizes)
    while total > token_limit and start < len(history) - 1:
        total -= sizes[start]
        start += 1
        # A reply or tool result without the message it answers confuses models (and some APIs).
        while start < len(history) - 1 and history[start].role in (MessageRole.ASSISTANT, MessageRole.TOOL):
            total -= sizes[start]
            start += 1
    return list(history[start:])


def _query(input: Optional[str | ChatMessage], window: Sequence[ChatMessage]) -> str:
    if isinstance(input, ChatMessage):
        return message_text(input).strip()
    if isinstance(input, str) and input.strip():
        return input.strip()
    return latest_user_text(window)


def _in_prompt(window: Sequence[ChatMessage]) -> set[str]:
    """Turn texts (as the timeline renders them) already present in the history returned."""
    return {f"{m.role.value}: {message_text(m)}" for m in window}


def _with_memories(
    window: list[ChatMessage], items: Sequence[MemoryItem], insert_method: str = "system"
) -> list[ChatMessage]:
    """The window with the memories in its newest user message, or in its leading system message.

    Messages from the chat store are never modified: a changed message is a copy.
    """
    if not items:
        return window
    block = TextBlock(text=render_memory_block(items))
    if insert_method == "user":
        for i in range(len(window) - 1, -1, -1):
            if window[i].role == MessageRole.USER:
                changed = window[i].model_copy(update={"blocks": [block, *window[i].blocks]})
                return [*window[:i], changed, *window[i + 1 :]]
        return [*window, ChatMessage(role=MessageRole.USER, blocks=[block])]
    if window and window[0].role == MessageRole.SYSTEM:
        first = window[0].model_copy(update={"blocks": [block, *window[0].blocks]})
        return [first, *window[1:]]
    return [ChatMessage(role=MessageRole.SYSTEM, blocks=[block]), *window]


class LTMChatMemory(BaseMemory):
    """Chat history of one session plus recall from the user's long-term episodic timeline.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> store = InMemoryStore(HashingEmbedder())
        >>> chat1 = LTMChatMemory.from_defaults(store=store, namespace=("acme", "alice"), session_id="chat-1")
        >>> chat1.put(ChatMessage(role="user", content="My cat is called Miso."))
        >>> chat2 = LTMChatMemory.from_defaults(store=store, namespace=("acme", "alice"), session_id="chat-2")
        >>> chat2.put(ChatMessage(role="user", content="What is my cat called?"))
        >>> messages = chat2.get()
        >>> len(messages), "Miso" in messages[-1].content, messages[-1].content.endswith("What is my cat called?")
        (1, True, True)
    """

    store: InstanceOf[MemoryStore] = Field(exclude=True, description="Where long-term episodes live.")
    namespace: tuple[str, ...] = Field(description="The user's namespace: long-term memory across their chats.")
    scope: RecallScope = Field(default="user", description="Recall from all the user's sessions, or this one.")
    insert_method: Literal["user", "system"] = Field(
        default="user", description="Put recalled memories in the newest user message, or the system message."
    )
    session_id: str = Field(
        default_factory=lambda: str(uuid.uuid4()), description="The session; also the chat store key."
    )
    chat_store: SerializeAsAny[BaseChatStore] = Field(default_factory=SimpleChatStore)
    token_limit: int = Field(default=3000, ge=1, description="Token limit of the short-term history returned.")
    budget_tokens: int = Field(default=800, ge=1, description="Token budget of the recalled memories.")
    k: int = Field(default=10, ge=1, description="Most memories recalled per call.")
    roles: tuple[str, ...] = Field(default=DEFAULT_ROLES, description="Message roles written to long-term memory.")
    retrieval_config: Optional[InstanceOf[RetrievalConfig]] = Field(default=None, exclude=True)
    clock: Callable[[], datetime] = Field(default=utcnow, exclude=True)

    @classmethod
    def class_name(cls) -> str:
        return "LTMChatMemory"

    @field_validator("namespace", mode="before")
    @classmethod
    def _check_namespace(cls, value: object) -> Namespace:
        return tenant_namespace(value)

    @field_serializer("chat_store")
    def _serialize_chat_store(self, chat_store: BaseChatStore) -> dict:
        data = chat_store.model_dump()
        data.update({"class_name": chat_store.class_name()})
        return data

    @classmethod
    def from_defaults(  # type: ignore[override]
        cls,
        store: MemoryStore,
        namespace: Namespace,
        *,
        session_id: Optional[str] = None,
        chat_history: Optional[List[ChatMessage]] = None,
        chat_store: Optional[BaseChatStore] = None,
        **kwargs: Any,
    ) -> LTMChatMemory:
        """A memory for one session of one tenant.

        Args:
            store: The long-term store (e.g. ``ChromaStore.persistent(".ltm")``).
            namespace: The user's namespace, e.g. ``("acme", "user-42")``: what
                every chat of this user writes and recalls.
            session_id: This chat (a new uuid4 when omitted): a session label
                in the user's timeline and the chat store key.
            chat_history: Initial short-term history (not written to long-term memory).
            chat_store: Where the short-term history lives (default: ``SimpleChatStore``).
            **kwargs: Other fields: ``scope``, ``insert_method``, ``token_limit``,
                ``budget_tokens``, ``k``, ``roles``, ``retrieval_config``, ``clock``.
        """
        fields: dict[str, Any] = {"store": store, "namespace": namespace, **kwargs}
        if session_id is not None:
            fields["session_id"] = session_id
        if chat_store is not None:
            fields["chat_store"] = chat_store
        memory = cls(**fields)
        if chat_history is not None:
            memory.chat_store.set_messages(memory.session_id, list(chat_history))
        return memory

    @property
    def recall(self) -> SessionRecall:
        """The write/read core (configuration only; built per call)."""
        return SessionRecall(
            self.store, self.namespace, config=self.retrieval_config, roles=self.roles, clock=self.clock,
            scope=self.scope,
        )

    @property
    def long_term_namespace(self) -> Namespace:
        """The store namespace of the user's long-term memories (every chat of theirs)."""
        return self.namespace

    # -- reading ----------------------------------------------------------

    def get(self, input: Optional[str | ChatMessage] = None, **kwargs: Any) -> List[ChatMessage]:
        """The short-term history, with recalled memories in a leading system message.

        Args:
            input: The message to recall for; default: the newest user message.
            **kwargs: ``reference_time`` (aware datetime) resolves "last week"
                in the query; other keys are ignored.
        """
        window = _window(self.chat_store.get_messages(self.session_id), self.token_limit)
        query = _query(input, window)
        if not query:
            return window
        items = self.recall.recall(query, self.session_id, **self._recall_args(window, kwargs))
        return _with_memories(window, items, self.insert_method)

    async def aget(self, input: Optional[str | ChatMessage] = None, **kwargs: Any) -> List[ChatMessage]:
        """Async twin of :meth:`get`."""
        window = _window(await self.chat_store.aget_messages(self.session_id), self.token_limit)
        query = _query(input, window)
        if not query:
            return window
        items = await self.recall.arecall(query, self.session_id, **self._recall_args(window, kwargs))
        return _with_memories(window, items, self.insert_method)

    def _recall_args(self, window: Sequence[ChatMessage], kwargs: dict[str, Any]) -> dict[str, Any]:
        when = kwargs.get("reference_time")
        return {
            "budget_tokens": self.budget_tokens,
            "k": self.k,
            "reference_time": when if isinstance(when, datetime) else None,
            "exclude_texts": _in_prompt(window),
        }

    def get_all(self) -> List[ChatMessage]:
        """Every message of the session's short-term history, as put."""
        return self.chat_store.get_messages(self.session_id)

    async def aget_all(self) -> List[ChatMessage]:
        return await self.chat_store.aget_messages(self.session_id)

    # -- writing ----------------------------------------------------------

    def put(self, message: ChatMessage) -> None:
        """Append to the history and record the message in long-term memory."""
        self.put_messages([message])

    async def aput(self, message: ChatMessage) -> None:
        await self.aput_messages([message])

    def put_messages(self, messages: List[ChatMessage]) -> None:
        """Append several messages and record them in long-term memory, in order."""
        for message in messages:
            self.chat_store.add_message(self.session_id, message)
        self.recall.record(messages, self.session_id)

    async def aput_messages(self, messages: List[ChatMessage]) -> None:
        for message in messages:
            await self.chat_store.async_add_message(self.session_id, message)
        await self.recall.arecord(messages, self.session_id)

    def set(self, messages: List[ChatMessage]) -> None:
        """Replace the short-term history (long-term memory is not rewritten)."""
        self.chat_store.set_messages(self.session_id, list(messages))

    async def aset(self, messages: List[ChatMessage]) -> None:
        await self.chat_store.aset_messages(self.session_id, list(messages))

    def reset(self) -> None:
        """Clear the short-term history; long-term memories stay (see :meth:`forget`)."""
        self.chat_store.delete_messages(self.session_id)

    async def areset(self) -> None:
        await self.chat_store.adelete_messages(self.session_id)

    def forget(self) -> int:
        """Clear the history and delete this session's long-term memories; returns how many items.

        The user's other sessions stay; ``store.forget(memory.namespace)`` erases the user.
        """
        self.reset()
        ids = [item.id for item in self.store.list(self.namespace, filter={"session_id": self.session_id})]
        return self.store.delete(self.namespace, ids) if ids else 0

    async def aforget(self) -> int:
        await self.areset()
        found = await self.store.alist(self.namespace, filter={"session_id": self.session_id})
        return await self.store.adelete(self.namespace, [item.id for item in found]) if found else 0
