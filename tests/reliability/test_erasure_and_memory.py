"""Erasure under concurrent writers, and the memory bound's restarts: nothing lost, nothing left.

A namespace forgotten while other threads write (creating collections) must
leave its text in no file of the store directory (scanned once every call has
returned, and after the close), and no other thread's write may be lost or fail. The memory bound restarts the
embedded Chroma system under writers and readers: every write must survive,
and search must agree with Chroma afterwards.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from reliability_helpers import record, trials

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.records import StoredItem


def _holding(root: Path, needle: bytes) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def _writers(store: ChromaStore, names: list[str], batches: int, size: int, errors: list[BaseException]) -> list[threading.Thread]:
    def write(name: str) -> None:
        try:
            for batch in range(batches):
                ns = (name,)
                store.put([StoredItem(ns, f"{batch}-{i}", f"{name} note {batch} {i} about trams") for i in range(size)])
                store.search(ns, "trams note", mode="dense", limit=3)
                store.search(ns, "trams", mode="keyword", limit=3)
        except BaseException as exc:  # noqa: BLE001 - counted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    return threads


def test_forgetting_while_others_write_leaves_no_byte_and_loses_no_write(tmp_path: Path) -> None:
    runs, failures, checked = trials(ci=2, heavy=20), 0, 0
    for trial in range(runs):
        root = Path(tempfile.mkdtemp(dir=tmp_path)) / "s"
        secret = f"okapi-lantern-{trial}-quartz"
        errors: list[BaseException] = []
        with ChromaStore.persistent(root, embedder=HashingEmbedder(64)) as store:
            victim = ("victim",)
            store.put([StoredItem(victim, f"v{i}", f"my secret is {secret} #{i}") for i in range(60)])
            store.search(victim, secret, mode="keyword")
            writers = _writers(store, ["alpha", "beta"], batches=6, size=25, errors=errors)
            store.delete(victim)
            for thread in writers:
                thread.join()
            left_after_delete = _holding(root, secret.encode())  # every call has returned; the store is open
            counts = [store.count((name,)) for name in ("alpha", "beta")]
        left_after_close = _holding(root, secret.encode())
        with ChromaStore.persistent(root, embedder=HashingEmbedder(64)) as store:
            reopened = [store.count((name,)) for name in ("alpha", "beta")] + [store.count(("victim",))]
        ok = not errors and not left_after_delete and not left_after_close
        ok = ok and counts == [150, 150] and reopened == [150, 150, 0]
        failures += 0 if ok else 1
        checked += 300 + 2  # every acknowledged write, and two scans of every file
    record("erasure: forget a namespace while 2 threads write, every file scanned", trials=runs, ops=checked, failures=failures)
    assert failures == 0


def test_memory_bound_restarts_under_writers_and_readers_lose_nothing(tmp_path: Path) -> None:
    runs, failures, checked = trials(ci=1, heavy=10), 0, 0
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(dir=tmp_path)) / "s"
        errors: list[BaseException] = []
        names = [f"user{n}" for n in range(9)]
        with ChromaStore.persistent(root, embedder=HashingEmbedder(64), max_resident_items=120) as store:
            starts: list[int] = []
            system, start = store._client._server, store._client._server.start
            system.start = lambda: (starts.append(1), start())[1]  # the real start, counted
            threads = [t for group in (names[0::3], names[1::3], names[2::3]) for t in _writers(store, group, 4, 20, errors)]
            for thread in threads:
                thread.join()
            ok = not errors and bool(starts)
            for name in names:
                ns = (name,)
                everything = {i.id for i in store.list(ns)}
                dense = {h.item.id for h in store.search(ns, "trams note", mode="dense", limit=200)}
                keyword = {h.item.id for h in store.search(ns, "trams", mode="keyword", limit=200)}
                ok = ok and len(everything) == 80 and dense == everything == keyword
        failures += 0 if ok else 1
        checked += len(names) * 80
    record("memory bound: 9 namespaces written by 3 threads through restarts of the embedded system",
           trials=runs, ops=checked, failures=failures)
    assert failures == 0
