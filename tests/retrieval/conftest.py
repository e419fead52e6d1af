"""Fixtures shared by the read-path tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from retrieval_helpers import sessions_of

from ltm_agent.conversations import Conversation
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.timeline import EpisodicTimeline


@pytest.fixture
def two_session_store(fake_embedder) -> InMemoryStore:
    """Ann's turns in two sessions a day apart: pottery in the first, camping in the second (turns only)."""
    said = {
        "s0": ["I tried pottery and made a bowl", "my pottery teacher liked the bowl", "pottery again on Sunday"],
        "s1": ["we went camping at the lake", "the weather was cold", "we ate noodles"],
    }
    sessions = sessions_of(said, datetime(2024, 1, 1, 12, tzinfo=UTC))
    store = InMemoryStore(fake_embedder)
    EpisodicTimeline(store, ("u",), units=("turn",)).ingest(Conversation(id="c", sessions=sessions))
    return store
