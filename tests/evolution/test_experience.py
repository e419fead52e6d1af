"""Experience memory, utility feedback and heat, on every store backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ltm_agent.dates import utcnow
from ltm_agent.errors import InvalidInputError
from ltm_agent.evolution import (
    ExperienceMemory,
    Step,
    UsageMix,
    discounted_credit,
    feedback,
    heat,
    situation_id,
)
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.records import StoredItem
from ltm_agent.store import MemoryStore

NS = ("agents", "u1")


def test_credit_is_passed_back_and_skips_steps_that_changed_nothing() -> None:
    assert discounted_credit([0.0, 0.0, 1.0], 0.5) == [0.25, 0.5, 1.0]
    # The middle step changed nothing: it keeps its own reward, the first step still gets the later reward.
    assert discounted_credit([0.0, -0.1, 1.0], 0.5, [True, False, True]) == [0.5, -0.1, 1.0]
    # A step that lost reward keeps its loss; what made up for it later is not credited to it.
    assert discounted_credit([0.5, -0.5, 0.5], 0.5) == [0.75, -0.5, 0.5]


def test_outcomes_aggregate_per_situation_and_action_without_overwriting(store: MemoryStore) -> None:
    memory = ExperienceMemory(store, NS, gamma=0.0)
    memory.record_episode([Step("kitchen, holding apple", "put apple in fridge", 1.0)], success=True, task_id="e1")
    memory.record_episode([Step("kitchen, holding apple", "put apple in bowl", 1.0)], success=True, task_id="e2")
    memory.record_episode([Step("kitchen, holding apple", "put apple in oven", -1.0)], success=False, task_id="e3")
    memory.record_episode([Step("kitchen, holding apple", "put apple in fridge", 1.0)], success=False, task_id="e4")
    [case] = memory.cases()
    assert case.id == situation_id("kitchen, holding apple")
    stats = case.actions
    assert set(stats) == {"put apple in fridge", "put apple in bowl", "put apple in oven"}  # several right answers
    assert (stats["put apple in fridge"].visits, stats["put apple in fridge"].successes) == (2, 1)
    assert stats["put apple in oven"].credit_sum == -1.0


def test_recall_finds_similar_situations_and_estimates_actions() -> None:
    store = InMemoryStore()
    memory = ExperienceMemory(store, NS, gamma=0.0)
    memory.record_episode([Step("a dark cellar with a lamp", "turn on lamp", 1.0)], success=True)
    memory.record_episode([Step("a sunny garden with a hose", "water the roses", -0.5)], success=False)
    hits = memory.recall("a dark cellar with a lamp and a rat", k=1)
    assert [h.experience.situation for h in hits] == ["a dark cellar with a lamp"]
    est = memory.estimate(hits, ["turn on lamp", "dance"])
    assert est["turn on lamp"].value == pytest.approx(1.0)
    assert est["turn on lamp"].support > 0
    assert est["dance"].support == 0.0


def test_exact_mode_only_recalls_the_identical_situation() -> None:
    store = InMemoryStore()
    memory = ExperienceMemory(store, NS, mode="exact")
    memory.record_episode([Step("a dark cellar with a lamp", "turn on lamp", 1.0)], success=True)
    assert memory.recall("a dark cellar with a lamp and a rat", k=4) == []
    [hit] = memory.recall("a dark cellar with a lamp", k=4)
    assert memory.estimate([hit], ["turn on lamp", "turn on the lamp"])["turn on the lamp"].support == 0.0


def test_frozen_memory_writes_nothing_and_namespaces_are_separate() -> None:
    store = InMemoryStore()
    frozen = ExperienceMemory(store, NS, writes=False)
    frozen.record_episode([Step("hall", "open door", 1.0)], success=True)
    assert frozen.count() == 0
    ExperienceMemory(store, ("agents", "u2")).record_episode([Step("hall", "open door", 1.0)], success=True)
    assert ExperienceMemory(store, NS).recall("hall", k=3) == []


def test_feedback_updates_usage_once_per_task_and_memory(store: MemoryStore) -> None:
    store.put([StoredItem(NS, "m1", "use the blue key"), StoredItem(("agents", "u2"), "m1", "other tenant")])
    first = feedback(store, NS, ["m1", "missing"], 1.0, task_id="t1")
    assert (first.updated, first.missing) == (("m1",), ("missing",))
    again = feedback(store, NS, ["m1"], 1.0, task_id="t1")
    assert again.already_applied == ("m1",)
    feedback(store, NS, ["m1"], -0.5, task_id="t2")
    meta = store.get(NS, ["m1"])[0].metadata
    assert meta["utility"] == pytest.approx(0.5)
    assert meta["access_count"] == 2
    assert "utility" not in store.get(("agents", "u2"), ["m1"])[0].metadata


def test_feedback_rejects_bad_outcomes_and_leaves_the_store_unchanged() -> None:
    store = InMemoryStore()
    store.put([StoredItem(NS, "m1", "x")])
    with pytest.raises(InvalidInputError, match="outcome must be a number in"):
        feedback(store, NS, ["m1"], 3.0, task_id="t1")
    with pytest.raises(InvalidInputError, match="task_id"):
        feedback(store, NS, ["m1"], 1.0, task_id="")
    assert "utility" not in store.get(NS, ["m1"])[0].metadata


def test_heat_decays_with_a_24_hour_time_constant_and_mix_ranks_useful_memories_first() -> None:
    store = InMemoryStore()
    store.put([StoredItem(NS, "a", "the red door"), StoredItem(NS, "b", "the red door")])
    now = utcnow()
    feedback(store, NS, ["b"], 1.0, task_id="t1", now=now)
    b = store.get(NS, ["b"])[0]
    assert heat(b, now=now + timedelta(hours=24)) == pytest.approx(heat(b, now=now) / 2.718281828, rel=1e-3)
    a = store.get(NS, ["a"])[0]
    assert heat(a, now=now) == 0.0
    mix = UsageMix(utility_weight=0.5)
    assert mix.score(0.8, b) > mix.score(0.8, a)
    assert UsageMix().score(0.8, b) == 0.8  # the default ranks by relevance alone


def test_utility_feedback_reorders_recall_when_the_mix_is_on() -> None:
    store = InMemoryStore()
    memory = ExperienceMemory(store, NS, usage_mix=UsageMix(utility_weight=1.0))
    ids = memory.record_episode(
        [Step("the red door", "knock", 0.1), Step("the red door!", "kick", 0.1)], success=True, task_id="e1"
    )
    before = [h.experience.id for h in memory.recall("the red door!", k=2)]
    memory.feedback([before[0]], -1.0, task_id="e2")
    memory.feedback([before[1]], 1.0, task_id="e2")
    after = [h.experience.id for h in memory.recall("the red door!", k=2)]
    assert after == before[::-1]
    assert set(after) == set(ids)
