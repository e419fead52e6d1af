"""Messages of a paged context: the queue entries and their wire forms.

A :class:`PagedMessage` is one entry of the FIFO queue of a
:class:`~ltm_agent.paging.PagedContext`: a user, assistant, system or tool
message with its time and the id of its copy in recall storage. This module
also converts messages to OpenAI-style dicts and LangChain messages, from
LangChain messages, and measures them in tokens.

Token measure: ``count_tokens(content) + count_tokens(tool-call JSON) +``
:data:`MESSAGE_OVERHEAD` per message, the cl100k chat-format estimate from
OpenAI's cookbook (``<|start|>role\\n ... <|end|>\\n``). A context's size is the
sum over its rendered messages, so it is additive and cheap to maintain.

Core types: :class:`PagedMessage`, :class:`ToolCallRef`, :data:`Role`;
functions :func:`message_tokens`, :func:`to_dict`, :func:`to_langchain`,
:func:`from_langchain`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ltm_agent.dates import require_aware
from ltm_agent.errors import InvalidInputError, InvalidTypeError, describe
from ltm_agent.tokens import count_tokens

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = [
    "MESSAGE_OVERHEAD",
    "PagedMessage",
    "Role",
    "ToolCallRef",
    "from_langchain",
    "message_tokens",
    "to_dict",
    "to_langchain",
]

Role = Literal["user", "assistant", "system", "tool"]
"""Roles a queue message can have."""

MESSAGE_OVERHEAD = 4
"""Tokens counted per message for the chat framing around its content."""


class ToolCallRef(BaseModel):
    """A tool call an assistant message made (LangChain's ``ToolCall`` without ``type``).

    Example:
        >>> ToolCallRef(id="call-1", name="archival_memory_search", args={"query": "tea"}).name
        'archival_memory_search'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)

    def render(self) -> str:
        """``name({"arg": ...})`` as it is stored in recall storage and counted."""
        return f"{self.name}({json.dumps(self.args, ensure_ascii=False, sort_keys=True)})"


class PagedMessage(BaseModel):
    """One message in the FIFO queue of a paged context.

    Attributes:
        role: ``user``, ``assistant``, ``system`` or ``tool``.
        content: The text in context (may be cut to fit the window; the full
            text stays in recall storage under :attr:`id`).
        time: When it was said (timezone-aware).
        id: Id of the message's recall-storage copy; ``None`` for the context's
            own notices, which are not conversation and are not stored.
        tool_calls: Tool calls an assistant message made.
        tool_call_id: For a ``tool`` message, the call it answers.
        name: Optional speaker or tool name.
        notice: True for a memory-pressure notice the context inserted.
        cut: True when :attr:`content` was cut to fit the window.

    Example:
        >>> from datetime import UTC, datetime
        >>> PagedMessage(role="user", content="hi", time=datetime(2024, 5, 1, tzinfo=UTC)).role
        'user'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str
    time: datetime
    id: str | None = None
    tool_calls: tuple[ToolCallRef, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    notice: bool = False
    cut: bool = False

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return require_aware(value, "message time")

    @property
    def recall_text(self) -> str:
        """The text stored in recall storage: content plus any tool calls."""
        calls = "\n".join(f"[tool call] {call.render()}" for call in self.tool_calls)
        return "\n".join(part for part in (self.content, calls) if part)


def message_tokens(message: PagedMessage) -> int:
    """Tokens a message takes in context (content, tool calls, framing).

    Example:
        >>> from datetime import UTC, datetime
        >>> message_tokens(PagedMessage(role="user", content="hello world", time=datetime.now(UTC)))
        6
    """
    tokens = count_tokens(message.content) + MESSAGE_OVERHEAD
    for call in message.tool_calls:
        tokens += count_tokens(call.render())
    return tokens


def to_dict(message: PagedMessage) -> dict[str, Any]:
    """An OpenAI-style chat message dict (``role``/``content``, tool calls in function form)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.args, ensure_ascii=False)},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def to_langchain(message: PagedMessage) -> BaseMessage:
    """The LangChain message for a queue message."""
    from langchain_core.messages import (
        AIMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )

    if message.role == "assistant":
        calls = [{"name": c.name, "args": dict(c.args), "id": c.id, "type": "tool_call"} for c in message.tool_calls]
        return AIMessage(content=message.content, tool_calls=calls, name=message.name)
    if message.role == "tool":
        return ToolMessage(content=message.content, tool_call_id=message.tool_call_id or "", name=message.name)
    if message.role == "system":
        return SystemMessage(content=message.content, name=message.name)
    return HumanMessage(content=message.content, name=message.name)


def from_langchain(message: object) -> tuple[Role, str, dict[str, Any]]:
    """``(role, content, extra keyword arguments)`` for ``PagedContext.append``.

    Raises:
        InvalidTypeError: ``message`` is not a LangChain message of a known type.
    """
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )

    if not isinstance(message, BaseMessage):
        raise InvalidTypeError(
            f"append_message needs a LangChain message, got {describe(message)}; "
            f"call append(role, content) for plain text"
        )
    extra: dict[str, Any] = {"name": message.name} if message.name else {}
    text = message.text
    if isinstance(message, AIMessage):
        calls = [
            ToolCallRef(id=c.get("id") or f"call-{i}", name=c["name"], args=dict(c.get("args") or {}))
            for i, c in enumerate(message.tool_calls)
        ]
        if calls:
            extra["tool_calls"] = calls
        return "assistant", text, extra
    if isinstance(message, ToolMessage):
        extra["tool_call_id"] = message.tool_call_id
        return "tool", text, extra
    if isinstance(message, SystemMessage):
        return "system", text, extra
    if isinstance(message, HumanMessage):
        return "user", text, extra
    raise InvalidInputError(
        f"cannot page a {type(message).__name__}; pass HumanMessage, AIMessage, SystemMessage or ToolMessage"
    )
