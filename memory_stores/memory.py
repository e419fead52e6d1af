"""The dict-backed reference store.

:class:`InMemoryStore` keeps everything in Python dicts, one per namespace. It
defines the behaviour every other backend must match (the conformance suite
runs against it first) and is the store to use in tests, docs and notebooks.

Core types: :class:`InMemoryStore`.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Iterator, Sequence

import numpy as np

from ltm_agent.dates import utcnow
from ltm_agent.embeddings import Embedder, default_embedder
from ltm_agent.filters import matches, validate_filter
from ltm_agent.memory_stores._common import copy_item, page, rank, stamp
from ltm_agent.memory_stores._keyword import KeywordIndex
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import ScoredItem, StoredItem
from ltm_agent.store import (
    CountOp,
    DeleteOp,
    GetOp,
    ListNamespacesOp,
    ListOp,
    MemoryStore,
    Op,
    PutOp,
    Result,
    SearchOp,
)

__all__ = ["InMemoryStore"]


class _Namespace:
    """One namespace's items and vectors, with a matrix and keyword index built lazily."""

    __slots__ = ("items", "vectors", "keyword", "matrix")

    def __init__(self) -> None:
        self.items: dict[str, StoredItem] = {}
        self.vectors: dict[str, np.ndarray] = {}
        self.keyword: KeywordIndex | None = None
        self.matrix: tuple[list[str], np.ndarray] | None = None

    def changed(self) -> None:
        self.keyword = None
        self.matrix = None

    def keyword_index(self) -> KeywordIndex:
        if self.keyword is None:
            ids = list(self.items)
            self.keyword = KeywordIndex(
                ids, [self.items[i].index_text for i in ids], [self.items[i].metadata for i in ids]
            )
        return self.keyword

    def dense(self) -> tuple[list[str], np.ndarray]:
        if self.matrix is None:
            ids = list(self.items)
            self.matrix = (ids, np.stack([self.vectors[i] for i in ids]))
        return self.matrix


class InMemoryStore(MemoryStore):
    """A store in process memory: the reference implementation.

    Dense search is exact cosine similarity over the embedder's vectors of each
    item's ``index_text``; keyword search is BM25 over the same text. Nothing
    is persisted. All methods are thread-safe.

    Args:
        embedder: Embedder for dense search; defaults to the offline
            :class:`~ltm_agent.embeddings.MiniLMEmbedder`, as ``ChromaStore`` does
            (it loads on the first embedding, not here). Tests and docs that want
            the deterministic fake ask for it by name:
            ``InMemoryStore(embedder=HashingEmbedder())``.

    Example:
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.records import StoredItem
        >>> store = InMemoryStore(embedder=HashingEmbedder())
        >>> store.put([StoredItem(("user-1",), "m1", "I moved to Lisbon in May")])
        >>> [hit.item.id for hit in store.search(("user-1",), "Lisbon", mode="keyword")]
        ['m1']
    """

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder if embedder is not None else default_embedder()
        self.embedder_name = self.embedder.name
        self._spaces: dict[Namespace, _Namespace] = {}
        self._lock = threading.RLock()

    # -- primitives -------------------------------------------------------

    def batch(self, ops: Sequence[Op]) -> list[Result]:
        """Run operations in order; a bad op anywhere means nothing runs."""
        checked = self.validate_ops(ops)
        # Embed every put up front so an embedder failure writes nothing.
        puts = [op.item for op in checked if isinstance(op, PutOp)]
        vectors = iter(self.vectors_for(puts))
        now = utcnow()  # one write time per batch
        with self._lock:
            return [self._run(op, vectors, now) for op in checked]

    async def abatch(self, ops: Sequence[Op]) -> list[Result]:
        """Async twin of :meth:`batch`; runs inline (there is no I/O to await)."""
        return self.batch(ops)

    def warm(self, namespace: Namespace) -> None:
        """Build the namespace's keyword index and vector matrix now."""
        namespace = validate_namespace(tuple(namespace))
        with self._lock:
            space = self._spaces.get(namespace)
            if space is not None:
                space.keyword_index()
                space.dense()

    # -- operations -------------------------------------------------------

    def _run(self, op: Op, vectors: Iterator[np.ndarray], now: datetime) -> Result:
        if isinstance(op, PutOp):
            return self._put(op.item, next(vectors), now)
        if isinstance(op, GetOp):
            space = self._spaces.get(op.namespace)
            found = [space.items.get(i) if space else None for i in op.ids]
            return [copy_item(it) if it is not None else None for it in found]
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListOp):
            space = self._spaces.get(op.namespace)
            if space is None:
                return []
            normal = validate_filter(op.filter)
            items = [space.items[i] for i in sorted(space.items)]
            kept = page([it for it in items if matches(it.metadata, normal)], op.limit, op.offset)
            return [copy_item(it, space.vectors[it.id].copy() if op.with_vectors else None) for it in kept]
        if isinstance(op, DeleteOp):
            return self._delete(op)
        if isinstance(op, CountOp):
            space = self._spaces.get(op.namespace)
            return len(space.items) if space else 0
        if isinstance(op, ListNamespacesOp):
            n = len(op.prefix)
            names = sorted(ns for ns, space in self._spaces.items() if space.items and ns[:n] == op.prefix)
            return page(names, op.limit, op.offset)
        raise AssertionError(f"unhandled op {op!r}")  # validate_ops rejects unknown ops

    def _put(self, item: StoredItem, vector: np.ndarray, now: datetime) -> None:
        space = self._spaces.setdefault(item.namespace, _Namespace())
        space.items[item.id] = stamp(item, space.items.get(item.id), now)
        space.vectors[item.id] = np.asarray(vector, dtype=np.float32)
        space.changed()

    def _delete(self, op: DeleteOp) -> int:
        space = self._spaces.get(op.namespace)
        if space is None:
            return 0
        if op.ids is None:
            removed = len(space.items)
            del self._spaces[op.namespace]
            return removed
        removed = 0
        for item_id in dict.fromkeys(op.ids):
            if space.items.pop(item_id, None) is not None:
                space.vectors.pop(item_id, None)
                removed += 1
        if removed:
            space.changed()
        if not space.items:
            del self._spaces[op.namespace]
        return removed

    def _search(self, op: SearchOp) -> list[ScoredItem]:
        space = self._spaces.get(op.namespace)
        if space is None or op.limit == 0:
            return []
        if op.mode == "keyword":
            hits = space.keyword_index().search(op.query, op.filter, op.limit, op.offset, op.group_by)
            return [ScoredItem(copy_item(space.items[i]), score) for i, score in hits]
        normal = validate_filter(op.filter)
        ids, matrix = space.dense()
        rows = np.arange(len(ids))
        if normal:
            rows = np.array([r for r in rows if matches(space.items[ids[r]].metadata, normal)], dtype=np.int64)
        if rows.size == 0:
            return []
        query = op.vector if op.vector is not None else np.asarray(self.embedder.embed_query(op.query), dtype=np.float32)
        scores = matrix[rows] @ query
        wanted = rows.size if op.limit is None else op.offset + op.limit  # limit=None: every match
        if wanted < rows.size:
            # Keep every row tied with the last wanted score, so ties still break by id.
            cut = -np.partition(-scores, wanted - 1)[wanted - 1]
            keep = np.flatnonzero(scores >= cut)
            rows, scores = rows[keep], scores[keep]
        scored = [ScoredItem(space.items[ids[r]], float(s)) for r, s in zip(rows, scores)]
        return [
            ScoredItem(copy_item(s.item, space.vectors[s.item.id].copy() if op.with_vectors else None), s.score)
            for s in page(rank(scored), op.limit, op.offset)
        ]
