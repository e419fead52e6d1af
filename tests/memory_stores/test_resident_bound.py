"""Chroma's loaded indexes are bounded: past ``max_resident_items`` the embedded system restarts.

Chroma's embedded core keeps every collection index it loaded until its system
stops (measured: 40 MB per 20,000-item namespace written). These tests count
restarts of the real system and check that nothing is lost across them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import InvalidInputError
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.records import StoredItem


def _items(ns: tuple[str, ...], count: int) -> list[StoredItem]:
    return [StoredItem(ns, f"m{i}", f"note {i} of {ns[0]} about trams") for i in range(count)]


def _count_restarts(store: ChromaStore) -> list[int]:
    starts: list[int] = []
    system = store._client._server
    start = system.start

    def counted() -> None:
        starts.append(1)
        start()

    system.start = counted  # the real start, counted
    return starts


def test_writing_past_the_bound_restarts_the_system_and_loses_nothing(tmp_path: Path) -> None:
    with ChromaStore.persistent(tmp_path / "s", embedder=HashingEmbedder(64), max_resident_items=250) as store:
        starts = _count_restarts(store)
        for n in range(6):
            store.put(_items((f"user{n}",), 100))
        assert len(starts) >= 2  # 600 items written into 6 collections, at most 250 loaded at a time
        for n in range(6):
            ns = (f"user{n}",)
            assert store.count(ns) == 100
            assert store.search(ns, "note 7 of trams", mode="dense", limit=100)[0].item.namespace == ns
            assert len(store.search(ns, "trams", mode="keyword", limit=200)) == 100
    with ChromaStore.persistent(tmp_path / "s", embedder=HashingEmbedder(64)) as store:
        assert [store.count((f"user{n}",)) for n in range(6)] == [100] * 6


def test_one_namespace_larger_than_the_bound_never_restarts(tmp_path: Path) -> None:
    with ChromaStore.persistent(tmp_path / "s", embedder=HashingEmbedder(64), max_resident_items=50) as store:
        starts = _count_restarts(store)
        for start in range(0, 300, 100):
            store.put([StoredItem(("big",), f"m{start + i}", f"note {start + i}") for i in range(100)])
        assert starts == [] and store.count(("big",)) == 300


def test_no_bound_never_restarts(tmp_path: Path) -> None:
    with ChromaStore.persistent(tmp_path / "s", embedder=HashingEmbedder(64), max_resident_items=None) as store:
        starts = _count_restarts(store)
        for n in range(6):
            store.put(_items((f"user{n}",), 100))
        assert starts == []


def test_threads_writing_many_namespaces_across_restarts_lose_nothing(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with ChromaStore.persistent(tmp_path / "s", embedder=HashingEmbedder(64), max_resident_items=120) as store:
        starts = _count_restarts(store)

        def write(worker: int) -> None:
            try:
                for n in range(5):
                    ns = (f"w{worker}-{n}",)
                    for batch in range(3):
                        store.put([StoredItem(ns, f"{batch}-{i}", f"worker {worker} item {i}") for i in range(20)])
                        store.search(ns, "worker item", mode="dense", limit=3)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and starts
        assert {store.count((f"w{w}-{n}",)) for w in range(3) for n in range(5)} == {60}


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100", True])
def test_a_bad_bound_is_refused_before_the_directory_is_touched(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidInputError, match="max_resident_items"):
        ChromaStore.persistent(tmp_path / "s", embedder=HashingEmbedder(64), max_resident_items=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "s").exists()


def test_a_namespace_larger_than_the_bound_is_not_reloaded_at_every_switch(tmp_path: Path) -> None:
    with ChromaStore.persistent(tmp_path / "s", embedder=HashingEmbedder(64), max_resident_items=150) as store:
        store.put(_items(("big",), 400))
        store.put(_items(("small",), 10))
        starts = _count_restarts(store)
        for n in range(10):  # alternate writes (a write loads the index): the big one is kept through a restart
            store.put([StoredItem(("big",), f"b{n}", f"later note {n}")])
            store.put([StoredItem(("small",), f"s{n}", f"later note {n}")])
        assert 1 <= len(starts) <= 2  # not one per switch
        assert store.count(("big",)) == 410 and store.count(("small",)) == 20
