"""``search(limit=None)`` returns every match, best first, in both modes and every store (was a TypeError in dense)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore, InMemoryStore
from ltm_agent.records import StoredItem
from ltm_agent.store import MemoryStore

NS = ("t",)


@pytest.fixture(params=["memory", "chroma", "chroma-synced"])
def store(request: pytest.FixtureRequest, fast_tmp: Path):  # noqa: ANN201
    if request.param == "memory":
        yield InMemoryStore(embedder=HashingEmbedder(64))
        return
    with ChromaStore.persistent(fast_tmp / "s", embedder=HashingEmbedder(64)) as chroma:
        if request.param == "chroma-synced":
            chroma._keyword.exclusive = False  # as a server store: the side index syncs before reads
        yield chroma


@pytest.mark.parametrize("mode", ["dense", "keyword"])
def test_no_limit_returns_every_match(store: MemoryStore, mode: str) -> None:
    words = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heron", "inlet", "juniper", "kelp", "lagoon"]
    texts = [f"{words[i % 12]} {words[i // 12 + 5]} {'lisbon ' * (1 + i % 3)}trams" for i in range(23)]
    store.put([StoredItem(NS, f"m{i:02}", text, {"kind": "turn"}) for i, text in enumerate(texts)])
    everything = store.search(NS, "lisbon trams", mode=mode, limit=None)  # type: ignore[arg-type]
    assert sorted(h.item.id for h in everything) == [f"m{i:02}" for i in range(23)]
    assert [h.score for h in everything] == sorted((h.score for h in everything), reverse=True)
    # (Chroma's HNSW cuts equal scores its own way, and hashing vectors tie: compare the scores.)
    top = store.search(NS, "lisbon trams", mode=mode, limit=5)
    assert [h.score for h in top] == [h.score for h in everything[:5]]
    later = store.search(NS, "lisbon trams", mode=mode, limit=None, offset=20)  # type: ignore[arg-type]
    assert [h.score for h in later] == [h.score for h in everything[20:]] and len(later) == 3
    assert store.search(("empty",), "lisbon", mode=mode, limit=None) == []  # type: ignore[arg-type]
