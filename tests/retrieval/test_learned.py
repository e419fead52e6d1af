"""Learned fusion: one feature function for training and reading, weights as data, both store kinds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ltm_agent.data import sample_conversation_path
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import DataFormatError, InvalidInputError
from ltm_agent.loaders import load_conversations
from ltm_agent.memory_stores import ChromaStore, InMemoryStore
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig
from ltm_agent.retrieval.hybrid import _value_key
from ltm_agent.retrieval.learned import (
    FEATURES,
    FusionModel,
    capture_candidates,
    default_model,
    fit_logistic,
    use_fusion_model,
)
from ltm_agent.store import MemoryStore
from ltm_agent.timeline import EpisodicTimeline

NS = ("maya",)
QUERY = "What is the cat called and where did Maya move?"  # names no time: no window partition
LEARNED = RetrievalConfig(fusion="learned")


def _filled(store: MemoryStore) -> MemoryStore:
    EpisodicTimeline(store, NS).ingest(load_conversations(sample_conversation_path(), "jsonl")[0])
    return store


@pytest.fixture
def memory() -> MemoryStore:
    return _filled(InMemoryStore(HashingEmbedder(64)))


def _values(store: MemoryStore, config: RetrievalConfig, query: str = QUERY) -> list[str]:
    return [_value_key(item) for item, _ in HybridRetriever(store, config).ranked_items(NS, query)]


def test_the_model_ranks_the_features_that_training_records(memory: MemoryStore) -> None:
    with capture_candidates() as sink:
        captured = _values(memory, LEARNED)
    assert len(sink) == 1
    found = sink[0]
    assert found.features.shape == (len(found.items), len(FEATURES))
    model = FusionModel.of({"score_dense_turn_first": 1.0, "rr_keyword_turn_first": 40.0, "assistant": -0.5})
    with use_fusion_model(model):
        ranked = _values(memory, LEARNED)
    scores = model.score(found.features)
    expected = [_value_key(found.items[i]) for i in np.lexsort((np.arange(len(scores)), -scores))]
    assert ranked == expected
    assert sorted(ranked) == sorted(captured)  # the same candidates, another order


def test_capture_returns_the_default_order_of_the_same_candidates(memory: MemoryStore) -> None:
    with capture_candidates() as sink:
        captured = _values(memory, LEARNED)
    default = _values(memory, RetrievalConfig())
    assert captured == default
    assert [_value_key(sink[0].items[i]) for i in sink[0].default_order] == default


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_hand_made_model_orders_by_its_weights(memory: MemoryStore, sign: float) -> None:
    with use_fusion_model(FusionModel.of({"log_chars": sign})):
        ranked = HybridRetriever(memory, LEARNED).ranked_items(NS, QUERY)
    lengths = [len(item.text) for item, _ in ranked]
    assert lengths == sorted(lengths, reverse=sign > 0)
    assert len(set(lengths)) > 3  # the order is not trivially flat


def test_weights_round_trip_and_the_shipped_file_loads(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(60, len(FEATURES)))
    y = (x[:, 0] + 0.3 * x[:, 5] > 0).astype(float)
    model = fit_logistic(x, y, l2=0.5, about={"command": "test"})
    again = FusionModel.load(model.save(tmp_path / "w.json"))
    assert again.features == FEATURES and again.about == {"command": "test"}
    np.testing.assert_allclose(again.score(x), model.score(x), atol=1e-5)
    assert model.weights[0] > 0 and model.weights[5] > 0
    same = fit_logistic(x, y, l2=0.5)
    np.testing.assert_array_equal(same.weights, model.weights)  # deterministic
    assert default_model().features == FEATURES


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(features=d["features"][:-1], weights=d["weights"][:-1]),  # a feature missing
        lambda d: d.update(features=[*d["features"][1:], d["features"][0]]),  # same names, other order
        lambda d: d.update(features=[*d["features"][:-1], "bogus"]),  # an unknown feature
        lambda d: d.update(weights=d["weights"][:-2]),  # too few weights
        lambda d: d.pop("features"),
    ],
)
def test_wrong_weights_files_raise_a_clear_error(tmp_path: Path, change) -> None:
    data = FusionModel.of({"rr_fused": 1.0}).to_dict()
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match="train-fusion"):
        FusionModel.load(path)


def test_a_configuration_without_the_known_rankings_is_refused(memory: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="fusion='learned'"):
        _values(memory, LEARNED.but(split_units=False))


@pytest.mark.parametrize("kind", ["memory", "chroma-persistent"])
def test_learned_fusion_reads_both_store_kinds(tmp_path: Path, kind: str) -> None:
    embedder = HashingEmbedder(64)
    store = _filled(InMemoryStore(embedder) if kind == "memory" else ChromaStore.persistent(tmp_path / "db", embedder=embedder))
    try:
        items = HybridRetriever(store, LEARNED).retrieve(NS, "What is the cat called?", budget_tokens=300)
        assert items and sum(i.tokens for i in items) <= 300
        assert {i.namespace for i in items} == {NS}
        with use_fusion_model(FusionModel.of({"rr_fused": 1.0})):
            learned = _values(store, LEARNED)
        assert learned == _values(store, RetrievalConfig(session_weight=0.0, speaker_boost=0.0))  # RRF alone
    finally:
        store.close()
