"""Fixtures shared by the read-path tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.timeline import EpisodicTimeline


@pytest.fixture
def two_session_store(fake_embedder) -> InMemoryStore:
    """Ann's turns in two sessions a day apart: pottery in the first, camping in the second (turns only)."""
    said = {
        "s0": ["I tried pottery and made a bowl", "my pottery teacher liked the bowl", "pottery again on Sunday"],
        "s1": ["we went camping at the lake", "the weather was cold", "we ate noodles"],
    }
    start = datetime(2024, 1, 1, 12, tzinfo=UTC)
    sessions = tuple(
        Session(id=sid, date=start + timedelta(days=i),
                turns=tuple(Turn(id=f"{sid}-{j}", role="user", speaker="Ann", text=t) for j, t in enumerate(texts)))
        for i, (sid, texts) in enumerate(said.items())
    )
    store = InMemoryStore(fake_embedder)
    EpisodicTimeline(store, ("u",), units=("turn",)).ingest(Conversation(id="c", sessions=sessions))
    return store
