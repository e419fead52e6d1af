"""KeywordIndex.state() / from_state(): a saved index loads without tokenizing and ranks to the bit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ltm_agent.memory_stores._keyword import KeywordIndex


def _docs(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(80)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(n)]


def _churned() -> tuple[KeywordIndex, dict[str, str]]:
    index, live = KeywordIndex(), {}
    docs = _docs(400)
    rng = random.Random(3)
    for step in range(1200):  # inserts, replaces and removals: tombstones before the state is taken
        key = f"d{rng.randrange(250)}"
        if rng.random() < 0.3:
            index.remove(key)
            live.pop(key, None)
        else:
            index.upsert(key, docs[step % len(docs)], {"n": step % 4})
            live[key] = docs[step % len(docs)]
    return index, live


def _loaded(state: dict, metadatas: list) -> KeywordIndex:
    return KeywordIndex.from_state(
        state["ids"], metadatas, state["vocab"], state["postings_ptr"], state["postings_slots"], state["postings_tfs"]
    )


def test_a_loaded_index_ranks_and_changes_exactly_like_the_saved_one() -> None:
    index, live = _churned()
    state = index.state()
    assert len(state["ids"]) == len(live) and None not in state["ids"]  # swept: no tombstones
    copy = _loaded(state, [{"n": 0}] * len(state["ids"]))
    queries = _docs(60, seed=9)
    for query in queries:
        assert copy.search(query, limit=None) == index.search(query, limit=None)
    for key in list(live)[::5]:  # both keep working in place, identically
        index.remove(key)
        copy.remove(key)
    for n in range(30):
        index.upsert(f"new{n}", queries[n], {})
        copy.upsert(f"new{n}", queries[n], {})
    for query in queries:
        assert copy.search(query, limit=None) == index.search(query, limit=None)


def test_scores_do_not_depend_on_the_order_the_index_was_filled_in() -> None:
    """A rebuilt index numbers its terms differently from a live one; scores must still match to the bit."""
    docs = _docs(300, seed=5)
    ids = [f"d{n}" for n in range(len(docs))]
    forward = KeywordIndex(ids, docs, [{}] * len(docs))
    backward = KeywordIndex(ids[::-1], docs[::-1], [{}] * len(docs))
    for query in _docs(200, seed=11):
        assert forward.search(query, limit=None) == backward.search(query, limit=None)


def test_an_empty_index_round_trips() -> None:
    state = KeywordIndex().state()
    assert _loaded(state, []).search("anything") == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.update(postings_ptr=s["postings_ptr"][:-1]),
        lambda s: s.update(postings_slots=s["postings_slots"] + 10_000),
        lambda s: s.update(postings_tfs=s["postings_tfs"] * 0.5),
        lambda s: s.update(postings_slots=s["postings_slots"][::-1].copy()),
        lambda s: s.update(postings_slots=s["postings_slots"].astype(np.float64)),
        lambda s: s.update(vocab=s["vocab"][:-1] + [s["vocab"][0]]),
        lambda s: s.update(ids=s["ids"][:-1] + [s["ids"][0]]),
    ],
    ids=["short-ptr", "slot-range", "fractional-tf", "unordered", "float-slots", "dup-vocab", "dup-ids"],
)
def test_an_inconsistent_state_is_refused(damage) -> None:  # noqa: ANN001
    index, _ = _churned()
    state = index.state()
    damage(state)
    with pytest.raises(ValueError):
        _loaded(state, [{}] * len(state["ids"]))
