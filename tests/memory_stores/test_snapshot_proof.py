"""The write-position proof of a side-index snapshot: nothing written since it was saved, so no sync.

Real Chroma everywhere. The instrument is a counting wrapper around the real
``chromadb`` ``Collection.get`` (and ``count``), so a where-filtered read shows
up whichever path issued it; writes made "elsewhere" are made by a second
process with a plain ``chromadb.PersistentClient`` or through a ``chroma run``
server on the same directory, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from chromadb.api.models.Collection import Collection

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.memory_stores.chroma.layout import collection_name
from ltm_agent.memory_stores.chroma.snapshot import SnapshotDir
from ltm_agent.memory_stores.chroma.writepos import write_position, written_since
from ltm_agent.records import StoredItem

NS = ("tenant", "a")
WORDS = "lisbon trams porto river wine garden trip plans beach museum coffee train".split()


def _items(start: int, stop: int) -> list[StoredItem]:
    return [
        StoredItem(NS, f"m{i:04}", f"note {i} about {WORDS[i % len(WORDS)]} and {WORDS[(i * 5) % len(WORDS)]}", {"kind": "turn", "n": i})
        for i in range(start, stop)
    ]


def _open(root: Path) -> ChromaStore:
    return ChromaStore.persistent(root, embedder=HashingEmbedder(64))


def _filled(root: Path) -> Path:
    with _open(root) as store:
        store.put(_items(0, 80))
        store.warm(NS)  # cached, so the close saves a snapshot
    assert SnapshotDir(root).path(NS).is_file()
    return root


@pytest.fixture
def chroma_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every ``get`` and ``count`` on any real Chroma collection object, with its arguments."""
    calls: list[tuple[str, dict[str, Any]]] = []
    get, count = Collection.get, Collection.count

    def counted_get(self: Collection, *args: Any, **kwargs: Any) -> Any:
        calls.append(("get", dict(kwargs)))
        return get(self, *args, **kwargs)

    def counted_count(self: Collection) -> int:
        calls.append(("count", {}))
        return count(self)

    monkeypatch.setattr(Collection, "get", counted_get)
    monkeypatch.setattr(Collection, "count", counted_count)
    yield calls


def _where_gets(calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [kw for method, kw in calls if method == "get" and kw.get("where")]


def _answers(store: ChromaStore) -> list[Any]:
    out = []
    for query in ("lisbon trams", "wine", "note 7", "zeppelin"):
        for mode in ("dense", "keyword"):
            out.append([(h.item.id, h.item.text, round(h.score, 6)) for h in store.search(NS, query, mode=mode, limit=10)])
    return out


# -- the proof holds: no sync at all ---------------------------------------------


def test_a_store_reopened_after_no_write_issues_no_where_filtered_get(fast_tmp: Path, chroma_reads: list) -> None:
    root = _filled(fast_tmp / "s")
    with _open(root) as store:
        chroma_reads.clear()
        proven = _answers(store)
        assert _where_gets(chroma_reads) == [] and ("count", {}) not in chroma_reads
    # The control: the same snapshot without its recorded position syncs (the instrument can fail).
    _drop_position(SnapshotDir(root).path(NS))
    with _open(root) as store:
        chroma_reads.clear()
        synced = _answers(store)
        assert _where_gets(chroma_reads)
    shutil.rmtree(SnapshotDir(root).folder)
    with _open(root) as store:
        store.warm(NS)
        assert proven == synced == _answers(store)  # and a rebuild from Chroma agrees
    assert any(proven)


def _drop_position(path: Path) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    header = json.loads(arrays["header"].tobytes())
    assert header.pop("position")["seq"] > 0
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def test_a_snapshot_without_a_proof_is_saved_again_with_one(fast_tmp: Path, chroma_reads: list) -> None:
    """An older snapshot (or a stale position): one sync, then the next process needs none."""
    root = _filled(fast_tmp / "s")
    _drop_position(SnapshotDir(root).path(NS))
    with _open(root) as store:
        store.search(NS, "wine", mode="keyword")
    with _open(root) as store:
        chroma_reads.clear()
        store.search(NS, "wine", mode="keyword")
        assert _where_gets(chroma_reads) == []


# -- the proof fails: every write made elsewhere is seen -------------------------

_PLAIN = """
import sys, json, chromadb
root, name, action = sys.argv[1], sys.argv[2], sys.argv[3]
collection = chromadb.PersistentClient(root).get_collection(name)
got = collection.get(ids=["m0003"], include=["metadatas", "embeddings"])
meta, vector = dict(got["metadatas"][0]), list(got["embeddings"][0])
newer = dict(meta, _updated_us=meta["_updated_us"] + 1000, _writer="plain")
if action == "update":
    collection.update(ids=["m0003"], documents=["zeppelin by update"], metadatas=[newer], embeddings=[vector])
elif action == "upsert":
    collection.upsert(ids=["m0003"], documents=["zeppelin by upsert"], metadatas=[newer], embeddings=[vector])
elif action == "delete-and-readd":  # the same id and count, a new text
    collection.delete(ids=["m0003"])
    collection.add(ids=["m0003"], documents=["zeppelin re-added"], metadatas=[newer], embeddings=[vector])
elif action == "swap":  # one delete and one add: the count stays
    collection.delete(ids=["m0004"])
    collection.add(ids=["z1"], documents=["zeppelin swapped in"], metadatas=[newer], embeddings=[vector])
elif action == "unstamped":  # a plain client's edit: the text changes, the ltm-agent stamp does not
    collection.update(ids=["m0003"], documents=["zeppelin unstamped"], embeddings=[vector])
elif action == "many":  # enough writes that Chroma purges its log past the snapshot's position
    for start in range(0, 1500, 100):
        batch = [f"many{i}" for i in range(start, start + 100)]
        collection.add(ids=batch, documents=["zeppelin many"] * 100, metadatas=[newer] * 100, embeddings=[vector] * 100)
print("done")
"""

_EXPECTED = {
    "update": {"m0003": "zeppelin by update"},
    "upsert": {"m0003": "zeppelin by upsert"},
    "delete-and-readd": {"m0003": "zeppelin re-added"},
    "swap": {"z1": "zeppelin swapped in"},
    "unstamped": {"m0003": "zeppelin unstamped"},  # the where-filtered sync alone misses this one
}


def _plain_write(root: Path, action: str) -> None:
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    done = subprocess.run(
        [sys.executable, "-c", _PLAIN, str(root), collection_name(NS), action], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0 and "done" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("action", sorted(_EXPECTED))
def test_a_write_by_another_process_after_the_snapshot_is_seen(fast_tmp: Path, action: str, chroma_reads: list) -> None:
    root = _filled(fast_tmp / "s")
    position = write_position(root, _collection_id(root))
    _plain_write(root, action)
    assert write_position(root, _collection_id(root)) != position
    with _open(root) as store:
        chroma_reads.clear()
        found = {h.item.id: h.item.text for h in store.search(NS, "zeppelin", mode="keyword", limit=10)}
        assert found == _EXPECTED[action]
        dense = {h.item.id: h.item.text for h in store.search(NS, "zeppelin", mode="dense", limit=100)}
        assert {i: dense.get(i) for i in _EXPECTED[action]} == _EXPECTED[action]  # the vectors too (exact search)
        assert (store.get(NS, ["m0004"])[0] is None) == (action == "swap")
        # Caught up from the ids Chroma's log lists since the snapshot: gets by id, no filter.
        assert _where_gets(chroma_reads) == [] and any(kw.get("ids") for _, kw in chroma_reads)


def test_writes_past_what_the_log_keeps_are_found_by_the_sync(fast_tmp: Path, chroma_reads: list) -> None:
    root = _filled(fast_tmp / "s")
    position = write_position(root, _collection_id(root))
    assert position is not None
    _plain_write(root, "many")
    assert written_since(root, _collection_id(root), position) is None  # purged past the snapshot's row
    with _open(root) as store:
        chroma_reads.clear()
        found = store.search(NS, "zeppelin", mode="keyword", limit=2000)
        assert {h.item.id for h in found} == {f"many{i}" for i in range(1500)}
        assert _where_gets(chroma_reads)


def _collection_id(root: Path) -> str:
    import chromadb

    return str(chromadb.PersistentClient(root).get_collection(collection_name(NS)).id)


def test_a_write_through_a_server_on_the_same_directory_is_seen(fast_tmp: Path) -> None:
    root = _filled(fast_tmp / "s")
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:
        pytest.skip("the chroma executable is not installed next to this Python")
    import chromadb
    import httpx

    with _free_port() as port:
        pass
    log = (fast_tmp / "server.log").open("wb")
    server = subprocess.Popen([exe, "run", "--path", str(root), "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (fast_tmp / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "chroma run did not answer within 30 s"
            time.sleep(0.1)
        collection = chromadb.HttpClient(host="127.0.0.1", port=port).get_collection(collection_name(NS))
        got = collection.get(ids=["m0005"], include=["metadatas", "embeddings"])
        meta = dict(got["metadatas"][0], _writer="server")
        meta["_updated_us"] += 1000
        collection.update(ids=["m0005"], documents=["zeppelin from the server"], metadatas=[meta], embeddings=[list(got["embeddings"][0])])
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    with _open(root) as store:
        assert [h.item.text for h in store.search(NS, "zeppelin", mode="keyword")] == ["zeppelin from the server"]


class _free_port:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()


# -- no proof: the position cannot be read or does not belong here ----------------


def test_a_copied_store_directory_does_not_trust_the_position(fast_tmp: Path, chroma_reads: list) -> None:
    """A copy has another database file: its first read syncs (the copy may have diverged)."""
    root = _filled(fast_tmp / "s")
    copy = fast_tmp / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("ltm.lock"))
    with _open(copy) as store:
        chroma_reads.clear()
        assert store.search(NS, "wine", mode="keyword")
        assert _where_gets(chroma_reads)
    with _open(root) as store:
        chroma_reads.clear()
        store.search(NS, "wine", mode="keyword")
        assert _where_gets(chroma_reads) == []


def test_a_purged_log_row_means_a_sync(fast_tmp: Path, chroma_reads: list) -> None:
    """The row the position names is gone (deleted behind Chroma's back): no proof, a sync."""
    root = _filled(fast_tmp / "s")
    with sqlite3.connect(root / "chroma.sqlite3") as db:
        db.execute("DELETE FROM embeddings_queue")
    assert write_position(root, _collection_id(root)) is None
    with _open(root) as store:
        chroma_reads.clear()
        assert len(store.search(NS, "wine", mode="keyword", limit=100)) == sum("wine" in i.text for i in _items(0, 80))
        assert _where_gets(chroma_reads)


# -- write_position itself ---------------------------------------------------------


def test_every_kind_of_write_moves_the_position_and_reads_do_not(fast_tmp: Path) -> None:
    import chromadb

    client = chromadb.PersistentClient(fast_tmp / "db")
    mine, other = client.create_collection("mine"), client.create_collection("other")
    position = write_position(fast_tmp / "db", str(mine.id))
    assert position is not None and position["seq"] is None  # never written to
    seen = [position]
    vector = [[0.5, 0.25, 0.125]]

    def moved() -> bool:
        now = write_position(fast_tmp / "db", str(mine.id))
        assert now is not None
        changed = now != seen[-1]
        seen.append(now)
        return changed

    mine.add(ids=["a", "b"], embeddings=vector * 2, documents=["x", "y"])
    assert moved()
    other.add(ids=["a"], embeddings=vector)  # another collection
    assert not moved()
    mine.get(), mine.query(query_embeddings=vector, n_results=1), mine.count()
    assert not moved()
    mine.update(ids=["a"], documents=["x2"], embeddings=vector)
    assert moved()
    mine.upsert(ids=["a"], embeddings=vector, documents=["x2"])  # the same values again: still a write
    assert moved()
    mine.delete(ids=["b"])
    assert moved()
    mine.add(ids=["b"], embeddings=vector, documents=["y"])  # the id re-added
    assert moved()
    mine.delete(where={"nothing": 1})  # matches nothing: no log row, no change
    assert not moved()
    assert len({json.dumps(p, sort_keys=True) for p in seen}) == 6
    assert write_position(fast_tmp / "db", "no-such-collection") is None
    assert write_position(fast_tmp / "nowhere", str(mine.id)) is None


def test_a_locked_database_gives_no_position_and_no_wait(fast_tmp: Path) -> None:
    import chromadb

    collection = chromadb.PersistentClient(fast_tmp / "db").create_collection("mine")
    collection.add(ids=["a"], embeddings=[[1.0, 0.0]])
    holder = sqlite3.connect(fast_tmp / "db" / "chroma.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        assert write_position(fast_tmp / "db", str(collection.id)) is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert write_position(fast_tmp / "db", str(collection.id)) is not None


def test_a_database_in_wal_mode_gives_no_proof_and_answers_alike(fast_tmp: Path, chroma_reads: list) -> None:
    """In WAL mode a reader in Chroma's process is not isolated from its writes: no proof, a sync."""
    root = _filled(fast_tmp / "s")
    with _open(root) as store:
        store.search(NS, "wine", mode="keyword")
        expected = _answers(store)
    with sqlite3.connect(root / "chroma.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    with _open(root) as store:
        chroma_reads.clear()
        assert _answers(store) == expected
        assert _where_gets(chroma_reads)
        store.put([StoredItem(NS, "late", "late zeppelin")])
    with _open(root) as store:
        assert [h.item.id for h in store.search(NS, "zeppelin", mode="keyword")] == ["late"]


def test_a_write_under_way_gives_no_position(fast_tmp: Path) -> None:
    """A rollback journal exists for the whole of a write: while it does, nothing is proven."""
    import chromadb

    collection = chromadb.PersistentClient(fast_tmp / "db").create_collection("mine")
    collection.add(ids=["a"], embeddings=[[1.0, 0.0]])
    assert write_position(fast_tmp / "db", str(collection.id)) is not None
    journal = fast_tmp / "db" / "chroma.sqlite3-journal"
    journal.write_bytes(b"")
    try:
        assert write_position(fast_tmp / "db", str(collection.id)) is None
    finally:
        journal.unlink()
