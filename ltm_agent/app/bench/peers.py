"""Peer memory libraries as benchmark systems, each with the project's own embedder.

* ``llamaindex-vectorblock`` - LlamaIndex's ``VectorMemoryBlock`` over a Chroma vector
  store (``llama-index-vector-stores-chroma``, in the ``[bench]`` extra).
* ``mem0-raw`` - mem0's ``Memory.add(..., infer=False)``: every turn stored raw, no LLM
  (``mem0ai``, not in any extra: see :data:`MEM0_NOT_INSTALLED`).

A peer whose package is missing raises :class:`~ltm_agent.errors.MissingExtraError`
from its constructor; the benchmark records the reason under ``"unavailable"`` in
``summary.json`` and in a "Systems not run" section of ``report.md`` instead of failing.

Core types: :class:`LlamaIndexVectorBlock`, :class:`Mem0Raw`, :class:`LlamaIndexEmbedding`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import uuid
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from ltm_agent.app.bench.datasets import Question
from ltm_agent.app.bench.systems import DEPTH, BenchSystem, rendered_turns
from ltm_agent.conversations import Conversation
from ltm_agent.embeddings import Embedder
from ltm_agent.errors import MissingExtraError
from ltm_agent.namespaces import Namespace
from ltm_agent.records import MemoryItem
from ltm_agent.tokens import count_tokens

__all__ = ["MEM0_NOT_INSTALLED", "LlamaIndexEmbedding", "LlamaIndexVectorBlock", "Mem0Raw"]

MEM0_NOT_INSTALLED = (
    "mem0ai is not installed, and it is in no extra: mem0ai 2.2.1 (current on 2026-11-29) requires "
    "protobuf>=5.29.6,<7, so installing it next to ltm-agent downgrades protobuf 7.36.2 to 6.33.6 (the "
    "protobuf that chromadb's opentelemetry and onnxruntime load) and adds qdrant-client and posthog. "
    "In a separate environment it installs and runs offline: pip install 'ltm-agent[bench]' mem0ai"
)
"""Why ``mem0-raw`` is not run where ``mem0ai`` is missing (see docs/benchmarks.md)."""


class LlamaIndexEmbedding(BaseEmbedding):
    """A project :class:`~ltm_agent.embeddings.Embedder` as a LlamaIndex ``BaseEmbedding``.

    Example:
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> len(LlamaIndexEmbedding(HashingEmbedder(16)).get_query_embedding("hello"))
        16
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.name, embed_batch_size=256, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "LTMAgentEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed(texts).tolist()


class LlamaIndexVectorBlock(BenchSystem):
    """Peer: LlamaIndex's ``VectorMemoryBlock`` over a Chroma vector store, one node per turn.

    One ``VectorMemoryBlock`` per namespace, on its own ``ChromaVectorStore``
    collection (cosine space), with :class:`LlamaIndexEmbedding` over the shared
    embedder. The block's public API cannot serve a ranked benchmark, so this
    system drives the block's own ``vector_store`` and ``embed_model`` exactly the
    way the block does (``llama_index/core/memory/memory_blocks/vector.py``, 0.14):

    * **Write**: ``VectorMemoryBlock.aput`` makes one ``TextNode`` per *put batch*,
      with text ``<message role='...'>...</message>`` and metadata ``{"session_id"}``,
      and keeps no handle on the node. Here every turn is its own one-message
      batch: the node text is built the way ``_aput`` builds it (with the block's
      ``_get_text_from_messages``), so the same string is embedded, and the node
      also carries ``turn_id`` (its id is the turn id too) so ``sources`` are exact.
      Embeddings are computed in one batch instead of one call per put (same vectors).
    * **Read**: ``VectorMemoryBlock.aget`` joins the top nodes into one formatted
      string with no scores (and keeps the first ``session_id`` filter it sees in
      ``query_kwargs`` for all later calls). Here the query is built as ``_aget``
      builds it (query text from the last message, the block's ``session_id``
      filter, ``similarity_top_k``) and sent to the same ``vector_store.query``;
      the ranked nodes and their similarities (``exp(-distance)``) are returned.

    Items render as :func:`~ltm_agent.app.bench.systems.turn_text` (not the block's
    ``<message>`` wrapper), like every other system.
    """

    name = "llamaindex-vectorblock"

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(embedder)
        try:
            from llama_index.vector_stores.chroma import ChromaVectorStore
        except ImportError as exc:
            raise MissingExtraError(
                "llama-index-vector-stores-chroma is not installed: pip install 'ltm-agent[bench]'"
            ) from exc
        import chromadb

        self._store_class = ChromaVectorStore
        self.client = chromadb.EphemeralClient()
        self.embed_model = LlamaIndexEmbedding(embedder)
        self.blocks: dict[Namespace, Any] = {}
        self.texts: dict[Namespace, dict[str, str]] = {}

    @staticmethod
    def session_id(namespace: Namespace) -> str:
        """The ``session_id`` the block's nodes of ``namespace`` carry."""
        return "/".join(namespace)

    def ingest(self, namespace: Namespace, conversation: Conversation) -> int:
        from llama_index.core.base.llms.types import ChatMessage, MessageRole
        from llama_index.core.memory import VectorMemoryBlock
        from llama_index.core.schema import TextNode

        collection = self.client.create_collection(
            f"li-{uuid.uuid4().hex[:16]}", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        block = VectorMemoryBlock(
            name="RetrievedMessages",
            vector_store=self._store_class(chroma_collection=collection),
            embed_model=self.embed_model,
            similarity_top_k=DEPTH,
        )
        turns = rendered_turns(conversation)
        session = self.session_id(namespace)
        nodes = []
        for tid, role, text in turns:
            message = ChatMessage(role=role if role in MessageRole._value2member_map_ else "user", content=text)
            wrapped = f"<message role='{message.role.value}'>{block._get_text_from_messages([message])}</message>"
            nodes.append(TextNode(id_=tid, text=wrapped, metadata={"session_id": session, "turn_id": tid}))
        vectors = block.embed_model.get_text_embedding_batch([n.text for n in nodes])
        for node, vector in zip(nodes, vectors, strict=True):
            node.embedding = vector
        if nodes:
            block.vector_store.add(nodes)
        self.blocks[namespace] = block
        self.texts[namespace] = {tid: text for tid, _, text in turns}
        return len(turns)

    def retrieve(self, namespace: Namespace, question: Question) -> list[MemoryItem]:
        from llama_index.core.base.llms.types import ChatMessage
        from llama_index.core.vector_stores.types import (
            MetadataFilter,
            MetadataFilters,
            VectorStoreQuery,
        )

        block, texts = self.blocks[namespace], self.texts[namespace]
        if not texts:
            return []
        query_text = block._get_text_from_messages([ChatMessage(role="user", content=question.text)])
        kwargs = {
            **block.query_kwargs,
            "filters": MetadataFilters(filters=[MetadataFilter(key="session_id", value=self.session_id(namespace))]),
        }
        query = VectorStoreQuery(
            query_str=query_text,
            query_embedding=block.embed_model.get_query_embedding(query_text),
            similarity_top_k=min(block.similarity_top_k, len(texts)),
            **kwargs,
        )
        result = block.vector_store.query(query)
        items = []
        for node, score in zip(result.nodes or [], result.similarities or [], strict=True):
            tid = str(node.metadata["turn_id"])
            text = texts[tid]
            items.append(MemoryItem(tid, "turn", text, float(score), None, count_tokens(text), (tid,), namespace))
        return items

    def forget(self, namespace: Namespace) -> None:
        block = self.blocks.pop(namespace, None)
        self.texts.pop(namespace, None)
        if block is not None:
            self.client.delete_collection(block.vector_store._collection.name)


def _mem0_memory_class() -> Any:
    """``mem0.Memory``, imported with telemetry off and mem0's folder out of the user's home."""
    if importlib.util.find_spec("mem0") is None:
        raise MissingExtraError(MEM0_NOT_INSTALLED)
    os.environ.setdefault("MEM0_TELEMETRY", "False")  # read once, when mem0 is first imported
    if "MEM0_DIR" not in os.environ:
        os.environ["MEM0_DIR"] = tempfile.mkdtemp(prefix="ltm-bench-mem0-")
    from mem0 import Memory
    # One Memory per namespace would repeat "chroma has no keyword search" and "spaCy is not
    # installed" warnings hundreds of times; both are stated in Mem0Raw's docstring.
    logging.getLogger("mem0").setLevel(logging.ERROR)
    return Memory


class Mem0Raw(BenchSystem):
    """Peer: mem0's open-source ``Memory`` with ``infer=False`` (raw turns, no LLM), on Chroma.

    One ``Memory`` per namespace, on its own collection of an in-memory Chroma
    client, with a history database in memory. Each turn is one
    ``Memory.add([{"role", "content"}], user_id=..., metadata={"turn_id"},
    infer=False)`` call (mem0 stores each message as one memory and keeps only the
    metadata of the call), and the question is one ``Memory.search(query,
    filters={"user_id": ...}, top_k=DEPTH)``: mem0 ranks by vector score
    (``1 / (1 + L2 distance)``); BM25 is off on Chroma (mem0 says so in a warning)
    and entity boosts need spaCy, which is not installed.

    mem0 has no embedder provider for an arbitrary Python object (its ``langchain``
    provider needs the full ``langchain`` package), so ``Memory`` is built with the
    ``openai`` embedder and LLM providers pointing at an unreachable local address
    with a dummy key (nothing is sent: ``infer=False`` never calls the LLM) and
    its ``embedding_model`` is then replaced by the shared embedder. Telemetry is
    off (``MEM0_TELEMETRY=False``) and mem0's folder goes to a temporary directory
    unless ``MEM0_DIR`` is set.

    Raises:
        MissingExtraError: ``mem0ai`` is not installed (:data:`MEM0_NOT_INSTALLED`).
    """

    name = "mem0-raw"

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(embedder)
        self._memory_class = _mem0_memory_class()
        import chromadb
        from mem0.embeddings.base import EmbeddingBase

        shared = embedder

        class SharedEmbedding(EmbeddingBase):
            def embed(self, text: str, memory_action: Any = None) -> list[float]:
                return shared.embed_query(text).tolist() if memory_action == "search" else shared.embed([text])[0].tolist()

            def embed_batch(self, texts: list[str], memory_action: Any = "add") -> list[list[float]]:
                return shared.embed(list(texts)).tolist()

        self._embedding = SharedEmbedding()
        self.client = chromadb.EphemeralClient()
        self.memories: dict[Namespace, tuple[Any, str, dict[str, str]]] = {}

    @staticmethod
    def user_id(namespace: Namespace) -> str:
        return "/".join(namespace)

    def _memory(self, collection: str) -> Any:
        unreachable = {"api_key": "unused-offline", "openai_base_url": "http://127.0.0.1:9/v1"}
        config = {
            "vector_store": {
                "provider": "chroma",
                "config": {"collection_name": collection, "client": self.client, "path": "unused-client-given"},
            },
            "embedder": {"provider": "openai", "config": {**unreachable, "embedding_dims": self.embedder.dimension}},
            "llm": {"provider": "openai", "config": dict(unreachable)},
            "history_db_path": ":memory:",
        }
        memory = self._memory_class.from_config(config)
        memory.embedding_model = self._embedding
        return memory

    def ingest(self, namespace: Namespace, conversation: Conversation) -> int:
        collection = f"mem0-{uuid.uuid4().hex[:16]}"
        memory = self._memory(collection)
        user = self.user_id(namespace)
        turns = rendered_turns(conversation)
        for tid, role, text in turns:
            message = {"role": role if role in ("user", "assistant") else "user", "content": text}
            memory.add([message], user_id=user, metadata={"turn_id": tid}, infer=False)
        self.memories[namespace] = (memory, collection, {tid: text for tid, _, text in turns})
        return len(turns)

    def retrieve(self, namespace: Namespace, question: Question) -> list[MemoryItem]:
        memory, _, texts = self.memories[namespace]
        if not texts:
            return []
        found = memory.search(question.text, filters={"user_id": self.user_id(namespace)}, top_k=DEPTH)
        items = []
        for hit in found["results"]:
            tid = str(hit["metadata"]["turn_id"])
            text = texts[tid]
            items.append(MemoryItem(tid, "turn", text, float(hit["score"]), None, count_tokens(text), (tid,), namespace))
        return items

    def forget(self, namespace: Namespace) -> None:
        entry = self.memories.pop(namespace, None)
        if entry is not None:
            memory, collection, _ = entry
            memory.close()
            self.client.delete_collection(collection)
