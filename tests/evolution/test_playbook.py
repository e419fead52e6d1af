"""Playbook deltas, reflectors, procedural memory and consolidation."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import InvalidInputError, NotFoundError
from ltm_agent.evolution import (
    ActionStats,
    Delta,
    DeltaOp,
    Experience,
    ExperienceMemory,
    LLMReflector,
    Playbook,
    ProceduralMemory,
    StatisticsReflector,
    Step,
    archive_namespace,
    consolidate,
    playbook_priors,
    restore,
)
from ltm_agent.llm import ModelStep
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.store import MemoryStore

NS = ("agents", "u1")


def test_deltas_add_vote_edit_remove_and_prune(store: MemoryStore) -> None:
    book = Playbook(store, NS)
    [rule] = book.apply([Delta(op=DeltaOp.ADD, text="Open a container before putting things in it.")])
    book.apply([Delta(op=DeltaOp.UPVOTE, bullet_id=rule, count=2), Delta(op=DeltaOp.EDIT, bullet_id=rule, text="Open it first.")])
    [bullet] = book.bullets()
    assert (bullet.text, bullet.helpful, bullet.harmful) == ("Open it first.", 3, 0)
    assert "Open a container before putting things in it." in bullet.merged  # the old wording is kept
    book.apply([Delta(op=DeltaOp.DOWNVOTE, bullet_id=rule, count=4)])  # harmful > helpful: pruned
    assert book.bullets() == []
    assert book.restore([rule]) == 1 and [b.id for b in book.bullets()] == [rule]
    book.apply([Delta(op=DeltaOp.REMOVE, bullet_id=rule)])
    assert book.bullets() == []


def test_near_duplicate_adds_merge_into_one_bullet() -> None:
    book = Playbook(InMemoryStore(HashingEmbedder(64)), NS)
    book.apply([Delta(op=DeltaOp.ADD, text="Always open the fridge before storing food.")])
    book.apply([Delta(op=DeltaOp.ADD, text="Always open the fridge before storing food!")])
    book.apply([Delta(op=DeltaOp.ADD, text="Never wear socks to bed.")])
    bullets = book.bullets()
    assert len(bullets) == 2
    assert bullets[0].helpful == 2 and bullets[0].merged == ["Always open the fridge before storing food!"]


def test_bad_deltas_raise_and_change_nothing() -> None:
    book = Playbook(InMemoryStore(), NS)
    with pytest.raises(InvalidInputError, match="needs non-empty text"):
        book.apply([Delta(op=DeltaOp.ADD, text="ok rule"), Delta(op=DeltaOp.ADD, text="  ")])
    assert book.bullets() == []
    with pytest.raises(NotFoundError, match="no bullet"):
        book.apply([Delta(op=DeltaOp.UPVOTE, bullet_id="ins-missing")])


def test_statistics_reflector_turns_repeated_outcomes_into_rules_and_priors() -> None:
    book = Playbook(InMemoryStore(), NS)
    cases = [
        Experience("c1", "room a", {"take key": ActionStats(4, 2, 0.8, 0.8), "look": ActionStats(6, 0, -0.3, -0.3)}),
        Experience("c2", "room b", {"take coin": ActionStats(2, 2, 0.4, 0.4)}),
    ]
    reflector = StatisticsReflector(min_visits=5)
    book.apply(reflector.propose(cases, book.bullets()))
    rules = {b.pattern: b for b in book.bullets()}
    assert set(rules) == {"verb:take", "verb:look"}
    assert rules["verb:take"].value == pytest.approx(0.2) and rules["verb:look"].value == pytest.approx(-0.05)
    assert playbook_priors(book.bullets(), ["take lamp", "look", "open door"]) == pytest.approx({"take lamp": 0.2, "look": -0.05})
    # Evidence that flips a rule's sign downvotes it once and edits it to the new numbers (a delta, not a rewrite).
    flipped = [Experience("c3", "room c", {"take key": ActionStats(40, 0, -8.0, -8.0)})]
    book.apply(reflector.propose(cases + flipped, book.bullets()))
    take = next(b for b in book.bullets() if b.pattern == "verb:take")
    assert (take.helpful, take.harmful) == (1, 1) and take.value < 0 and "did not pay off" in take.text
    assert any("paid off" in old for old in take.merged)


def test_llm_reflector_proposes_deltas_through_model_step() -> None:
    model = GenericFakeChatModel(messages=iter(['{"deltas": [{"op": "ADD", "text": "Take keys early."}]}']))
    step = ModelStep(model, structured_output=False)
    deltas = LLMReflector(step).propose([Experience("c1", "room", {"take key": ActionStats(1, 1, 1.0, 1.0)})], [])
    assert [(d.op, d.text, d.source) for d in deltas] == [(DeltaOp.ADD, "Take keys early.", "llm")]
    assert len(step.ledger.calls) == 1


def test_procedural_memory_versions_record_their_insights_and_revert() -> None:
    store = InMemoryStore()
    book = Playbook(store, NS)
    [rule] = book.apply([Delta(op=DeltaOp.ADD, text="Open containers first.")])
    proc = ProceduralMemory(store, NS)
    assert proc.current() is None
    v1 = proc.update("Solve the task.", insights=[])
    v2 = proc.evolve("Solve the task.", book)
    assert (v2.version, v2.insights) == (2, (rule,)) and "Open containers first." in v2.text
    v3 = proc.revert(1)
    assert (v3.version, v3.text, v3.reverted_from) == (3, v1.text, 1)
    assert [v.version for v in proc.versions()] == [1, 2, 3]
    with pytest.raises(NotFoundError):
        proc.revert(9)


def test_consolidation_merges_with_provenance_archives_and_restores(store: MemoryStore) -> None:
    memory = ExperienceMemory(store, NS, gamma=0.0)
    memory.record_episode([Step("a dark cellar with a lamp", "turn on lamp", 1.0)] * 3, success=True, task_id="e1")
    memory.record_episode([Step("a dark cellar with a lamp!", "turn on lamp", 1.0)], success=True, task_id="e2")
    memory.record_episode([Step("a windy roof with pigeons", "jump", -1.0)], success=False, task_id="e3")
    memory.feedback([c.id for c in memory.cases() if "roof" in c.situation], -1.0, task_id="e3")
    book = Playbook(store, NS)
    report = consolidate(
        memory, playbook=book, reflector=StatisticsReflector(min_visits=1), merge_threshold=0.9, archive_floor=-0.5
    )
    assert (report.cases_before, report.merged, report.archived, report.cases_after) == (3, 1, 1, 1)
    [kept] = memory.cases()
    assert kept.actions["turn on lamp"].visits == 4 and len(kept.merged_from) == 1
    archived = store.list(archive_namespace(NS))
    assert {i.metadata.get("merged_into") for i in archived} == {kept.id, None}  # merged and cold, both kept
    assert {b.pattern for b in book.bullets()} == {"verb:turn"}  # insights come from live cases only
    roof = next(i.id for i in archived if "merged_into" not in i.metadata)
    assert restore(memory, [roof]) == 1 and memory.count() == 2
