"""Paging and fact extraction run with the real local model (the [local] extra), offline.

SmolLM2-135M is weak: these tests check that the mechanisms keep their
invariants with it (window never exceeded, memory never corrupted), not that
its summaries or facts are good. Skipped when the extra is not installed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ltm_agent.buffer.local_model import local_model_available
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import ModelError
from ltm_agent.memory_stores import InMemoryStore

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(not local_model_available(), reason="needs pip install 'ltm-agent[local]'"),
]

T0 = datetime(2024, 3, 1, 9, tzinfo=UTC)


def test_paging_with_the_local_summarizer_stays_in_the_window() -> None:
    from ltm_agent.llm import ChatLocalModel
    from ltm_agent.paging import PagedContext
    from ltm_agent.paging.summary import ModelSummarizer

    store = InMemoryStore(HashingEmbedder())
    ctx = PagedContext(store, ("u",), window_tokens=260, summarizer=ModelSummarizer(ChatLocalModel(max_tokens=48)))
    flushed = 0
    for i in range(8):
        events = ctx.append("user" if i % 2 == 0 else "assistant", f"Message {i}: the parcel number is P-{i:04d}.", time=T0 + timedelta(minutes=i))
        flushed += events.flushed
        assert ctx.tokens() <= 260
    assert flushed > 0 and ctx.summary
    assert ctx.conversation_search("parcel P-0000").total >= 1  # evicted, still in recall storage


def test_fact_extraction_with_the_local_model_never_corrupts_memory() -> None:
    from ltm_agent.conversations import Session, Turn
    from ltm_agent.facts import FactMemory, ModelFactExtractor
    from ltm_agent.llm import ChatLocalModel

    store = InMemoryStore(HashingEmbedder())
    facts = FactMemory(store, ("u",), extractor=ModelFactExtractor(ChatLocalModel(max_tokens=96), on_error="fallback"))
    session = Session(id="s1", date=T0, turns=(Turn(id="s1:1", speaker="Ana", text="I live in Lisbon and I'm vegetarian."),))
    try:
        update = facts.ingest_session(session)
    except ModelError as exc:  # a failure must be loud and name the step, never a half-write
        assert "facts." in str(exc)
        assert store.count(("u",)) == 0
        return
    current = facts.current()
    assert update.method in {"llm", "pattern-fallback", "llm+pattern-fallback"}
    assert all(f.is_current and f.sources for f in current)
    assert len({f.id for f in current}) == len(current)
