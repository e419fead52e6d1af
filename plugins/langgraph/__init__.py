"""LangGraph integration: a long-term memory store, drop-in memory nodes and MemGPT tools.

Installed as ``ltm_agent.plugins.langgraph``.

* :class:`LTMStore` - LangGraph's ``BaseStore`` on an ltm-agent store (Chroma or
  in-memory): ``graph.compile(store=LTMStore.chroma(path))``.
* :class:`MemoryReadNode` / :class:`MemoryWriteNode` - retrieve memories for the
  latest user message; record new turns as episodes (plus buffer and facts).
* :class:`PagingNode` and :func:`memory_tools` - a MemGPT main context in graph
  state, and the tools that page it.
* :func:`with_memory` - wrap an agent (``create_react_agent(...)`` or a node
  function) as read -> agent -> write over :class:`MemoryState`.
* :class:`SessionCheckedSaver` - wrap any checkpointer so that a run without
  ``thread_id`` is :class:`~ltm_agent.errors.InvalidInputError` before anything
  runs (``with_memory`` does this for you).

Namespaces come from each run's config (``("memories", "{user_id}")`` by
default), never from node or module state.
"""

from __future__ import annotations

from ltm_agent.plugins.langgraph._base import DEFAULT_NAMESPACE
from ltm_agent.plugins.langgraph._checked import SessionCheckedSaver
from ltm_agent.plugins.langgraph.paging import PagingNode
from ltm_agent.plugins.langgraph.read import MemoryReadNode
from ltm_agent.plugins.langgraph.state import MEMORY_MESSAGE_NAME, MemoryState, NamespaceSpec
from ltm_agent.plugins.langgraph.store import LTMStore, embedder_from_index
from ltm_agent.plugins.langgraph.tools import memory_tools, paging_tools
from ltm_agent.plugins.langgraph.wrap import AgentNode, with_memory
from ltm_agent.plugins.langgraph.write import BufferSettings, MemoryWriteNode

__all__ = [
    "DEFAULT_NAMESPACE",
    "MEMORY_MESSAGE_NAME",
    "AgentNode",
    "BufferSettings",
    "LTMStore",
    "MemoryReadNode",
    "MemoryState",
    "MemoryWriteNode",
    "NamespaceSpec",
    "PagingNode",
    "SessionCheckedSaver",
    "embedder_from_index",
    "memory_tools",
    "paging_tools",
    "with_memory",
]
