"""LTMStore against LangGraph's store contract.

The behaviours LangGraph's own store tests check (``libs/checkpoint/tests/
test_store.py``, ``test_store_namespace_validation.py``) and the ``BaseStore``
docstrings describe run here against three stores: LangGraph's
``InMemoryStore`` (the reference), ``LTMStore`` on ltm-agent's in-memory store,
and ``LTMStore`` on an ephemeral Chroma store. All embed with the same fake
(hashing) embeddings, so scores must agree to float precision.

Where LTMStore deliberately differs from LangGraph's InMemoryStore, the test
says so (``test_ltm_*``); in each case it does what LangGraph's Postgres store
does: updates keep ``created_at``, and query-less results come most recently
updated first. ``index=False`` items fill a query page after the scored ones,
unscored, as in InMemoryStore (the store users most often migrate from).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore as LangGraphInMemoryStore

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import InvalidFilterError, InvalidInputError, LTMError, UnsupportedOperationError
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.plugins.langgraph import LTMStore

DIMS = 64


class HashingEmbeddings(Embeddings):
    """LangChain face of the fake hashing embedder (deterministic, no model)."""

    def __init__(self, dims: int = DIMS) -> None:
        self.inner = HashingEmbedder(dims)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text).tolist()


KINDS = ["langgraph", "ltm-memory", "ltm-chroma"]
Maker = Callable[..., Any]


def _open(kind: str, fields: list[str] | None, opened: list[LTMStore]) -> Any:
    index: dict[str, Any] = {"dims": DIMS, "embed": HashingEmbeddings()}
    if fields is not None:
        index["fields"] = fields
    if kind == "langgraph":
        return LangGraphInMemoryStore(index=index)  # type: ignore[arg-type]
    if kind == "ltm-memory":
        # The store owns the embedder; LTMStore only takes fields and dims.
        return LTMStore(InMemoryStore(HashingEmbedder(DIMS)), index={k: v for k, v in index.items() if k != "embed"})
    store = LTMStore.chroma(index=index)  # type: ignore[arg-type]
    opened.append(store)
    return store


@pytest.fixture(params=KINDS)
def make_store(request: pytest.FixtureRequest) -> Any:
    opened: list[LTMStore] = []

    def make(fields: list[str] | None = None) -> Any:
        return _open(request.param, fields, opened)

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for store in opened:
        store.close()


@pytest.fixture
def ltm_store() -> LTMStore:
    return LTMStore(InMemoryStore(HashingEmbedder(DIMS)))


def keys(results: list[Any]) -> list[str]:
    return [r.key for r in results]


# ---------------------------------------------------------------------------
# put / get / delete


def test_put_get_delete(make_store: Maker) -> None:
    store = make_store()
    doc = {"foo": "bar", "nested": {"n": 1}, "list": [1, "two"]}
    store.put(("users", "123"), "prefs", doc)
    item = store.get(("users", "123"), "prefs")
    assert item is not None and item.value == doc
    assert (item.namespace, item.key) == (("users", "123"), "prefs")
    assert item.created_at.tzinfo is not None and item.updated_at >= item.created_at
    assert store.get(("users", "123"), "missing") is None
    assert store.get(("users", "456"), "prefs") is None
    store.delete(("users", "123"), "prefs")
    assert store.get(("users", "123"), "prefs") is None
    store.delete(("users", "123"), "never-there")  # deleting a missing key is not an error


async def test_async_put_get_search_delete(make_store: Maker) -> None:
    store = make_store(["text"])
    await store.aput(("docs",), "d1", {"text": "python tutorial"})
    await store.aput(("docs",), "d2", {"text": "typescript guide"})
    assert (await store.aget(("docs",), "d1")).value == {"text": "python tutorial"}
    hits = await store.asearch(("docs",), query="python")
    assert keys(hits)[0] == "d1"
    await store.adelete(("docs",), "d1")
    assert await store.aget(("docs",), "d1") is None
    assert await store.alist_namespaces() == [("docs",)]


def test_update_replaces_value_and_embedding(make_store: Maker) -> None:
    """Port of LangGraph's test_vector_update_with_embedding."""
    store = make_store()
    store.put(("test",), "doc1", {"text": "zany zebra Xerxes"})
    store.put(("test",), "doc2", {"text": "something about dogs"})
    store.put(("test",), "doc3", {"text": "text about birds"})
    initial = store.search(("test",), query="Zany Xerxes")
    assert initial[0].key == "doc1"
    initial_score = initial[0].score

    store.put(("test",), "doc1", {"text": "new text about dogs"})
    assert store.get(("test",), "doc1").value == {"text": "new text about dogs"}
    after = store.search(("test",), query="Zany Xerxes")
    assert next(r.score for r in after if r.key == "doc1") < initial_score
    fresh = store.search(("test",), query="new text about dogs")
    assert fresh[0].key == "doc1"

    store.put(("test",), "doc4", {"text": "new text about dogs"}, index=False)
    assert "doc4" not in keys(store.search(("test",), query="new text about dogs", limit=3))
    assert store.get(("test",), "doc4") is not None  # stored, just not embedded
    assert "doc4" in keys(store.search(("test",), filter={"text": "new text about dogs"}))


# ---------------------------------------------------------------------------
# search


FRUIT = [
    ("doc1", {"text": "red apple", "color": "red", "score": 4.5}),
    ("doc2", {"text": "red car", "color": "red", "score": 3.0}),
    ("doc3", {"text": "green apple", "color": "green", "score": 4.0}),
    ("doc4", {"text": "blue car", "color": "blue", "score": 3.5}),
]


def test_search_with_filters(make_store: Maker) -> None:
    """Port of LangGraph's test_vector_search_with_filters."""
    store = make_store(["text"])
    for key, value in FRUIT:
        store.put(("test",), key, value)
    results = store.search(("test",), query="apple", filter={"color": "red"})
    assert keys(results)[0] == "doc1" and len(results) == 2
    results = store.search(("test",), query="car", filter={"color": "red"})
    assert keys(results)[0] == "doc2" and len(results) == 2
    results = store.search(("test",), query="blue", filter={"score": {"$gt": 3.2}})
    assert keys(results)[0] == "doc4" and len(results) == 3
    results = store.search(("test",), query="apple", filter={"score": {"$gte": 4.0}, "color": "green"})
    assert keys(results) == ["doc3"]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"color": "red"}, {"doc1", "doc2"}),
        ({"color": {"$eq": "red"}}, {"doc1", "doc2"}),
        ({"color": {"$ne": "red"}}, {"doc3", "doc4"}),
        ({"score": {"$gt": 3.5}}, {"doc1", "doc3"}),
        ({"score": {"$gte": 3.5}}, {"doc1", "doc3", "doc4"}),
        ({"score": {"$lt": 3.5}}, {"doc2"}),
        ({"score": {"$lte": 3.5}}, {"doc2", "doc4"}),
        ({"score": {"$gt": 3.0, "$lt": 4.5}}, {"doc3", "doc4"}),
        ({"score": 4.0}, {"doc3"}),
        ({"color": "purple"}, set()),
    ],
)
def test_filter_operators_without_query(make_store: Maker, filter: dict, expected: set[str]) -> None:
    store = make_store()
    for key, value in FRUIT:
        store.put(("test",), key, value)
    results = store.search(("test",), filter=filter)
    assert set(keys(results)) == expected
    assert all(r.score is None for r in results)


def test_structured_filters(make_store: Maker) -> None:
    store = make_store()
    store.put(("docs",), "a", {"meta": {"lang": "en", "level": 2}, "tags": ["x", "y"]})
    store.put(("docs",), "b", {"meta": {"lang": "pt", "level": 2}, "tags": ["x"]})
    assert keys(store.search(("docs",), filter={"meta": {"lang": "en"}})) == ["a"]
    assert keys(store.search(("docs",), filter={"tags": ["x"]})) == ["b"]
    assert set(keys(store.search(("docs",), filter={"meta": {"level": 2}}))) == {"a", "b"}


def test_search_pagination(make_store: Maker) -> None:
    """Port of LangGraph's test_vector_search_pagination, plus query-less paging."""
    store = make_store()
    for i in range(5):
        store.put(("test",), f"doc{i}", {"text": f"test document number {i}"})
    page1 = store.search(("test",), query="test", limit=2)
    page2 = store.search(("test",), query="test", limit=2, offset=2)
    assert len(page1) == len(page2) == 2
    assert not set(keys(page1)) & set(keys(page2))
    assert len(store.search(("test",), query="test", limit=10)) == 5
    plain = [keys(store.search(("test",), limit=2, offset=o)) for o in (0, 2, 4)]
    assert sorted(k for page in plain for k in page) == [f"doc{i}" for i in range(5)]


def test_search_edge_cases(make_store: Maker) -> None:
    """Port of LangGraph's test_vector_search_edge_cases: an empty query is no query."""
    store = make_store()
    store.put(("test",), "doc1", {"text": "test document"})
    assert len(store.search(("test",), query="")) == 1
    assert store.search(("test",), query="")[0].score is None
    assert len(store.search(("test",), query=None)) == 1
    assert len(store.search(("test",), query="test " * 100)) == 1
    assert len(store.search(("test",), query="test!@#$%^&*()")) == 1
    assert store.search(("test",), query="test")[0].score is not None


def test_search_prefix_never_leaks(make_store: Maker) -> None:
    store = make_store(["text"])
    store.put(("user-1", "memories"), "a", {"text": "likes tea"})
    store.put(("user-1", "notes"), "b", {"text": "likes coffee"})
    store.put(("user-10", "memories"), "c", {"text": "likes tea"})
    store.put(("user-2",), "d", {"text": "likes tea"})
    for query in (None, "likes tea"):
        hits = store.search(("user-1",), query=query)
        assert sorted(keys(hits)) == ["a", "b"]
        assert all(h.namespace[0] == "user-1" for h in hits)
        assert keys(store.search(("user-1", "memories"), query=query)) == ["a"]
        assert store.search(("nobody",), query=query) == []
    assert sorted(keys(store.search((), limit=10))) == ["a", "b", "c", "d"]


def test_field_paths_and_per_put_index(make_store: Maker) -> None:
    store = make_store(["title", "sections[*].text"])
    store.put(("docs",), "guide", {"title": "Kayak guide", "sections": [{"text": "wooden"}, {"text": "life vests"}]})
    store.put(("docs",), "recipe", {"title": "Tomato soup", "sections": [{"text": "tomatoes"}, {"text": "basil"}]})
    store.put(("docs",), "custom", {"title": "unused", "body": "life vests and leaves"}, index=["body"])
    assert keys(store.search(("docs",), query="vests", limit=1)) == ["guide"]  # its best field counts
    assert keys(store.search(("docs",), query="basil", limit=1)) == ["recipe"]
    assert keys(store.search(("docs",), query="leaves", limit=1)) == ["custom"]


# ---------------------------------------------------------------------------
# One scenario, every store, equal answers (scores included).


def _scenario(store: Any) -> list[Any]:
    store.put(("u1", "mem"), "a", {"text": "I moved to Lisbon in May", "kind": "fact", "n": 1})
    store.put(("u1", "mem"), "b", {"text": "My cat Miso likes tuna", "kind": "fact", "n": 2})
    store.put(("u1", "chat"), "c", {"text": "we talked about Lisbon trams", "kind": "turn", "n": 3})
    store.put(("u2", "mem"), "d", {"text": "I live in Lisbon", "kind": "fact", "n": 4})
    store.put(("u1", "mem"), "e", {"text": "Lisbon Lisbon", "kind": "fact", "n": 0}, index=False)
    store.put(("u1", "mem"), "b", {"text": "My cat Miso likes salmon", "kind": "fact", "n": 2})

    def ranked(hits: list[Any]) -> list[Any]:
        return [(h.namespace, h.key, h.value, round(h.score, 5)) for h in hits]

    def unranked(hits: list[Any]) -> list[Any]:
        return sorted((h.namespace, h.key, h.value["n"] if "n" in h.value else None) for h in hits)

    return [
        ranked(store.search(("u1",), query="Lisbon", limit=2)),
        ranked(store.search(("u1",), query="Lisbon", limit=2, offset=1)),
        # LangGraph's InMemoryStore pads short query results with unindexed items; these fill the limit.
        ranked(store.search(("u1",), query="cat salmon", filter={"kind": "fact"}, limit=2)),
        ranked(store.search(("u1",), query="talked about trams", filter={"n": {"$gte": 2}}, limit=2)),
        ranked(store.search((), query="Lisbon", filter={"kind": {"$ne": "turn"}}, limit=3)),
        unranked(store.search(("u1",), filter={"kind": "fact"})),
        unranked(store.search((), filter={"n": {"$lt": 3}})),
        store.get(("u1", "mem"), "b").value,
        store.list_namespaces(),
        store.list_namespaces(prefix=("u1",), max_depth=1),
        store.list_namespaces(suffix=("mem",)),
    ]


def test_same_answers_as_langgraph_in_memory_store() -> None:
    opened: list[LTMStore] = []
    try:
        answers = {kind: _scenario(_open(kind, ["text"], opened)) for kind in KINDS}
    finally:
        for store in opened:
            store.close()
    reference = answers.pop("langgraph")
    for kind, got in answers.items():
        assert got == reference, kind


# ---------------------------------------------------------------------------
# list_namespaces (ports of LangGraph's listing tests)


def _fill_namespaces(store: Any, namespaces: list[tuple[str, ...]]) -> None:
    for i, ns in enumerate(namespaces):
        store.put(ns, f"id_{i}", {"data": f"value_{i:02d}"})


def test_list_namespaces_basic(make_store: Maker) -> None:
    store = make_store()
    _fill_namespaces(
        store,
        [
            ("a", "b", "c"),
            ("a", "b", "d", "e"),
            ("a", "b", "d", "i"),
            ("a", "b", "f"),
            ("a", "c", "f"),
            ("b", "a", "f"),
            ("users", "123"),
            ("users", "456", "settings"),
            ("admin", "users", "789"),
        ],
    )
    assert store.list_namespaces(prefix=("a", "b")) == [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert store.list_namespaces(prefix=("a",), suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(prefix=("a", "b"), max_depth=3) == [("a", "b", "c"), ("a", "b", "d"), ("a", "b", "f")]
    assert store.list_namespaces(prefix=("a", "b"), limit=2) == [("a", "b", "c"), ("a", "b", "d", "e")]
    assert store.list_namespaces(prefix=("a", "b"), offset=2) == [("a", "b", "d", "i"), ("a", "b", "f")]
    assert store.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(suffix=("*", "f")) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert store.list_namespaces(prefix=("nonexistent",)) == []
    assert store.list_namespaces(prefix=("users", "123")) == [("users", "123")]


def test_list_namespaces_with_wildcards(make_store: Maker) -> None:
    store = make_store()
    _fill_namespaces(
        store,
        [
            ("users", "123"),
            ("users", "456"),
            ("users", "789", "settings"),
            ("admin", "users", "789"),
            ("guests", "123"),
            ("guests", "456", "preferences"),
        ],
    )
    assert store.list_namespaces(prefix=("users", "*")) == [
        ("users", "123"),
        ("users", "456"),
        ("users", "789", "settings"),
    ]
    assert store.list_namespaces(suffix=("*", "preferences")) == [("guests", "456", "preferences")]
    assert store.list_namespaces(prefix=("*", "users"), suffix=("*", "settings")) == []


def test_list_namespaces_pagination_depth_and_empty(make_store: Maker) -> None:
    store = make_store()
    assert store.list_namespaces() == []
    for i in range(20):
        store.put(("namespace", f"sub_{i:02d}"), f"id_{i:02d}", {"data": i})
    assert store.list_namespaces(prefix=("namespace",), limit=5, offset=5) == [
        ("namespace", f"sub_{i:02d}") for i in range(5, 10)
    ]
    assert store.list_namespaces(prefix=("namespace",), limit=5, offset=15) == [
        ("namespace", f"sub_{i:02d}") for i in range(15, 20)
    ]
    _fill_namespaces(
        store, [("a", "b", "c", "d"), ("a", "b", "c", "e"), ("a", "b", "f"), ("a", "g"), ("h", "i", "j", "k")]
    )
    assert store.list_namespaces(max_depth=2, limit=10) == [
        ("a", "b"),
        ("a", "g"),
        ("h", "i"),
        ("namespace", "sub_00"),
        ("namespace", "sub_01"),
        ("namespace", "sub_02"),
        ("namespace", "sub_03"),
        ("namespace", "sub_04"),
        ("namespace", "sub_05"),
        ("namespace", "sub_06"),
    ]
    assert store.list_namespaces(prefix=("a",), max_depth=1) == [("a",)]


# ---------------------------------------------------------------------------
# Namespace rules


async def test_invalid_namespaces_are_refused(make_store: Maker) -> None:
    """Port of LangGraph's test_cannot_put_empty_namespace."""
    store = make_store()
    doc = {"foo": "bar"}
    for bad in [(), ("the", "thing.about"), ("some", "fun", ""), ("langgraph", "foo")]:
        with pytest.raises(InvalidNamespaceError):
            store.put(bad, "foo", doc)
        with pytest.raises(InvalidNamespaceError):
            await store.aput(bad, "foo", doc)
    for method in ("get", "delete"):
        with pytest.raises(InvalidNamespaceError):
            getattr(store, method)(("foo.bar",), "key")
    with pytest.raises(InvalidNamespaceError):
        store.search(("foo", ""))
    with pytest.raises(InvalidNamespaceError):
        store.list_namespaces(prefix=("a.b",))
    # "langgraph" is only reserved as the root label, and only through put().
    store.put(("foo", "langgraph", "foo"), "bar", doc)
    assert store.get(("foo", "langgraph", "foo"), "bar").value == doc
    store.batch([PutOp(("langgraph", "foo"), "bar", doc)])
    assert store.search(("langgraph", "foo"))[0].value == doc


def test_ltm_batch_checks_labels_and_depth(ltm_store: LTMStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        ltm_store.batch([GetOp(("foo.bar",), "key")])
    with pytest.raises(InvalidInputError, match="at most 7"):  # the reserved root label takes one
        ltm_store.put(tuple(f"l{i}" for i in range(8)), "k", {"x": 1})
    ltm_store.put(tuple(f"l{i}" for i in range(7)), "k", {"x": 1})
    deep = tuple(f"l{i}" for i in range(8))
    assert ltm_store.search(deep) == [] and ltm_store.get(deep, "k") is None
    ltm_store.delete(deep, "k")  # nothing there, nothing to do


def test_ltm_any_label_and_key_round_trips(ltm_store: LTMStore) -> None:
    odd = [("Ana María", "notes 2024"), ("tenant", "a_%"), ("x" * 300,), ("emoji 🎉", "ü")]
    for i, ns in enumerate(odd):
        ltm_store.put(ns, "k", {"i": i})
    long_key, empty_key = "k" * 500, ""
    ltm_store.put(("keys",), long_key, {"v": "long"})
    ltm_store.put(("keys",), empty_key, {"v": "empty"})
    assert ltm_store.list_namespaces() == sorted([*odd, ("keys",)])
    for i, ns in enumerate(odd):
        assert ltm_store.get(ns, "k").value == {"i": i}
        assert [h.namespace for h in ltm_store.search(ns)] == [ns]
    assert ltm_store.get(("keys",), long_key).value == {"v": "long"}
    assert ltm_store.get(("keys",), empty_key).value == {"v": "empty"}
    assert sorted(keys(ltm_store.search(("keys",)))) == ["", long_key]
    assert ltm_store.list_namespaces(prefix=("x" * 300,)) == [("x" * 300,)]


# ---------------------------------------------------------------------------
# Batch semantics


def test_batch_reads_see_state_before_writes_and_last_put_wins(make_store: Maker) -> None:
    store = make_store()
    store.put(("ns",), "k", {"v": 0})
    results = store.batch(
        [
            PutOp(("ns",), "k", {"v": 1}),
            GetOp(("ns",), "k"),
            PutOp(("ns",), "k", {"v": 2}),
            SearchOp(("ns",)),
            ListNamespacesOp(),
        ]
    )
    assert results[0] is None and results[2] is None
    assert results[1].value == {"v": 0}
    assert [r.value for r in results[3]] == [{"v": 0}]
    assert results[4] == [("ns",)]
    assert store.get(("ns",), "k").value == {"v": 2}


# ---------------------------------------------------------------------------
# Where LTMStore is deliberate about semantics LangGraph leaves open


def test_ltm_updates_keep_created_at(ltm_store: LTMStore) -> None:
    ltm_store.put(("ns",), "k", {"v": 1})
    first = ltm_store.get(("ns",), "k")
    time.sleep(0.002)
    ltm_store.put(("ns",), "k", {"v": 2})
    second = ltm_store.get(("ns",), "k")
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    hit = ltm_store.search(("ns",), query="v")[0]
    assert hit.created_at == first.created_at


def test_unindexed_items_come_after_scored_ones_unscored(make_store: Maker) -> None:
    """Port of LangGraph's test_embed_with_path (its index=False part), on every store."""
    store = make_store(["text"])
    store.put(("ns",), "indexed", {"text": "tea"})
    store.put(("ns",), "hidden", {"text": "tea"}, index=False)
    store.put(("ns",), "no-field", {"other": "tea"})  # nothing at the indexed path: nothing embedded
    hits = store.search(("ns",), query="tea", limit=10)
    assert keys(hits) == ["indexed", "hidden", "no-field"]
    assert hits[0].score is not None and hits[1].score is None and hits[2].score is None
    assert keys(store.search(("ns",), query="tea", limit=1)) == ["indexed"]  # only when the page has room
    assert sorted(keys(store.search(("ns",), limit=10))) == ["hidden", "indexed", "no-field"]


def test_index_config_keeps_embed(make_store: Maker) -> None:
    """Port of LangGraph's test_vector_store_initialization."""
    store = make_store(["text"])
    assert store.index_config["dims"] == DIMS and store.index_config["fields"] == ["text"]
    if make_store.kind != "ltm-memory":  # LTMStore(store, ...) wraps a store that owns its embedder
        assert isinstance(store.index_config["embed"], HashingEmbeddings)


def test_ltm_namespaces_never_alias_core_namespaces() -> None:
    """A LangGraph label escaped for the store is not a core namespace, and plain labels do not meet either."""
    from ltm_agent.records import StoredItem

    inner = InMemoryStore(HashingEmbedder(DIMS))
    store = LTMStore(inner)
    store.put(("memories", "a b"), "k", {"text": "langgraph user"})
    store.put(("memories", "ana"), "k", {"text": "langgraph ana"})
    inner.put([StoredItem(("memories", "a.20b"), "c", "core user"), StoredItem(("memories", "ana"), "c", "core ana")])
    assert inner.list(("memories", "a.20b"))[0].text == "core user" and inner.count(("memories", "a.20b")) == 1
    assert inner.count(("memories", "ana")) == 1
    assert store.list_namespaces() == [("memories", "a b"), ("memories", "ana")]
    assert sorted(h.value["text"] for h in store.search(("memories",), query="user")) == ["langgraph ana", "langgraph user"]
    inner.forget(("memories",))
    assert store.get(("memories", "a b"), "k") is not None  # erasing core data leaves LangGraph's alone


def test_ltm_query_less_results_are_most_recent_first(ltm_store: LTMStore) -> None:
    for key in ("a", "b", "c"):
        ltm_store.put(("ns",), key, {"text": key})
        time.sleep(0.002)
    ltm_store.put(("ns",), "a", {"text": "a again"})
    assert keys(ltm_store.search(("ns",))) == ["a", "c", "b"]


def test_ltm_ttl_and_operators_are_refused_clearly(ltm_store: LTMStore) -> None:
    assert ltm_store.supports_ttl is False
    with pytest.raises(NotImplementedError):
        ltm_store.put(("ns",), "k", {"v": 1}, ttl=5)
    with pytest.raises(UnsupportedOperationError, match="TTL"):
        ltm_store.batch([PutOp(("ns",), "k", {"v": 1}, ttl=5.0)])
    with pytest.raises(InvalidFilterError, match=r"\$in"):
        ltm_store.search(("ns",), filter={"v": {"$in": [1]}})
    with pytest.raises(InvalidFilterError, match="needs a number"):
        ltm_store.search(("ns",), filter={"v": {"$gt": "abc"}})
    with pytest.raises(LTMError, match="JSON"):
        ltm_store.put(("ns",), "k", {"when": object()})
    assert ltm_store.get(("ns",), "k") is None  # nothing was written by the refused puts


def test_ltm_range_filter_skips_missing_fields(ltm_store: LTMStore) -> None:
    # LangGraph's InMemoryStore raises TypeError here; a missing field simply does not match.
    ltm_store.put(("ns",), "with", {"n": 5})
    ltm_store.put(("ns",), "without", {"other": 1})
    assert keys(ltm_store.search(("ns",), filter={"n": {"$gt": 1}})) == ["with"]


def test_ltm_replacing_fewer_fields_drops_old_vectors() -> None:
    # LangGraph's InMemoryStore keeps the vectors of fields a replacement no longer has.
    inner = InMemoryStore(HashingEmbedder(DIMS))
    store = LTMStore(inner, index={"fields": ["tags[*]"]})
    store.put(("ns",), "k", {"tags": ["kayak", "paddle", "helmet"]})
    assert inner.count(("langgraph-store", "ns")) == 3  # the document plus two extra vectors
    store.put(("ns",), "k", {"tags": ["kayak"]})
    assert inner.count(("langgraph-store", "ns")) == 1
    assert keys(store.search(("ns",), query="helmet")) == ["k"]  # still found via its document
    store.delete(("ns",), "k")
    assert inner.count(("langgraph-store", "ns")) == 0


def test_ltm_ignores_records_it_did_not_write() -> None:
    from ltm_agent.records import StoredItem

    inner = InMemoryStore(HashingEmbedder(DIMS))
    inner.put([StoredItem(("u1",), "k:foreign", "Lisbon facts", {"kind": "turn"})])
    store = LTMStore(inner)
    store.put(("u1",), "mine", {"text": "Lisbon"})
    assert keys(store.search(("u1",), query="Lisbon")) == ["mine"]
    assert keys(store.search(("u1",))) == ["mine"]
    assert store.get(("u1",), "foreign") is None


async def test_ltm_two_tenants_concurrently(ltm_store: LTMStore) -> None:
    await asyncio.gather(
        *(
            ltm_store.aput((user, "mem"), f"{user}-{i}", {"text": f"{user} fact {i}"})
            for user in ("ana", "bo")
            for i in range(5)
        )
    )
    ana, bo = await asyncio.gather(ltm_store.asearch(("ana",), query="fact"), ltm_store.asearch(("bo",), query="fact"))
    assert len(ana) == len(bo) == 5
    assert all(h.key.startswith("ana-") for h in ana) and all(h.key.startswith("bo-") for h in bo)


# ---------------------------------------------------------------------------
# Construction


def test_ltm_index_config_rules() -> None:
    inner = InMemoryStore(HashingEmbedder(DIMS))
    with pytest.raises(InvalidInputError, match="cannot change the embedder"):
        LTMStore(inner, index={"embed": HashingEmbeddings()})
    with pytest.raises(InvalidInputError, match="dims"):
        LTMStore(inner, index={"dims": 384})
    assert LTMStore(inner, index={"embed": inner.embedder, "dims": DIMS}).index_config["fields"] == ["$"]
    with pytest.raises(InvalidInputError, match="dims"):
        LTMStore.memory(index={"embed": lambda texts: [[1.0, 0.0] for _ in texts]})

    async def aembed(texts: list[str]) -> list[list[float]]:
        return [[1.0] for _ in texts]

    with pytest.raises(UnsupportedOperationError, match="async"):
        LTMStore.memory(index={"embed": aembed, "dims": 1})
    with pytest.raises(TypeError):
        LTMStore(object())  # type: ignore[arg-type]
    store = LTMStore.memory(index={"embed": lambda texts: [[float(len(t)), 1.0] for t in texts], "dims": 2})
    store.put(("ns",), "k", {"text": "hi"})
    assert keys(store.search(("ns",), query="hello")) == ["k"]


def test_ltm_chroma_persists_across_reopen(tmp_path: Any) -> None:
    index = {"embed": HashingEmbedder(DIMS), "fields": ["text"]}
    with LTMStore.chroma(tmp_path / "lg", index=index) as store:  # type: ignore[arg-type]
        store.put(("u1", "mem"), "k", {"text": "I moved to Lisbon"})
        created = store.get(("u1", "mem"), "k").created_at
    with LTMStore.chroma(tmp_path / "lg", index=index) as store:  # type: ignore[arg-type]
        item = store.get(("u1", "mem"), "k")
        assert item.value == {"text": "I moved to Lisbon"} and item.created_at == created
        assert keys(store.search(("u1",), query="Lisbon")) == ["k"]


# ---------------------------------------------------------------------------
# Inside a graph


def test_graph_nodes_reach_the_store(make_store: Maker) -> None:
    from langchain_core.runnables import RunnableConfig
    from langgraph.config import get_store
    from langgraph.graph import START, StateGraph
    from langgraph.runtime import Runtime
    from typing_extensions import TypedDict

    class State(TypedDict, total=False):
        text: str
        found: list[str]

    def write(state: State, config: RunnableConfig) -> State:
        get_store().put(("users", config["configurable"]["user_id"]), "note", {"text": state["text"]})
        return {}

    def read(state: State, runtime: Runtime) -> State:
        return {"found": [h.value["text"] for h in runtime.store.search(("users",), query=state["text"])]}

    store = make_store(["text"])
    graph = (
        StateGraph(State)
        .add_node(write)
        .add_node(read)
        .add_edge(START, "write")
        .add_edge("write", "read")
        .compile(store=store)
    )
    out = graph.invoke({"text": "likes green tea"}, {"configurable": {"user_id": "u1"}})
    assert out["found"] == ["likes green tea"]
    out = asyncio.run(graph.ainvoke({"text": "plays cello"}, {"configurable": {"user_id": "u2"}}))
    assert sorted(out["found"]) == ["likes green tea", "plays cello"]
