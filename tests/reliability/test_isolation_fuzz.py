"""Isolation fuzz: four tenants interleave writes and reads through every API on one Chroma store.

Each tenant owns a secret token. Random operations go through the core API
(``EpisodicTimeline.add_turn``, ``store.put/search/list``), LangGraph's
``LTMStore``, our LangGraph nodes in a compiled graph, and our LlamaIndex
block inside ``Memory``; every read a tenant makes is scanned for the other
tenants' secrets. Tenant labels are chosen to collide once encoded
(``"a b"`` / ``"a.20b"``, case, dots). A leak is a failure.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import InvalidNamespaceError as LangGraphNamespaceError
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory
from reliability_helpers import record, trials

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import LTMError
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.plugins.langgraph import LTMStore, MemoryReadNode, MemoryState, MemoryWriteNode
from ltm_agent.plugins.llamaindex import EpisodicTimelineBlock
from ltm_agent.records import StoredItem
from ltm_agent.timeline import EpisodicTimeline

TENANTS = ["a b", "a.20b", "Alice", "alice"]


def _graph(store: Any) -> Any:
    model = GenericFakeChatModel(messages=(AIMessage("Noted.") for _ in itertools.count()))

    def agent(state: MemoryState) -> dict[str, Any]:
        memory = [SystemMessage(state["memory_context"])] if state.get("memory_context") else []
        return {"messages": [model.invoke([*memory, *state["messages"]])]}

    builder = StateGraph(MemoryState)
    builder.add_node("memory_read", MemoryReadNode(store))
    builder.add_node("agent", agent)
    builder.add_node("memory_write", MemoryWriteNode(store))
    builder.add_edge(START, "memory_read")
    builder.add_edge("memory_read", "agent")
    builder.add_edge("agent", "memory_write")
    builder.add_edge("memory_write", END)
    return builder.compile()


def _fuzz(seed: int, steps: int) -> tuple[int, list[str]]:
    rng = random.Random(seed)
    secrets = {t: f"secret{n}z{rng.randrange(10**6)}" for n, t in enumerate(TENANTS)}
    leaks: list[str] = []
    store = ChromaStore.ephemeral(embedder=HashingEmbedder(64))
    graph_store = LTMStore(store)
    graph = _graph(store)
    block = EpisodicTimelineBlock(store=store, namespace=("li",), tenant_for=lambda sid: (sid.split(":")[0],))
    memories = {t: Memory.from_defaults(session_id=f"{t}:chat", memory_blocks=[block], token_limit=30,
                                        chat_history_token_ratio=0.5, token_flush_size=5) for t in TENANTS}

    spoken: dict[str, set[str]] = {t: set() for t in TENANTS}  # other tenants' tokens a tenant typed itself

    def check(tenant: str, text: str, where: str) -> None:
        for other, secret in secrets.items():
            if other != tenant and secret in text and secret not in spoken[tenant]:
                leaks.append(f"{where}: {tenant!r} saw {other!r}'s secret")

    def run_op(op: int, step: int, tenant: str, secret: str, probe: str) -> None:
        if op == 0:
            EpisodicTimeline(store, ("core", tenant)).add_turn(f"my code is {secret}", session_id="s1")
        elif op == 1:
            store.put([StoredItem(("core", tenant), f"n{step}", f"note {secret}")])
        elif op == 2:
            for mode in ("dense", "keyword"):
                for hit in store.search(("core", tenant), probe, mode=mode, limit=20):  # type: ignore[arg-type]
                    check(tenant, hit.item.text, f"core {mode} search")
        elif op == 3:
            graph_store.put(("memories", tenant), f"k{step}", {"text": f"remember {secret}"})
        elif op == 4:
            for stored in store.list(("memories", tenant)):  # the core API reading the LangGraph label
                check(tenant, stored.text, "core list of an LTMStore namespace")
            for item in graph_store.search(("memories", tenant), query=probe, limit=20):
                check(tenant, str(item.value), "LTMStore.search")
        elif op == 5:
            spoken[tenant].add(probe)  # the write node records this message, probe and all
            out = graph.invoke({"messages": [HumanMessage(f"my code is {secret}, what is {probe}?")]},
                               {"configurable": {"user_id": tenant, "thread_id": f"t{step}"}})
            check(tenant, str(out.get("memory_context", "")), "MemoryReadNode context")
        elif op == 6:
            messages = [ChatMessage(role="user", content=f"my code is {secret}"),
                        ChatMessage(role="assistant", content="Noted, thank you."),
                        ChatMessage(role="user", content="Tell me something nice."),
                        ChatMessage(role="assistant", content="The sun is out today.")]
            asyncio.run(memories[tenant].aput_messages(messages))
        else:
            got = asyncio.run(memories[tenant].aget(input=f"what is {probe}?"))
            check(tenant, "\n".join(m.content or "" for m in got), "LlamaIndex block")

    ops = 0
    try:
        for step in range(steps):
            tenant = rng.choice(TENANTS)
            probe = secrets[rng.choice([t for t in TENANTS if t != tenant])]  # ask for someone else's secret
            ops += 1
            try:
                run_op(rng.randrange(8), step, tenant, secrets[tenant], probe)
            except (LTMError, LangGraphNamespaceError):
                pass  # a label an API refuses ("a b" in the core API, "a.20b" in LangGraph's) is refused, not aliased
    finally:
        store.close()
    return ops, leaks


def test_no_tenant_ever_reads_another_tenants_memory() -> None:
    n = trials(1, 10)
    steps = 500 if os.environ.get("LTM_HEAVY") == "1" else 80
    total = 0
    leaks: list[str] = []
    try:
        for trial in range(n):
            ops, found = _fuzz(trial, steps)
            total += ops
            leaks += found
        assert not leaks, leaks[:5]
    finally:
        record("isolation fuzz: core API, LTMStore, LangGraph nodes, LlamaIndex block on one Chroma store",
               trials=n, ops=total, failures=len(leaks))
