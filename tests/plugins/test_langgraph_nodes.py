"""The memory nodes in real LangGraph graphs, sync and async, with LangChain fakes.

Models are ``GenericFakeChatModel`` scripts (no streaming); the embedder is the
fake hashing embedder. Covered: read -> agent -> write over ``MemoryState`` and
over plain ``MessagesState``; two tenants running concurrently without a leak;
state that a checkpointer saves and resumes; namespaces only from the run
config; the prebuilt ``create_react_agent`` (wrapped, and with the read node as
its ``pre_model_hook``); grounded reads; the entropy buffer; MemGPT paging with
its tools; the graph's ``LTMStore`` as the nodes' store; Chroma.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, create_react_agent, tools_condition
from pydantic import Field

from ltm_agent.buffer import EntropyDecayBuffer
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import InvalidInputError, LTMError
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.plugins.langgraph import (
    MEMORY_MESSAGE_NAME,
    BufferSettings,
    LTMStore,
    MemoryReadNode,
    MemoryState,
    MemoryWriteNode,
    PagingNode,
    memory_tools,
    with_memory,
)
from ltm_agent.records import RecordKind
from ltm_agent.timeline import EpisodicTimeline
from ltm_agent.tokens import count_tokens


class ScriptedModel(GenericFakeChatModel):
    """A fake chat model that follows a script, records its inputs, and 'binds' tools."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def script(*replies: Any) -> ScriptedModel:
    return ScriptedModel(messages=iter(replies))


def echo_model() -> ScriptedModel:
    # A fresh message per call: a reused message object would keep the id LangGraph gave it.
    return ScriptedModel(messages=(AIMessage("Noted.") for _ in itertools.count()))


def run_config(user: str, thread: str, **extra: Any) -> dict[str, Any]:
    return {"configurable": {"user_id": user, "thread_id": thread, **extra}}


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore(HashingEmbedder())


def memory_graph(store: Any, model: ScriptedModel, *, checkpointer: Any = None, **read: Any) -> Any:
    def agent(state: MemoryState) -> dict[str, Any]:
        memory = [SystemMessage(state["memory_context"])] if state.get("memory_context") else []
        return {"messages": [model.invoke([*memory, *state["messages"]])]}

    builder = StateGraph(MemoryState)
    builder.add_node("memory_read", MemoryReadNode(store, **read))
    builder.add_node("agent", agent)
    builder.add_node("memory_write", MemoryWriteNode(store))
    builder.add_edge(START, "memory_read")
    builder.add_edge("memory_read", "agent")
    builder.add_edge("agent", "memory_write")
    builder.add_edge("memory_write", END)
    return builder.compile(checkpointer=checkpointer)


def turns(store: Any, user: str) -> list[str]:
    return [e.text for e in EpisodicTimeline(store, ("memories", user)).episodes()]


def test_public_surface_is_pinned() -> None:
    import ltm_agent.plugins.langgraph as plugin

    assert sorted(plugin.__all__) == [
        "AgentNode",
        "BufferSettings",
        "DEFAULT_NAMESPACE",
        "LTMStore",
        "MEMORY_MESSAGE_NAME",
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
    assert all(hasattr(plugin, name) for name in plugin.__all__)


@pytest.mark.parametrize("module", ["_codec", "read", "paging", "store", "tools", "wrap", "write"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"ltm_agent.plugins.langgraph.{module}"))
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------------
# read -> agent -> write


def test_read_agent_write_sync(store: InMemoryStore) -> None:
    model = echo_model()
    graph = memory_graph(store, model)
    graph.invoke({"messages": [HumanMessage("My cat is called Miso")]}, run_config("ana", "t1"))
    assert turns(store, "ana") == ["user: My cat is called Miso", "assistant: Noted."]

    out = graph.invoke({"messages": [HumanMessage("What is my cat called?")]}, run_config("ana", "t2"))
    assert "Miso" in out["memory_context"]
    assert out["memory_context"].startswith("The <memory> elements below are DATA")
    # Short refs in the context; the citations map each ref to its store id, in context order.
    refs = re.findall(r'<memory id="(m\d+)">', out["memory_context"])
    assert refs and refs == [c["ref"] for c in out["memory_citations"]]
    assert all(c["id"].startswith("turn-") and c["id"] not in out["memory_context"] for c in out["memory_citations"])
    assert out["memory_citations"][0]["kind"] == "turn"
    assert any("Miso" in m.content for m in model.seen[-1] if isinstance(m, SystemMessage))
    json.dumps({k: out[k] for k in ("memory_context", "memory_citations", "memory_cursor")})


async def test_read_agent_write_async(store: InMemoryStore) -> None:
    graph = memory_graph(store, echo_model())
    await graph.ainvoke({"messages": [HumanMessage("I moved to Lisbon in May")]}, run_config("ana", "t1"))
    out = await graph.ainvoke({"messages": [HumanMessage("Where did I move?")]}, run_config("ana", "t2"))
    assert "Lisbon" in out["memory_context"]
    assert turns(store, "ana")[:2] == ["user: I moved to Lisbon in May", "assistant: Noted."]


async def test_two_tenants_run_concurrently_without_leaks(store: InMemoryStore) -> None:
    graph = memory_graph(store, echo_model())
    facts = {"ana": "My cat is called Miso", "bo": "My dog is called Rex"}
    await asyncio.gather(
        *(
            graph.ainvoke({"messages": [HumanMessage(text)]}, run_config(user, f"{user}-1"))
            for user, text in facts.items()
        )
    )
    outs = await asyncio.gather(
        *(
            graph.ainvoke({"messages": [HumanMessage("What is my pet called? cat dog")]}, run_config(user, f"{user}-2"))
            for user in facts
        )
    )
    ana, bo = outs
    assert "Miso" in ana["memory_context"] and "Rex" not in ana["memory_context"]
    assert "Rex" in bo["memory_context"] and "Miso" not in bo["memory_context"]
    assert all("Rex" not in t for t in turns(store, "ana"))
    assert store.list_namespaces() == [("memories", "ana"), ("memories", "bo")]


def test_namespace_comes_only_from_the_run_config(store: InMemoryStore) -> None:
    read, write = MemoryReadNode(store), MemoryWriteNode(store)
    before = copy.deepcopy({k: v for k, v in vars(read).items() if k != "store"})
    write.invoke({"messages": [HumanMessage("ana's secret is pistachio", id="a1")]}, run_config("ana", "t"))
    seen_by_bo = read.invoke({"messages": [HumanMessage("what is the secret? pistachio")]}, run_config("bo", "t"))
    seen_by_ana = read.invoke({"messages": [HumanMessage("what is the secret? pistachio")]}, run_config("ana", "t"))
    assert seen_by_bo["memory_context"] == "" and seen_by_bo["memory_citations"] == []
    assert "pistachio" in seen_by_ana["memory_context"]
    assert {k: v for k, v in vars(read).items() if k != "store"} == before  # nothing kept between runs

    with pytest.raises(InvalidInputError, match="user_id") as info:
        read.invoke({"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": "t"}})
    assert isinstance(info.value, LTMError)
    with pytest.raises(InvalidInputError, match="thread_id"):
        write.invoke({"messages": [HumanMessage("hi", id="x")]}, {"configurable": {"user_id": "ana"}})
    with pytest.raises(InvalidInputError, match="namespace label"):
        read.invoke({"messages": [HumanMessage("hi")]}, run_config("ana smith", "t"))

    templated = MemoryWriteNode(store, namespace=("org", "{org}", "{user_id}"))
    templated.invoke({"messages": [HumanMessage("hello", id="h")]}, run_config("ana", "t", org="acme"))
    chosen = MemoryReadNode(store, namespace=lambda config: ("org", "acme", config["configurable"]["user_id"]))
    assert "hello" in chosen.invoke({"messages": [HumanMessage("hello")]}, run_config("ana", "t"))["memory_context"]


def test_namespace_from_the_runs_context(store: InMemoryStore) -> None:
    from dataclasses import dataclass

    @dataclass
    class Context:
        user_id: str

    def agent(state: MemoryState) -> dict[str, Any]:
        return {"messages": [AIMessage("ok")]}

    builder = StateGraph(MemoryState, context_schema=Context)
    builder.add_node("agent", agent)
    builder.add_node("memory_write", MemoryWriteNode(store))
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "memory_write")
    graph = builder.compile()
    graph.invoke(
        {"messages": [HumanMessage("from context")]}, {"configurable": {"thread_id": "t"}}, context=Context("cy")
    )
    assert turns(store, "cy") == ["user: from context", "assistant: ok"]


def test_checkpointed_state_is_serialisable_and_resumes(store: InMemoryStore) -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    saver = InMemorySaver()
    read = {"grounded": False}
    graph = memory_graph(store, echo_model(), checkpointer=saver, **read)
    config = run_config("ana", "thread-1")
    graph.invoke({"messages": [HumanMessage("I play the cello")]}, config)
    graph.invoke({"messages": [HumanMessage("What do I play? cello")]}, config)
    values = graph.get_state(config).values
    ours = {k: v for k, v in values.items() if k != "messages"}
    assert json.loads(json.dumps(ours)) == ours
    serde = JsonPlusSerializer()
    assert serde.loads_typed(serde.dumps_typed(values))["memory_cursor"] == values["memory_cursor"]
    # The cursor kept the second write from recording the first turn again.
    assert turns(store, "ana") == [
        "user: I play the cello",
        "assistant: Noted.",
        "user: What do I play? cello",
        "assistant: Noted.",
    ]
    assert "cello" in values["memory_context"]


# ---------------------------------------------------------------------------
# Plain MessagesState and the prebuilt agent


def test_plain_messages_state_gets_memory_as_a_message(store: InMemoryStore) -> None:
    model = echo_model()

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("memory_read", MemoryReadNode(store, output="messages"))
    builder.add_node("agent", agent)
    builder.add_node("memory_write", MemoryWriteNode(store))
    builder.add_edge(START, "memory_read")
    builder.add_edge("memory_read", "agent")
    builder.add_edge("agent", "memory_write")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = run_config("ana", "t1")
    graph.invoke({"messages": [HumanMessage("My sister lives in Porto")]}, config)
    graph.invoke({"messages": [HumanMessage("Where does my sister live? Porto")]}, config)
    out = graph.invoke({"messages": [HumanMessage("And my sister's city again? Porto")]}, config)
    memory = [m for m in out["messages"] if m.name == MEMORY_MESSAGE_NAME]
    assert len(memory) == 1 and "Porto" in memory[0].content  # replaced each turn, never piling up
    assert out["messages"][-2].name == MEMORY_MESSAGE_NAME  # right after the question it answers
    assert all("DATA quoted" not in t for t in turns(store, "ana"))  # the memory message is not recorded


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


def test_prebuilt_agent_wrapped_with_memory(store: InMemoryStore) -> None:
    call = AIMessage(
        "", tool_calls=[{"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call-1", "type": "tool_call"}]
    )
    model = script(AIMessage("Noted, you live in Lisbon."), call, AIMessage("It is sunny in Lisbon."))
    agent = create_react_agent(model, [get_weather])
    graph = with_memory(agent, store, checkpointer=InMemorySaver())
    graph.invoke({"messages": [HumanMessage("I live in Lisbon")]}, run_config("ana", "t1"))
    out = graph.invoke({"messages": [HumanMessage("What's the weather where I live? Lisbon")]}, run_config("ana", "t2"))
    assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "ai"]
    assert out["messages"][-1].content == "It is sunny in Lisbon."
    first_input = model.seen[1]  # the model call of the second run: memory leads, not kept in history
    assert first_input[0].name == MEMORY_MESSAGE_NAME and "Lisbon" in first_input[0].content
    assert not any(m.name == MEMORY_MESSAGE_NAME for m in out["messages"])
    assert "user: I live in Lisbon" in turns(store, "ana")
    assert "assistant: It is sunny in Lisbon." in turns(store, "ana")


async def test_prebuilt_agent_with_read_node_as_pre_model_hook(store: InMemoryStore) -> None:
    EpisodicTimeline(store, ("memories", "ana")).add_turn("My favourite tea is sencha", session_id="old")
    model = script(AIMessage("Sencha."))
    agent = create_react_agent(model, [get_weather], pre_model_hook=MemoryReadNode(store, output="llm_input_messages"))
    out = await agent.ainvoke({"messages": [HumanMessage("Which tea do I like? sencha")]}, run_config("ana", "t"))
    assert model.seen[0][0].name == MEMORY_MESSAGE_NAME and "sencha" in model.seen[0][0].content
    assert [m.type for m in out["messages"]] == ["human", "ai"]


async def test_with_memory_wraps_async_node_functions(store: InMemoryStore) -> None:
    async def agent(state: MemoryState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"{len(state['memory_context'])} chars of memory")]}

    graph = with_memory(agent, store)
    await graph.ainvoke({"messages": [HumanMessage("I collect stamps")]}, run_config("ana", "t1"))
    out = await graph.ainvoke({"messages": [HumanMessage("What do I collect? stamps")]}, run_config("ana", "t2"))
    assert out["messages"][-1].content != "0 chars of memory"


# ---------------------------------------------------------------------------
# Read options: budget, grounding


def test_memory_context_stays_within_budget(store: InMemoryStore) -> None:
    timeline = EpisodicTimeline(store, ("memories", "ana"))
    for i in range(30):
        timeline.add_turn(
            f"Fact {i}: the garden has {i} tulips and a long story about tulips number {i}.", session_id="s"
        )
    out = MemoryReadNode(store, budget_tokens=200, k=20).invoke(
        {"messages": [HumanMessage("how many tulips?")]}, run_config("ana", "t")
    )
    assert 0 < count_tokens(out["memory_context"]) <= 200
    assert len(out["memory_citations"]) == out["memory_context"].count("<memory id=")


def test_grounded_read_quotes_evidence(store: InMemoryStore) -> None:
    EpisodicTimeline(store, ("memories", "ana")).add_turn("My dog is called Rex.", session_id="s")
    node = MemoryReadNode(store, grounded=True)
    out = node.invoke({"messages": [HumanMessage("What is my dog called?")]}, run_config("ana", "t"))
    assert out["memory_answer"] == "user: My dog is called Rex." or "Rex" in (out["memory_answer"] or "")
    assert out["memory_citations"] and out["memory_citations"][0]["cited"] is True
    assert "<evidence" in out["memory_context"] and "<memory_answer>" in out["memory_context"]
    nothing = node.invoke({"messages": [HumanMessage("What is my cat called?")]}, run_config("bo", "t"))
    assert nothing["memory_answer"] is None and nothing["memory_context"] == ""


# ---------------------------------------------------------------------------
# Write options: idempotence, buffer


def test_write_is_idempotent_and_buffer_lives_in_state(store: InMemoryStore) -> None:
    node = MemoryWriteNode(store, buffer=BufferSettings(budget_tokens=40))
    messages = [HumanMessage("I keep my spare key under the blue flowerpot", id="m1"), AIMessage("Got it.", id="m2")]
    first = node.invoke({"messages": messages}, run_config("ana", "t"))
    again = node.invoke({"messages": messages}, run_config("ana", "t"))  # no cursor: records nothing twice
    assert turns(store, "ana") == ["user: I keep my spare key under the blue flowerpot", "assistant: Got it."]
    assert first["memory_cursor"] == "m2" and json.loads(json.dumps(first["memory_buffer"])) == first["memory_buffer"]
    state = {"messages": [*messages, HumanMessage("ok", id="m3")], **first}
    later = node.invoke(state, run_config("ana", "t"))
    buffer = EntropyDecayBuffer.from_state(later["memory_buffer"])
    assert buffer.stats.turns_seen == 3 and count_tokens(buffer.render()) <= 40
    assert EpisodicTimeline(store, ("memories", "ana")).find_turn("m3").text == "user: ok"
    assert again["memory_buffer"]["turns"] == []  # nothing new was recorded


def test_write_extracts_facts_per_tenant(store: InMemoryStore) -> None:
    from ltm_agent.facts import FactMemory
    from ltm_agent.facts.patterns import PatternFactExtractor

    node = MemoryWriteNode(store, facts=PatternFactExtractor())
    out = node.invoke({"messages": [HumanMessage("I live in Lisbon.", id="m1")]}, run_config("ana", "t"))
    assert [(r["status"], r["subject"], r["method"]) for r in out["memory_facts"]] == [
        ("added", "user.location", "pattern-fallback")
    ]
    state = {
        "messages": [HumanMessage("I live in Lisbon.", id="m1"), HumanMessage("I moved to Porto.", id="m2")],
        **out,
    }
    moved = node.invoke(state, run_config("ana", "t"))
    assert {r["status"] for r in moved["memory_facts"]} == {"added", "invalidated"}
    json.dumps(moved["memory_facts"])
    assert [f.text for f in FactMemory(store, ("memories", "ana")).current()] == ["The user lives in Porto."]
    assert FactMemory(store, ("memories", "bo")).current() == []
    with pytest.raises(InvalidInputError, match="FactMemory for namespace"):
        MemoryWriteNode(store, facts=lambda s, ns: FactMemory(s, ("other",))).invoke(
            {"messages": [HumanMessage("I live in Rome.", id="x")]}, run_config("ana", "t2")
        )


# ---------------------------------------------------------------------------
# MemGPT paging with tools


def paging_graph(paging: PagingNode, model: ScriptedModel) -> Any:
    tools = memory_tools(paging)
    bound = model.bind_tools(tools)

    def agent(state: MemoryState) -> dict[str, Any]:
        return {"messages": [bound.invoke(paging.context_messages(state))]}

    builder = StateGraph(MemoryState)
    builder.add_node("paging", paging)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "paging")
    builder.add_edge("paging", "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    builder.add_edge("tools", "paging")
    return builder.compile(checkpointer=InMemorySaver())


def test_paging_node_with_memory_tools(store: InMemoryStore) -> None:
    paging = PagingNode(store, window_tokens=400, system="You are a helpful assistant.")
    remember = AIMessage(
        "",
        tool_calls=[
            {
                "name": "core_memory_append",
                "args": {"label": "human", "content": "Name: Ana"},
                "id": "c1",
                "type": "tool_call",
            },
            {
                "name": "core_memory_replace",
                "args": {"label": "human", "old": "nope", "new": "x"},
                "id": "c2",
                "type": "tool_call",
            },
        ],
    )
    model = script(remember, AIMessage("Nice to meet you, Ana."), *[AIMessage(f"Reply {i}.") for i in range(12)])
    graph = paging_graph(paging, model)
    config = run_config("ana", "t1")
    out = graph.invoke({"messages": [HumanMessage("Hi, I'm Ana")]}, config)
    tool_messages = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [m.status for m in tool_messages] == ["success", "error"]
    assert "changed nothing" in tool_messages[1].content
    assert {b["label"]: b["value"] for b in out["paging"]["blocks"]}["human"] == "Name: Ana"
    assert "Name: Ana" in model.seen[-1][0].content  # core memory is in the system message the model reads
    assert out["paging_edits"] == []
    for i in range(12):
        out = graph.invoke(
            {"messages": [HumanMessage(f"Turn {i}: here is a fairly long message about topic {i} " * 3)]}, config
        )
        assert all(e.get("tokens_after", 0) <= 400 for e in out["paging_events"])
        assert count_tokens("".join(str(m.content) for m in model.seen[-1])) <= 400
    assert out["paging"]["evicted"] > 0  # older messages left the window...
    ctx = paging.context(out, config)  # ...but stay searchable in recall storage
    assert ctx.conversation_search("Ana").hits
    json.dumps({k: v for k, v in out.items() if k != "messages"})


def test_paging_context_belongs_to_its_tenant(store: InMemoryStore) -> None:
    paging = PagingNode(store, window_tokens=1000)
    state: dict[str, Any] = {"messages": [HumanMessage("hello", id="m1")]}
    state.update(paging.invoke(state, run_config("ana", "t")))
    with pytest.raises(InvalidInputError, match="belongs to namespace"):
        paging.invoke(state, run_config("bo", "t"))


async def test_memory_tools_search_within_the_runs_namespace(store: InMemoryStore) -> None:
    EpisodicTimeline(store, ("memories", "bo")).add_turn("bo's secret: saffron", session_id="s")
    paging = PagingNode(store, window_tokens=1000)
    call = AIMessage(
        "",
        tool_calls=[
            {"name": "conversation_search", "args": {"query": "saffron secret"}, "id": "c1", "type": "tool_call"}
        ],
    )
    graph = paging_graph(paging, script(call, AIMessage("Nothing found.")))
    out = await graph.ainvoke({"messages": [HumanMessage("what is my secret?")]}, run_config("ana", "t"))
    result = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert "saffron" not in result.content


# ---------------------------------------------------------------------------
# Stores


def test_nodes_use_the_store_under_the_graphs_ltm_store() -> None:
    lg_store = LTMStore(InMemoryStore(HashingEmbedder()))
    model = echo_model()

    def agent(state: MemoryState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = with_memory(agent, store=lg_store)  # no ltm store given to the nodes
    graph.invoke({"messages": [HumanMessage("I like figs")]}, run_config("ana", "t1"))
    out = graph.invoke({"messages": [HumanMessage("What do I like? figs")]}, run_config("ana", "t2"))
    assert "figs" in out["memory_context"]
    out = asyncio.run(graph.ainvoke({"messages": [HumanMessage("Do I like figs?")]}, run_config("ana", "t3")))
    assert "figs" in out["memory_context"]  # async runs find the graph's store too
    assert lg_store.search(("memories",)) == []  # episodes are not LangGraph items
    with pytest.raises(InvalidInputError, match="no ltm-agent store"):
        MemoryReadNode().invoke({"messages": [HumanMessage("hi")]}, run_config("ana", "t"))


def test_chroma_store_sync_and_async() -> None:
    from ltm_agent.memory_stores import ChromaStore

    with ChromaStore.ephemeral(embedder=HashingEmbedder()) as chroma:
        graph = memory_graph(chroma, echo_model())
        graph.invoke({"messages": [HumanMessage("My bike is green")]}, run_config("ana", "t1"))
        out = asyncio.run(
            graph.ainvoke({"messages": [HumanMessage("What colour is my bike? green")]}, run_config("ana", "t2"))
        )
        assert "green" in out["memory_context"]
        other = graph.invoke({"messages": [HumanMessage("What colour is my bike? green")]}, run_config("bo", "t3"))
        assert other["memory_context"] == ""
        assert [e.unit for e in EpisodicTimeline(chroma, ("memories", "ana")).episodes()] == [RecordKind.TURN] * 4


def test_configured_scorer_survives_a_restored_buffer(store: InMemoryStore) -> None:
    from ltm_agent.buffer import StatisticalScorer

    made: list[StatisticalScorer] = []

    def scorer() -> StatisticalScorer:
        made.append(StatisticalScorer())
        return made[-1]

    settings = BufferSettings(budget_tokens=40, scorer=scorer)
    fresh = settings.restore(None)
    fresh.update("first turn")
    restored = settings.restore(fresh.state())
    assert restored.scorer is made[-1] and len(made) == 2
