"""Bookkeeping records (the per-session records both write paths keep) stay out of keyword statistics."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.live import SESSION_KIND
from ltm_agent.memory_stores._keyword import UNINDEXED_KINDS, KeywordIndex
from ltm_agent.timeline import EpisodicTimeline

D0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


def conversation() -> Conversation:
    said = ["I started a pottery class", "nice, what did you make?", "a bowl for the session dog",
            "we went camping by the lake", "did the dog like the lake?", "the session ran late"]
    sessions = tuple(
        Session(id=f"session-{s}", date=D0 + timedelta(days=s),
                turns=tuple(Turn(id=f"t{s}-{j}", role="user" if j % 2 == 0 else "assistant", speaker="",
                                 text=f"{text} {s}") for j, text in enumerate(said[s : s + 3])))
        for s in range(3)
    )
    return Conversation(id="c", sessions=sessions)


def test_the_keyword_index_skips_session_records() -> None:
    assert SESSION_KIND in UNINDEXED_KINDS
    index = KeywordIndex(["a", "s"], ["pottery session", "session s1"], [{"kind": "turn"}, {"kind": SESSION_KIND}])
    alone = KeywordIndex(["a"], ["pottery session"], [{"kind": "turn"}])
    assert len(index) == 1 and "s" not in index
    assert index.search("session") == alone.search("session")
    index.upsert("a", "session note", {"kind": SESSION_KIND})  # becoming bookkeeping drops it
    assert len(index) == 0 and index.search("session") == []


def test_keyword_scores_are_those_of_the_memories_alone(store_maker) -> None:
    """A store written by the timeline ranks by BM25 exactly as one holding only its memories."""
    written, copied = store_maker.open(HashingEmbedder(64)), store_maker.open(HashingEmbedder(64))
    EpisodicTimeline(written, ("w",)).ingest(conversation())
    items = written.list(("w",))
    assert any(i.metadata["kind"] == SESSION_KIND for i in items)
    memories = [replace(i, namespace=("m",)) for i in items if i.metadata["kind"] != SESSION_KIND]
    copied.put(memories)
    for query in ("session dog", "lake session", "pottery bowl"):
        got = written.search(("w",), query, mode="keyword", limit=100)
        want = copied.search(("m",), query, mode="keyword", limit=100)
        assert [(h.item.id, round(h.score, 9)) for h in got] == [(h.item.id, round(h.score, 9)) for h in want]
        assert got, query
