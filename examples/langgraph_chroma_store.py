"""LangGraph's long-term memory store API on Chroma, offline.

What it shows:

1. ``LTMStore.chroma(path)``: LangGraph's ``BaseStore`` on a persistent Chroma
   directory, embedding with the offline MiniLM model that ships with ltm-agent.
2. ``put`` / ``search`` (semantic, with filters, across a namespace prefix) /
   ``list_namespaces``, and an item stored with ``index=False``.
3. A graph compiled with ``store=...``: one node writes with ``get_store()``,
   another searches with ``runtime.store``; the user comes from the run config.
4. Two users searching concurrently with ``asearch`` see only their own items.
5. Reopening the directory: the items are still there, and an update keeps
   ``created_at``.

Run:
    python examples/langgraph_chroma_store.py [--path DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_store
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from ltm_agent.plugins.langgraph import LTMStore

INDEX = {"fields": ["text"]}  # embed the "text" field; no "embed": the offline MiniLM model


class State(TypedDict, total=False):
    note: str
    question: str
    found: list[str]


def remember(state: State, config: RunnableConfig) -> State:
    user = config["configurable"]["user_id"]
    if state.get("note"):
        key = f"note-{int(time.time() * 1000)}"
        get_store().put(("users", user, "memories"), key, {"text": state["note"], "kind": "note"})
    return {}


def recall(state: State, config: RunnableConfig, runtime: Runtime) -> State:
    user = config["configurable"]["user_id"]
    hits = runtime.store.search(("users", user), query=state["question"], limit=2)
    return {"found": [f"{h.value['text']} (score {h.score:.2f})" for h in hits]}


def section(title: str) -> None:
    print(f"\n== {title}")


def main(path: Path) -> None:
    section(f"1-2. LTMStore on Chroma at {path}")
    store = LTMStore.chroma(path, index=INDEX)
    store.put(("users", "ana", "memories"), "m1", {"text": "I moved to Lisbon in May.", "kind": "fact", "year": 2024})
    store.put(("users", "ana", "memories"), "m2", {"text": "My cat is called Miso.", "kind": "fact", "year": 2022})
    store.put(("users", "ana", "memories"), "m3", {"text": "I started learning the cello.", "kind": "hobby"})
    store.put(("users", "ana", "profile"), "prefs", {"text": "prefers dark mode"}, index=False)
    store.put(("users", "bo", "memories"), "m1", {"text": "My dog Rex loves the beach.", "kind": "fact"})

    for hit in store.search(("users", "ana"), query="Where does she live now?", limit=3):
        print(f"  {hit.score:.3f}  {'/'.join(hit.namespace)}  {hit.key}: {hit.value['text']}")
    recent = store.search(("users", "ana"), filter={"kind": "fact", "year": {"$gte": 2023}})
    print("  facts since 2023 (no query, score None):", [(h.key, h.score) for h in recent])
    by_query = [h.key for h in store.search(("users", "ana"), query="dark mode")]
    print("  query 'dark mode' ->", by_query, "(the index=False item is not among them)")
    print("  index=False item by get:", store.get(("users", "ana", "profile"), "prefs").value)
    print("  namespaces:", store.list_namespaces(prefix=("users",)))
    print("  depth 2:", store.list_namespaces(max_depth=2))

    section("3. In a graph: get_store() and runtime.store, user from config")
    graph = (
        StateGraph(State)
        .add_node(remember)
        .add_node(recall)
        .add_edge(START, "remember")
        .add_edge("remember", "recall")
        .compile(store=store)
    )
    config = {"configurable": {"user_id": "bo"}}
    out = graph.invoke({"note": "I am allergic to peanuts.", "question": "Any food allergies?"}, config)
    print("  bo asks about allergies ->", out["found"])
    out = graph.invoke({"question": "Any food allergies?"}, {"configurable": {"user_id": "ana"}})
    print("  ana asks the same       ->", out["found"], "(bo's note never shows up)")

    section("4. Two users concurrently (asearch)")

    async def both() -> list[list[str]]:
        results = await asyncio.gather(
            store.asearch(("users", "ana"), query="pets", limit=5),
            store.asearch(("users", "bo"), query="pets", limit=5),
        )
        return [[h.key for h in hits] for hits in results]

    ana_keys, bo_keys = asyncio.run(both())
    print("  ana:", ana_keys, " bo:", bo_keys)
    first = store.get(("users", "ana", "memories"), "m2")
    store.close()

    section("5. Reopen: persisted; an update keeps created_at")
    with LTMStore.chroma(path, index=INDEX) as reopened:
        reopened.put(("users", "ana", "memories"), "m2", {"text": "My cats are called Miso and Tofu.", "kind": "fact"})
        again = reopened.get(("users", "ana", "memories"), "m2")
        print("  value:", again.value["text"])
        print(
            "  created_at kept:",
            again.created_at == first.created_at,
            " updated_at moved:",
            again.updated_at > first.updated_at,
        )
        print(
            "  cat question ->",
            [h.value["text"] for h in reopened.search(("users", "ana"), query="cat names", limit=1)],
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, help="store directory (default: a new temporary directory)")
    args = parser.parse_args()
    if args.path is not None:
        main(args.path)
    else:
        with tempfile.TemporaryDirectory(prefix="ltm-langgraph-") as tmp:
            main(Path(tmp) / "store")
