"""Store operations on Chroma, written once for sync and async clients.

Each operation is a generator that *yields* the I/O it needs (a
:class:`Call` on a collection, the registry or the client; an :class:`Open`
of a namespace collection; an :class:`Embed` of a query) and receives the
result. :class:`~ltm_agent.memory_stores.ChromaStore` drives the same
generator with a sync client (``batch``) or an async one (``abatch``), so the
two paths differ only in the lines that do I/O, and a unit that hit a stale
collection handle can simply be run again.

Core types: the requests :class:`Open`, :class:`Call`, :class:`Embed`,
:class:`Forget`, :class:`Compact`; one generator per operation.

Every Chroma read and write is paged (:data:`PAGE` records per call), so no
call grows with the namespace: SQLite refuses statements with too many
variables (Chroma's ``get`` of 40,000 records did), and one page at a time
bounds the memory a read needs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Generator, NamedTuple, Sequence

import numpy as np

from ltm_agent.dates import utcnow
from ltm_agent.memory_stores._common import copy_item, page, rank
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
    to_micros,
    to_where,
)
from ltm_agent.memory_stores.chroma.sideindex import EXACT_DENSE_MAX, SKEW_US, SideCache, SideEntry
from ltm_agent.namespaces import Namespace
from ltm_agent.records import ScoredItem, StoredItem
from ltm_agent.store import CountOp, DeleteOp, GetOp, ListNamespacesOp, ListOp, SearchOp

__all__ = [
    "CLIENT",
    "MISSING",
    "REGISTRY_HANDLE",
    "Call",
    "Embed",
    "Compact",
    "Forget",
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


class Compact(NamedTuple):
    """Erase freed bytes after a namespace was deleted (embedded stores; a no-op on a server)."""


Request = Open | Call | Embed | Forget | Compact
Step = Generator[Request, Any, Any]


PAGE = 2000
"""Most records one Chroma ``get`` reads (by offset or by ids): far below SQLite's variable limit."""


def _get_ids(collection: Any, ids: Sequence[str], include: list[str]) -> Step:
    """``collection.get(ids=...)`` one page at a time, merged into one result."""
    merged: dict[str, list[Any]] = {"ids": [], **{name: [] for name in include}}
    for start in range(0, len(ids), PAGE):
        got = yield Call(collection, "get", {"ids": list(ids[start : start + PAGE]), "include": include})
        _merge(merged, got, include)
    return merged


def _get_where(collection: Any, where: Any, include: list[str]) -> Step:
    """Every record matching ``where`` (``None``: all), one page per call, merged."""
    merged: dict[str, list[Any]] = {"ids": [], **{name: [] for name in include}}
    offset = 0
    while True:
        got = yield Call(collection, "get", {"where": where, "include": include, "limit": PAGE, "offset": offset})
        _merge(merged, got, include)
        if len(got["ids"]) < PAGE:
            return merged
        offset += len(got["ids"])


def _merge(merged: dict[str, list[Any]], got: Any, include: list[str]) -> None:
    n = len(got["ids"])
    merged["ids"].extend(got["ids"])
    for name in include:
        values = got.get(name)
        merged[name].extend(list(values) if values is not None else [None] * n)


def _stored_metadata(item: StoredItem) -> dict[str, Any]:
    """The keys of ``item``'s Chroma record that a replace must keep or clear (from the side entry)."""
    meta: dict[str, Any] = dict(item.metadata)
    if item.created_at is not None:
        meta["_created_us"] = to_micros(item.created_at)
    if item.key is not None:
        meta["_text"] = item.text
    return meta


def _source(collection: Any) -> str | None:
    """The collection's id, which a side entry's snapshot records (a re-created collection gets a new one)."""
    found = getattr(collection, "id", None)
    return None if found is None else str(found)


def _stamp(meta: Any) -> tuple[int, str]:
    meta = meta or {}
    return int(meta.get("_updated_us", 0)), str(meta.get("_writer", ""))


# -- writes ----------------------------------------------------------------


def put_namespace(
    namespace: Namespace,
    items: Sequence[StoredItem],
    vectors: np.ndarray,
    max_batch: int,
    cache: SideCache,
    writer: str,
) -> Step:
    """Upsert one namespace's items (ids unique), one Chroma upsert per ``max_batch`` items."""
    collection = yield Open(namespace, True)
    if namespace not in cache.registered:
        # The registry record goes first: a crash after it leaves a listed namespace without items
        # (list_namespaces skips those), never items that no listing finds.
        yield Call(REGISTRY_HANDLE, "upsert", registry_record(namespace))
        cache.registered.add(namespace)
    cache.writing(namespace)
    try:
        yield from _put_chunks(namespace, items, vectors, max_batch, cache, writer, collection)
    finally:
        cache.done(namespace)


def _put_chunks(
    namespace: Namespace,
    items: Sequence[StoredItem],
    vectors: np.ndarray,
    max_batch: int,
    cache: SideCache,
    writer: str,
    collection: Any,
) -> Step:
    if cache.exclusive and cache.get(namespace) is None:
        # A new namespace gets its side entry now and the writes fill it: no read-back after a bulk
        # ingest. (A write by another thread since `generation` makes the entry sync once.)
        generation = cache.generation(namespace)
        if not (yield Call(collection, "count", {})):
            cache.install(namespace, SideEntry(exact=True, source=_source(collection)), generation)
    for start in range(0, len(items), max_batch):
        chunk = list(items[start : start + max_batch])
        rows = vectors[start : start + max_batch]
        ids = [item.id for item in chunk]
        known = cache.get(namespace)
        if known is not None and cache.current(known):  # the entry holds what Chroma holds
            before = {i: _stored_metadata(known.items[i]) for i in ids if i in known.items}
        else:
            previous = yield from _get_ids(collection, ids, ["metadatas"])
            before = {i: meta or {} for i, meta in zip(previous["ids"], previous["metadatas"])}
        # Stamped per upsert, just before it: readers elsewhere look for records by this time.
        now_us = to_micros(utcnow())
        metadatas = []
        for item in chunk:
            old = before.get(item.id, {})
            meta = encode_metadata(item, old.get("_created_us", now_us), now_us)
            meta["_writer"] = writer
            # Chroma's upsert merges metadata; None deletes a key, so a replace drops stale keys.
            meta.update({key: None for key in old if key not in meta})
            metadatas.append(meta)
        documents = [item.index_text for item in chunk]
        landed = False
        try:
            yield Call(collection, "upsert", {"ids": ids, "embeddings": rows, "documents": documents, "metadatas": metadatas})
            landed = True
        finally:
            if not landed:  # failed (or abandoned) after it may have reached Chroma
                cache.failed(namespace)
        entry = cache.wrote(namespace)
        if entry is not None:  # the writer's own puts go into its side index in place
            stored = [
                decode(namespace, i, d, {k: v for k, v in m.items() if v is not None})
                for i, d, m in zip(ids, documents, metadatas)
            ]
            entry.apply(stored, [(now_us, writer)] * len(stored), rows)
            cache.trim()  # a growing entry counts against the bound as a rebuilt one does


def delete(op: DeleteOp, cache: SideCache) -> Step:
    namespace = op.namespace
    if op.ids is None:
        collection = yield Open(namespace, False)
        removed = 0
        if collection is not None:
            removed = yield Call(collection, "count", {})
        cache.erasing(namespace)  # even without a collection: a snapshot must not outlive its namespace
        try:
            if collection is not None:
                yield Call(CLIENT, "delete_collection", {"name": collection_name(namespace)}, missing_ok=True)
                yield Forget(namespace)
            cache.forget(namespace)
        finally:
            cache.done(namespace)
        yield Call(REGISTRY_HANDLE, "delete", {"ids": [registry_id(namespace)]})
        if collection is not None:
            yield Compact()
        return int(removed)
    if not op.ids:
        return 0
    collection = yield Open(namespace, False)
    if collection is None:
        return 0
    removed = 0
    wanted = ids_in_order(op.ids)
    for start in range(0, len(wanted), PAGE):
        existing = yield Call(collection, "get", {"ids": wanted[start : start + PAGE], "include": []})
        if not existing["ids"]:
            continue
        landed = False
        cache.erasing(namespace)  # the snapshot goes before the text does: it would outlive the delete
        try:
            yield Call(collection, "delete", {"ids": list(existing["ids"])})
            landed = True
            removed += len(existing["ids"])
            entry = cache.wrote(namespace)
            if entry is not None:
                entry.remove(existing["ids"])
        finally:
            if not landed:
                cache.failed(namespace)
            cache.done(namespace)
    return removed


# -- reads -----------------------------------------------------------------


def get(op: GetOp) -> Step:
    if not op.ids:
        return []
    collection = yield Open(op.namespace, False)
    if collection is None:
        return [None] * len(op.ids)
    result = yield from _get_ids(collection, ids_in_order(op.ids), _ITEM_FIELDS)
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
    # Chroma pages in insertion order, not by id: sort the ids, then fetch the wanted page.
    ids = yield from _get_where(collection, where, [])
    wanted = page(sorted(ids["ids"]), op.limit, op.offset)
    if not wanted:
        return []
    result = yield from _get_ids(collection, wanted, [*_ITEM_FIELDS, *(["embeddings"] if op.with_vectors else [])])
    found = decode_get(op.namespace, result)
    if op.with_vectors:
        vectors = dict(zip(result["ids"], np.asarray(result["embeddings"], dtype=np.float32)))
        found = {i: replace(item, vector=vectors[i]) for i, item in found.items()}
    return [found[i] for i in wanted if i in found]


def list_namespaces(op: ListNamespacesOp) -> Step:
    if op.limit == 0:
        return []
    entries = yield from _get_where(REGISTRY_HANDLE, prefix_where(op.prefix), ["metadatas"])
    n = len(op.prefix)
    candidates = sorted(
        ns for ns in (parse_registry_namespace(m) for m in entries["metadatas"] if m) if ns[:n] == op.prefix
    )
    found: list[Namespace] = []
    skipped = 0
    for namespace in candidates:
        collection = yield Open(namespace, False)
        if collection is None or not (yield Call(collection, "count", {})):
            continue  # a crash before the first item landed, or every item was deleted by id
        if skipped < op.offset:
            skipped += 1
            continue
        found.append(namespace)
        if len(found) >= op.limit:
            break
    return found


def dense_search(op: SearchOp, cache: SideCache, writer: str, synced: set[Namespace]) -> Step:
    where = to_where(op.filter)
    if where is MATCH_NOTHING or op.limit == 0:
        return []
    collection = yield Open(op.namespace, False)
    if collection is None:
        return []
    vector = op.vector if op.vector is not None else (yield Embed(op.query))
    # Reading documents and metadata back from Chroma is most of a query's time; when
    # the namespace's side index is current it already holds them (and the vectors).
    entry = cache.get(op.namespace)
    if entry is None and cache.snapshots is not None and cache.snapshots.exists(op.namespace):
        # Loading a snapshot costs less than Chroma's first HNSW query, and then search is exact.
        entry = yield from current_entry(op.namespace, cache, writer, synced)
    elif entry is not None and op.namespace not in synced and not cache.current(entry):
        if (yield from _sync(op.namespace, entry, collection, writer)):
            synced.add(op.namespace)
        else:
            entry = None
    if entry is not None and entry.exact:
        return entry.dense(op, np.asarray(vector, dtype=np.float32))
    wanted = op.offset + op.limit if op.limit is not None else int((yield Call(collection, "count", {})))
    if not wanted:
        return []
    include = ["distances"] if entry is not None else ["documents", "metadatas", "distances"]
    if op.with_vectors:
        include.append("embeddings")
    result = yield Call(
        collection,
        "query",
        {
            "query_embeddings": [np.asarray(vector, dtype=np.float32)],
            "n_results": wanted,
            "where": where,
            "include": include,
        },
    )
    ids, distances = result["ids"][0], result["distances"][0]
    if entry is not None and all(i in entry.items for i in ids):
        scored = [ScoredItem(copy_item(entry.items[i]), 1.0 - float(dist)) for i, dist in zip(ids, distances)]
    elif entry is not None:  # written after the sync: fetch what the index lacks
        got = yield from _get_ids(collection, ids, _ITEM_FIELDS)
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


def keyword_search(op: SearchOp, cache: SideCache, writer: str, synced: set[Namespace]) -> Step:
    if op.limit == 0:
        return []
    entry = yield from current_entry(op.namespace, cache, writer, synced)
    if entry is None:
        return []
    return entry.keyword(op)


def warm(namespace: Namespace, cache: SideCache, writer: str) -> Step:
    """Bring the namespace's side index up to date (cheap when it is current)."""
    yield from current_entry(namespace, cache, writer, set())


# -- the side index: derived from Chroma alone -------------------------------


def current_entry(namespace: Namespace, cache: SideCache, writer: str, synced: set[Namespace]) -> Step:
    """The namespace's side entry, synced with Chroma (rebuilt when syncing cannot follow).

    ``synced`` holds the namespaces already synced by this batch: the searches of
    one batch (a retriever asks dense and keyword, per unit kind) sync once.
    """
    entry = cache.get(namespace)
    if entry is not None and (namespace in synced or cache.current(entry)):
        return entry
    collection = yield Open(namespace, False)
    if collection is None:
        cache.forget(namespace)
        return None
    if entry is None and cache.snapshots is not None:
        # A cold read: the snapshot of an earlier process, synced like an entry after a failed
        # write (records since its newest, minus the skew, of writers it cannot vouch for), else a rebuild.
        generation = cache.generation(namespace)
        entry = cache.snapshots.load(namespace, collection)
        if entry is not None:
            entry.suspect = not entry.proven  # proven current at load: no sync (snapshot.py, writepos.py)
            cache.install(namespace, entry, generation)
    if entry is not None and (cache.current(entry) or (yield from _sync(namespace, entry, collection, writer))):
        synced.add(namespace)
        return entry
    for _ in range(3):  # other writers deleting during the rebuild: try again, then serve what we have
        generation = cache.generation(namespace)
        entry = yield from _rebuild(namespace, collection)
        cache.install(namespace, entry, generation)
        if (yield from _sync(namespace, entry, collection, writer)):
            synced.add(namespace)
            break
    return entry


def _rebuild(namespace: Namespace, collection: Any) -> Step:
    size = yield Call(collection, "count", {})
    entry = SideEntry(exact=size <= EXACT_DENSE_MAX, source=_source(collection))
    include = [*_ITEM_FIELDS, *(["embeddings"] if entry.exact else [])]
    offset = 0
    while True:  # one page at a time: the rebuild never holds the namespace's raw records at once
        got = yield Call(collection, "get", {"include": include, "limit": PAGE, "offset": offset})
        _apply(namespace, entry, got)
        if len(got["ids"]) < PAGE:
            return entry
        offset += len(got["ids"])


def _apply(namespace: Namespace, entry: SideEntry, got: Any) -> None:
    ids = list(got["ids"])
    if not ids:
        return
    docs = got.get("documents")
    metas = got.get("metadatas")
    docs = list(docs) if docs is not None else [None] * len(ids)
    metas = list(metas) if metas is not None else [None] * len(ids)
    items = [decode(namespace, i, d, m) for i, d, m in zip(ids, docs, metas)]
    vectors = got.get("embeddings") if entry.exact else None
    entry.apply(items, [_stamp(m) for m in metas], vectors)


def _sync(namespace: Namespace, entry: SideEntry, collection: Any, writer: str) -> Step:
    """Apply other writers' changes to ``entry``; ``False`` when only a rebuild can make it current.

    Asks Chroma for records newer than the newest the entry knows, and for records of other
    writers (or of anyone, when the entry is ``suspect``) up to :data:`SKEW_US` older than
    that; fetches the ones the entry lacks; then compares counts (a deletion by someone else).
    """
    now_us = to_micros(utcnow())
    high = entry.high_us
    window: dict[str, Any]
    if entry.settled and not entry.suspect:
        window = {"_updated_us": {"$gt": high}}  # everything older has landed and was seen
    else:
        window = {"_updated_us": {"$gt": high - SKEW_US}}
        # Writers whose records up to `high` the entry holds: its own (applied in place) unless a
        # write failed; for an entry restored from a snapshot, the snapshot's own writers.
        trusted = sorted(entry.trusted or ()) if entry.suspect else [writer]
        if trusted:
            others = {"$or": [{"_writer": {"$nin": trusted}}, {"_updated_us": {"$gt": high}}]}
            window = {"$and": [window, others]}
    recent = yield from _get_where(collection, window, ["metadatas"])
    changed = [i for i, m in zip(recent["ids"], recent["metadatas"]) if entry.stamps.get(i) != _stamp(m)]
    if changed:
        include = [*_ITEM_FIELDS, *(["embeddings"] if entry.exact else [])]
        got = yield from _get_ids(collection, changed, include)
        if entry.exact and got["embeddings"]:
            got["embeddings"] = np.asarray(got["embeddings"], dtype=np.float32)
        _apply(namespace, entry, got)
    size = yield Call(collection, "count", {})
    entry.suspect = False
    entry.trusted = None
    if now_us > high + SKEW_US and entry.high_us == high:
        entry.settled = True
    return int(size) == len(entry)
