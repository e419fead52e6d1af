"""Wrap an existing agent as read -> agent -> write.

:func:`with_memory` takes a compiled graph (e.g. ``create_react_agent(...)``)
or a node function and returns a new graph over :class:`MemoryState`:

``START -> memory_read -> agent -> memory_write -> END``

The agent sees the memories as a leading system message (named
``ltm_memory``) in the messages it is given; that message is not added to the
conversation. Only the messages the agent adds are kept.

Core function: :func:`with_memory`; node :class:`AgentNode`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langgraph.graph import END, START, StateGraph

from ltm_agent.errors import InvalidTypeError, describe
from ltm_agent.plugins.langgraph._base import DEFAULT_NAMESPACE
from ltm_agent.plugins.langgraph.read import MemoryReadNode
from ltm_agent.plugins.langgraph.state import MEMORY_MESSAGE_NAME, MemoryState, NamespaceSpec, is_memory_message
from ltm_agent.plugins.langgraph.write import MemoryWriteNode
from ltm_agent.store import MemoryStore

__all__ = ["AgentNode", "with_memory"]

_MEMORY_ID = "ltm-memory-context"


class AgentNode(Runnable[Any, dict[str, Any]]):
    """Run an agent (compiled graph, Runnable or node function) with memory in its input messages.

    Args:
        agent: A compiled graph or other Runnable taking ``{"messages": [...]}``,
            or a node function ``(state) -> update`` / ``(state, config) -> update``
            (sync or async).
        name: Node name.
    """

    def __init__(self, agent: Any, *, name: str = "agent") -> None:
        if not isinstance(agent, Runnable) and not callable(agent):
            raise InvalidTypeError(
                f"with_memory needs a compiled graph, a Runnable or a node function, got {describe(agent)}"
            )
        self.agent = agent
        self.name = name

    @staticmethod
    def _input(state: Mapping[str, Any]) -> dict[str, Any]:
        history = [m for m in state.get("messages") or [] if not is_memory_message(m)]
        context = state.get("memory_context") or ""
        memory = [SystemMessage(context, name=MEMORY_MESSAGE_NAME, id=_MEMORY_ID)] if context else []
        return {**state, "messages": [*memory, *history]}

    @staticmethod
    def _output(state: Mapping[str, Any], result: Any, runnable: bool) -> dict[str, Any]:
        if not isinstance(result, Mapping):
            raise InvalidTypeError(f"the agent must return a dict state update, got {describe(result)}")
        seen = {m.id for m in state.get("messages") or [] if isinstance(m, BaseMessage) and m.id}
        added = [
            m
            for m in result.get("messages") or []
            if not (isinstance(m, BaseMessage) and (m.id in seen or m.id == _MEMORY_ID or is_memory_message(m)))
        ]
        if runnable:  # a graph returns its whole state: keep only what it added to the conversation
            return {"messages": added}
        update = {k: v for k, v in result.items() if k != "messages"}
        if "messages" in result:
            update["messages"] = added
        return update

    def _call_function(self, inputs: dict[str, Any], config: RunnableConfig) -> Any:
        if len(inspect.signature(self.agent).parameters) >= 2:
            return self.agent(inputs, config)
        return self.agent(inputs)

    def invoke(self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        config = ensure_config(config)
        inputs = self._input(input)
        if isinstance(self.agent, Runnable):
            return self._output(input, self.agent.invoke(inputs, config), True)
        if inspect.iscoroutinefunction(self.agent):
            raise InvalidTypeError(f"the agent {self.agent.__name__} is async; run the graph with ainvoke")
        return self._output(input, self._call_function(inputs, config), False)

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        config = ensure_config(config)
        inputs = self._input(input)
        if isinstance(self.agent, Runnable):
            return self._output(input, await self.agent.ainvoke(inputs, config), True)
        if inspect.iscoroutinefunction(self.agent):
            return self._output(input, await self._call_function(inputs, config), False)
        return self._output(input, await asyncio.to_thread(self._call_function, inputs, config), False)


def with_memory(
    agent: Any,
    memory: MemoryStore | None = None,
    *,
    namespace: NamespaceSpec = DEFAULT_NAMESPACE,
    read: MemoryReadNode | None = None,
    write: MemoryWriteNode | None = None,
    checkpointer: Any = None,
    store: Any = None,
    name: str = "agent",
) -> Any:
    """A new graph that runs ``agent`` between a memory read and a memory write.

    Args:
        agent: A compiled graph (``create_react_agent(...)``), a Runnable, or a
            node function over the messages state.
        memory: The ltm-agent store to read and write; ``None`` uses the store
            under the graph's ``LTMStore`` (pass it as ``store=``).
        namespace: Namespace template for the default read and write nodes.
        read: A configured :class:`MemoryReadNode` (overrides ``memory``/``namespace``).
        write: A configured :class:`MemoryWriteNode`.
        checkpointer: Passed to ``compile`` (e.g. ``InMemorySaver()``), wrapped so
            that a run without ``thread_id`` fails with :class:`InvalidInputError`
            before anything runs (LangGraph's savers raise a bare ``KeyError``).
        store: LangGraph store passed to ``compile``.
        name: Name of the agent node.

    Returns:
        The compiled graph over :class:`MemoryState`.

    Example:
        >>> from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        >>> from langchain_core.messages import AIMessage, HumanMessage
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> model = GenericFakeChatModel(messages=iter([AIMessage("Noted!"), AIMessage("Miso.")]))
        >>> def agent(state):
        ...     return {"messages": [model.invoke(state["messages"])]}
        >>> graph = with_memory(agent, InMemoryStore(HashingEmbedder()))
        >>> def run(text, thread):
        ...     config = {"configurable": {"user_id": "ana", "thread_id": thread}}
        ...     return graph.invoke({"messages": [HumanMessage(text)]}, config)
        >>> _ = run("My cat is called Miso", "t1")
        >>> out = run("What is my cat called?", "t2")
        >>> "Miso" in out["memory_context"], out["messages"][-1].content
        (True, 'Miso.')
    """
    write = write if write is not None else MemoryWriteNode(memory, namespace=namespace)
    # The read node runs first: it checks the write node's session key, so a run without
    # one fails before the model answers rather than after.
    read = read if read is not None else MemoryReadNode(memory, namespace=namespace, session_key=write.session_key)
    if checkpointer is not None and checkpointer is not True and checkpointer is not False:
        from ltm_agent.plugins.langgraph._checked import SessionCheckedSaver

        checkpointer = SessionCheckedSaver(checkpointer)
    builder: StateGraph[Any] = StateGraph(MemoryState)
    builder.add_node(read.name or "memory_read", read)
    builder.add_node(name, AgentNode(agent, name=name))
    builder.add_node(write.name or "memory_write", write)
    builder.add_edge(START, read.name or "memory_read")
    builder.add_edge(read.name or "memory_read", name)
    builder.add_edge(name, write.name or "memory_write")
    builder.add_edge(write.name or "memory_write", END)
    return builder.compile(checkpointer=checkpointer, store=store)
