"""Side-index snapshots of an embedded store: a cold first query loads a file, answers alike, trusts nothing.

Real Chroma everywhere; the only instrument is a wrapper around the store's own driver call
(``ChromaDriver._call``) that records which Chroma methods ran with which arguments.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.live import SESSION_KIND
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.memory_stores.chroma.snapshot import FOLDER, SnapshotDir
from ltm_agent.records import StoredItem

NS, OTHER = ("tenant", "a"), ("tenant", "b")
QUERIES = ["lisbon trams", "porto river wine", "garden", "note 7", "secret plans for the trip"]
WORDS = "lisbon trams porto river wine garden trip plans beach museum coffee train".split()


def _items(namespace: tuple[str, ...], start: int, stop: int, tag: str = "") -> list[StoredItem]:
    items = []
    for i in range(start, stop):
        text = f"note {i} {tag} about {WORDS[i % len(WORDS)]} and {WORDS[(i * 7) % len(WORDS)]}"
        key = f"key {i} {WORDS[(i * 3) % len(WORDS)]}" if i % 4 == 0 else None
        items.append(StoredItem(namespace, f"m{i:04}", text, {"kind": "turn", "n": i, "odd": i % 2 == 1}, key=key))
    return items


def _fill(store: ChromaStore) -> None:
    store.put(_items(NS, 0, 120) + _items(OTHER, 0, 30))
    store.put([StoredItem(NS, "s1", "bookkeeping", {"kind": SESSION_KIND})])  # in the entry, not in BM25
    store.put(_items(NS, 10, 20, tag="rewritten"))  # replaces: tombstones in the live index
    store.delete(NS, [f"m{i:04}" for i in range(100, 110)])


def _open(root: Path) -> ChromaStore:
    return ChromaStore.persistent(root, embedder=HashingEmbedder(64))


def _answers(store: ChromaStore, namespace: tuple[str, ...] = NS) -> list[Any]:
    """Dense first (a cold dense query loads the snapshot too), then keyword, with a filter each."""
    out: list[Any] = []
    for query in QUERIES:
        for mode in ("dense", "keyword"):
            for where in (None, {"odd": True}):
                hits = store.search(namespace, query, mode=mode, filter=where, limit=15, with_vectors=mode == "dense")
                out.append([(h.item, h.score, None if h.item.vector is None else np.asarray(h.item.vector).tobytes()) for h in hits])
    return out


def _record_calls(store: ChromaStore) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    call = store._call

    def recorded(method: Callable[..., Any], request: Any, handles: Any) -> Any:
        calls.append((request.method, dict(request.kwargs)))
        return call(method, request, handles)

    store._call = recorded  # type: ignore[method-assign]
    return calls


def _full_reads(calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Chroma gets that read a namespace without narrowing it (what a rebuild does)."""
    return [kw for method, kw in calls if method == "get" and not kw.get("where") and not kw.get("ids")]


def _snapshot(root: Path, namespace: tuple[str, ...] = NS) -> Path:
    return SnapshotDir(root).path(namespace)


# -- the same answers, and no namespace read -----------------------------------


def test_a_reopened_store_answers_alike_with_and_without_its_snapshot(fast_tmp: Path) -> None:
    root = fast_tmp / "s"
    with _open(root) as store:
        _fill(store)
        store.warm(NS)
        live = _answers(store)
    assert _snapshot(root).is_file() and _snapshot(root, OTHER).is_file()
    written = _snapshot(root).stat().st_mtime_ns
    with _open(root) as store:
        calls = _record_calls(store)
        loaded = _answers(store)
        assert _full_reads(calls) == [] and not any(m == "query" for m, _ in calls)  # exact, from the snapshot
    assert _snapshot(root).stat().st_mtime_ns == written  # nothing changed: not rewritten
    shutil.rmtree(root / FOLDER)
    with _open(root) as store:
        store.warm(NS)  # a rebuild from Chroma
        rebuilt = _answers(store)
    assert loaded == rebuilt == live
    assert any(loaded)


def test_the_first_query_after_reopen_reads_no_namespace_from_chroma(fast_tmp: Path) -> None:
    root = fast_tmp / "s"
    with _open(root) as store:
        store.put(_items(NS, 0, 300))
    with _open(root) as store:
        calls = _record_calls(store)
        hits = store.search(NS, "porto", mode="keyword", limit=500)
        assert {h.item.id for h in hits} == {f"m{i:04}" for i in range(300) if "porto" in _items(NS, i, i + 1)[0].text}
        assert _full_reads(calls) == []
        assert [m for m, _ in calls] == ["get_collection"]  # nothing written since: no sync (test_snapshot_proof.py)


# -- other processes: later writes, deletes, crashes --------------------------

_CHILD = """
import os, signal, sys
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.records import StoredItem
root, action = sys.argv[1], sys.argv[2]
a, b = ("tenant", "a"), ("tenant", "b")
store = ChromaStore.persistent(root, embedder=HashingEmbedder(64))
if action == "write":
    store.search(a, "lisbon", mode="keyword")  # namespace a: its snapshot is loaded, then written to
    store.put([StoredItem(a, f"late{i}", f"late zeppelin note {i}") for i in range(5)])
    store.put([StoredItem(a, "m0003", "rewritten by a later zeppelin process")])
    store.put([StoredItem(b, "late-b", "zeppelin in b, written without reading b")])
elif action == "delete":
    store.delete(a, ["m0001", "m0002"])
elif action == "skewed":  # another writer whose clock runs 1 s behind the snapshot's newest stamp
    import json, numpy as np
    from ltm_agent.memory_stores.chroma.snapshot import SnapshotDir
    with np.load(SnapshotDir(root).path(a), allow_pickle=False) as data:
        high = json.loads(data["header"].tobytes())["high_us"]
    collection = store._client.get_collection(SnapshotDir(root).path(a).stem)
    meta = {"kind": "turn", "_created_us": high - 10**6, "_updated_us": high - 10**6, "_writer": "elsewhere"}
    collection.upsert(ids=["skewed"], documents=["a skewed wombat"], metadatas=[meta], embeddings=[[1.0] * 64])
print("acknowledged", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close(): no new snapshot
"""


def _child(root: Path, action: str) -> None:
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(root), action], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == -signal.SIGKILL and "acknowledged" in done.stdout, done.stderr[-2000:]


def test_writes_of_a_later_process_killed_before_closing_are_found(fast_tmp: Path) -> None:
    root = fast_tmp / "s"
    with _open(root) as store:
        _fill(store)
    before = _snapshot(root).read_bytes()
    _child(root, "write")
    assert _snapshot(root).read_bytes() == before  # the child never saved: the old snapshot is all there is
    with _open(root) as store:
        calls = _record_calls(store)
        found = {h.item.id: h.item.text for h in store.search(NS, "zeppelin", mode="keyword", limit=50)}
        assert found == {**{f"late{i}": f"late zeppelin note {i}" for i in range(5)}, "m0003": "rewritten by a later zeppelin process"}
        assert [h.item.id for h in store.search(OTHER, "zeppelin", mode="keyword")] == ["late-b"]
        assert _full_reads(calls) == []  # found by syncing the snapshots, not by rebuilding
        with_snapshot = _answers(store) + _answers(store, OTHER)
    shutil.rmtree(root / FOLDER)
    with _open(root) as store:
        store.warm(NS), store.warm(OTHER)
        assert _answers(store) + _answers(store, OTHER) == with_snapshot


def test_a_writer_with_a_slow_clock_is_found(fast_tmp: Path) -> None:
    """Records of writers the snapshot does not know are fetched from up to SKEW_US before its newest."""
    root = fast_tmp / "s"
    with _open(root) as store:
        _fill(store)
    _child(root, "skewed")
    with _open(root) as store:
        calls = _record_calls(store)
        assert [h.item.id for h in store.search(NS, "wombat", mode="keyword")] == ["skewed"]
        assert _full_reads(calls) == []


def test_deletes_of_a_later_process_are_found(fast_tmp: Path) -> None:
    root = fast_tmp / "s"
    with _open(root) as store:
        _fill(store)
    stale = _snapshot(root).read_bytes()
    _child(root, "delete")
    assert not _snapshot(root).exists()  # the delete removed it first, and the child died before closing
    with _open(root) as store:
        assert store.get(NS, ["m0001", "m0002", "m0003"])[:2] == [None, None]
        ids = {h.item.id for h in store.search(NS, "note", mode="keyword", limit=500)}
        assert "m0001" not in ids and "m0002" not in ids and "m0003" in ids
        expected = _answers(store)
    # The safety nets under that rule: a snapshot that predates a delete (put back by hand here)
    # is caught up from the ids Chroma's log lists since its position (test_snapshot_proof.py);
    # without a position, it holds more items than Chroma, the count says so and it is rebuilt.
    _snapshot(root).write_bytes(stale)
    with _open(root) as store:
        calls = _record_calls(store)
        assert _answers(store) == expected
        assert _full_reads(calls) == []
    _snapshot(root).write_bytes(stale)
    _rewrite(_snapshot(root), lambda a: _header(a, position=None))
    with _open(root) as store:
        calls = _record_calls(store)
        assert _answers(store) == expected
        assert _full_reads(calls)  # rebuilt


def test_a_snapshot_of_a_deleted_and_recreated_namespace_is_refused(fast_tmp: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = fast_tmp / "s"
    with _open(root) as store:
        _fill(store)
    stale = _snapshot(root).read_bytes()
    with _open(root) as store:
        store.delete(NS)
        assert not _snapshot(root).exists()
        store.put(_items(NS, 0, 120))  # same ids and count as before, other texts
        store.delete(NS, [f"m{i:04}" for i in range(100, 110)])
        store.put([StoredItem(NS, "s1", "bookkeeping", {"kind": SESSION_KIND})])
    _snapshot(root).write_bytes(stale)  # put back by hand: it names the old collection's id
    with caplog.at_level(logging.WARNING), _open(root) as store:
        hits = store.search(NS, "rewritten", mode="keyword")
        assert hits == []
    assert "earlier collection" in caplog.text


# -- files that must not be trusted -------------------------------------------


def _rewrite(path: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    change(arrays)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def _json_bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _header(arrays: dict[str, np.ndarray], **changes: Any) -> None:
    import json

    header = json.loads(arrays["header"].tobytes())
    header.update(changes)
    arrays["header"] = _json_bytes(json.dumps(header))


def _items_json(arrays: dict[str, np.ndarray], change: Callable[[dict[str, Any]], None]) -> None:
    import json

    body = json.loads(arrays["items"].tobytes())
    change(body)
    arrays["items"] = _json_bytes(json.dumps(body))


_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "garbage": lambda p: p.write_bytes(b"\x00garbage" * 100),
    "empty": lambda p: p.write_bytes(b""),
    "a folder": lambda p: (p.unlink(), p.mkdir()),
    "a fifo": lambda p: (p.unlink(), os.mkfifo(p)),  # opening it to read would block forever
    "version": lambda p: _rewrite(p, lambda a: _header(a, format=99)),
    "other collection": lambda p: shutil.copyfile(_snapshot(p.parents[1], OTHER), p),
    "bad json": lambda p: _rewrite(p, lambda a: a.update(items=_json_bytes('{"ids": [1, 2'))),
    "not utf-8": lambda p: _rewrite(p, lambda a: a.update(header=np.frombuffer(b"\xff\xfe{}", dtype=np.uint8))),
    "vectors shape": lambda p: _rewrite(p, lambda a: a.update(vectors=a["vectors"][:, :10].copy())),
    "vectors dtype": lambda p: _rewrite(p, lambda a: a.update(vectors=a["vectors"].astype(np.float64))),
    "stamps short": lambda p: _rewrite(p, lambda a: a.update(stamp_us=a["stamp_us"][:-1].copy())),
    "postings range": lambda p: _rewrite(p, lambda a: a.update(postings_slots=a["postings_slots"] + 10**6)),
    "missing array": lambda p: _rewrite(p, lambda a: a.pop("postings_tfs")),
    "list metadata": lambda p: _rewrite(p, lambda a: _items_json(a, lambda b: b["metadata"][0].update(n=[1]))),
    "reserved metadata": lambda p: _rewrite(p, lambda a: _items_json(a, lambda b: b["metadata"][0].update(_text="x"))),
    "index disagrees": lambda p: _rewrite(p, lambda a: _items_json(a, lambda b: b["keyword_ids"].pop())),
}


@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_a_damaged_snapshot_is_ignored_with_a_warning(fast_tmp: Path, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    root = fast_tmp / "s"
    with _open(root) as store:
        _fill(store)
        store.warm(NS)
        expected = _answers(store)
    _DAMAGE[damage](_snapshot(root))
    with caplog.at_level(logging.WARNING), _open(root) as store:
        assert _answers(store) == expected
        assert not os.path.lexists(_snapshot(root))  # deleted, and rewritten from the rebuild at close
    assert "ignoring the side-index snapshot" in caplog.text
    assert _snapshot(root).is_file()


class _Evil:
    """Unpickling this creates a folder: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("where", ["whole file", "inside the npz"])
def test_a_pickle_in_a_snapshot_is_never_executed(fast_tmp: Path, caplog: pytest.LogCaptureFixture, where: str) -> None:
    root, marker = fast_tmp / "s", fast_tmp / "pwned"
    with _open(root) as store:
        _fill(store)
        expected = {h.item.id for h in store.search(NS, "lisbon", mode="keyword", limit=100)}
    path = _snapshot(root)
    if where == "whole file":
        path.write_bytes(pickle.dumps(_Evil(marker)))
    else:
        evil = np.empty(1, dtype=object)
        evil[0] = _Evil(marker)
        _rewrite(path, lambda a: a.update(header=evil))  # np.savez pickles object arrays
    with caplog.at_level(logging.WARNING), _open(root) as store:
        assert {h.item.id for h in store.search(NS, "lisbon", mode="keyword", limit=100)} == expected
    assert not marker.exists()
    assert "ignoring the side-index snapshot" in caplog.text


# -- threads, erasure, stores without snapshots -------------------------------


def test_threads_reading_while_the_snapshot_loads(fast_tmp: Path) -> None:
    root = fast_tmp / "s"
    with _open(root) as store:
        _fill(store)
        expected = [h.item.id for h in store.search(NS, "lisbon trams", mode="keyword", limit=30)]
    with _open(root) as store:
        start, errors, seen = threading.Barrier(7), [], []

        def read() -> None:
            try:
                start.wait()
                for _ in range(5):
                    seen.append([h.item.id for h in store.search(NS, "lisbon trams", mode="keyword", limit=30)])
                    store.search(NS, "lisbon trams", mode="dense", limit=5)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def write() -> None:
            start.wait()
            store.put([StoredItem(NS, f"t{i}", f"quokka {i}") for i in range(20)])

        threads = [threading.Thread(target=read) for _ in range(6)] + [threading.Thread(target=write)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = [h.item.id for h in store.search(NS, "lisbon trams", mode="keyword", limit=30)]
        # Each read saw the namespace before or after the write (which changes BM25's statistics).
        assert errors == [] and len(seen) == 30 and all(ids in (expected, after) for ids in seen)
        assert len(store.search(NS, "quokka", mode="keyword", limit=50)) == 20
    with _open(root) as store:
        calls = _record_calls(store)
        assert len(store.search(NS, "quokka", mode="keyword", limit=50)) == 20
        assert _full_reads(calls) == []


def test_only_the_last_store_object_of_a_directory_saves_and_only_settled_entries(fast_tmp: Path) -> None:
    root = fast_tmp / "s"
    first, second = _open(root), _open(root)
    first.put(_items(NS, 0, 20))
    first.close()
    assert not _snapshot(root).exists()  # `second` still uses the shared side index
    snapshots, entry = second._keyword.snapshots, second._keyword.get(NS)
    assert snapshots is not None and entry is not None
    snapshots.hold(NS)  # a write in flight: its records may not be in the entry yet
    assert not snapshots.save(NS, entry)
    snapshots.release(NS)
    entry.suspect = True  # a write failed half-way: the entry may lack records
    assert not snapshots.save(NS, entry)
    entry.suspect = False
    second.close()
    assert _snapshot(root).is_file()


def _files_holding(root: Path, secret: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes())


def test_a_delete_removes_the_snapshot_at_once(fast_tmp: Path) -> None:
    root = fast_tmp / "s"
    with _open(root) as store:
        store.put([StoredItem(NS, f"v{i}", f"secret-{i}-pelican holds {i}") for i in range(40)])
        store.put(_items(OTHER, 0, 10))
    assert _files_holding(root / FOLDER, "secret-7-pelican")
    with _open(root) as store:
        store.search(NS, "pelican", mode="keyword")  # loaded from the snapshot
        store.delete(NS, ["v7"])
        assert not _snapshot(root).exists() and _snapshot(root, OTHER).exists()
    assert _files_holding(root / FOLDER, "secret-7-pelican") == []  # the new snapshot lacks it
    assert _files_holding(root / FOLDER, "secret-8-pelican")
    with _open(root) as store:
        assert store.delete(NS) == 39
        assert not (root / FOLDER).exists() or _files_holding(root / FOLDER, "pelican") == []
    # (The whole directory is scanned by tests/reliability/test_store_faults.py; here only the snapshots:
    # Chroma writes uninitialised heap bytes of this process into live HNSW files, e.g. the registry's length.bin.)
    assert _files_holding(root / FOLDER, "pelican") == []
    with _open(root) as store:
        assert store.search(NS, "pelican", mode="keyword") == []


def test_ephemeral_and_server_stores_keep_no_snapshots(fast_tmp: Path, server_store: Callable[..., Any]) -> None:
    with ChromaStore.ephemeral(embedder=HashingEmbedder(64)) as store:
        store.put(_items(NS, 0, 20))
        store.warm(NS)
        assert store._keyword.snapshots is None
    store = server_store(HashingEmbedder(64))
    store.put(_items(NS, 0, 20))
    store.warm(NS)
    assert store._keyword.snapshots is None
    store.close()
