"""Query types read from a question's form: the set rule, and settings applied only to set questions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.errors import InvalidInputError
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig
from ltm_agent.retrieval.excerpts import is_excerpt
from ltm_agent.retrieval.query_types import SET_FORMS, asks_for_a_set, set_question_form
from ltm_agent.timeline import EpisodicTimeline

D0 = datetime(2024, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("question", "form"),
    [
        ("What books has Melanie read?", "plural"),
        ("What LGBTQ+ events has Caroline participated in?", "plural"),
        ("Which  classical musicians does Melanie enjoy?", "plural"),
        ("What types of pottery have Melanie and her kids made?", "plural"),
        ("What areas of the U.S. has John been to?", "plural"),
        ("What people has Maria met while volunteering?", "plural"),
        ("How many tournaments has Nate won?", "count"),
        ("How many times did I bake egg tarts?", "count"),
        ("Where has Melanie camped?", "perfect"),
        ("What has Melanie painted?", "perfect"),
        ("What are Joanna's hobbies?", "plural-copula"),
        ("Did Jon and Gina both participate in dance competitions?", "collective"),
        ("In what ways is Caroline helping?", "plural"),
        ("Remind me of the list you gave me", "collective"),
    ],
)
def test_the_rule_fires_on_questions_that_ask_for_several_things(question: str, form: str) -> None:
    assert set_question_form(question) == form
    assert form in SET_FORMS
    assert asks_for_a_set(question)


@pytest.mark.parametrize(
    "question",
    [
        "When did Melanie go camping?",
        "What did Caroline research?",
        "What is Caroline's relationship status?",  # -s words that are no plural noun
        "What motivates Joanna to keep writing?",  # a verb in -s, no auxiliary after it
        "Which song motivates Caroline to be courageous?",
        "What does Melanie do to destress?",
        "How many days did it take me to finish the book?",  # one amount, not a set
        "How many more miles per gallon does my car get?",
        "How long have I been living in Harajuku?",
        "What kind of art does Caroline make?",  # "kind of" in the singular
        "What are you doing?",
        "",
    ],
)
def test_the_rule_leaves_other_questions_alone(question: str) -> None:
    assert set_question_form(question) is None
    assert not asks_for_a_set(question)


def test_for_sets_applies_only_to_set_questions() -> None:
    config = RetrievalConfig(for_sets=(("session_diversity", 0.2), ("speaker_boost", 2.0)))
    changed = config.for_query("What books has Melanie read?")
    assert (changed.session_diversity, changed.speaker_boost, changed.for_sets) == (0.2, 2.0, ())
    assert config.for_query("When did Melanie read it?") is config
    plain = RetrievalConfig()
    assert plain.for_query("What books has Melanie read?") is plain  # off by default


@pytest.mark.parametrize("bad", [(("no_such_field", 1),), (("for_sets", ()),), ("session_diversity",), ((1, 2, 3),)])
def test_for_sets_rejects_what_is_not_a_field_pair(bad: tuple) -> None:
    with pytest.raises(InvalidInputError, match="for_sets"):
        RetrievalConfig(for_sets=bad)


def test_for_sets_diversifies_a_set_question_and_leaves_others_in_order(two_session_store: InMemoryStore) -> None:
    store = two_session_store
    base = RetrievalConfig(units=("turn",), feedback_docs=0, speaker_boost=0.0)
    typed = base.but(for_sets=(("session_diversity", 2.0),))

    def order(cfg: RetrievalConfig, query: str) -> list[tuple[str, ...]]:
        return [item.sources for item in HybridRetriever(store, cfg).rank(("u",), query)]

    def first_other(ranked: list[tuple[str, ...]]) -> int:
        sessions = [sources[0].split("-")[0] for sources in ranked]
        return sessions.index("s1" if sessions[0] == "s0" else "s0")

    asked = "What hobbies has Ann tried, pottery bowl camping?"
    assert asks_for_a_set(asked)
    assert first_other(order(typed, asked)) <= 1 < first_other(order(base, asked))
    other = "When did Ann make the pottery bowl, camping?"
    assert not asks_for_a_set(other)
    assert order(typed, other) == order(base, other)


def test_for_sets_renders_set_questions_with_their_own_excerpt_size(fake_embedder) -> None:
    """Rendering follows the question's settings too: excerpts only where ``for_sets`` asks for them."""
    long_turn = "We went camping at the lake in June. " + "The tent leaked and the stove broke, so we ate cold noodles. " * 8
    session = Session(id="s0", date=D0, turns=(Turn(id="t0", role="user", speaker="Ann", text=long_turn),))
    store = InMemoryStore(fake_embedder)
    EpisodicTimeline(store, ("u",), units=("turn",)).ingest(Conversation(id="c", sessions=(session,)))
    config = RetrievalConfig(units=("turn",), feedback_docs=0, excerpt_tokens=0, for_sets=(("excerpt_tokens", 24),))
    retriever = HybridRetriever(store, config)
    asked = retriever.rank(("u",), "What trips has Ann taken, camping at the lake?")
    other = retriever.rank(("u",), "When did Ann go camping at the lake?")
    assert is_excerpt(asked[0].text) and asked[0].tokens < other[0].tokens
    assert not is_excerpt(other[0].text) and asked[0].sources == other[0].sources == ("t0",)
