"""Live writes (EpisodicTimeline.add_turn): the same items as ingest, O(1) per write, safe under concurrency."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ltm_agent import live
from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.live import STALE_CLAIM_SECONDS
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.records import Episode, RecordKind
from ltm_agent.store import ListOp, MemoryStore, SearchOp
from ltm_agent.timeline import EpisodicTimeline
from ltm_agent.units import episode_id

D0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
NS = ("u1",)


def conversation() -> Conversation:
    texts = ["hi there", "hello! how was the trip to Lisbon?", "great, we saw the tram", "x" * 450,
             "and the food?", "", "pasteis de nata every day", "ok"]
    sessions = []
    for s in range(3):
        turns = tuple(
            Turn(id=f"D{s}:{j}", role="user" if j % 2 == 0 else "assistant", speaker="Ann" if j % 2 == 0 else "",
                 text=f"{t} {s}" if t else "")
            for j, t in enumerate(texts[: 4 + 2 * s])
        )
        sessions.append(Session(id=f"s{s}", date=D0 + timedelta(days=3 * s), turns=turns))
    return Conversation(id="c", sessions=tuple(reversed(sessions)))  # file order is not date order


def feed_live(timeline: EpisodicTimeline, conv: Conversation) -> None:
    """What the write node does: each turn as it arrives, with the session date."""
    for session in conv.ordered_sessions():
        for turn in session.turns:
            if turn.text.strip():
                timeline.add_turn(turn.text, role=turn.role, speaker=turn.speaker, session_id=session.id,
                                  time=session.date, turn_id=turn.id)


def stored(store: MemoryStore, ns=NS) -> dict[str, tuple]:
    """Every item of the namespace: (text, key, metadata without system times, index vector)."""
    probe = np.ones(store.embedder.dimension, dtype=np.float32)
    hits = store.search(ns, "x", vector=probe, with_vectors=True, limit=100_000)
    out = {}
    for hit in hits:
        meta = {k: v for k, v in hit.item.metadata.items() if k not in ("created_ts",)}
        out[hit.item.id] = (hit.item.text, hit.item.key, meta, np.asarray(hit.item.vector))
    return out


@pytest.mark.parametrize("units", [("turn", "context"), ("turn", "round", "window", "context"), ("turn",)])
def test_live_writes_store_what_ingest_stores(store_maker, units) -> None:
    bulk, live = store_maker.open(), store_maker.open(HashingEmbedder(64))
    EpisodicTimeline(bulk, ("bulk",), units=units).ingest(conversation())
    feed_live(EpisodicTimeline(live, ("bulk",) if bulk is not live else ("live",), units=units), conversation())
    expected = stored(bulk, ("bulk",))
    got = stored(live, ("bulk",) if bulk is not live else ("live",))
    assert sorted(got) == sorted(expected)
    kinds = {v[2]["kind"] for v in expected.values()}
    assert "turn" in kinds and "session" in kinds and (("context" in kinds) == ("context" in units))
    for item_id, (text, key, meta, vector) in expected.items():
        g_text, g_key, g_meta, g_vector = got[item_id]
        assert (g_text, g_key, g_meta) == (text, key, meta), item_id
        assert np.allclose(g_vector, vector, atol=1e-5), item_id


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(64)
        self.embedded = 0

    def embed(self, texts):  # type: ignore[override]
        self.embedded += len(texts)
        return super().embed(texts)


def test_live_writes_embed_each_turn_once() -> None:
    embedder = CountingEmbedder()
    feed_live(EpisodicTimeline(InMemoryStore(embedder), NS, units=("turn", "round", "window", "context")),
              conversation())
    assert embedder.embedded == sum(1 for s in conversation().sessions for t in s.turns if t.text.strip())


class CountingStore(InMemoryStore):
    """Counts every listing and search, and how many items they return."""

    def __init__(self, shared: bool = False) -> None:
        super().__init__(HashingEmbedder(64))
        self.shared = shared  # as if other processes wrote it too: writes claim positions
        self.reads = 0

    def batch(self, ops):  # type: ignore[override]
        results = super().batch(ops)
        for op, result in zip(ops, results):
            if isinstance(op, (ListOp, SearchOp)):
                self.reads += 1 + len(result)
        return results


@pytest.mark.parametrize("shared", [False, True])
def test_a_write_reads_as_much_at_turn_300_as_at_turn_10(shared: bool) -> None:
    store = CountingStore(shared)
    timeline = EpisodicTimeline(store, NS)
    cost = {}
    for i in range(300):
        before = store.reads
        timeline.add_turn(f"message number {i}", role="user" if i % 2 else "assistant", session_id="s1", time=D0)
        cost[i] = store.reads - before
    assert cost[10] == cost[299] == cost[150]  # no listing of the session or namespace per write
    # Only a store other processes write needs the claim's read-back; an unshared one reads nothing.
    assert (cost[10] > 0) if shared else (cost[10] == 0)
    turns = timeline.episodes()
    assert sorted(e.position for e in turns) == list(range(300))
    assert not [i for i in store.list(NS) if "claim_pending" in i.metadata]


def test_store_objects_of_one_directory_share_the_writers_lock(tmp_path) -> None:
    from ltm_agent.memory_stores import ChromaStore

    stores = [ChromaStore.persistent(tmp_path, embedder=HashingEmbedder(64)) for _ in range(2)]
    try:
        assert stores[0].write_domain is stores[1].write_domain and not stores[0].shared

        def writer(w: int) -> None:
            timeline = EpisodicTimeline(stores[w % 2], NS)
            for i in range(15):
                timeline.add_turn(f"writer {w} says {i}", session_id="shared", time=D0)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        turns = EpisodicTimeline(stores[0], NS).episodes()
        assert sorted(e.position for e in turns) == list(range(60))
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("shared", [False, True])
def test_a_dead_writers_claim_is_withdrawn_and_its_turn_written_again(shared: bool) -> None:
    import time

    store = CountingStore(shared)
    timeline = EpisodicTimeline(store, NS)
    for i in range(3):
        timeline.add_turn(f"message {i}", session_id="s1", time=D0)
    # A writer died after claiming position 3 (a pending turn, never acknowledged), long enough ago.
    claimed_at = time.time() - (STALE_CLAIM_SECONDS + 1)
    episode = Episode(
        id=episode_id(NS, RecordKind.TURN, ["m-dead"]), namespace=NS, text="user: half written", created_at=D0,
        sources=("m-dead",), unit=RecordKind.TURN, role="user", speaker="", session_id="s1",
        session_index=0, position=3, event_time=D0,
    )
    item = episode.to_item()
    store.put([replace(item, metadata={**item.metadata, "claim_pending": claimed_at, "claim_at": claimed_at})])
    live._TAILS.pop(store.write_domain, None)  # as another process would: nothing cached
    fresh = EpisodicTimeline(store, NS)
    nxt = fresh.add_turn("after the crash", session_id="s1", time=D0)
    assert nxt.position == 3
    retried = fresh.add_turn("half written", session_id="s1", time=D0, turn_id="m-dead")  # the retry of the dead write
    assert retried.position == 4 and "claim_pending" not in store.get(NS, [retried.id])[0].metadata
    assert sorted(e.position for e in fresh.episodes()) == list(range(5))


def test_threads_writing_one_session_lose_nothing_and_share_no_position(store_maker) -> None:
    store = store_maker.open()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        timeline = EpisodicTimeline(store, NS)
        try:
            for i in range(25):
                timeline.add_turn(f"writer {w} says {i}", session_id="shared", time=D0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    turns = EpisodicTimeline(store, NS).episodes()
    assert len(turns) == 100
    assert sorted(e.position for e in turns) == list(range(100))


def test_processes_writing_one_session_through_a_server_lose_nothing(chroma_server, server_database) -> None:
    # Four processes contend for one session's positions; every turn lands once, at its own
    # position, and every context key names the turn's actual neighbours (as bulk ingest would).
    script = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime
        from ltm_agent.embeddings import HashingEmbedder
        from ltm_agent.memory_stores import ChromaStore
        from ltm_agent.timeline import EpisodicTimeline
        url, database, w = sys.argv[1], sys.argv[2], sys.argv[3]
        store = ChromaStore.server(url, database=database, embedder=HashingEmbedder(64))
        timeline = EpisodicTimeline(store, ("u1",))
        for i in range(15):
            timeline.add_turn(f"process {w} says {i}", session_id="shared", time=datetime(2024, 3, 1, tzinfo=UTC))
        store.close()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, chroma_server, server_database, str(w)]) for w in range(4)
    ]
    assert [p.wait(300) for p in procs] == [0, 0, 0, 0]
    from ltm_agent.memory_stores import ChromaStore

    with ChromaStore.server(chroma_server, database=server_database, embedder=HashingEmbedder(64)) as store:
        timeline = EpisodicTimeline(store, NS)
        turns = timeline.episodes()
        assert len(turns) == 60 and len({e.id for e in turns}) == 60
        assert sorted(e.position for e in turns) == list(range(60))
        # Every context key names its turn's actual neighbours.
        by_pos = {e.position: e for e in turns}
        for context in timeline.episodes(unit=RecordKind.CONTEXT):
            lines = context.key.split("\n")
            neighbours = [by_pos[p].text for p in (context.position - 1, context.position + 1) if p in by_pos]
            assert lines[0] == context.text and sorted(lines[1:]) == sorted(neighbours)


def test_reingest_keeps_session_numbers(fake_embedder) -> None:
    timeline = EpisodicTimeline(InMemoryStore(fake_embedder), NS)
    for _ in range(3):
        timeline.ingest(conversation())
    assert [s.index for s in timeline.sessions()] == [0, 1, 2]
    timeline.add_turn("one more", session_id="s1", time=D0 + timedelta(days=3))
    assert [(s.index, s.turn_count) for s in timeline.sessions()] == [(0, 4), (1, 6), (2, 7)]
    assert timeline.add_turn("a new chat", session_id="s9", time=D0 + timedelta(days=30)).session_index == 3


def test_live_write_after_forget_starts_clean(fake_embedder) -> None:
    store = InMemoryStore(fake_embedder)
    timeline = EpisodicTimeline(store, NS)
    timeline.add_turn("my secret is swordfish", session_id="s1", time=D0)
    store.delete(NS)
    episode = timeline.add_turn("hello again", session_id="s1", time=D0)
    assert episode.position == 0
    assert all("swordfish" not in (item.key or item.text) for item in store.list(NS))


def test_a_turn_id_is_written_once(fake_embedder) -> None:
    timeline = EpisodicTimeline(InMemoryStore(fake_embedder), NS)
    first = timeline.add_turn("hello", session_id="s1", turn_id="m1")
    again = timeline.add_turn("hello", session_id="s1", turn_id="m1")
    assert again.id == first.id and len(timeline.episodes()) == 1
