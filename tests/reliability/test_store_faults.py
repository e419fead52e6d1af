"""Store faults, one test per failure of issue 15: crashes, other processes, frozen servers.

Each test reproduces the failure the issue measured (it failed before the fix).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from reliability_helpers import OwnServer, run_child, spawn_child

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import StoreConnectionError, StoreInUseError
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.records import StoredItem

NS = ("user-1",)


def _item(i: int, ns: tuple[str, ...] = NS, text: str | None = None) -> StoredItem:
    return StoredItem(ns, f"m{i}", text or f"memory number {i} about lisbon trams")


# -- 1. a crash inside a write transaction leaves a hot journal ---------------

_HOLD_TRANSACTION = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA cache_size=1")  # spill pages to the database file: the journal must be hot
c.execute("BEGIN IMMEDIATE")
c.execute("UPDATE collections SET name = name || '-half-written'")
c.execute("CREATE TABLE half_written(x)")
c.execute("INSERT INTO half_written VALUES (zeroblob(200000))")
print("ready", flush=True)
time.sleep(120)
"""


def test_store_opens_after_a_crash_left_a_hot_journal(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with ChromaStore.persistent(root, embedder=HashingEmbedder(64)) as store:
        store.put([_item(i) for i in range(5)])
    child = spawn_child(_HOLD_TRANSACTION, str(root / "chroma.sqlite3"))
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.kill()
    child.wait(10)
    assert (root / "chroma.sqlite3-journal").stat().st_size > 0
    with ChromaStore.persistent(root, embedder=HashingEmbedder(64)) as store:  # was CorruptStoreError
        assert store.count(NS) == 5
        assert len(store.search(NS, "lisbon trams", mode="keyword", limit=50)) == 5


# -- 4. a second process on one embedded directory is refused ---------------

_OPEN_SECOND = """
import sys
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import StoreInUseError
from ltm_agent.memory_stores import ChromaStore
try:
    ChromaStore.persistent(sys.argv[1], embedder=HashingEmbedder(64)).close()
    print("opened")
except StoreInUseError as exc:
    print("refused", exc)
"""


def test_second_process_on_an_embedded_directory_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = ChromaStore.persistent(root, embedder=HashingEmbedder(64))
    again = ChromaStore.persistent(root, embedder=HashingEmbedder(64))  # one process may open it twice
    try:
        out = run_child(_OPEN_SECOND, str(root)).stdout
        assert out.startswith("refused"), out
        assert "ChromaStore.server(" in out and "chroma run --path" in out
    finally:
        store.close()
    assert run_child(_OPEN_SECOND, str(root)).stdout.startswith("refused")  # `again` still holds it
    again.close()
    assert run_child(_OPEN_SECOND, str(root)).stdout.startswith("opened")


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    root = tmp_path / "store"
    holder = spawn_child(
        "import sys, time\nfrom ltm_agent.embeddings import HashingEmbedder\n"
        "from ltm_agent.memory_stores import ChromaStore\n"
        "s = ChromaStore.persistent(sys.argv[1], embedder=HashingEmbedder(64))\nprint('ready', flush=True)\n"
        "time.sleep(120)\n",
        str(root),
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    with pytest.raises(StoreInUseError, match="another process"):
        ChromaStore.persistent(root, embedder=HashingEmbedder(64))
    holder.kill()
    holder.wait(10)
    ChromaStore.persistent(root, embedder=HashingEmbedder(64)).close()


# -- 3. a frozen server: bounded time, a retryable error, then recovery -----


def test_frozen_server_fails_in_bounded_time_and_recovers(own_server: OwnServer) -> None:
    store = ChromaStore.server(own_server.url, embedder=HashingEmbedder(64), timeout=1.0, retries=1)
    try:
        store.put([_item(i) for i in range(3)])
        own_server.freeze()
        started = time.monotonic()
        with pytest.raises(StoreConnectionError, match="did not answer within 1 s after 2 tries"):
            store.count(NS)
        # Two tries of 1 s plus one backoff; far from the hang the issue measured (> 120 s).
        assert time.monotonic() - started < 15
        with pytest.raises(StoreConnectionError, match="safe to retry"):
            ChromaStore.server(own_server.url, embedder=HashingEmbedder(64), timeout=1.0)
        own_server.thaw()
        assert store.count(NS) == 3  # the same object works again
    finally:
        own_server.thaw()
        store.close()


def test_restarted_server_keeps_every_acknowledged_write(own_server: OwnServer) -> None:
    store = ChromaStore.server(own_server.url, embedder=HashingEmbedder(64), timeout=2.0, retries=3)
    acknowledged: list[str] = []
    try:
        for i in range(5):
            store.put([_item(i)])
            acknowledged.append(f"m{i}")
        own_server.stop()
        with pytest.raises(StoreConnectionError, match="safe to retry"):
            store.put([_item(99)])
        own_server.start()
        store.put([_item(5)])  # the same object recovers once the server is back
        acknowledged.append("m5")
        found = {i.id for i in store.list(NS)}
        assert set(acknowledged) <= found and len(found) <= len(acknowledged) + 1
        assert {h.item.id for h in store.search(NS, "lisbon trams", mode="keyword", limit=50)} == found
    finally:
        store.close()


def test_timeout_and_retries_are_validated() -> None:
    from ltm_agent.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="timeout must be seconds"):
        ChromaStore.server("http://127.0.0.1:9", embedder=HashingEmbedder(64), timeout=0)
    with pytest.raises(InvalidInputError, match="retries must be an int"):
        ChromaStore.server("http://127.0.0.1:9", embedder=HashingEmbedder(64), retries=-1)
