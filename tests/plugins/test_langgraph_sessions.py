"""Sessions through the LangGraph nodes: a missing thread_id is our error before the model runs;
concurrent writers of one thread never share a position."""

from __future__ import annotations

import threading

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import InvalidInputError
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.plugins.langgraph import MemoryWriteNode, with_memory
from ltm_agent.timeline import EpisodicTimeline


class CountingAgent:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, state):
        self.calls += 1
        return {"messages": [AIMessage(f"reply {self.calls}")]}


@pytest.mark.parametrize("checkpointer", [None, "memory"])
def test_missing_thread_id_is_our_error_before_the_model_runs(checkpointer) -> None:
    agent = CountingAgent()
    saver = InMemorySaver() if checkpointer else None
    graph = with_memory(agent, InMemoryStore(HashingEmbedder(64)), checkpointer=saver)
    with pytest.raises(InvalidInputError, match="thread_id"):
        graph.invoke({"messages": [HumanMessage("hi")]}, {"configurable": {"user_id": "ana"}})
    assert agent.calls == 0


def test_a_checked_checkpointer_still_keeps_the_thread() -> None:
    store = InMemoryStore(HashingEmbedder(64))
    graph = with_memory(CountingAgent(), store, checkpointer=InMemorySaver())
    config = {"configurable": {"user_id": "ana", "thread_id": "t1"}}
    graph.invoke({"messages": [HumanMessage("My cat is Miso", id="h1")]}, config)
    out = graph.invoke({"messages": [HumanMessage("and my dog is Rex", id="h2")]}, config)
    assert [m.content for m in out["messages"]] == ["My cat is Miso", "reply 1", "and my dog is Rex", "reply 2"]
    turns = EpisodicTimeline(store, ("memories", "ana")).episodes()
    assert [t.position for t in turns] == [0, 1, 2, 3]


def test_concurrent_write_nodes_of_one_thread_share_no_position() -> None:
    store = InMemoryStore(HashingEmbedder(64))
    node = MemoryWriteNode(store)
    config = {"configurable": {"user_id": "ana", "thread_id": "t1"}}

    def write(w: int) -> None:
        for i in range(15):
            node.invoke({"messages": [HumanMessage(f"writer {w} line {i}", id=f"{w}-{i}")]}, config)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    turns = EpisodicTimeline(store, ("memories", "ana")).episodes()
    assert len(turns) == 60 and sorted(t.position for t in turns) == list(range(60))


def test_background_facts_leave_the_write_fast_and_land_later() -> None:
    from ltm_agent.facts import FactMemory
    from ltm_agent.facts.patterns import PatternFactExtractor

    store = InMemoryStore(HashingEmbedder(64))
    node = MemoryWriteNode(store, facts=PatternFactExtractor(), facts_mode="background")
    config = {"configurable": {"user_id": "ana", "thread_id": "t1"}}
    out = node.invoke({"messages": [HumanMessage("I live in Lisbon.", id="m1")]}, config)
    assert "memory_facts" not in out  # the write returned once the turn was stored
    assert EpisodicTimeline(store, ("memories", "ana")).episodes()[0].text == "user: I live in Lisbon."
    updates = node.drain(timeout=30)
    assert updates and any("Lisbon" in f.text for u in updates for f in u.added)
    assert any("Lisbon" in f.text for f in FactMemory(store, ("memories", "ana")).current())
    with pytest.raises(InvalidInputError, match="facts_mode"):
        MemoryWriteNode(store, facts=PatternFactExtractor(), facts_mode="later")  # type: ignore[arg-type]
