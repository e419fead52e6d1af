"""The benchmark's resumable embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ltm_agent.app.bench.cache import CachedEmbedder
from ltm_agent.embeddings import HashingEmbedder, MiniLMEmbedder


class _Truncating(HashingEmbedder):
    """A fake whose vectors depend on a setting, like MiniLM's ``max_length``."""

    def __init__(self, keep: int) -> None:
        super().__init__(16)
        self.keep = keep

    @property
    def fingerprint(self) -> str:
        return f"{self.name}:keep={self.keep}"

    def embed(self, texts):  # noqa: ANN001, ANN201
        return super().embed([t[: self.keep] for t in texts])


def test_cache_returns_the_inner_vectors_and_survives_reopen(tmp_path: Path) -> None:
    inner = HashingEmbedder(16)
    texts = ["alpha beta", "gamma", "alpha beta"]
    cache = CachedEmbedder(inner, tmp_path / "e.sqlite")
    first = cache.embed(texts)
    assert np.array_equal(first, inner.embed(texts))
    assert (cache.hits, cache.misses) == (0, 3)
    cache.close()
    reopened = CachedEmbedder(inner, tmp_path / "e.sqlite")
    assert np.array_equal(reopened.embed(texts), first)
    assert (reopened.hits, reopened.misses) == (3, 0)
    reopened.close()


def test_a_changed_setting_is_a_different_cache_key(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite"
    long_text = "alpha beta gamma delta epsilon zeta"
    short = CachedEmbedder(_Truncating(5), path)
    short_vector = short.embed([long_text])[0]
    short.close()
    full = CachedEmbedder(_Truncating(100), path)
    full_vector = full.embed([long_text])[0]
    assert full.misses == 1  # not served the truncated vector
    assert not np.array_equal(short_vector, full_vector)
    full.close()


def test_minilm_fingerprint_names_the_truncation() -> None:
    assert MiniLMEmbedder(max_length=128).fingerprint != MiniLMEmbedder(max_length=256).fingerprint
    assert MiniLMEmbedder().max_length == 128
