"""Embedders: the offline default (hash-checked, pad-to-longest), adapters, the fake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from ltm_agent.embeddings import CallableEmbedder, HashingEmbedder, LangChainEmbedder, MiniLMEmbedder, _verify
from ltm_agent.errors import EmbeddingModelError, InvalidTypeError
from ltm_agent.memory_stores.chroma.embedding_function import MiniLMEmbeddingFunction


def test_minilm_is_offline_normalised_and_batch_independent() -> None:
    emb = MiniLMEmbedder(batch_size=2)
    texts = ["short", "a much longer sentence about hiking trails near Sintra", "cats", "Miso the cat"]
    together = emb.embed(texts)
    alone = np.stack([emb.embed([t])[0] for t in texts])
    assert together.shape == (4, 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # Padding to the longest item of each batch must not change any vector.
    assert np.allclose(together, alone, atol=1e-4)
    sim = together @ together.T
    assert sim[2, 3] > sim[2, 1]  # "cats" is nearer "Miso the cat" than hiking


def test_tampered_model_file_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(EmbeddingModelError, match="sha256"):
        _verify(fake, "0" * 64)


def test_langchain_and_callable_adapters() -> None:
    lc = LangChainEmbedder(DeterministicFakeEmbedding(size=16))
    assert lc.dimension == 16 and lc.embed(["a", "b"]).shape == (2, 16)
    assert lc.name.startswith("langchain:DeterministicFakeEmbedding")
    chroma_fn = CallableEmbedder.from_chroma(MiniLMEmbeddingFunction())
    assert chroma_fn.dimension == 384 and chroma_fn.name == "chroma:ltm-minilm-int8"
    assert np.allclose(chroma_fn.embed(["cats"]), MiniLMEmbedder().embed(["cats"]), atol=1e-5)


def test_bad_input_types() -> None:
    with pytest.raises(InvalidTypeError):
        HashingEmbedder().embed("not a list")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        HashingEmbedder().embed([b"bytes"])  # type: ignore[list-item]
