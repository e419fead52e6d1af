"""An embedded store's side index needs no sync: every writer goes through it (and a failed write says so)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.memory_stores.chroma import ops, sideindex
from ltm_agent.records import StoredItem

NS = ("tenant",)


def _items(start: int, stop: int, word: str = "lisbon") -> list[StoredItem]:
    return [StoredItem(NS, f"m{i:03}", f"note {i} about {word} trams", {"kind": "turn", "n": i}) for i in range(start, stop)]


def _count_syncs(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"sync": 0, "rebuild": 0}
    sync, rebuild = ops._sync, ops._rebuild

    def counted_sync(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["sync"] += 1
        return (yield from sync(*args, **kwargs))

    def counted_rebuild(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["rebuild"] += 1
        return (yield from rebuild(*args, **kwargs))

    monkeypatch.setattr(ops, "_sync", counted_sync)
    monkeypatch.setattr(ops, "_rebuild", counted_rebuild)
    return calls


def test_own_writes_need_no_sync_or_rebuild(fast_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_syncs(monkeypatch)
    with ChromaStore.persistent(fast_tmp / "s", embedder=HashingEmbedder(64)) as store:
        store.put(_items(0, 30))  # a new namespace: its entry is built by the puts themselves
        store.warm(NS)
        store.put(_items(30, 40, "porto"))
        store.delete(NS, ["m000"])
        keyword = store.search(NS, "porto", mode="keyword", limit=100)
        dense = store.search(NS, "note about porto trams", mode="dense", limit=5)
        assert {h.item.id for h in keyword} == {f"m{i:03}" for i in range(30, 40)}
        assert dense and all(h.item.id != "m000" for h in dense)
        assert len(store.search(NS, "lisbon", mode="keyword", limit=100)) == 29
        assert calls == {"sync": 0, "rebuild": 0}
    # A server store (other writers may exist) still syncs before reads: see test_chroma_store.


def test_store_objects_of_one_directory_share_the_side_index(fast_tmp: Path) -> None:
    with ChromaStore.persistent(fast_tmp / "s", embedder=HashingEmbedder(64)) as first:
        first.put(_items(0, 5))
        with ChromaStore.persistent(fast_tmp / "s", embedder=HashingEmbedder(64)) as second:
            assert len(second.search(NS, "lisbon", mode="keyword", limit=100)) == 5
            second.put(_items(5, 8, "porto"))
            assert {h.item.id for h in first.search(NS, "porto", mode="keyword")} == {"m005", "m006", "m007"}
        assert len(first.search(NS, "trams", mode="keyword", limit=100)) == 8  # the other's close kept it


def test_a_write_that_fails_after_reaching_chroma_makes_the_next_read_sync(
    fast_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ChromaStore.persistent(fast_tmp / "s", embedder=HashingEmbedder(64)) as store:
        store.put(_items(0, 5))
        collection = store._handles[NS]
        real = collection.upsert

        def lands_then_fails(**kwargs):  # noqa: ANN003, ANN202
            real(**kwargs)
            raise RuntimeError("connection dropped after the write")

        monkeypatch.setattr(collection, "upsert", lands_then_fails)
        with pytest.raises(Exception, match="connection dropped"):
            store.put(_items(5, 7, "porto"))
        monkeypatch.setattr(collection, "upsert", real)
        assert store._keyword.get(NS).suspect  # type: ignore[union-attr]
        # What Chroma holds is what search finds, although the side index never saw the write land.
        assert {h.item.id for h in store.search(NS, "porto", mode="keyword")} == {"m005", "m006"}
        assert not store._keyword.get(NS).suspect  # type: ignore[union-attr]


def test_an_entry_that_outgrows_exact_search_hands_dense_to_chroma(
    fast_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sideindex, "EXACT_DENSE_MAX", 20)
    with ChromaStore.persistent(fast_tmp / "s", embedder=HashingEmbedder(64)) as store:
        store.put(_items(0, 15))
        entry = store._keyword.get(NS)
        assert entry is not None and entry.exact
        store.put(_items(15, 30))
        assert not entry.exact and len(entry) == 30
        hits = store.search(NS, "note 29 about lisbon trams", mode="dense", limit=30)
        assert {h.item.id for h in hits} == {f"m{i:03}" for i in range(30)}


def test_the_cache_keeps_its_item_bound_across_namespaces(fast_tmp: Path) -> None:
    with ChromaStore.persistent(fast_tmp / "s", embedder=HashingEmbedder(64)) as store:
        store._keyword.max_items = 25
        for n in range(6):  # six namespaces of 10 items, each read after its write
            namespace = (f"t{n}",)
            store.put([StoredItem(namespace, f"m{i}", f"note {i} lisbon", {"kind": "turn"}) for i in range(10)])
            assert len(store.search(namespace, "lisbon", mode="keyword", limit=100)) == 10
        cached = [ns for ns in [(f"t{n}",) for n in range(6)] if store._keyword.get(ns) is not None]
        assert cached == [("t4",), ("t5",)]  # the least recently used went first
        assert len(store.search(("t0",), "lisbon", mode="keyword", limit=100)) == 10  # rebuilt on demand
