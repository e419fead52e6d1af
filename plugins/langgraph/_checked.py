"""A checkpointer that names a missing session key before LangGraph touches the checkpoint.

LangGraph's savers read ``config["configurable"]["thread_id"]`` first thing and
fail with a bare ``KeyError: 'thread_id'``. :func:`~ltm_agent.plugins.langgraph.with_memory`
wraps the checkpointer it is given in :class:`SessionCheckedSaver`, so the same
mistake is ltm-agent's :class:`~ltm_agent.errors.InvalidInputError`, saying what
to pass, before any node (or model) runs. Everything else is delegated.

Core type: :class:`SessionCheckedSaver`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, ChannelVersions, Checkpoint, CheckpointMetadata

from ltm_agent.plugins.langgraph.state import resolve_session

__all__ = ["SessionCheckedSaver"]


class SessionCheckedSaver(BaseCheckpointSaver):
    """Delegates to ``saver``; a config without ``thread_id`` is refused with :class:`InvalidInputError`.

    Example:
        >>> from langgraph.checkpoint.memory import InMemorySaver
        >>> from langgraph.graph import END, START, MessagesState, StateGraph
        >>> graph = StateGraph(MessagesState).add_node("noop", lambda s: {}).add_edge(START, "noop")
        >>> app = graph.add_edge("noop", END).compile(checkpointer=SessionCheckedSaver(InMemorySaver()))
        >>> try:
        ...     app.invoke({"messages": []}, {"configurable": {"user_id": "ana"}})
        ... except ValueError as exc:  # InvalidInputError is a ValueError
        ...     print(type(exc).__name__)
        InvalidInputError
    """

    def __init__(self, saver: BaseCheckpointSaver, *, who: str = "with_memory") -> None:
        super().__init__(serde=saver.serde)
        self.saver = saver
        self.who = who

    def _check(self, config: RunnableConfig) -> None:
        resolve_session("thread_id", config, who=f"{self.who} (its checkpointer)")

    @property
    def config_specs(self) -> list:
        return self.saver.config_specs

    def get_tuple(self, config: RunnableConfig) -> Any:
        self._check(config)
        return self.saver.get_tuple(config)

    async def aget_tuple(self, config: RunnableConfig) -> Any:
        self._check(config)
        return await self.saver.aget_tuple(config)

    def list(self, config: RunnableConfig | None, **kwargs: Any) -> Iterator[Any]:
        return self.saver.list(config, **kwargs)

    def alist(self, config: RunnableConfig | None, **kwargs: Any) -> AsyncIterator[Any]:
        return self.saver.alist(config, **kwargs)

    def put(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions
    ) -> RunnableConfig:
        self._check(config)
        return self.saver.put(config, checkpoint, metadata, new_versions)

    async def aput(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions
    ) -> RunnableConfig:
        self._check(config)
        return await self.saver.aput(config, checkpoint, metadata, new_versions)

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        self.saver.put_writes(config, writes, task_id, task_path)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self.saver.aput_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self.saver.delete_thread(thread_id)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.saver.adelete_thread(thread_id)

    def get_next_version(self, current: Any, channel: Any) -> Any:
        return self.saver.get_next_version(current, channel)
