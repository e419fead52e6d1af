"""Shared test setup: offline, HOME in a temp dir, fake embedder fixtures."""

from __future__ import annotations

import os
import tempfile

# Before anything imports onnxruntime/chromadb: they write caches under $HOME.
_HOME = tempfile.mkdtemp(prefix="ltm-test-home-")
os.environ["HOME"] = _HOME
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from ltm_agent.embeddings import HashingEmbedder  # noqa: E402


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    """Deterministic hashing embedder (a fake; no model load)."""
    return HashingEmbedder(64)
