"""The store contract: every backend must pass every test here.

Runs against InMemoryStore (the reference) and ChromaStore ephemeral,
persistent, server (sync client) and aserver (async client). Filters only use
keys present on every item, except the tests that pin the missing-key rule.
"""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from ltm_agent.errors import InvalidFilterError, InvalidInputError, InvalidNamespaceError, InvalidTypeError, LTMError
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.records import ScoredItem, StoredItem
from ltm_agent.store import (
    CountOp,
    DeleteOp,
    GetOp,
    ListNamespacesOp,
    ListOp,
    MemoryStore,
    PutOp,
    SearchOp,
    StoreLimits,
)

NS = ("user-1",)
OTHER = ("user-2",)

DOCS = [
    ("a1", "Alice moved to Lisbon in May", {"kind": "turn", "n": 1, "score": 0.5, "flag": True}),
    ("a2", "Alice adopted a cat named Miso", {"kind": "turn", "n": 2, "score": 1.5, "flag": False}),
    ("a3", "The cat Miso likes tuna", {"kind": "fact", "n": 3, "score": 2.5, "flag": True}),
    ("a4", "Bob plays the cello on Sundays", {"kind": "fact", "n": 4, "score": 3.5, "flag": False}),
    ("a5", "Lisbon trams are yellow", {"kind": "note", "n": 5, "score": 4.5, "flag": True}),
]


def items(namespace=NS) -> list[StoredItem]:
    return [StoredItem(namespace, i, text, dict(meta)) for i, text, meta in DOCS]


def ids(results) -> list[str]:
    return [r.item.id if isinstance(r, ScoredItem) else r.id for r in results]


def fill(store: MemoryStore, namespace=NS) -> None:
    store.put(items(namespace))


# -- put / get ----------------------------------------------------------------


def test_put_get_round_trip(store: MemoryStore) -> None:
    fill(store)
    got = store.get(NS, ["a3", "missing", "a1"])
    assert got[1] is None
    assert [g.id for g in (got[0], got[2])] == ["a3", "a1"]
    a3 = got[0]
    assert a3.text == "The cat Miso likes tuna" and a3.key is None and a3.namespace == NS
    assert a3.metadata == {"kind": "fact", "n": 3, "score": 2.5, "flag": True}
    assert type(a3.metadata["n"]) is int and type(a3.metadata["flag"]) is bool
    assert isinstance(a3.created_at, datetime) and a3.created_at.tzinfo is not None
    assert a3.created_at == a3.updated_at
    assert store.get(NS, []) == []
    assert store.get(OTHER, ["a1"]) == [None]


def test_get_repeats_ids_in_order(store: MemoryStore) -> None:
    fill(store)
    assert [g.id for g in store.get(NS, ["a2", "a1", "a2"])] == ["a2", "a1", "a2"]


def test_replace_keeps_created_at_and_replaces_everything_else(store: MemoryStore) -> None:
    store.put([StoredItem(NS, "x", "first version", {"old": 1, "keep": "a"})])
    first = store.get(NS, ["x"])[0]
    store.put([StoredItem(NS, "x", "second version", {"keep": "b"}, key="index words")])
    second = store.get(NS, ["x"])[0]
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert (second.text, second.key, second.metadata) == ("second version", "index words", {"keep": "b"})
    store.put([StoredItem(NS, "x", "third version")])
    third = store.get(NS, ["x"])[0]
    assert (third.key, third.metadata, third.created_at) == (None, {}, first.created_at)
    assert store.count(NS) == 1


def test_same_id_twice_in_one_batch_last_wins(store: MemoryStore) -> None:
    store.put([StoredItem(NS, "x", "one"), StoredItem(NS, "x", "two")])
    assert store.get(NS, ["x"])[0].text == "two"
    assert store.count(NS) == 1


def test_results_are_copies(store: MemoryStore) -> None:
    fill(store)
    store.get(NS, ["a1"])[0].metadata["kind"] = "changed"  # type: ignore[index]
    assert store.get(NS, ["a1"])[0].metadata["kind"] == "turn"


def test_ops_run_in_order_within_a_batch(store: MemoryStore) -> None:
    results = store.batch(
        [
            PutOp(StoredItem(NS, "x", "hello there")),
            GetOp(NS, ("x",)),
            CountOp(NS),
            DeleteOp(NS, ("x",)),
            GetOp(NS, ("x",)),
            PutOp(StoredItem(NS, "y", "back again")),
            CountOp(NS),
        ]
    )
    assert results[0] is None and results[1][0].text == "hello there"
    assert results[2:5] == [1, 1, [None]]
    assert results[6] == 1


# -- index key -----------------------------------------------------------------


def test_key_is_indexed_text_is_returned(store: MemoryStore) -> None:
    store.put(
        [
            StoredItem(NS, "k", "What did I say?", {"kind": "turn"}, key="saxophone lessons on Tuesday"),
            StoredItem(NS, "p", "plain text about gardening", {"kind": "turn"}),
        ]
    )
    hits = store.search(NS, "saxophone", mode="keyword")
    assert ids(hits) == ["k"] and hits[0].item.text == "What did I say?"
    assert hits[0].item.key == "saxophone lessons on Tuesday"
    assert store.search(NS, "What did I say", mode="keyword") == []
    assert ids(store.search(NS, "saxophone lessons on Tuesday", limit=1)) == ["k"]


# -- search --------------------------------------------------------------------


def test_dense_search_ranks_by_cosine(store: MemoryStore) -> None:
    fill(store)
    hits = store.search(NS, "Alice adopted a cat named Miso", limit=5)
    assert hits[0].item.id == "a2"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(-1.0001 <= h.score <= 1.0001 for h in hits)
    assert len(hits) == 5


def test_dense_scores_match_the_reference_store(store: MemoryStore) -> None:
    reference = InMemoryStore(store.embedder)  # type: ignore[attr-defined]
    for s in (store, reference):
        fill(s)
    query = "cat Miso Lisbon"
    expected = {h.item.id: h.score for h in reference.search(NS, query, limit=5)}
    got = {h.item.id: h.score for h in store.search(NS, query, limit=5)}
    assert got.keys() == expected.keys()
    for key, score in expected.items():
        assert got[key] == pytest.approx(score, abs=1e-4)


async def test_dense_search_by_vector_and_with_vectors(store: MemoryStore) -> None:
    import numpy as np

    fill(store)
    query = "cat Miso Lisbon"
    by_text = store.search(NS, query, limit=5)
    vector = store.embedder.embed_query(query)  # type: ignore[union-attr]
    by_vector = store.search(NS, "(unused when a vector is given)", limit=5, vector=vector)
    assert ids(by_vector) == ids(by_text)
    assert [h.score for h in by_vector] == pytest.approx([h.score for h in by_text], abs=1e-4)
    assert all(h.item.vector is None for h in by_text)  # vectors only when asked for
    with_vectors = await store.asearch(NS, query, limit=5, with_vectors=True)
    expected = store.embedder.embed([h.item.text for h in with_vectors])  # type: ignore[union-attr]
    assert ids(with_vectors) == ids(by_text)
    assert np.allclose(np.stack([np.asarray(h.item.vector) for h in with_vectors]), expected, atol=1e-5)
    assert store.get(NS, ["a1"])[0].vector is None  # a search result's vector is not written back


async def test_list_with_vectors_returns_the_index_vectors(store: MemoryStore) -> None:
    import numpy as np

    fill(store)
    plain = store.list(NS, filter={"kind": "turn"})
    listed = await store.alist(NS, filter={"kind": "turn"}, with_vectors=True)
    assert [i.id for i in listed] == [i.id for i in plain] and plain
    assert all(i.vector is None for i in plain)  # vectors only when asked for
    expected = store.embedder.embed([i.index_text for i in listed])  # type: ignore[union-attr]
    assert np.allclose(np.stack([np.asarray(i.vector) for i in listed]), expected, atol=1e-5)


@pytest.mark.parametrize(
    "vector, mode, error",
    [([0.1, 0.2], "dense", InvalidInputError), ("not a vector", "dense", InvalidTypeError), ([0.0], "keyword", InvalidInputError)],
)
def test_bad_query_vectors_are_refused(store: MemoryStore, vector, mode: str, error: type) -> None:  # noqa: ANN001
    with pytest.raises(error):
        store.batch([PutOp(StoredItem(NS, "x", "hello")), SearchOp(NS, "hello", mode, vector=vector)])  # type: ignore[arg-type]
    assert store.count(NS) == 0


@pytest.mark.parametrize("warm", [False, True])
def test_dense_search_matches_the_reference_before_and_after_warm(store: MemoryStore, warm: bool) -> None:
    # A warm Chroma side index holds the vectors and ranks exactly in numpy; cold, Chroma's HNSW does.
    reference = InMemoryStore(store.embedder)  # type: ignore[attr-defined]
    for s in (store, reference):
        fill(s)
        if warm:
            s.warm(NS)
    where = {"kind": {"$in": ["turn", "fact"]}}
    for kwargs in ({}, {"filter": where}, {"filter": where, "offset": 1, "limit": 2}, {"with_vectors": True}):
        expected = reference.search(NS, "cat Miso Lisbon", **kwargs)
        got = store.search(NS, "cat Miso Lisbon", **kwargs)
        assert ids(got) == ids(expected), kwargs
        assert [h.score for h in got] == pytest.approx([h.score for h in expected], abs=1e-4)
        if kwargs.get("with_vectors"):
            assert all(h.item.vector is not None and len(h.item.vector) == store.embedder.dimension for h in got)  # type: ignore[union-attr]


def test_ties_are_broken_by_id(store: MemoryStore) -> None:
    store.put([StoredItem(NS, i, "same words here") for i in ("c", "a", "b")])
    assert ids(store.search(NS, "same words here")) == ["a", "b", "c"]
    store.warm(NS)
    assert ids(store.search(NS, "same words here")) == ["a", "b", "c"]
    assert ids(store.search(NS, "same words", mode="keyword")) == ["a", "b", "c"]


def test_keyword_search_is_bm25(store: MemoryStore) -> None:
    fill(store)
    hits = store.search(NS, "Lisbon cats", mode="keyword")
    assert set(ids(hits)) == {"a1", "a5", "a2", "a3"}  # stemming: cats -> cat
    assert all(h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert store.search(NS, "zebra xylophone", mode="keyword") == []
    assert store.search(NS, "the of and", mode="keyword") == []  # stop words only
    assert store.search(OTHER, "Lisbon", mode="keyword") == []


def test_keyword_scores_match_the_reference_store(store: MemoryStore) -> None:
    reference = InMemoryStore(store.embedder)  # type: ignore[attr-defined]
    for s in (store, reference):
        fill(s)
    expected = [(h.item.id, h.score) for h in reference.search(NS, "Miso cat Lisbon", mode="keyword")]
    got = [(h.item.id, h.score) for h in store.search(NS, "Miso cat Lisbon", mode="keyword")]
    assert [i for i, _ in got] == [i for i, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], rel=1e-6)


def test_keyword_index_follows_writes(store: MemoryStore) -> None:
    fill(store)
    assert ids(store.search(NS, "tuna", mode="keyword")) == ["a3"]
    store.put([StoredItem(NS, "a6", "tuna sandwiches for lunch", {"kind": "note", "n": 6, "score": 0.0, "flag": True})])
    assert set(ids(store.search(NS, "tuna", mode="keyword"))) == {"a3", "a6"}
    store.delete(NS, ["a3"])
    assert ids(store.search(NS, "tuna", mode="keyword")) == ["a6"]
    store.delete(NS)
    assert store.search(NS, "tuna", mode="keyword") == []


def test_grouped_keyword_search_ranks_groups_as_one_document_each(store: MemoryStore) -> None:
    """group_by: each group's members' text together is one BM25 document; a group comes back as its
    best-matching member with the group's score (the same on every backend), after writes too."""
    from ltm_agent.memory_stores._keyword import KeywordIndex

    fill(store)
    query = "Lisbon cat Miso tuna"
    grouped = [(h.item.id, h.score) for h in store.search(NS, query, mode="keyword", group_by="kind")]
    groups = {"turn": ["a1", "a2"], "fact": ["a3", "a4"], "note": ["a5"]}
    text = {i: t for i, t, _ in DOCS}
    whole = KeywordIndex(list(groups), [" ".join(text[m] for m in ms) for ms in groups.values()], [{}] * 3)
    expected = dict(whole.search(query))
    kind_of = {i: m["kind"] for i, _, m in DOCS}
    assert {kind_of[i]: score for i, score in grouped} == pytest.approx(expected, rel=1e-6)
    # facts hold cat, Miso and tuna; of the turns a2 (cat, Miso) matches best, not a1 (Lisbon)
    assert [i for i, _ in grouped] == ["a3", "a2", "a5"]
    # A filter narrows the groups' members; a member without the field is in no group.
    only = store.search(NS, query, mode="keyword", group_by="kind", filter={"flag": True})
    assert {kind_of[h.item.id] for h in only} == {"turn", "fact", "note"} and ids(only)[0] in {"a1", "a3", "a5"}
    store.put([StoredItem(NS, "x", "Miso Miso Miso tuna", {"n": 9, "score": 0.0, "flag": True})])  # no "kind"
    assert "x" not in ids(store.search(NS, query, mode="keyword", group_by="kind"))
    assert "x" in ids(store.search(NS, query, mode="keyword"))
    store.delete(NS, ["a2"])
    assert ids(store.search(NS, "cat", mode="keyword", group_by="kind")) == ["a3"]
    assert store.search(OTHER, query, mode="keyword", group_by="kind") == []


@pytest.mark.parametrize("op", [
    SearchOp(NS, "cat", "dense", group_by="kind"),
    SearchOp(NS, "cat", "keyword", group_by=""),
    SearchOp(NS, "cat", "keyword", group_by=3),  # type: ignore[arg-type]
])
def test_bad_group_by_is_refused(store: MemoryStore, op: SearchOp) -> None:
    fill(store)
    with pytest.raises(InvalidInputError, match="group_by"):
        store.batch([op])


async def test_warm_builds_indexes_without_changing_results(store: MemoryStore) -> None:
    fill(store)
    before = [(i.item.id, i.score) for i in store.search(NS, "tuna Lisbon", mode="keyword")]
    store.warm(NS)
    await store.awarm(NS)
    assert [(i.item.id, i.score) for i in store.search(NS, "tuna Lisbon", mode="keyword")] == before
    store.put([StoredItem(NS, "a6", "tuna sandwiches for lunch", {"kind": "note", "n": 6, "score": 0.0, "flag": True})])
    store.warm(NS)  # a warm after a write indexes the write
    assert "a6" in ids(store.search(NS, "tuna", mode="keyword"))
    store.warm(("nobody",))  # an empty namespace warms to nothing
    assert store.count(("nobody",)) == 0
    with pytest.raises(InvalidNamespaceError):
        store.warm(())


@pytest.mark.parametrize("mode", ["dense", "keyword"])
def test_search_offset_and_limit(store: MemoryStore, mode: str) -> None:
    fill(store)
    query = "Alice cat Miso Lisbon trams cello"
    full = store.search(NS, query, mode=mode, limit=10)
    assert len(full) >= 4
    assert ids(store.search(NS, query, mode=mode, limit=2)) == ids(full[:2])
    assert ids(store.search(NS, query, mode=mode, limit=2, offset=2)) == ids(full[2:4])
    assert store.search(NS, query, mode=mode, limit=0) == []
    assert store.search(NS, query, mode=mode, offset=50) == []


def test_search_after_every_item_was_deleted_by_id(store: MemoryStore) -> None:
    store.put([StoredItem(NS, "x", "hello world")])
    store.delete(NS, ["x"])
    store.warm(NS)
    assert store.search(NS, "hello") == []
    assert store.search(NS, "hello", mode="keyword") == []


def test_search_empty_namespace(store: MemoryStore) -> None:
    assert store.search(NS, "anything") == []
    assert store.search(NS, "anything", mode="keyword") == []


# -- filters -------------------------------------------------------------------

FILTER_CASES = [
    ({"kind": "fact"}, {"a3", "a4"}),
    ({"kind": {"$eq": "turn"}}, {"a1", "a2"}),
    ({"kind": {"$ne": "turn"}}, {"a3", "a4", "a5"}),
    ({"n": {"$gt": 3}}, {"a4", "a5"}),
    ({"n": {"$gte": 3}}, {"a3", "a4", "a5"}),
    ({"n": {"$lt": 2}}, {"a1"}),
    ({"n": {"$lte": 2}}, {"a1", "a2"}),
    ({"score": {"$gt": 1.5, "$lt": 4}}, {"a3", "a4"}),
    ({"kind": {"$in": ["note", "fact"]}}, {"a3", "a4", "a5"}),
    ({"kind": {"$nin": ["note", "fact"]}}, {"a1", "a2"}),
    ({"n": {"$in": [1, 5]}}, {"a1", "a5"}),
    ({"flag": True}, {"a1", "a3", "a5"}),
    ({"flag": {"$ne": True}}, {"a2", "a4"}),
    ({"kind": "turn", "flag": True}, {"a1"}),
    ({"n": 2.0}, {"a2"}),  # ints and floats compare as numbers
    ({"score": {"$in": [0.5, 2]}}, {"a1"}),
    ({"n": True}, set()),  # bool is not a number
    ({"flag": 1}, set()),
    ({"kind": {"$in": []}}, set()),
    ({"kind": {"$nin": []}}, {"a1", "a2", "a3", "a4", "a5"}),
    ({"kind": {"$gt": 0}}, set()),  # range on a str field never matches
]


def test_filters(store: MemoryStore) -> None:
    # One store, every case: a store per case would cost 5x the setup for no extra coverage.
    fill(store)
    query = "Alice Lisbon cat Miso cello trams"
    for where, expected in FILTER_CASES:
        assert set(ids(store.list(NS, filter=where))) == expected, f"list {where}"
        assert set(ids(store.search(NS, "Alice", filter=where, limit=10))) == expected, f"dense {where}"
        assert set(ids(store.search(NS, query, mode="keyword", filter=where))) == expected, f"keyword {where}"


def test_missing_key_passes_only_ne_and_nin(store: MemoryStore) -> None:
    store.put([StoredItem(NS, "with", "has colour", {"colour": "red"}), StoredItem(NS, "without", "no colour", {})])
    assert ids(store.list(NS, filter={"colour": {"$ne": "red"}})) == ["without"]
    assert ids(store.list(NS, filter={"colour": {"$nin": ["red"]}})) == ["without"]
    assert ids(store.list(NS, filter={"colour": {"$ne": "blue"}})) == ["with", "without"]
    for where in ({"colour": "red"}, {"colour": {"$in": ["red"]}}, {"colour": {"$eq": "red"}}):
        assert ids(store.list(NS, filter=where)) == ["with"]
    assert store.list(NS, filter={"colour": {"$gt": 1}}) == []


@pytest.mark.parametrize(
    "where",
    [{"n": {"$gt": "3"}}, {"n": {"$lt": True}}, {"kind": {"$in": ["a", 1]}}, {"n": {"$bad": 1}}, {"n": [1]}],
)
def test_unsupported_filters_are_refused(store: MemoryStore, where: dict) -> None:
    fill(store)
    with pytest.raises(InvalidFilterError):
        store.list(NS, filter=where)
    with pytest.raises(InvalidFilterError):
        store.search(NS, "x", filter=where)


# -- list / count / delete / namespaces ---------------------------------------------


def test_list_is_ordered_by_id_with_paging(store: MemoryStore) -> None:
    store.put([StoredItem(NS, i, f"text {i}") for i in ("b", "d", "a", "c", "e")])
    assert ids(store.list(NS)) == ["a", "b", "c", "d", "e"]
    assert ids(store.list(NS, limit=2)) == ["a", "b"]
    assert ids(store.list(NS, limit=2, offset=3)) == ["d", "e"]
    assert ids(store.list(NS, offset=4)) == ["e"]
    assert store.list(NS, limit=0) == []
    assert store.list(NS, offset=9) == []
    assert store.list(OTHER) == []


def test_count_and_delete(store: MemoryStore) -> None:
    fill(store)
    assert store.count(NS) == 5
    assert store.delete(NS, ["a1", "a1", "nope"]) == 1
    assert store.delete(NS, []) == 0
    assert store.delete(NS, ["a1"]) == 0
    assert store.count(NS) == 4
    assert store.delete(NS) == 4
    assert store.count(NS) == 0 and store.list(NS) == []
    assert store.delete(NS) == 0
    assert store.delete(OTHER, ["a1"]) == 0
    fill(store)  # a deleted namespace can be written again
    assert store.count(NS) == 5


def test_list_namespaces(store: MemoryStore) -> None:
    for ns in [("b", "x"), ("a",), ("b", "y"), ("b",), ("c", "x", "1")]:
        store.put([StoredItem(ns, "1", "some text")])
    assert store.list_namespaces() == [("a",), ("b",), ("b", "x"), ("b", "y"), ("c", "x", "1")]
    assert store.list_namespaces(("b",)) == [("b",), ("b", "x"), ("b", "y")]
    assert store.list_namespaces(("b", "y")) == [("b", "y")]
    assert store.list_namespaces(("z",)) == []
    assert store.list_namespaces(limit=2, offset=1) == [("b",), ("b", "x")]
    assert store.list_namespaces(limit=0) == []
    store.delete(("b", "x"))
    store.delete(("a",), ["1"])  # emptied by id: no longer listed either
    assert store.list_namespaces() == [("b",), ("b", "y"), ("c", "x", "1")]
    assert store.batch([ListNamespacesOp(("c",))]) == [[("c", "x", "1")]]


# -- tenants -----------------------------------------------------------------------


def test_two_tenants_with_identical_texts_never_mix(store: MemoryStore) -> None:
    fill(store, NS)
    fill(store, OTHER)
    for ns in (NS, OTHER):
        assert {h.item.namespace for h in store.search(ns, "Alice cat", limit=10)} == {ns}
        assert {h.item.namespace for h in store.search(ns, "Alice cat", mode="keyword")} == {ns}
        assert {i.namespace for i in store.list(ns)} == {ns}
        assert {i.namespace for i in store.get(ns, ["a1", "a2"])} == {ns}
        assert store.count(ns) == 5
    # Same ids, different tenants: writing one never touches the other.
    store.put([StoredItem(NS, "a1", "changed in tenant one")])
    assert store.get(OTHER, ["a1"])[0].text == "Alice moved to Lisbon in May"
    assert len(store.search(OTHER, "Alice cat", limit=10)) == 5
    assert store.delete(NS, ["a2"]) == 1 and store.get(OTHER, ["a2"])[0] is not None
    assert store.delete(NS) == 4
    assert store.count(OTHER) == 5
    assert {h.item.namespace for h in store.search(OTHER, "Alice", mode="keyword")} == {OTHER}
    assert ids(store.search(OTHER, "tuna", mode="keyword")) == ["a3"]
    assert store.search(NS, "tuna", mode="keyword") == [] and store.search(NS, "tuna") == []


def test_prefix_namespaces_are_separate_tenants(store: MemoryStore) -> None:
    store.put([StoredItem(("org",), "1", "parent secret plans")])
    store.put([StoredItem(("org", "team"), "1", "child secret plans")])
    assert [h.item.text for h in store.search(("org",), "secret plans", limit=10)] == ["parent secret plans"]
    assert [h.item.text for h in store.search(("org", "team"), "secret", mode="keyword")] == ["child secret plans"]
    assert store.delete(("org",)) == 1
    assert store.count(("org", "team")) == 1


# -- async ---------------------------------------------------------------------------


async def test_sync_async_parity(store: MemoryStore) -> None:
    ops_for = lambda ns: [  # noqa: E731
        *[PutOp(i) for i in items(ns)],
        GetOp(ns, ("a2", "zz")),
        SearchOp(ns, "Alice cat", "dense", {"kind": {"$ne": "note"}}, 3, 0),
        SearchOp(ns, "Lisbon cat", "keyword", None, 10, 1),
        ListOp(ns, {"n": {"$gte": 2}}, 2, 1),
        CountOp(ns),
        DeleteOp(ns, ("a1",)),
        CountOp(ns),
        ListNamespacesOp(ns),
    ]
    sync = await asyncio_to_thread(store.batch, ops_for(NS))
    async_ = await store.abatch(ops_for(OTHER))
    assert len(sync) == len(async_)
    for s, a in zip(sync, async_):
        assert _shape(s, NS) == _shape(a, OTHER)
    assert await store.acount(OTHER) == 4
    assert ids(await store.alist(OTHER, limit=1)) == ["a2"]


async def asyncio_to_thread(fn, *args):  # noqa: ANN001, ANN201
    import asyncio

    return await asyncio.to_thread(fn, *args)


def _shape(value, namespace):  # noqa: ANN001, ANN202
    """A result with the namespace and timestamps taken out, for comparing tenants."""
    if isinstance(value, list):
        return [_shape(v, namespace) for v in value]
    if isinstance(value, ScoredItem):
        return (_shape(value.item, namespace), round(value.score, 4))
    if isinstance(value, StoredItem):
        assert value.namespace == namespace
        return (value.id, value.text, value.key, dict(value.metadata))
    if isinstance(value, tuple):
        return "namespace" if value == namespace else value
    return value


# -- bad input -------------------------------------------------------------------------

BAD_ITEMS = {
    "empty text": StoredItem(NS, "bad", "   "),
    "bytes text": StoredItem(NS, "bad", b"bytes"),  # type: ignore[arg-type]
    "oversize": StoredItem(NS, "bad", "x" * (StoreLimits().max_text_chars + 1)),
    "empty key": StoredItem(NS, "bad", "fine", key=""),
    "bad namespace": StoredItem(("has space",), "bad", "fine"),
    "string namespace": StoredItem("user-1", "bad", "fine"),  # type: ignore[arg-type]
    "empty id": StoredItem(NS, "", "fine"),
    "list metadata": StoredItem(NS, "bad", "fine", {"tags": ["a"]}),  # type: ignore[dict-item]
    "None metadata": StoredItem(NS, "bad", "fine", {"x": None}),  # type: ignore[dict-item]
    "reserved key": StoredItem(NS, "bad", "fine", {"_created_us": 1}),
    "chroma key": StoredItem(NS, "bad", "fine", {"chroma:document": "x"}),
    "nan": StoredItem(NS, "bad", "fine", {"x": math.nan}),
    "huge int": StoredItem(NS, "bad", "fine", {"x": 2**70}),
    "nul": StoredItem(NS, "bad", "fi\x00ne"),
}


def test_a_bad_item_writes_nothing(store: MemoryStore) -> None:
    fill(store)
    before = store.list(NS)
    for name, bad in BAD_ITEMS.items():
        batch = [StoredItem(NS, "new-1", "a good new item"), bad, StoredItem(OTHER, "new-2", "another")]
        with pytest.raises((InvalidInputError, InvalidTypeError)) as caught:
            store.put(batch)
        assert isinstance(caught.value, LTMError), name
        assert store.list(NS) == before, name
        assert store.count(OTHER) == 0, name
        assert store.list_namespaces() == [NS], name


def test_a_bad_op_later_in_the_batch_writes_nothing(store: MemoryStore) -> None:
    with pytest.raises(InvalidFilterError):
        store.batch([PutOp(StoredItem(NS, "x", "hello")), SearchOp(NS, "x", filter={"n": {"$gt": "a"}})])
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(StoredItem(NS, "x", "hello")), CountOp(())])
    with pytest.raises(InvalidInputError):
        store.batch([PutOp(StoredItem(NS, "x", "hello")), SearchOp(NS, "   ")])
    assert store.count(NS) == 0


def test_large_text_within_the_limit_round_trips(store: MemoryStore) -> None:
    text = "word " * (StoreLimits().max_text_chars // 5)
    store.put([StoredItem(NS, "big", text.strip(), key="short key about sailing")])
    got = store.get(NS, ["big"])[0]
    assert got.text == text.strip() and got.key == "short key about sailing"


# -- persistence ---------------------------------------------------------------------------


def test_data_survives_reopen(store_maker) -> None:  # noqa: ANN001
    if not store_maker.persists:
        pytest.skip(f"{store_maker.kind} does not persist")
    first = store_maker.open()
    fill(first)
    created = first.get(NS, ["a1"])[0].created_at
    assert ids(first.search(NS, "tuna", mode="keyword")) == ["a3"]
    first.close()
    again = store_maker.open()
    assert again.count(NS) == 5
    assert again.get(NS, ["a1"])[0].created_at == created
    assert ids(again.search(NS, "tuna", mode="keyword")) == ["a3"]  # side index rebuilt from Chroma
    assert again.search(NS, "The cat Miso likes tuna", limit=1)[0].item.id == "a3"
    assert again.list_namespaces() == [NS]
