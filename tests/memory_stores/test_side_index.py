"""The incremental BM25 index and the side-index cache (no Chroma needed)."""

from __future__ import annotations

import random

import numpy as np

from ltm_agent.memory_stores._keyword import KeywordIndex
from ltm_agent.memory_stores.chroma.sideindex import SideCache, SideEntry
from ltm_agent.records import StoredItem
from ltm_agent.store import SearchOp


def _docs(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(60)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 9))) for _ in range(n)]


def test_updating_in_place_ranks_exactly_like_building_from_scratch() -> None:
    docs = _docs(300)
    index = KeywordIndex()
    live: dict[str, str] = {}
    rng = random.Random(1)
    for step in range(900):  # inserts, replaces and removals, past several tombstone sweeps
        key = f"d{rng.randrange(200)}"
        if rng.random() < 0.3:
            index.remove(key)
            live.pop(key, None)
        else:
            text = docs[step % len(docs)]
            index.upsert(key, text, {"n": step % 3})
            live[key] = text
    rebuilt = KeywordIndex(list(live), list(live.values()), [{"n": 0}] * len(live))
    assert len(index) == len(rebuilt) == len(live)
    for query in docs[:40]:
        got, want = index.search(query, limit=15), rebuilt.search(query, limit=15)
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want])


def test_removed_documents_never_come_back() -> None:
    index = KeywordIndex(["a", "b"], ["red apples", "red pears"], [{}, {}])
    assert index.remove("a") and not index.remove("a")
    assert [i for i, _ in index.search("red")] == ["b"]
    index.upsert("b", "green pears", {})
    assert index.search("red") == []


def _item(i: int, text: str = "note") -> StoredItem:
    return StoredItem(("ns",), f"i{i:03}", f"{text} {i}", metadata={"even": i % 2 == 0})


def test_exact_dense_in_the_side_entry_breaks_ties_by_id_and_filters() -> None:
    entry = SideEntry(exact=True)
    vectors = np.tile(np.array([1.0, 0.0], dtype=np.float32), (10, 1))
    vectors[7] = [0.0, 1.0]
    entry.apply([_item(i) for i in range(10)], [(i, "w") for i in range(10)], vectors)
    op = SearchOp(("ns",), "q", limit=3)
    assert [h.item.id for h in entry.dense(op, np.array([1.0, 0.0], dtype=np.float32))] == ["i000", "i001", "i002"]
    filtered = op._replace(filter={"even": False}, limit=2)
    assert [h.item.id for h in entry.dense(filtered, np.array([0.0, 1.0], dtype=np.float32))] == ["i007", "i001"]
    entry.remove(["i007"])
    assert "i007" not in {h.item.id for h in entry.dense(op._replace(limit=20), np.array([0.0, 1.0], dtype=np.float32))}


def test_cache_drops_least_recently_used_entries_beyond_its_item_budget() -> None:
    cache = SideCache(max_items=25)
    for n in range(3):
        entry = SideEntry(exact=False)
        entry.apply([_item(i) for i in range(10)], [(i, "w") for i in range(10)], None)
        cache.install((f"ns{n}",), entry, cache.generation((f"ns{n}",)))
        cache.get(("ns0",))  # ns0 stays recently used
    assert cache.get(("ns0",)) is not None and cache.get(("ns2",)) is not None and cache.get(("ns1",)) is None


def test_an_entry_built_while_an_own_write_landed_is_suspect() -> None:
    cache = SideCache()
    generation = cache.generation(("ns",))
    cache.wrote(("ns",))  # an own write lands while the entry is being rebuilt
    entry = SideEntry(exact=False)
    cache.install(("ns",), entry, generation)
    assert entry.suspect  # its next sync looks at every writer's recent records
