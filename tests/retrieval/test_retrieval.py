"""Hybrid, time-aware retrieval and budget packing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.errors import EmptyTextError, InvalidInputError, InvalidNamespaceError
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.records import MemoryItem
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig, pack, query_time_window, stable_partition
from ltm_agent.timeline import EpisodicTimeline

ASKED = datetime(2023, 5, 20, 12, tzinfo=UTC)  # a Saturday


def day(n: int) -> datetime:
    return ASKED - timedelta(days=n)


def convo() -> Conversation:
    said = [
        (30, "Ann", "I bought a blue bicycle for commuting"),
        (14, "Ann", "We went to the lake and I rode my bicycle around it"),
        (7, "Ann", "Last weekend I repaired the bicycle chain myself"),
        (7, "Bob", "Great, that chain needed some oil anyway"),
        (2, "Ann", "My sister Zoe visited and we cooked pasta"),
        (1, "Bob", "Pasta again? You really like Italian food"),
    ]
    sessions = tuple(
        Session(id=f"s{i}", date=day(n), turns=(Turn(id=f"t{i}", role="user" if who == "Ann" else "assistant", speaker=who, text=text),))
        for i, (n, who, text) in enumerate(said)
    )
    return Conversation(id="c", sessions=sessions)


@pytest.fixture
def store(fake_embedder) -> InMemoryStore:
    store = InMemoryStore(fake_embedder)
    EpisodicTimeline(store, ("u",), units=("turn", "context")).ingest(convo())
    return store


def test_time_window_resolves_against_question_date() -> None:
    window = query_time_window("What did I do last Saturday?", ASKED)
    assert window is not None
    assert window.start.date().isoformat() == "2023-05-11" and window.end.date().isoformat() == "2023-05-16"
    assert query_time_window("What is my sister called?", ASKED) is None
    # "may" alone is a verb, not a month
    assert query_time_window("Which food may I like?", ASKED) is None
    assert query_time_window("What happened in March 2023?", ASKED).start.month == 2  # widened by two days


def test_stable_partition_keeps_relative_order() -> None:
    assert stable_partition([5, 1, 4, 2, 3], lambda x: x > 2) == [5, 4, 3, 1, 2]


def test_keyword_half_of_hybrid_finds_rare_exact_name(store: InMemoryStore) -> None:
    items = HybridRetriever(store).retrieve(("u",), "Zoe", k=1)
    assert items[0].sources == ("t4",)


def test_time_expansion_moves_in_window_episodes_first(store: InMemoryStore) -> None:
    config = RetrievalConfig(units=("turn",))
    plain = HybridRetriever(store, config.but(time_expansion=False)).rank(("u",), "What did I do with my bicycle on 6 May 2023?", reference_time=ASKED)
    timed = HybridRetriever(store, config).rank(("u",), "What did I do with my bicycle on 6 May 2023?", reference_time=ASKED)
    assert timed[0].sources == ("t1",)
    assert {i.sources for i in plain} == {i.sources for i in timed}  # a partition, never a filter


def test_results_carry_time_tokens_sources_and_dedupe_values(store: InMemoryStore) -> None:
    items = HybridRetriever(store).rank(("u",), "bicycle chain", reference_time=ASKED)
    assert len({i.sources for i in items}) == len(items)  # turn and its context key count once
    top = items[0]
    assert top.time is not None and top.tokens > 0 and top.sources and top.text.startswith("[")


def test_budget_packing_never_exceeds_budget(store: InMemoryStore) -> None:
    for budget in (0, 10, 25, 60, 1000):
        items = HybridRetriever(store).retrieve(("u",), "bicycle pasta lake", budget_tokens=budget, k=100)
        assert sum(i.tokens for i in items) <= budget


def test_pack_skips_covered_and_can_stop_at_first_misfit() -> None:
    def item(i: str, tokens: int, sources: tuple[str, ...]) -> MemoryItem:
        return MemoryItem(i, "turn", i, 1.0, None, tokens, sources, ("n",))

    ranked = [item("round", 10, ("a", "b")), item("a", 4, ("a",)), item("big", 50, ("c",)), item("small", 5, ("d",))]
    assert [i.id for i in pack(ranked, 20)] == ["round", "small"]
    assert [i.id for i in pack(ranked, 20, greedy=False)] == ["round"]
    with pytest.raises(InvalidInputError):
        pack(ranked, -1)


def test_as_of_hides_later_episodes(store: InMemoryStore) -> None:
    items = HybridRetriever(store).rank(("u",), "pasta", as_of=day(5))
    assert all(i.time <= day(5) for i in items)


def test_speaker_boost_prefers_named_speaker(store: InMemoryStore) -> None:
    config = RetrievalConfig(units=("turn",), speaker_boost=2.0)
    items = HybridRetriever(store, config).rank(("u",), "What did Bob say about the chain?")
    assert items[0].sources == ("t3",)


def test_other_tenants_are_invisible(store: InMemoryStore) -> None:
    assert HybridRetriever(store).rank(("other",), "bicycle") == []


def test_bad_queries_raise(store: InMemoryStore) -> None:
    with pytest.raises(EmptyTextError):
        HybridRetriever(store).retrieve(("u",), "  ")
    with pytest.raises(InvalidNamespaceError):
        HybridRetriever(store).retrieve("u", "bicycle")  # type: ignore[arg-type]


def test_a_fact_is_not_merged_into_the_turn_it_came_from(fake_embedder) -> None:
    from ltm_agent.records import Fact

    store = InMemoryStore(fake_embedder)
    EpisodicTimeline(store, ("u",), units=("turn",)).ingest(convo())
    fact = Fact(id="f1", namespace=("u",), text="Ann owns a blue bicycle", subject="user.bike", valid_at=day(30), sources=("t0",))
    store.put([fact.to_item()])
    items = HybridRetriever(store, RetrievalConfig(units=("turn", "fact"))).rank(("u",), "blue bicycle")
    kinds = {i.kind for i in items if i.sources == ("t0",)}
    assert kinds == {"turn", "fact"}


def test_feedback_finds_a_memory_that_shares_words_only_with_the_best_hit(fake_embedder) -> None:
    said = [
        "Melanie finished a pottery bowl at the studio",
        "The glaze on that bowl came out turquoise after the kiln firing",
        "Traffic downtown was terrible this morning",
        "I watched a documentary about whales",
        "My neighbour plays drums every evening",
        "We ordered sushi for dinner",
    ]
    sessions = tuple(
        # The glaze turn's id sorts last, so ties with the unrelated turns cannot lift it.
        Session(id=f"s{i}", date=day(10 - i), turns=(Turn(id="z1" if i == 1 else f"t{i}", role="user", speaker="Ann", text=text),))
        for i, text in enumerate(said)
    )
    store = InMemoryStore(fake_embedder)
    EpisodicTimeline(store, ("u",), units=("turn",)).ingest(Conversation(id="c", sessions=sessions))
    query = "What did Melanie make in pottery?"
    config = RetrievalConfig(units=("turn",), feedback_docs=1, speaker_boost=0.0)

    def position(cfg: RetrievalConfig) -> int:
        ranked = HybridRetriever(store, cfg).rank(("u",), query, depth=None)
        assert ranked[0].sources == ("t0",)
        return [item.sources for item in ranked].index(("z1",))

    with_feedback, without = position(config), position(config.but(feedback_docs=0))
    assert with_feedback < without, (with_feedback, without)


def test_feedback_from_a_huge_memory_keeps_the_query_within_limits(fake_embedder) -> None:
    store = InMemoryStore(fake_embedder)
    limit = store.limits.max_text_chars
    said = ["pottery " * (limit // 8 - 10), "a pottery class on Friday", "sushi for dinner"]
    sessions = tuple(
        Session(id=f"s{i}", date=day(5 - i), turns=(Turn(id=f"t{i}", role="user", speaker="Ann", text=text),))
        for i, text in enumerate(said)
    )
    EpisodicTimeline(store, ("u",), units=("turn",)).ingest(Conversation(id="c", sessions=sessions))
    query = "pottery " * (limit // 8 - 10)  # a query near the limit, plus feedback text, stays legal
    ranked = HybridRetriever(store, RetrievalConfig(units=("turn",), feedback_docs=3)).rank(("u",), query)
    assert {item.sources for item in ranked[:2]} == {("t0",), ("t1",)}


def test_ranking_does_not_depend_on_the_namespace_name(fake_embedder) -> None:
    # Item ids hash the namespace, and stores break score ties by id: fusion must not care.
    store = InMemoryStore(fake_embedder)
    for namespace in (("a",), ("zz-other",)):
        EpisodicTimeline(store, namespace, units=("turn", "context")).ingest(convo())
    retriever = HybridRetriever(store)
    for query in ("bicycle", "What did Ann cook with Zoe?", "chain oil", "lake"):
        first, second = (
            [(item.sources, round(item.score, 9)) for item in retriever.rank(ns, query, reference_time=ASKED)]
            for ns in (("a",), ("zz-other",))
        )
        assert first == second, query


def test_an_ordinal_that_numbers_a_thing_is_not_a_date() -> None:
    assert query_time_window("Can you remind me what was the 27th parameter on the list?", ASKED) is None
    assert query_time_window("What was the 3rd song you wrote for me?", ASKED) is None
    on_a_day = query_time_window("What did I cook on the 17th?", ASKED)
    assert on_a_day is not None and on_a_day.start.day == 15  # the 17th, widened by two days
