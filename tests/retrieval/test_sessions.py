"""Session-level signals: a session ranking fused in, and diversification over sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from retrieval_helpers import sessions_of

from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig
from ltm_agent.retrieval.learned import capture_candidates
from ltm_agent.retrieval.sessions import diversify_sessions, fuse_session_ranking
from ltm_agent.timeline import EpisodicTimeline

D0 = datetime(2024, 1, 1, 12, tzinfo=UTC)


def session_of(value: str) -> str:
    return value[0]


def _one_session_among_filler(fake_embedder, turns: tuple[Turn, ...]) -> InMemoryStore:  # noqa: ANN001
    """Session ``s`` holding ``turns``, then six one-turn sessions about cooking (turns and context keys)."""
    cooked = {f"x{i}": [f"we cooked dish number {i} at home"] for i in range(6)}
    filler = sessions_of(cooked, D0 + timedelta(days=1), speaker="")
    store = InMemoryStore(fake_embedder)
    conversation = Conversation(id="c", sessions=(Session(id="s", date=D0, turns=turns), *filler))
    EpisodicTimeline(store, ("u",), units=("turn", "context")).ingest(conversation)
    return store


def _first_sources(store: InMemoryStore, config: RetrievalConfig, query: str) -> tuple[str, ...]:
    return HybridRetriever(store, config).rank(("u",), query)[0].sources


def test_diversify_places_other_sessions_before_a_second_item_of_one() -> None:
    fused = [("a1", 1.0), ("a2", 0.95), ("a3", 0.9), ("b1", 0.6), ("c1", 0.35)]
    diverse = diversify_sessions(fused, session_of, penalty=1.0)
    # a2 at 0.95 / 2 = 0.475 loses to b1 (0.6) but beats c1 (0.35); a3 at 0.9 / 3 = 0.3 comes last.
    assert [v for v, _ in diverse] == ["a1", "b1", "a2", "c1", "a3"]
    assert dict(diverse) == dict(fused)  # scores stay; only the order changes
    assert diversify_sessions(fused, session_of, penalty=0.0) == fused
    assert sorted(diversify_sessions(fused, session_of, penalty=5.0)) == sorted(fused)  # a permutation


def test_diversify_leaves_memories_without_a_session_unpenalised() -> None:
    fused = [("x1", 1.0), ("x2", 0.9), ("x3", 0.8)]
    assert diversify_sessions(fused, lambda v: None, penalty=3.0) == fused


def test_session_ranking_lifts_a_session_that_several_memories_support() -> None:
    fused = [("a1", 0.050), ("b1", 0.049), ("b2", 0.048), ("c1", 0.01)]
    order = [v for v, _ in fuse_session_ranking(fused, session_of, weight=1.0, k=20)]
    assert order == ["b1", "b2", "a1", "c1"]
    weak = [v for v, _ in fuse_session_ranking(fused, session_of, weight=0.01, k=20)]
    assert weak == ["a1", "b1", "b2", "c1"]  # a small weight keeps the turn order


def test_an_independent_session_ranking_joins_the_one_from_memory_scores() -> None:
    fused = [("a1", 0.050), ("b1", 0.049), ("c1", 0.048)]  # from the memories: sessions a, b, c
    assert fuse_session_ranking(fused, session_of, weight=1.0, k=20, others=()) == fuse_session_ranking(
        fused, session_of, weight=1.0, k=20
    )
    # Another ranking says c only: fused, c = 1/23 + 1/21 leads, a (1/21) and b (1/22) follow;
    # each memory gains 1/(20 + its session's rank): c1 .048 + 1/21, a1 .050 + 1/22, b1 .049 + 1/23.
    lifted = fuse_session_ranking(fused, session_of, weight=1.0, k=20, others=[(["c"], 1.0)])
    assert [v for v, _ in lifted] == ["c1", "a1", "b1"]
    # A session only the other ranking knows (z) has no memory to lift and changes nothing for the rest.
    with_z = fuse_session_ranking(fused, session_of, weight=1.0, k=20, others=[(["c", "z", "b"], 1.0)])
    assert [v for v, _ in with_z] == ["c1", "b1", "a1"]  # b = 1/22 + 1/23 now passes a = 1/21
    assert fuse_session_ranking(fused, session_of, weight=1.0, k=20, others=[(["c"], 0.0)]) == (
        fuse_session_ranking(fused, session_of, weight=1.0, k=20)
    )


WHOLE_SESSION_QUERY = "lighthouse harbour van ferry"


@pytest.fixture
def whole_session_store(fake_embedder) -> InMemoryStore:  # noqa: ANN001
    """Session y's short turns hold every word of :data:`WHOLE_SESSION_QUERY` between them; x has turns
    that each match two words but is long; w holds two of the words; z one (turns only)."""
    filler = [f"note {w} about the {v}" for w, v in zip(
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron sigma tau".split(),
        "garden kitchen office garage attic cellar porch hallway study pantry balcony roof yard shed".split(),
    )]
    said = {
        "x": ["the lighthouse by the harbour", "harbour lighthouse photos", "a lighthouse over the harbour", *filler],
        "y": ["we packed the van", "the ferry was late", "I drew a lighthouse", "fish at the harbour"],
        "z": ["the van broke down", *filler[:4]],
        "w": ["ferry tickets", "van rental"],
    }
    store = InMemoryStore(fake_embedder)
    EpisodicTimeline(store, ("u",), units=("turn",)).ingest(Conversation(id="c", sessions=sessions_of(said, D0)))
    return store


def test_sessions_ranked_as_whole_documents_lift_the_session_that_holds_the_question(
    whole_session_store: InMemoryStore,
) -> None:
    """BM25 over whole sessions ranks y first, and the retriever fuses that in: y's first turn comes before w's."""
    store, query = whole_session_store, WHOLE_SESSION_QUERY
    whole = store.search(("u",), query, mode="keyword", group_by="session_id", filter={"kind": "turn"})
    assert [h.item.metadata["session_id"] for h in whole] == ["y", "w", "x", "z"]

    def first_of(session: str, weight: float) -> int:
        config = RetrievalConfig(units=("turn",), feedback_docs=0, speaker_boost=0.0, session_keyword_weight=weight)
        ranked = [i.sources[0][0] for i in HybridRetriever(store, config).rank(("u",), query)]
        return ranked.index(session)

    assert first_of("y", 1.0) < first_of("w", 1.0)
    assert first_of("w", 0.0) < first_of("y", 0.0)  # from the memories' scores alone, w comes first


def test_training_capture_gives_the_default_order_with_the_whole_session_ranking(
    whole_session_store: InMemoryStore,
) -> None:
    """``bench train-fusion`` compares the learned order with the default one: the order captured on the
    learned read path must be the default read path's, whole-session BM25 included."""
    store, query = whole_session_store, WHOLE_SESSION_QUERY
    config = RetrievalConfig(feedback_docs=0, speaker_boost=0.0)

    def order(cfg: RetrievalConfig) -> list[str]:
        return [item.id for item, _ in HybridRetriever(store, cfg).ranked_items(("u",), query)]

    default = order(config)
    assert default != order(config.but(session_keyword_weight=0.0))  # the session ranking matters here
    with capture_candidates() as sink:
        captured = order(config.but(fusion="learned"))
    assert len(sink) == 1 and captured == default


def test_retriever_diversity_reaches_the_second_session_sooner(two_session_store: InMemoryStore) -> None:
    store = two_session_store
    query = "pottery bowl camping"
    config = RetrievalConfig(units=("turn",), feedback_docs=0, speaker_boost=0.0)

    def first_other(cfg: RetrievalConfig) -> int:
        ranked = HybridRetriever(store, cfg).rank(("u",), query)
        sessions = [item.sources[0].split("-")[0] for item in ranked]
        return sessions.index("s1" if sessions[0] == "s0" else "s0")

    assert first_other(config.but(session_diversity=2.0)) <= 1 < first_other(config)


def test_a_long_turn_stands_for_itself_in_the_context_rankings(fake_embedder) -> None:
    """A long assistant turn has no context key; its short neighbours have keys holding its start.
    Without standing in the context rankings itself, the neighbours outrank the turn that answers."""
    answer = ("Zardozi embroidery uses gold thread, and the mood of the piece was nostalgia. "
              + "Other stitches include chikankari, phulkari and kantha, each with a long history. " * 6)
    turns = (
        Turn(id="q", role="user", speaker="", text="Tell me about zardozi embroidery techniques"),
        Turn(id="a", role="assistant", speaker="", text=answer),
        Turn(id="f", role="user", speaker="", text="Thanks, and zardozi tailoring?"),
    )
    store = _one_session_among_filler(fake_embedder, turns)
    query = "In our previous chat, what was the mood of the zardozi embroidery piece, nostalgia?"

    def first(cfg: RetrievalConfig) -> tuple[str, ...]:
        return _first_sources(store, cfg, query)

    config = RetrievalConfig(feedback_docs=0)
    assert first(config) == ("a",)  # the question asks what the assistant said ("our previous chat")
    assert first(config.but(long_turns_as_context="never")) != ("a",)
    assert first(config.but(long_turns_as_context="always")) == ("a",)
    # A question about the user's own words leaves the context rankings to the keys.
    plain = HybridRetriever(store, config).rank(("u",), "What was the mood of the zardozi embroidery piece, nostalgia?")
    never = HybridRetriever(store, config.but(long_turns_as_context="never")).rank(
        ("u",), "What was the mood of the zardozi embroidery piece, nostalgia?"
    )
    assert [i.sources for i in plain] == [i.sources for i in never]


def test_a_long_user_turn_stands_for_itself_on_every_question(fake_embedder) -> None:
    """The user's long turn (what they said happened) stands in the context rankings on a plain
    question too (``long_turns_as_context="user"``, the default); under ``"recall"`` it does not,
    and its short neighbours, whose keys hold its words, come first."""
    said = ("Yesterday I attended a friends and family sale at Nordstrom and picked up a few dresses. "
            + "Anyway, back to the TV mount question, which model fits a living room wall best? " * 4)
    turns = (
        Turn(id="q", role="assistant", speaker="", text="How did your week go?"),
        Turn(id="u", role="user", speaker="", text=said),
        Turn(id="f", role="assistant", speaker="", text="Sounds like a good week."),
    )
    store = _one_session_among_filler(fake_embedder, turns)
    query = "When did I attend the friends and family sale at Nordstrom?"

    def first(cfg: RetrievalConfig) -> tuple[str, ...]:
        return _first_sources(store, cfg, query)

    config = RetrievalConfig(feedback_docs=0)
    assert config.long_turns_as_context == "user"
    assert first(config) == ("u",)
    assert first(config.but(long_turns_as_context="recall")) != ("u",)
