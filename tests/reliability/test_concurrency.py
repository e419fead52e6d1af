"""Concurrent writers: threads of one process and processes sharing a Chroma server.

Every acknowledged turn is stored exactly once, no two turns share a
position, and keyword and dense search agree with what Chroma holds
afterwards (issue 15, point 2; the position fix itself is in ltm_agent.live).
Two processes on one embedded directory are refused (test_store_faults).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from reliability_helpers import record, run_child, trials

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.memory_stores._keyword import tokenize
from ltm_agent.store import MemoryStore
from ltm_agent.timeline import EpisodicTimeline

NS = ("user-1",)


def _check_turns(store: MemoryStore, expected: set[str]) -> int:
    turns = store.list(NS, filter={"kind": "turn"})
    texts = [t.text for t in turns]
    for text in expected:
        assert sum(1 for t in texts if t.endswith(text)) == 1, f"{text!r} is not stored exactly once"
    positions = [(t.metadata["session_id"], t.metadata["position"]) for t in turns]
    assert len(positions) == len(set(positions)), "two turns share a position"
    everything = {i.id for i in store.list(NS)}
    keyword = {h.item.id for h in store.search(NS, "concurrent", mode="keyword", limit=len(everything) + 5)}
    stem = tokenize("concurrent")[0]
    assert keyword == {i.id for i in store.list(NS) if stem in tokenize(i.index_text)}
    dense = {h.item.id for h in store.search(NS, "concurrent", limit=len(everything) + 5)}
    assert dense == everything
    return len(expected)


def _threads(store: MemoryStore, writers: int, per_writer: int, one_session: bool) -> set[str]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def write(w: int) -> None:
        timeline = EpisodicTimeline(store, NS)
        barrier.wait()
        try:
            for t in range(per_writer):
                session = "shared" if one_session else f"session-{w}"
                timeline.add_turn(f"concurrent note w{w} t{t}", session_id=session)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return {f"concurrent note w{w} t{t}" for w in range(writers) for t in range(per_writer)}


@pytest.mark.parametrize("one_session", [True, False], ids=["one-session", "many-sessions"])
def test_threads_lose_no_turn(fast_tmp: Path, one_session: bool) -> None:
    n = trials(1, 5)
    ops = failures = 0
    try:
        for trial in range(n):
            with ChromaStore.persistent(fast_tmp / f"t{trial}", embedder=HashingEmbedder(64)) as store:
                expected = _threads(store, 4, 15, one_session)
                try:
                    ops += _check_turns(store, expected)
                except AssertionError:
                    failures += 1
                    raise
    finally:
        record(f"concurrency: 4 threads, {'one session' if one_session else 'a session each'}, embedded",
               trials=n, ops=ops, failures=failures)


_SERVER_WRITER = """
import sys
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.timeline import EpisodicTimeline
url, database, w, n, session = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
store = ChromaStore.server(url, database=database, embedder=HashingEmbedder(64))
timeline = EpisodicTimeline(store, ("user-1",))
for t in range(n):
    timeline.add_turn(f"concurrent note w{w} t{t}", session_id=session if session != "own" else f"session-{w}")
print("done", flush=True)
"""


@pytest.mark.parametrize("one_session", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["one-session", "many-sessions"])
def test_processes_through_a_server_lose_no_turn(chroma_server: str, server_database: str, one_session: bool) -> None:
    import subprocess
    import sys

    from reliability_helpers import ENV

    writers, per_writer = 3, 10
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _SERVER_WRITER, chroma_server, server_database, str(w), str(per_writer),
             "shared" if one_session else "own"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        )
        for w in range(writers)
    ]
    outputs = [child.communicate(timeout=180) for child in children]
    assert all(child.returncode == 0 for child in children), [err[-1500:] for _, err in outputs]
    failures = 0
    store = ChromaStore.server(chroma_server, database=server_database, embedder=HashingEmbedder(64))
    try:
        expected = {f"concurrent note w{w} t{t}" for w in range(writers) for t in range(per_writer)}
        try:
            _check_turns(store, expected)
        except AssertionError:
            failures += 1
            raise
    finally:
        store.close()
        record(f"concurrency: {writers} processes via a server, {'one session' if one_session else 'a session each'}",
               trials=1, ops=writers * per_writer, failures=failures)


def test_ltmstore_threads_last_writer_wins(fast_tmp: Path) -> None:
    from ltm_agent.plugins.langgraph import LTMStore

    with ChromaStore.persistent(fast_tmp / "graph", embedder=HashingEmbedder(64)) as store:
        graph_store = LTMStore(store)
        barrier = threading.Barrier(4)

        def write(w: int) -> None:
            barrier.wait()
            for k in range(20):
                graph_store.put(("memories", "u"), f"key-{k}", {"writer": w, "k": k})

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        items = graph_store.search(("memories", "u"), limit=100)
        assert sorted(i.key for i in items) == sorted(f"key-{k}" for k in range(20))
        assert all(i.value["k"] == int(i.key.split("-")[1]) for i in items)
        record("concurrency: LTMStore.put from 4 threads", trials=1, ops=80, failures=0)


def test_a_child_process_on_an_embedded_store_is_refused_while_threads_write(tmp_path: Path) -> None:
    with ChromaStore.persistent(tmp_path / "store", embedder=HashingEmbedder(64)) as store:
        EpisodicTimeline(store, NS).add_turn("concurrent hello", session_id="s")
        out = run_child(
            "import sys\nfrom ltm_agent.embeddings import HashingEmbedder\nfrom ltm_agent.errors import StoreInUseError\n"
            "from ltm_agent.memory_stores import ChromaStore\ntry:\n"
            "    ChromaStore.persistent(sys.argv[1], embedder=HashingEmbedder(64))\nexcept StoreInUseError:\n"
            "    print('refused')\n",
            str(tmp_path / "store"),
        ).stdout
        assert out.strip() == "refused"
