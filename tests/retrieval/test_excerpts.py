"""Query-focused excerpts of long memories: what is kept, what is counted, what is cited."""

from __future__ import annotations

from datetime import UTC, datetime

from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig
from ltm_agent.retrieval.excerpts import excerpt
from ltm_agent.timeline import EpisodicTimeline
from ltm_agent.tokens import count_tokens

LONG = ("assistant: Here are five bottles for gin cocktails. 1. Sweet vermouth for a Negroni. "
        "2. Dry vermouth for a Martini. 3. Campari for bitterness. 4. Elderflower liqueur for floral notes. "
        "5. Absinthe, a strong herbal liqueur for the Corpse Reviver. " + "Mixing is fun and easy. " * 20)


def test_an_excerpt_keeps_the_best_matching_sentences_within_the_budget() -> None:
    cut = excerpt(LONG, "Which herbal liqueur did you recommend for the Corpse Reviver?", 40)
    assert cut is not None and "Absinthe" in cut and cut.startswith("assistant: … ")
    assert count_tokens(cut) <= 40 and f"[excerpt of a {count_tokens(LONG)}-token memory]" in cut


def test_no_excerpt_when_the_memory_fits_or_nothing_matches() -> None:
    assert excerpt("assistant: short answer.", "answer", 40) is None
    assert excerpt(LONG, "quantum chromodynamics lattice", 40) is None  # the whole memory is the honest rendering


def test_the_retriever_renders_excerpts_counts_them_and_keeps_the_sources(fake_embedder) -> None:
    store = InMemoryStore(fake_embedder)
    turns = (Turn(id="q", role="user", speaker="", text="Which bottles should I buy for gin cocktails?"),
             Turn(id="a", role="assistant", speaker="", text=LONG.removeprefix("assistant: ")))
    EpisodicTimeline(store, ("u",)).ingest(
        Conversation(id="c", sessions=(Session(id="s", date=datetime(2024, 1, 2, tzinfo=UTC), turns=turns),))
    )
    query = "Which herbal liqueur for the Corpse Reviver?"
    own_dates = RetrievalConfig(share_dates=False)  # every item shows its date, whatever the rank
    whole = {i.sources: i for i in HybridRetriever(store, own_dates).rank(("u",), query)}
    cut = {i.sources: i for i in HybridRetriever(store, own_dates.but(excerpt_tokens=48)).rank(("u",), query)}
    assert set(whole) == set(cut) and ("a",) in cut
    assert cut[("a",)].text.startswith("[2 Jan 2024] assistant: … ") and "Absinthe" in cut[("a",)].text
    assert cut[("a",)].tokens == count_tokens(cut[("a",)].text) < whole[("a",)].tokens
    assert cut[("q",)].text == whole[("q",)].text  # a short memory is rendered whole
