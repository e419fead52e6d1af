"""Drop-in memory nodes for a LangGraph agent, on Chroma, offline.

What it shows:

1. ``with_memory(create_react_agent(...))``: the prebuilt ReAct agent runs
   between a memory read and a memory write. On "day 1" Ana tells the agent
   things; on "day 8" she asks about them in a new thread. The script prints
   the memory context the model was shown (dated, quoted as data) and the
   citations the read node put in graph state.
2. A second user on the same graph, at the same time (``asyncio.gather``),
   sees none of Ana's memories.
3. The write node with the entropy-decay buffer and the pattern fact
   extractor: Ana moves, the old fact is invalidated, not deleted.
4. A grounded read (ALR² with the extractive fallback, no model).
5. The MemGPT paging node with its tools: the context stays within the window
   while the conversation grows; evicted messages stay searchable.

The chat model is LangChain's ``GenericFakeChatModel`` with a fixed script, so
nothing calls a real LLM; embeddings come from the offline MiniLM model.

Run:
    python examples/langgraph_memory_nodes.py [--path DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import warnings
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode, create_react_agent, tools_condition
from pydantic import Field

from ltm_agent.facts.patterns import PatternFactExtractor
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.plugins.langgraph import (
    BufferSettings,
    MemoryReadNode,
    MemoryState,
    MemoryWriteNode,
    PagingNode,
    memory_tools,
    with_memory,
)

# create_react_agent is deprecated in LangGraph 1.x in favour of langchain.agents.create_agent
# (not installed here); with_memory wraps either, as both return a compiled graph.
warnings.filterwarnings("ignore", message="create_react_agent has been moved")


class ScriptedModel(GenericFakeChatModel):
    """A scripted fake chat model that remembers what it was shown."""

    shown: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self  # the script already holds the tool calls

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        self.shown.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


@tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny, 24°C in {city}."


def run(user: str, thread: str, day: str) -> dict[str, Any]:
    return {"configurable": {"user_id": user, "thread_id": thread, "reference_time": f"2024-05-{day}T10:00:00Z"}}


def section(title: str) -> None:
    print(f"\n== {title}")


def main(path: Path) -> None:
    store = ChromaStore.persistent(path)  # offline MiniLM embeddings

    section("1. create_react_agent wrapped with memory")
    weather_call = {"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call-1", "type": "tool_call"}
    model = ScriptedModel(
        messages=iter(
            [
                AIMessage("Congratulations on the move!"),
                AIMessage("Miso is a lovely name."),
                AIMessage("", tool_calls=[weather_call]),
                AIMessage("It's sunny in Lisbon today, a good day to explore your new city."),
            ]
        )
    )
    graph = with_memory(create_react_agent(model, [get_weather]), store, checkpointer=InMemorySaver())
    graph.invoke({"messages": [HumanMessage("I just moved to Lisbon!")]}, run("ana", "day1", "01"))
    graph.invoke({"messages": [HumanMessage("My cat is called Miso.")]}, run("ana", "day1", "01"))
    out = graph.invoke(
        {"messages": [HumanMessage("What's the weather like where I moved last week?")]}, run("ana", "day8", "08")
    )
    print("memory context the model saw (first message of its last call):")
    print("  " + model.shown[-1][0].content.replace("\n", "\n  "))
    print("citations in state:", [(c["id"][:18], c["time"][:10]) for c in out["memory_citations"]])
    print("conversation:", [f"{m.type}: {m.content or m.tool_calls[0]['name']}" for m in out["messages"]])

    section("2. Another user, concurrently: nothing leaks")
    echo = ScriptedModel(messages=(AIMessage("Okay.") for _ in itertools.count()))
    shared = with_memory(lambda state: {"messages": [echo.invoke(state["messages"])]}, store)

    async def both() -> list[dict[str, Any]]:
        return await asyncio.gather(
            shared.ainvoke({"messages": [HumanMessage("Remind me where I live.")]}, run("ana", "a", "09")),
            shared.ainvoke({"messages": [HumanMessage("Remind me where I live.")]}, run("bo", "b", "09")),
        )

    ana, bo = asyncio.run(both())
    print("ana's context mentions Lisbon:", "Lisbon" in ana["memory_context"])
    print("bo's context:", repr(bo["memory_context"]), "(empty: bo has no memories yet)")

    section("3. Buffer and facts in the write node")
    write = MemoryWriteNode(store, buffer=BufferSettings(budget_tokens=40), facts=PatternFactExtractor())
    state: dict[str, Any] = {"messages": []}
    for i, text in enumerate(
        ["I live in Lisbon.", "ok", "I keep my spare key under the blue flowerpot.", "I moved to Porto."]
    ):
        state["messages"].append(HumanMessage(text, id=f"c{i}"))
        state |= write.invoke(state, run("cy", "t", f"1{i}"))
        for fact in state.get("memory_facts", []):
            print(f"  turn {i}: {fact['status']:<11} {fact['text']}  ({fact['method']})")
        state["memory_facts"] = []
    from ltm_agent.buffer import EntropyDecayBuffer

    print("buffer rendering:", EntropyDecayBuffer.from_state(state["memory_buffer"]).render().replace("\n", " | "))

    section("4. Grounded read (ALR², extractive fallback)")
    grounded = MemoryReadNode(store, grounded=True)
    out = grounded.invoke({"messages": [HumanMessage("What is my cat called?")]}, run("ana", "g", "10"))
    print("answer:", out["memory_answer"])
    print("cited:", [(c["quote"], c["cited"]) for c in out["memory_citations"]])

    section("5. MemGPT paging node with its tools")
    paging = PagingNode(store, window_tokens=450, system="You are a travel assistant.")  # window: 450 tokens
    tools = memory_tools(paging)
    remember = {
        "name": "core_memory_append",
        "args": {"label": "human", "content": "Name: Dee"},
        "id": "c1",
        "type": "tool_call",
    }
    pager = ScriptedModel(
        messages=itertools.chain(
            [AIMessage("", tool_calls=[remember])], (AIMessage(f"Idea {i} noted.") for i in itertools.count())
        )
    )

    def agent(state: MemoryState) -> dict[str, Any]:
        return {"messages": [pager.invoke(paging.context_messages(state))]}

    builder = StateGraph(MemoryState)
    builder.add_node("paging", paging)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "paging")
    builder.add_edge("paging", "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    builder.add_edge("tools", "paging")
    paged = builder.compile(checkpointer=InMemorySaver())
    config = run("dee", "p1", "12")
    for i in range(12):
        out = paged.invoke({"messages": [HumanMessage(f"Trip idea {i}: a weekend in Sintra by train. " * 4)]}, config)
        for event in out["paging_events"]:
            if event.get("warning") or event.get("flushed"):
                before, after = event["tokens_before"], event["tokens_after"]
                print(f"  turn {i}: warning={event['warning']} flushed={event['flushed']} tokens {before} -> {after}")
    print("core memory:", {b["label"]: b["value"] for b in out["paging"]["blocks"]})
    print("messages in history:", len(out["messages"]), " evicted from context:", out["paging"]["evicted"])
    print(paging.context(out, config).conversation_search("Trip idea 0").render().splitlines()[1][:100])
    store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, help="store directory (default: a new temporary directory)")
    args = parser.parse_args()
    if args.path is not None:
        main(args.path)
    else:
        with tempfile.TemporaryDirectory(prefix="ltm-langgraph-") as tmp:
            main(Path(tmp) / "store")
