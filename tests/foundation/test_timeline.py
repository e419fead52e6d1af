"""EpisodicTimeline: ingest, order and time questions, as-of facts, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import EmptyTextError, InvalidDateError, NotFoundError, TextTooLargeError
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.records import Fact, RecordKind
from ltm_agent.store import StoreLimits
from ltm_agent.timeline import EpisodicTimeline

D0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


def conversation(sessions: int = 3, turns: int = 4) -> Conversation:
    # Sessions deliberately out of date order in the file: the timeline orders by date.
    made = [
        Session(
            id=f"s{i}",
            date=D0 + timedelta(days=7 * i),
            turns=tuple(
                Turn(id=f"D{i}:{j}", role="user" if j % 2 == 0 else "assistant", speaker="Ann" if j % 2 == 0 else "Bot",
                     text=f"session {i} turn {j} about topic{i}x{j}")
                for j in range(turns)
            ),
        )
        for i in range(sessions)
    ]
    return Conversation(id="c", sessions=tuple(reversed(made)))


@pytest.fixture
def timeline(fake_embedder) -> EpisodicTimeline:
    line = EpisodicTimeline(InMemoryStore(fake_embedder), ("u1",), units=("turn", "round", "context"))
    line.ingest(conversation())
    return line


def test_sessions_in_date_order_and_nth_session(timeline: EpisodicTimeline) -> None:
    assert [s.session_id for s in timeline.sessions()] == ["s0", "s1", "s2"]
    assert [e.sources[0] for e in timeline.nth_session(3)] == ["D2:0", "D2:1", "D2:2", "D2:3"]
    with pytest.raises(NotFoundError):
        timeline.nth_session(4)


def test_every_turn_is_addressable_and_units_keep_provenance(timeline: EpisodicTimeline) -> None:
    assert timeline.find_turn("D1:2").text == "Ann: session 1 turn 2 about topic1x2"
    rounds = timeline.episodes(unit=RecordKind.ROUND)
    assert rounds and all(len(r.sources) == 2 for r in rounds)
    contexts = timeline.episodes(unit=RecordKind.CONTEXT)
    assert contexts and all(len(c.sources) == 1 and c.key and c.text in c.key and c.key != c.text for c in contexts)


def test_before_after_order_between(timeline: EpisodicTimeline) -> None:
    first, later = timeline.find_turn("D0:1").id, timeline.find_turn("D2:0").id
    assert timeline.order(first, later) == -1 and timeline.order(later, first) == 1 and timeline.order(first, first) == 0
    assert [e.sources[0] for e in timeline.before(later, 2)] == ["D1:2", "D1:3"]
    assert [e.sources[0] for e in timeline.after(first, 1)] == ["D0:2"]
    inside = timeline.between(D0 + timedelta(days=6), D0 + timedelta(days=8))
    assert {e.session_id for e in inside} == {"s1"}


def test_reingest_is_idempotent(timeline: EpisodicTimeline) -> None:
    before = timeline.store.count(("u1",))
    timeline.ingest(conversation())
    # Same ids: nothing duplicated (sessions counted once each).
    assert timeline.store.count(("u1",)) == before


def test_bad_turn_changes_nothing(fake_embedder) -> None:
    store = InMemoryStore(fake_embedder)
    store.limits = StoreLimits(max_text_chars=50)
    line = EpisodicTimeline(store, ("u1",))
    good = conversation(1, 2)
    bad = Conversation(id="c", sessions=(*good.sessions, Session(id="s9", date=D0 + timedelta(days=60), turns=(Turn(id="x", text="y" * 51),))))
    with pytest.raises(TextTooLargeError):
        line.ingest(bad)
    assert store.count(("u1",)) == 0
    with pytest.raises(EmptyTextError):
        line.add_turn("   ", session_id="s1")
    with pytest.raises(InvalidDateError):
        line.add_turn("hi", session_id="s1", time=datetime(2024, 1, 1))  # naive
    assert store.count(("u1",)) == 0


def test_add_turn_appends_to_session(fake_embedder) -> None:
    line = EpisodicTimeline(InMemoryStore(fake_embedder), ("u1",))
    a = line.add_turn("first", session_id="t1", time=D0)
    b = line.add_turn("second", role="assistant", session_id="t1", time=D0 + timedelta(minutes=1))
    c = line.add_turn("next chat", session_id="t2", time=D0 + timedelta(days=1))
    assert (a.position, b.position, c.session_index) == (0, 1, 1)
    assert line.order(a.id, c.id) == -1


def test_facts_as_of_and_current_view(fake_embedder) -> None:
    store = InMemoryStore(fake_embedder)
    line = EpisodicTimeline(store, ("u1",))
    old = Fact(id="f1", namespace=("u1",), text="Ann lives in Lisbon", subject="user.location", valid_at=D0,
               invalid_at=D0 + timedelta(days=20), expired_at=D0 + timedelta(days=21))
    new = Fact(id="f2", namespace=("u1",), text="Ann lives in Berlin", subject="user.location", valid_at=D0 + timedelta(days=20))
    store.put([old.to_item(), new.to_item()])
    assert [f.id for f in line.facts_as_of(D0 + timedelta(days=5))] == ["f1"]
    assert [f.id for f in line.facts_as_of(D0 + timedelta(days=25))] == ["f2"]
    assert [f.id for f in line.facts()] == ["f2"]
    assert [f.id for f in line.facts(include_invalidated=True)] == ["f1", "f2"]
    assert line.facts_as_of(D0 - timedelta(days=1)) == []


def test_two_tenants_with_identical_texts_never_mix(fake_embedder) -> None:
    store = InMemoryStore(fake_embedder)
    a, b = EpisodicTimeline(store, ("tenant-a",)), EpisodicTimeline(store, ("tenant-b",))
    a.ingest(conversation(2, 2))
    b.ingest(conversation(1, 2))
    assert len(a.episodes()) == 4 and len(b.episodes()) == 2
    assert all(e.namespace == ("tenant-b",) for e in b.episodes())
    with pytest.raises(NotFoundError):
        b.find_turn("D1:0")  # exists only for tenant-a


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(64)
        self.embedded: list[str] = []

    def embed(self, texts):  # type: ignore[override]
        self.embedded.extend(texts)
        return super().embed(texts)


def test_context_keys_cost_no_second_embedding_pass() -> None:
    embedder = CountingEmbedder()
    store = InMemoryStore(embedder)
    line = EpisodicTimeline(store, ("u1",), units=("turn", "context"))
    line.ingest(conversation(2, 3))
    # One embedding per turn; context items are indexed under the sum of their turns' vectors.
    assert len(embedder.embedded) == 6
    hits = store.search(("u1",), "session 1 turn 1 about topic1x1", filter={"kind": "context"}, limit=1)
    # The best context match is this turn or a neighbour whose context holds it.
    assert hits[0].item.text.split(" about ")[1] in {"topic1x0", "topic1x1", "topic1x2"}


def test_rounds_and_windows_are_indexed_under_their_turns_summed_vectors() -> None:
    import numpy as np

    embedder = CountingEmbedder()
    store = InMemoryStore(embedder)
    line = EpisodicTimeline(store, ("u1",), units=("turn", "round", "window", "context"))
    line.ingest(conversation(2, 3))
    assert len(embedder.embedded) == 6  # still one embedding per turn
    turns = {e.sources[0]: e for e in line.episodes(unit=RecordKind.TURN)}
    for unit in (RecordKind.ROUND, RecordKind.WINDOW):
        episodes = line.episodes(unit=unit)
        assert episodes
        for episode in episodes:
            hit = store.search(("u1",), "x", vector=np.zeros(64) + 0.1, with_vectors=True, limit=100,
                               filter={"kind": str(unit)})
            stored = next(h.item.vector for h in hit if h.item.id == episode.id)
            summed = np.sum(embedder.embed([turns[t].text for t in episode.sources]), axis=0)
            assert np.allclose(stored, summed / np.linalg.norm(summed), atol=1e-5)


def test_item_with_foreign_vector_is_refused(fake_embedder) -> None:
    from ltm_agent.errors import InvalidInputError
    from ltm_agent.records import StoredItem

    store = InMemoryStore(fake_embedder)
    good = StoredItem(("u1",), "a", "fine")
    bad = StoredItem(("u1",), "b", "wrong size", vector=(1.0, 0.0))
    with pytest.raises(InvalidInputError, match="length 64"):
        store.put([good, bad])
    assert store.count(("u1",)) == 0
