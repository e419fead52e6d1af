"""ltm-agent: long-term memory for LangGraph and LlamaIndex agents, on Chroma.

The public surface is :data:`__all__` (pinned by ``tests/test_package.py``).
Names load on first use, so ``import ltm_agent`` stays cheap and pulls in
neither Chroma nor LangChain.

Example:
    >>> import ltm_agent
    >>> ltm_agent.validate_namespace(["user-42"])
    ('user-42',)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ltm_agent.errors import (
    CorruptStoreError,
    DataFormatError,
    EmbedderMismatchError,
    EmbeddingModelError,
    EmptyTextError,
    InvalidDateError,
    InvalidFilterError,
    InvalidInputError,
    InvalidNamespaceError,
    InvalidTypeError,
    LTMError,
    MemoryBlockLimitError,
    MissingExtraError,
    ModelError,
    ModelOutputError,
    ModelTimeoutError,
    NotFoundError,
    StoreConnectionError,
    StoreError,
    TextTooLargeError,
    UnsupportedOperationError,
)
from ltm_agent.namespaces import Namespace, validate_namespace

__version__ = "0.1.0"

# name -> module that defines it (imported lazily by __getattr__)
_LAZY = {
    "Conversation": "ltm_agent.conversations",
    "Session": "ltm_agent.conversations",
    "Turn": "ltm_agent.conversations",
    "Episode": "ltm_agent.records",
    "Fact": "ltm_agent.records",
    "Note": "ltm_agent.records",
    "MemoryItem": "ltm_agent.records",
    "RecordKind": "ltm_agent.records",
    "StoredItem": "ltm_agent.records",
    "ScoredItem": "ltm_agent.records",
    "Usage": "ltm_agent.records",
    "MemoryStore": "ltm_agent.store",
    "StoreLimits": "ltm_agent.store",
    "Embedder": "ltm_agent.embeddings",
    "MiniLMEmbedder": "ltm_agent.embeddings",
    "LangChainEmbedder": "ltm_agent.embeddings",
    "CallableEmbedder": "ltm_agent.embeddings",
    "HashingEmbedder": "ltm_agent.embeddings",
    "count_tokens": "ltm_agent.tokens",
    "parse_date": "ltm_agent.dates",
    "load_conversations": "ltm_agent.loaders",
    "EpisodicTimeline": "ltm_agent.timeline",
    "HybridRetriever": "ltm_agent.retrieval",
    "RetrievalConfig": "ltm_agent.retrieval",
    "Retriever": "ltm_agent.retrieval",
    "EntropyDecayBuffer": "ltm_agent.buffer",
    "PagedContext": "ltm_agent.paging",
    "RetrieveThenReason": "ltm_agent.reasoning",
    "GroundedAnswer": "ltm_agent.reasoning",
    "FactMemory": "ltm_agent.facts",
    "PatternFactExtractor": "ltm_agent.facts",
    "ModelFactExtractor": "ltm_agent.facts",
    "ModelStep": "ltm_agent.llm",
    "UsageLedger": "ltm_agent.llm",
    "ChatLocalModel": "ltm_agent.llm",
    "InMemoryStore": "ltm_agent.memory_stores",
    "ChromaStore": "ltm_agent.memory_stores",
}

__all__ = sorted(
    [
        "CorruptStoreError",
        "DataFormatError",
        "EmbedderMismatchError",
        "EmbeddingModelError",
        "EmptyTextError",
        "InvalidDateError",
        "InvalidFilterError",
        "InvalidInputError",
        "InvalidNamespaceError",
        "InvalidTypeError",
        "LTMError",
        "MemoryBlockLimitError",
        "MissingExtraError",
        "ModelError",
        "ModelOutputError",
        "ModelTimeoutError",
        "Namespace",
        "NotFoundError",
        "StoreConnectionError",
        "StoreError",
        "TextTooLargeError",
        "UnsupportedOperationError",
        "validate_namespace",
        *_LAZY,
    ]
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ltm_agent' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from ltm_agent.buffer import EntropyDecayBuffer
    from ltm_agent.conversations import Conversation, Session, Turn
    from ltm_agent.dates import parse_date
    from ltm_agent.embeddings import CallableEmbedder, Embedder, HashingEmbedder, LangChainEmbedder, MiniLMEmbedder
    from ltm_agent.facts import FactMemory, ModelFactExtractor, PatternFactExtractor
    from ltm_agent.llm import ChatLocalModel, ModelStep, UsageLedger
    from ltm_agent.loaders import load_conversations
    from ltm_agent.memory_stores import ChromaStore, InMemoryStore
    from ltm_agent.paging import PagedContext
    from ltm_agent.reasoning import GroundedAnswer, RetrieveThenReason
    from ltm_agent.records import Episode, Fact, MemoryItem, Note, RecordKind, ScoredItem, StoredItem, Usage
    from ltm_agent.retrieval import HybridRetriever, RetrievalConfig, Retriever
    from ltm_agent.store import MemoryStore, StoreLimits
    from ltm_agent.timeline import EpisodicTimeline
    from ltm_agent.tokens import count_tokens
