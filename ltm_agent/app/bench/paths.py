"""Write paths of the retrieval benchmark: ``ltm`` fed the way an agent feeds it.

``--path bulk`` ingests each conversation with :meth:`EpisodicTimeline.ingest`
(what ``ltm-agent ingest`` does). The product paths feed the same conversation
one turn at a time, as an agent would, and ask each question the way the agent's
integration asks it:

* ``live`` - :meth:`EpisodicTimeline.add_turn` per turn (the session date as the
  turn's time); questions through :class:`HybridRetriever`, as in ``bulk``.
* ``langgraph`` - a compiled LangGraph graph whose only node is our
  :class:`MemoryWriteNode`, one ``invoke`` per turn on a thread per session
  (``thread_id`` = session id, ``reference_time`` = session date, an in-memory
  checkpointer); each question goes through a graph with :class:`MemoryReadNode`,
  and the items it cites (``memory_citations``, in rank order) are the result.
  ``ltm-facts@langgraph`` gives the write node the pattern fact extractor in
  ``facts_mode="background"``: facts are extracted off the hot path and waited
  for (``drain``) before the conversation's questions (the wait is
  ``facts_wait_seconds`` in ``write_latency.json``).
* ``llamaindex`` - ``Memory.from_defaults(memory_blocks=[EpisodicTimelineBlock])``
  per session, each turn put into ``Memory`` and recorded with the block's
  ``arecord`` (Memory alone hands blocks only its overflow); each question is
  put into a fresh ``Memory`` and the ``<memory id="m1">`` ... items its ``aget``
  renders are the result (the block's ``last_items`` says which stored item each ref names).

Each path records the latency of every write with the number of turns the
namespace held before it (:attr:`PathLTM.write_latencies`).

Core types: :class:`PathLTM` and its subclasses; :data:`PATHS`.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from ltm_agent.app.bench.datasets import Question
from ltm_agent.app.bench.systems import DEPTH, LTM
from ltm_agent.conversations import Conversation
from ltm_agent.namespaces import Namespace
from ltm_agent.records import MemoryItem
from ltm_agent.retrieval import render_items

__all__ = ["PATHS", "PATH_CLASSES", "LTMLangGraph", "LTMLive", "LTMLlamaIndex", "PathLTM", "write_latency_summary"]

PATHS = ("bulk", "live", "langgraph", "llamaindex")
"""Ways ``ltm`` can be fed in a benchmark run (``--path``)."""

READ_BUDGET = 4096
"""Token budget the read node and block are given: the contract's largest budget."""
_MEMORY_REF = re.compile(r'<memory id="m(\d+)"')


class PathLTM(LTM):
    """``ltm`` written turn by turn; subclasses say how a turn and a question travel."""

    path = "live"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_latencies: list[tuple[int, float]] = []
        """(turns already in the namespace, milliseconds) for every write."""

    def _ingest(self, ns: Namespace, conversation: Conversation) -> int:
        written = 0
        for session in conversation.ordered_sessions():
            for turn in session.turns:
                if not turn.text.strip():
                    continue
                started = time.perf_counter()
                self._write(ns, session, turn)
                self.write_latencies.append((written, (time.perf_counter() - started) * 1000))
                written += 1
            self._end_session(ns, session)
        return written

    def _write(self, ns: Namespace, session: Any, turn: Any) -> None:
        from ltm_agent.timeline import EpisodicTimeline

        EpisodicTimeline(self.store, ns, units=self.units).add_turn(
            turn.text, role=turn.role, speaker=turn.speaker, session_id=session.id, time=session.date, turn_id=turn.id
        )

    def _end_session(self, ns: Namespace, session: Any) -> None:
        """Called after each session's last turn."""

    def _items(self, ns: Namespace, ids: list[str], query: str) -> list[MemoryItem]:
        """The stored items behind retrieved ids, rendered as ``ltm`` renders them for ``query``
        (dates, and excerpts of long memories: what the node or block gave the agent), in the given order."""
        found = [item for item in (self.store.get(ns, ids) if ids else []) if item is not None]
        ranked = [(item, 1.0 / (rank + 1)) for rank, item in enumerate(found)]
        return list(render_items(ranked, self.retriever.config.for_query(query), query))


class LTMLive(PathLTM):
    """``ltm`` fed through :meth:`EpisodicTimeline.add_turn`, one turn at a time."""

    path = "live"


class LTMLangGraph(PathLTM):
    """``ltm`` through a compiled LangGraph graph with our write and read nodes (``facts``: background facts)."""

    path = "langgraph"

    def __init__(self, *args: Any, facts: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.facts = facts
        self.facts_wait_seconds = 0.0

    def _graph(self, node: Any, *, checkpointer: bool) -> Any:
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.graph import END, START, StateGraph

        from ltm_agent.plugins.langgraph import MemoryState

        graph = StateGraph(MemoryState)
        graph.add_node("memory", node)
        graph.add_edge(START, "memory")
        graph.add_edge("memory", END)
        return graph.compile(checkpointer=InMemorySaver() if checkpointer else None)

    def _ingest(self, ns: Namespace, conversation: Conversation) -> int:
        from ltm_agent.plugins.langgraph import MemoryWriteNode

        extractor = None
        if self.facts:
            from ltm_agent.facts.patterns import PatternFactExtractor

            extractor = PatternFactExtractor()
        node = MemoryWriteNode(self.store, namespace=ns, facts=extractor, facts_mode="background")
        self._writer = self._graph(node, checkpointer=True)
        try:
            return super()._ingest(ns, conversation)
        finally:
            self._writer = None
            started = time.perf_counter()
            node.drain()
            self.facts_wait_seconds += time.perf_counter() - started

    def _write(self, ns: Namespace, session: Any, turn: Any) -> None:
        from langchain_core.messages import AIMessage, HumanMessage

        kind = HumanMessage if turn.role == "user" else AIMessage
        message = kind(turn.text, id=turn.id, name=turn.speaker or None)
        config = {"configurable": {"thread_id": session.id, "reference_time": session.date}}
        self._writer.invoke({"messages": [message]}, config)

    def retrieve(self, namespace: Namespace, question: Question) -> list[MemoryItem]:
        from langchain_core.messages import HumanMessage

        from ltm_agent.plugins.langgraph import MemoryReadNode

        ns = self._ns(namespace)
        node = MemoryReadNode(self.store, namespace=ns, config=self.retriever.config, budget_tokens=READ_BUDGET, k=DEPTH)
        out = self._graph(node, checkpointer=False).invoke(
            {"messages": [HumanMessage(question.text)]}, {"configurable": {"reference_time": question.question_time}}
        )
        return self._items(ns, [c["id"] for c in out["memory_citations"]], question.text)


class LTMLlamaIndex(PathLTM):
    """``ltm`` through LlamaIndex ``Memory`` with our :class:`EpisodicTimelineBlock`."""

    path = "llamaindex"

    def _block(self, ns: Namespace, clock: Any) -> Any:
        from ltm_agent.plugins.llamaindex import EpisodicTimelineBlock

        return EpisodicTimelineBlock(
            store=self.store, namespace=ns, budget_tokens=READ_BUDGET, k=DEPTH,
            retrieval_config=self.retriever.config, clock=clock,
        )

    def _ingest(self, ns: Namespace, conversation: Conversation) -> int:
        return asyncio.run(self._aingest(ns, conversation))  # one event loop for LlamaIndex's chat stores

    async def _aingest(self, ns: Namespace, conversation: Conversation) -> int:
        from llama_index.core.llms import ChatMessage
        from llama_index.core.memory import Memory

        written = 0
        for session in conversation.ordered_sessions():
            # One Memory per chat; the block's clock says when the chat happened.
            block = self._block(ns, lambda date=session.date: date)
            memory = Memory.from_defaults(session_id=session.id, memory_blocks=[block])
            for turn in session.turns:
                if not turn.text.strip():
                    continue
                message = ChatMessage(
                    role=turn.role, content=turn.text, additional_kwargs={"turn_id": turn.id, "name": turn.speaker}
                )
                started = time.perf_counter()
                await memory.aput(message)
                await block.arecord([message], session.id)  # every turn, not only Memory's overflow
                self.write_latencies.append((written, (time.perf_counter() - started) * 1000))
                written += 1
        return written

    def retrieve(self, namespace: Namespace, question: Question) -> list[MemoryItem]:
        return asyncio.run(self._aretrieve(self._ns(namespace), question))

    async def _aretrieve(self, ns: Namespace, question: Question) -> list[MemoryItem]:
        from llama_index.core.llms import ChatMessage
        from llama_index.core.memory import Memory

        block = self._block(ns, lambda: question.question_time)
        memory = Memory.from_defaults(session_id=f"question-{question.id}", memory_blocks=[block], token_limit=200_000)
        await memory.aput(ChatMessage(role="user", content=question.text))
        messages = await memory.aget(reference_time=question.question_time)
        text = "\n".join(m.content or "" for m in messages if m.role.value == "system")
        # What Memory rendered names memories m1..mN in rank order (the lines go by day); the block
        # keeps the items behind those refs.
        rendered = block.last_items
        refs = sorted(int(n) - 1 for n in _MEMORY_REF.findall(text))
        return self._items(ns, [rendered[r].id for r in refs if 0 <= r < len(rendered)], question.text)


PATH_CLASSES: dict[str, type[PathLTM]] = {"live": LTMLive, "langgraph": LTMLangGraph, "llamaindex": LTMLlamaIndex}
"""The system class of each product path."""

LATENCY_WINDOWS = ((0, 100), (100, 300), (300, 600), (600, None))
"""History lengths (turns already stored) the write latencies are grouped by."""


def write_latency_summary(latencies: list[tuple[int, float]]) -> dict[str, dict[str, float]]:
    """Write latency p50/p95 (ms) per history window, e.g. ``{"0-99": {"writes": 1000, "p50_ms": .., "p95_ms": ..}}``."""
    import numpy as np

    out: dict[str, dict[str, float]] = {}
    for lo, hi in LATENCY_WINDOWS:
        values = [ms for n, ms in latencies if n >= lo and (hi is None or n < hi)]
        if values:
            label = f"{lo}-{hi - 1}" if hi is not None else f"{lo}+"
            out[label] = {
                "writes": len(values),
                "p50_ms": round(float(np.percentile(values, 50)), 2),
                "p95_ms": round(float(np.percentile(values, 95)), 2),
            }
    return out
