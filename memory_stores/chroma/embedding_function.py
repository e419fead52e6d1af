"""The offline default embedder as a registered Chroma embedding function.

:class:`MiniLMEmbeddingFunction` wraps :class:`~ltm_agent.embeddings.MiniLMEmbedder`
and is registered with Chroma under :data:`EMBEDDING_FUNCTION_NAME`, so a
collection created with it records the function by name in its configuration
and Chroma rebuilds it from that record when the collection is reopened, for
example by a plain ``chromadb`` client in a process that imported this module
(importing :class:`~ltm_agent.memory_stores.ChromaStore` does).

:class:`~ltm_agent.memory_stores.ChromaStore` always computes vectors itself and
passes them to Chroma; the function is attached to MiniLM collections so they
describe themselves to other Chroma tools.

Core types: :class:`MiniLMEmbeddingFunction`.
"""

from __future__ import annotations

from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from ltm_agent.embeddings import MiniLMEmbedder

__all__ = ["EMBEDDING_FUNCTION_NAME", "MiniLMEmbeddingFunction"]

EMBEDDING_FUNCTION_NAME = "ltm-minilm-int8"


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function for all-MiniLM-L6-v2 int8 ONNX, fully offline.

    The model loads on the first call, not in the constructor.

    Args:
        batch_size: Texts per ONNX run.
        max_length: Word pieces read per text.

    Example:
        >>> ef = MiniLMEmbeddingFunction()
        >>> len(ef(["hello world"])[0])
        384
    """

    def __init__(self, batch_size: int = 32, max_length: int = 128) -> None:
        self.batch_size = batch_size
        self.max_length = max_length
        self._embedder = MiniLMEmbedder(batch_size=batch_size, max_length=max_length)

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return EMBEDDING_FUNCTION_NAME

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "max_length": self.max_length}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction(
            batch_size=int(config.get("batch_size", 32)),
            max_length=int(config.get("max_length", 128)),
        )
