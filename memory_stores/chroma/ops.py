"""Store operations on Chroma, written once for sync and async clients.

Each operation is a generator that *yields* the I/O it needs (a
:class:`Call` on a collection, the registry or the client; an :class:`Open`
of a namespace collection; an :class:`Embed` of a query) and receives the
result. :class:`~ltm_agent.memory_stores.ChromaStore` drives the same
generator with a sync client (``batch``) or an async one (``abatch``), so the
two paths differ only in the lines that do I/O, and a unit that hit a stale
collection handle can simply be run again.

Core types: the requests :class:`Open`, :class:`Call`, :class:`Embed`,
:class:`Forget`; :class:`KeywordCache`; one generator per operation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Generator, NamedTuple, Sequence

import numpy as np

from ltm_agent.filters import matches, validate_filter
from ltm_agent.memory_stores._common import copy_item, page, rank
from ltm_agent.memory_stores._keyword import KeywordIndex
from ltm_agent.memory_stores.chroma.layout import (
    MATCH_NOTHING,
    collection_name,
    decode,
    decode_get,
    encode_metadata,
    ids_in_order,
    parse_registry_namespace,
    prefix_where,
    registry_id,
    registry_record,
    to_where,
)
from ltm_agent.namespaces import Namespace
from ltm_agent.records import ScoredItem, StoredItem
from ltm_agent.store import CountOp, DeleteOp, GetOp, ListNamespacesOp, ListOp, SearchOp

__all__ = [
    "CLIENT",
    "MISSING",
    "REGISTRY_HANDLE",
    "Call",
    "Embed",
    "Forget",
    "KeywordCache",
    "Open",
    "Step",
]

CLIENT = "<client>"
"""Call target: the Chroma client itself."""
REGISTRY_HANDLE = "<registry>"
"""Call target: the registry collection."""
MISSING = object()
"""What a ``missing_ok`` call returns when Chroma says the thing does not exist."""

_ITEM_FIELDS = ["documents", "metadatas"]


class Open(NamedTuple):
    """Get the namespace's collection handle (``None`` if absent and not ``create``)."""

    namespace: Namespace
    create: bool


class Call(NamedTuple):
    """Call ``method(**kwargs)`` on a collection handle, the registry or the client."""

    target: Any
    method: str
    kwargs: dict[str, Any]
    missing_ok: bool = False


class Embed(NamedTuple):
    """Embed one query text; the result is a vector."""

    text: str


class Forget(NamedTuple):
    """Drop the cached handle of a namespace whose collection was deleted."""

    namespace: Namespace


Request = Open | Call | Embed | Forget
Step = Generator[Request, Any, Any]


EXACT_DENSE_MAX = 50_000
"""Namespaces of up to this many items keep their vectors in the side index, and dense search
over them is exact cosine in numpy: deterministic, and no Chroma query. Larger namespaces are
searched with Chroma's HNSW index (approximate; its graph differs between collections)."""


@dataclass(frozen=True, slots=True)
class _KeywordEntry:
    revision: str
    index: KeywordIndex
    items: dict[str, StoredItem]
    ids: list[str] = field(default_factory=list)
    """Item ids in matrix row order."""
    matrix: np.ndarray | None = None
    """Unit-length index vectors, one row per id (``None`` above :data:`EXACT_DENSE_MAX`)."""
    id_order: np.ndarray | None = None
    """Each row's position in id order (ties break by id)."""


class KeywordCache:
    """BM25 indexes per namespace, each tagged with the registry revision it was built at."""

    def __init__(self) -> None:
        self._entries: dict[Namespace, _KeywordEntry] = {}
        self._lock = threading.Lock()

    def get(self, namespace: Namespace) -> _KeywordEntry | None:
        with self._lock:
            return self._entries.get(namespace)

    def put(self, namespace: Namespace, entry: _KeywordEntry) -> None:
        with self._lock:
            self._entries[namespace] = entry

    def forget(self, namespace: Namespace) -> None:
        with self._lock:
            self._entries.pop(namespace, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# -- writes ----------------------------------------------------------------


def put_namespace(
    namespace: Namespace,
    items: Sequence[StoredItem],
    vectors: np.ndarray,
    now_us: int,
    max_batch: int,
    cache: KeywordCache,
) -> Step:
    """Upsert one namespace's items (ids unique) and bump its revision."""
    collection = yield Open(namespace, True)
    ids = [item.id for item in items]
    previous = yield Call(collection, "get", {"ids": ids, "include": ["metadatas"]})
    before = {i: meta or {} for i, meta in zip(previous["ids"], previous.get("metadatas") or [])}
    metadatas = []
    for item in items:
        old = before.get(item.id, {})
        meta = encode_metadata(item, old.get("_created_us", now_us), now_us)
        # Chroma's upsert merges metadata; None deletes a key, so a replace drops stale keys.
        meta.update({key: None for key in old if key not in meta})
        metadatas.append(meta)
    documents = [item.index_text for item in items]
    # Chroma applies one upsert atomically; only batches over its maximum are split.
    for start in range(0, len(ids), max_batch):
        window = slice(start, start + max_batch)
        yield Call(
            collection,
            "upsert",
            {
                "ids": ids[window],
                "embeddings": vectors[window],
                "documents": documents[window],
                "metadatas": metadatas[window],
            },
        )
    cache.forget(namespace)
    # The revision is written after the data, so a reader that sees it sees the data.
    yield Call(REGISTRY_HANDLE, "upsert", registry_record(namespace))


def delete(op: DeleteOp, cache: KeywordCache) -> Step:
    namespace = op.namespace
    if op.ids is None:
        collection = yield Open(namespace, False)
        removed = 0
        if collection is not None:
            removed = yield Call(collection, "count", {})
            yield Call(CLIENT, "delete_collection", {"name": collection_name(namespace)}, missing_ok=True)
            yield Forget(namespace)
        cache.forget(namespace)
        yield Call(REGISTRY_HANDLE, "delete", {"ids": [registry_id(namespace)]})
        return int(removed)
    if not op.ids:
        return 0
    collection = yield Open(namespace, False)
    if collection is None:
        return 0
    existing = yield Call(collection, "get", {"ids": ids_in_order(op.ids), "include": []})
    if not existing["ids"]:
        return 0
    yield Call(collection, "delete", {"ids": list(existing["ids"])})
    cache.forget(namespace)
    yield Call(REGISTRY_HANDLE, "upsert", registry_record(namespace))
    return len(existing["ids"])


# -- reads -----------------------------------------------------------------


def get(op: GetOp) -> Step:
    if not op.ids:
        return []
    collection = yield Open(op.namespace, False)
    if collection is None:
        return [None] * len(op.ids)
    result = yield Call(collection, "get", {"ids": ids_in_order(op.ids), "include": _ITEM_FIELDS})
    found = decode_get(op.namespace, result)
    return [copy_item(found[i]) if i in found else None for i in op.ids]


def count(op: CountOp) -> Step:
    collection = yield Open(op.namespace, False)
    if collection is None:
        return 0
    return int((yield Call(collection, "count", {})))


def list_items(op: ListOp) -> Step:
    where = to_where(op.filter)
    if where is MATCH_NOTHING or op.limit == 0:
        return []
    collection = yield Open(op.namespace, False)
    if collection is None:
        return []
    if op.limit is None:
        result = yield Call(collection, "get", {"where": where, "include": _ITEM_FIELDS})
        found = decode_get(op.namespace, result)
        return page([found[i] for i in sorted(found)], None, op.offset)
    # Chroma pages in insertion order, not by id: sort the ids, then fetch one page.
    ids = yield Call(collection, "get", {"where": where, "include": []})
    wanted = page(sorted(ids["ids"]), op.limit, op.offset)
    if not wanted:
        return []
    result = yield Call(collection, "get", {"ids": wanted, "include": _ITEM_FIELDS})
    found = decode_get(op.namespace, result)
    return [found[i] for i in wanted if i in found]


def list_namespaces(op: ListNamespacesOp) -> Step:
    if op.limit == 0:
        return []
    entries = yield Call(REGISTRY_HANDLE, "get", {"where": prefix_where(op.prefix), "include": ["metadatas"]})
    n = len(op.prefix)
    candidates = sorted(
        ns for ns in (parse_registry_namespace(m) for m in entries.get("metadatas") or []) if ns[:n] == op.prefix
    )
    found: list[Namespace] = []
    skipped = 0
    for namespace in candidates:
        collection = yield Open(namespace, False)
        if collection is None or not (yield Call(collection, "count", {})):
            continue  # every item was deleted by id
        if skipped < op.offset:
            skipped += 1
            continue
        found.append(namespace)
        if len(found) >= op.limit:
            break
    return found


def dense_search(op: SearchOp, cache: KeywordCache) -> Step:
    where = to_where(op.filter)
    if where is MATCH_NOTHING or op.limit == 0:
        return []
    collection = yield Open(op.namespace, False)
    if collection is None:
        return []
    vector = op.vector if op.vector is not None else (yield Embed(op.query))
    # Reading documents and metadata back from Chroma is most of a query's time; when
    # the namespace's side index is current it already holds them, so ask only for ids.
    entry = yield from _fresh_entry(op.namespace, cache)
    if entry is not None and entry.matrix is not None:
        return _exact_dense(op, entry, np.asarray(vector, dtype=np.float32))
    include = ["distances"] if entry is not None else ["documents", "metadatas", "distances"]
    if op.with_vectors:
        include.append("embeddings")
    result = yield Call(
        collection,
        "query",
        {
            "query_embeddings": [np.asarray(vector, dtype=np.float32)],
            "n_results": op.offset + op.limit,
            "where": where,
            "include": include,
        },
    )
    ids, distances = result["ids"][0], result["distances"][0]
    if entry is not None and all(i in entry.items for i in ids):
        scored = [ScoredItem(copy_item(entry.items[i]), 1.0 - float(dist)) for i, dist in zip(ids, distances)]
    elif entry is not None:  # written after the token was read: fetch what the index lacks
        got = yield Call(collection, "get", {"ids": ids, "include": _ITEM_FIELDS})
        items = decode_get(op.namespace, got)
        scored = [ScoredItem(items[i], 1.0 - float(dist)) for i, dist in zip(ids, distances) if i in items]
    else:
        docs, metas = result["documents"][0], result["metadatas"][0]
        scored = [
            ScoredItem(decode(op.namespace, i, d, m), 1.0 - float(dist))
            for i, d, m, dist in zip(ids, docs, metas, distances)
        ]
    if op.with_vectors:
        vectors = dict(zip(ids, np.asarray(result["embeddings"][0], dtype=np.float32)))
        scored = [ScoredItem(replace(s.item, vector=vectors[s.item.id]), s.score) for s in scored]
    return page(rank(scored), op.limit, op.offset)


def _exact_dense(op: SearchOp, entry: _KeywordEntry, vector: np.ndarray) -> list[ScoredItem]:
    """Exact cosine ranking over the side index's vectors (best first, ties by id)."""
    matrix, id_order = entry.matrix, entry.id_order
    if matrix is None or id_order is None or not entry.ids:
        return []
    normal = validate_filter(op.filter)
    scores = matrix @ (vector / (np.linalg.norm(vector) or 1.0))
    end = op.offset + op.limit
    kept: list[int] = []
    for row in np.lexsort((id_order, -scores)).tolist():  # the filter runs only until the page is full
        if normal and not matches(entry.items[entry.ids[row]].metadata, normal):
            continue
        kept.append(row)
        if len(kept) >= end:
            break
    found = []
    for row in kept[op.offset :]:
        vector = matrix[row].copy() if op.with_vectors else None
        found.append(ScoredItem(copy_item(entry.items[entry.ids[row]], vector), float(scores[row])))
    return found


def _fresh_entry(namespace: Namespace, cache: KeywordCache) -> Step:
    """The cached side index of ``namespace`` if it matches the registry's revision, else ``None``."""
    entry = cache.get(namespace)
    if entry is None:
        return None
    registry = yield Call(REGISTRY_HANDLE, "get", {"ids": [registry_id(namespace)], "include": ["metadatas"]})
    if not registry["ids"] or str(registry["metadatas"][0]["revision"]) != entry.revision:
        return None
    return entry


def keyword_search(op: SearchOp, cache: KeywordCache) -> Step:
    if op.limit == 0:
        return []
    entry = yield from _keyword_entry(op.namespace, cache)
    if entry is None:
        return []
    hits = entry.index.search(op.query, op.filter, op.limit, op.offset)
    return [ScoredItem(copy_item(entry.items[i]), score) for i, score in hits]


def warm(namespace: Namespace, cache: KeywordCache) -> Step:
    """Bring the namespace's side index up to date (a no-op when it is current)."""
    yield from _keyword_entry(namespace, cache)


def _keyword_entry(namespace: Namespace, cache: KeywordCache) -> Step:
    # One round trip when nothing changed: read the revision token, reuse the index.
    registry = yield Call(REGISTRY_HANDLE, "get", {"ids": [registry_id(namespace)], "include": ["metadatas"]})
    if not registry["ids"]:
        cache.forget(namespace)
        return None
    revision = str(registry["metadatas"][0]["revision"])
    entry = cache.get(namespace)
    if entry is not None and entry.revision == revision:
        return entry
    # Token read before the data: a write racing this rebuild changes the token again.
    collection = yield Open(namespace, False)
    if collection is None:
        return None
    size = yield Call(collection, "count", {})
    exact = size <= EXACT_DENSE_MAX
    result = yield Call(collection, "get", {"include": [*_ITEM_FIELDS, *(["embeddings"] if exact else [])]})
    items = decode_get(namespace, result)
    ids = list(items)
    index = KeywordIndex(ids, [items[i].index_text for i in ids], [items[i].metadata for i in ids])
    matrix = id_order = None
    if exact:
        rows = {i: r for r, i in enumerate(result["ids"])}
        raw = np.asarray(result["embeddings"] if ids else np.zeros((0, 1)), dtype=np.float32)
        matrix = raw.reshape(len(result["ids"]), -1)[[rows[i] for i in ids]] if ids else raw
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms == 0, 1.0, norms)
        id_order = np.empty(len(ids), dtype=np.int64)
        id_order[np.argsort(np.array(ids, dtype=object))] = np.arange(len(ids))
    entry = _KeywordEntry(revision, index, items, ids, matrix, id_order)
    cache.put(namespace, entry)
    return entry
