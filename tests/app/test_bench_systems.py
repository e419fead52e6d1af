"""The benchmark's systems one by one: the peers, the ``ltm-facts`` ablation, and systems that cannot run."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ltm_agent.app.bench import systems as systems_module
from ltm_agent.app.bench.datasets import Question, load_questions
from ltm_agent.app.bench.retrieval_bench import run_retrieval_bench
from ltm_agent.app.bench.systems import (
    DEFAULT_SYSTEMS,
    DEPTH,
    SYSTEMS,
    make_system,
    turn_text,
)
from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import MissingExtraError
from ltm_agent.loaders import load_conversations
from ltm_agent.records import RecordKind
from ltm_agent.tokens import count_tokens

DATA = Path(__file__).parents[1] / "data"
HAS_MEM0 = importlib.util.find_spec("mem0") is not None
PEERS = ("llamaindex-vectorblock", *(("mem0-raw",) if HAS_MEM0 else ()))


@pytest.fixture(scope="module")
def locomo() -> tuple[list[Conversation], list[Question]]:
    conversations = load_conversations(DATA / "mini_locomo.json", "locomo")
    return conversations, load_questions(DATA / "mini_locomo.json", "locomo", conversations=conversations)


def _rendered(conversation: Conversation) -> dict[str, str]:
    return {
        t.id: turn_text(t.speaker, t.role, t.text)
        for s in conversation.ordered_sessions()
        for t in s.turns
        if t.text.strip()
    }


def test_every_run_includes_the_new_systems() -> None:
    for name in ("ltm-facts", "llamaindex-vectorblock", "mem0-raw"):
        assert name in DEFAULT_SYSTEMS and name in SYSTEMS
    assert set(DEFAULT_SYSTEMS) <= set(SYSTEMS)


@pytest.mark.parametrize("name", PEERS)
def test_peer_returns_every_turn_ranked_with_exact_sources(name: str, locomo) -> None:
    conversations, questions = locomo
    system = make_system(name, HashingEmbedder(64))
    collections_before = {c.name for c in system.client.list_collections()}
    try:
        for conversation in conversations:
            namespace = ("bench", conversation.id)
            turns = _rendered(conversation)
            assert system.ingest(namespace, conversation) == len(turns)
            for question in (q for q in questions if q.conversation_id == conversation.id):
                items = system.retrieve(namespace, question)
                assert len(items) == min(DEPTH, len(turns))
                assert sorted(i.id for i in items) == sorted(turns)  # each turn once
                scores = [i.score for i in items]
                assert scores == sorted(scores, reverse=True)
                for item in items:
                    assert item.sources == (item.id,) and item.kind == "turn"
                    assert item.text == turns[item.id]
                    assert item.tokens == count_tokens(item.text)
                    assert item.namespace == namespace
            system.forget(namespace)
            with pytest.raises(KeyError):
                system.retrieve(namespace, questions[0])
        assert {c.name for c in system.client.list_collections()} == collections_before  # forget dropped them
    finally:
        system.close()


def test_llamaindex_ranking_is_the_blocks_own(locomo) -> None:
    """The ranked list equals what ``VectorMemoryBlock.aget`` itself retrieves, in order (ties aside)."""
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.memory import VectorMemoryBlock

    conversations, questions = locomo
    system = make_system("llamaindex-vectorblock", HashingEmbedder(64))
    conversation = conversations[0]
    namespace = ("bench", conversation.id)
    system.ingest(namespace, conversation)
    block = system.blocks[namespace]
    assert isinstance(block, VectorMemoryBlock)
    for question in (q for q in questions if q.conversation_id == conversation.id):
        ours = {i.text: i.score for i in system.retrieve(namespace, question)}
        fresh = block.model_copy(update={"query_kwargs": {}, "similarity_top_k": len(ours)})
        got = asyncio.run(
            fresh.aget(messages=[ChatMessage(role="user", content=question.text)], session_id=system.session_id(namespace))
        )
        theirs = re.findall(r"<message role='\w+'>(.*?)</message>", got, flags=re.DOTALL)
        assert sorted(theirs) == sorted(ours), question.id
        in_their_order = [ours[text] for text in theirs]
        assert in_their_order == sorted(in_their_order, reverse=True), question.id
    system.close()


def test_llamaindex_nodes_are_what_the_blocks_own_put_writes(locomo) -> None:
    """Per turn: the same document, embedding and session as ``VectorMemoryBlock.aput`` of that one message."""
    import chromadb
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.memory import VectorMemoryBlock
    from llama_index.vector_stores.chroma import ChromaVectorStore

    conversations, _ = locomo
    system = make_system("llamaindex-vectorblock", HashingEmbedder(64))
    conversation = conversations[0]
    namespace = ("bench", conversation.id)
    system.ingest(namespace, conversation)
    ours = system.blocks[namespace].vector_store._collection.get(include=["documents", "embeddings", "metadatas"])
    ours_by_document = {d: (list(e), m["session_id"]) for d, e, m in
                        zip(ours["documents"], ours["embeddings"], ours["metadatas"], strict=True)}
    roles = {t.id: t.role for s in conversation.sessions for t in s.turns}
    collection = chromadb.EphemeralClient().create_collection("li-reference-put", embedding_function=None)
    try:
        reference = VectorMemoryBlock(vector_store=ChromaVectorStore(chroma_collection=collection),
                                      embed_model=system.embed_model)
        for tid, text in _rendered(conversation).items():
            message = ChatMessage(role=roles[tid], content=text,
                                  additional_kwargs={"session_id": system.session_id(namespace)})
            asyncio.run(reference.aput([message]))
        theirs = collection.get(include=["documents", "embeddings", "metadatas"])
        assert sorted(theirs["documents"]) == sorted(ours["documents"])
        for document, embedding, metadata in zip(theirs["documents"], theirs["embeddings"], theirs["metadatas"],
                                                  strict=True):
            vector, session = ours_by_document[document]
            assert session == metadata["session_id"]
            assert vector == pytest.approx(list(embedding), abs=1e-6)
    finally:
        chromadb.EphemeralClient().delete_collection("li-reference-put")
        system.close()


def test_mem0_reports_why_it_is_not_installed() -> None:
    if HAS_MEM0:
        pytest.skip("mem0ai is installed here; test_peer_returns_every_turn_ranked_with_exact_sources runs it")
    with pytest.raises(MissingExtraError, match=r"mem0ai .*protobuf"):
        make_system("mem0-raw", HashingEmbedder(64))


def test_ltm_facts_renders_and_sources_like_ltm(locomo) -> None:
    """No pattern fact on the mini data: same items as ``ltm`` (text and sources), ranks aside."""
    conversations, questions = locomo
    facts, plain = make_system("ltm-facts", HashingEmbedder(64)), make_system("ltm", HashingEmbedder(64))
    for conversation in conversations:
        namespace = ("bench", conversation.id)
        assert facts.ingest(namespace, conversation) == plain.ingest(namespace, conversation) == len(_rendered(conversation))
        for question in (q for q in questions if q.conversation_id == conversation.id):
            got = facts.retrieve(namespace, question)
            assert got and all(set(i.sources) <= set(_rendered(conversation)) for i in got)
            expected = {(i.sources, i.text) for i in plain.retrieve(namespace, question)}
            assert {(i.sources, i.text) for i in got} == expected
    facts.close()
    plain.close()


def _conversation_with_facts() -> Conversation:
    def turns(session: str, lines: list[tuple[str, str]]) -> tuple[Turn, ...]:
        return tuple(
            Turn(id=f"{session}:{i}", role="user" if who == "Maya" else "assistant", speaker=who, text=text)
            for i, (who, text) in enumerate(lines, start=1)
        )

    return Conversation(
        id="facts-1",
        sessions=(
            Session(id="S1", date=datetime(2024, 3, 2, 10, tzinfo=UTC), turns=turns("S1", [
                ("Maya", "Morning! I moved to Berlin last week."),
                ("Leo", "Big change. How is the flat?"),
                ("Maya", "Small but bright. Also, I'm vegetarian now."),
                ("Leo", "Good to know for dinner plans."),
            ])),
            Session(id="S2", date=datetime(2024, 4, 6, 18, tzinfo=UTC), turns=turns("S2", [
                ("Leo", "Did you find a pottery studio yet?"),
                ("Maya", "Yes, a tiny one near the canal."),
            ])),
        ),
    )


def test_ltm_facts_writes_fact_augmented_keys_on_source_turns() -> None:
    conversation = _conversation_with_facts()
    namespace = ("bench", conversation.id)
    facts, plain = make_system("ltm-facts", HashingEmbedder(64)), make_system("ltm", HashingEmbedder(64))
    facts.ingest(namespace, conversation)
    plain.ingest(namespace, conversation)

    stored = facts.store.list(facts._ns(namespace))
    fact_records = [i for i in stored if i.metadata.get("kind") == str(RecordKind.FACT)]
    by_text = {i.text: json.loads(str(i.metadata["sources"])) for i in fact_records}
    assert by_text == {"Maya lives in Berlin.": ["S1:1"], "Maya is vegetarian.": ["S1:3"]}
    keys = {
        json.loads(str(i.metadata["sources"]))[0]: i.key or ""
        for i in stored
        if i.metadata.get("kind") == str(RecordKind.TURN)
    }
    assert keys["S1:1"].endswith("\nMaya lives in Berlin.") and keys["S1:3"].endswith("\nMaya is vegetarian.")
    assert all("\n" not in keys[t] for t in ("S1:2", "S1:4", "S2:1", "S2:2"))
    plain_keys = [i.key or "" for i in plain.store.list(plain._ns(namespace)) if i.metadata.get("kind") == "turn"]
    assert not any("lives in Berlin" in k for k in plain_keys)  # the control: ltm writes no fact keys

    question = Question(id="facts-1/q0", dataset="locomo", category="1", text="Where does Maya live?", answer="Berlin",
                        evidence=("S1:1",), conversation_id=conversation.id,
                        question_time=datetime(2024, 5, 1, tzinfo=UTC))
    items = facts.retrieve(namespace, question)
    assert {i.kind for i in items} <= {"turn", "context"}  # fact records are stored, never returned
    expected = {(i.sources, i.text) for i in plain.retrieve(namespace, question)}
    assert {(i.sources, i.text) for i in items} == expected  # the rendered turn carries no fact line
    facts.close()
    plain.close()


def _broken(embedder):
    raise MissingExtraError("needs the made-up package 'nothing-here' (pip install nothing-here)")


def test_unavailable_system_is_reported_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(systems_module.SYSTEMS, "missing-peer", _broken)
    run_retrieval_bench("locomo", DATA / "mini_locomo.json", tmp_path, systems=("bm25-turn", "missing-peer"),
                        embedder=HashingEmbedder(64), progress=False, speed_systems=("bm25-turn", "missing-peer"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    reason = "needs the made-up package 'nothing-here' (pip install nothing-here)"
    assert summary["unavailable"] == {"missing-peer": reason}
    assert set(summary["systems"]) == {"bm25-turn"} and summary["systems"]["bm25-turn"]["questions"] > 0
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert lines and {r["system"] for r in lines} == {"bm25-turn"}
    assert "missing-peer" not in json.loads((tmp_path / "speed.json").read_text())
    report = (tmp_path / "report.md").read_text()
    assert "## Systems not run" in report and f"- `missing-peer`: {reason}" in report

    # The same folder re-run with every system available: the section goes away.
    run_retrieval_bench("locomo", DATA / "mini_locomo.json", tmp_path, systems=("bm25-turn",),
                        embedder=HashingEmbedder(64), progress=False)
    assert json.loads((tmp_path / "summary.json").read_text())["unavailable"] == {}
    assert "Systems not run" not in (tmp_path / "report.md").read_text()


def test_other_build_errors_are_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(embedder):
        raise RuntimeError("a bug, not a missing package")

    monkeypatch.setitem(systems_module.SYSTEMS, "crashing", crash)
    with pytest.raises(RuntimeError, match="a bug"):
        run_retrieval_bench("locomo", DATA / "mini_locomo.json", tmp_path, systems=("bm25-turn", "crashing"),
                            embedder=HashingEmbedder(64), progress=False, speed_systems=())


def test_read_only_ablations_share_one_ingest(locomo) -> None:
    conversations, questions = locomo
    conversation = conversations[0]
    question = next(q for q in questions if q.conversation_id == conversation.id)
    embedder = HashingEmbedder(64)
    ltm, no_hybrid, no_context = (make_system(n, embedder) for n in ("ltm", "ltm-no-hybrid", "ltm-no-context"))
    try:
        assert ltm.store is no_hybrid.store and ltm.store is not no_context.store
        turns = ltm.ingest(("c",), conversation)
        assert turns > 0
        assert no_hybrid.ingest(("c",), conversation) == 0  # stored once, counted under ltm
        assert no_context.ingest(("c",), conversation) == turns  # writes differently: its own ingest
        ltm.forget(("c",))
        assert no_hybrid.retrieve(("c",), question)  # still there for the sibling
        no_hybrid.forget(("c",))
        assert ltm.store.count(ltm._ns(("c",))) == 0  # gone once both are done
        assert ltm.ingest(("c",), conversation) == turns  # a later conversation ingests again
    finally:
        for system in (ltm, no_hybrid, no_context):
            system.close()
    fresh = make_system("ltm", embedder)
    try:
        assert fresh.store is not ltm.store  # a closed group is not reused
    finally:
        fresh.close()
