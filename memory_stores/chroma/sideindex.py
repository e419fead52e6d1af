"""The Chroma store's side index: BM25 and exact vectors per namespace, kept current from Chroma alone.

Chroma has no BM25, so a :class:`SideEntry` keeps, per namespace, a
:class:`~ltm_agent.memory_stores._keyword.KeywordIndex`, the decoded items and
(up to :data:`EXACT_DENSE_MAX` items) their unit vectors. It is derived data
(Chroma is the truth), and it follows the store like this:

* **Own writes** (this store object's puts and deletes) are applied to the
  entry in place right after Chroma acknowledged them: a read after a write
  costs the size of the write, not of the namespace.
* **Other writers** (another client of one server, or a store object that
  wrote before a crash) are found in Chroma itself, with no registry or
  revision record that a crash could leave behind: every record carries the
  microsecond it was written (``_updated_us``) and the writer that wrote it
  (``_writer``). Before a read the entry asks Chroma for records newer than the
  newest one it knows, or written by another writer in the last
  :data:`SKEW_US` before that, and for the count; what it lacks it fetches and
  applies; a count that still disagrees (another writer deleted) rebuilds the
  entry. Writers' clocks must agree within :data:`SKEW_US` (NTP does).

When every writer goes through one cache (an embedded directory, which one
process holds and whose store objects share one :class:`SideCache`, or a
private in-memory store) the cache is *exclusive*: an entry is then current
by construction and reads skip the questions to Chroma, except after a write
that failed half-way (the entry is then ``suspect`` and syncs once).

**Snapshots** (embedded directories only, :mod:`~ltm_agent.memory_stores.chroma.snapshot`):
when the last store object of a directory in a process closes, each cached entry that changed
since its last snapshot is saved to ``<dir>/ltm-side/``. A later process's first read of the
namespace loads it instead of reading the namespace back. If the collection's write position
in Chroma's log is the one the snapshot recorded (:mod:`~ltm_agent.memory_stores.chroma.writepos`),
nothing was written since and the entry answers at once; otherwise it syncs like an entry after a
failed write (records since its newest stamp minus :data:`SKEW_US`, except those of the writers
it was saved from, which it holds; then the count). A delete in a namespace removes its
snapshot first. Snapshots are never written for ephemeral or server stores.

:class:`SideCache` holds the entries, least recently used first out beyond
``max_items`` items in all, so a store with a million memories keeps only
the namespaces being read in memory (RSS does not grow with the number of
namespaces touched).

Core types: :class:`SideEntry`, :class:`SideCache`, :class:`EntryParts`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np

from ltm_agent.filters import validate_filter
from ltm_agent.memory_stores._common import copy_item, match_function
from ltm_agent.memory_stores._keyword import KeywordIndex
from ltm_agent.namespaces import Namespace
from ltm_agent.records import ScoredItem, StoredItem
from ltm_agent.store import SearchOp

if TYPE_CHECKING:
    from ltm_agent.memory_stores.chroma.snapshot import SnapshotDir

__all__ = ["EXACT_DENSE_MAX", "SKEW_US", "EntryParts", "SideCache", "SideEntry", "shared_cache"]

EXACT_DENSE_MAX = 250_000
"""Namespaces of up to this many items keep their vectors in the side index, and dense search
over them is exact cosine in numpy: deterministic, and no Chroma query. Larger namespaces are
searched with Chroma's HNSW index (approximate; its graph differs between collections). The
limit covers one namespace of 100,000 turns (two items each, ~0.4 GB of vectors at 384
dimensions): Chroma's HNSW query with the retriever's ``kind`` filter scans the namespace's
metadata (measured: ~100 ms CPU at 20,000 items, ~2 s per question at 200,000)."""

SKEW_US = 5_000_000
"""How far (µs) another writer's record may be stamped before the newest record an entry knows
and still be found: covers the time between stamping a write and Chroma applying it, and clock
differences between machines writing through one server."""


class EntryParts(NamedTuple):
    """What a snapshot of a :class:`SideEntry` holds (see :mod:`~ltm_agent.memory_stores.chroma.snapshot`)."""

    version: int
    """The entry's change counter when the parts were taken."""
    high_us: int
    exact: bool
    items: list[StoredItem]
    stamps: list[tuple[int, str]]
    """``(_updated_us, _writer)`` of each item, in the order of ``items``."""
    vectors: np.ndarray
    """Unit vectors (float32), one row per item in the order of ``items``; ``(0, 0)`` unless exact."""
    keyword: dict[str, Any]
    """:meth:`KeywordIndex.state` of the entry's index."""


class SideEntry:
    """One namespace's side index; every method runs under the entry's own lock.

    Args:
        exact: Keep vectors for exact dense search.
        source: The id of the Chroma collection the entry mirrors (a snapshot names it, so
            a snapshot of a deleted and re-created collection is refused).
    """

    def __init__(self, exact: bool, source: str | None = None) -> None:
        self.lock = threading.RLock()
        self.exact = exact
        self.source = source
        self.version = 0
        """Bumped by every change: the entry needs a new snapshot while it differs from ``saved``."""
        self.saved = -1
        """The ``version`` its snapshot holds (-1: none)."""
        self.retired = False
        """Its namespace was deleted: it must never be saved again."""
        self.proven = False
        """Set on an entry restored from a snapshot and provably current with Chroma (no write since
        it was saved, or every write since fetched by id: :mod:`~ltm_agent.memory_stores.chroma.writepos`):
        it needs no sync."""
        self.trusted: frozenset[str] | None = None
        """Set on an entry restored from a snapshot, until its first sync: the writers whose records
        stamped up to ``high_us`` it holds for sure (a snapshot is taken with no write in flight)."""
        self.index = KeywordIndex()
        self.items: dict[str, StoredItem] = {}
        self.stamps: dict[str, tuple[int, str]] = {}  # id -> (_updated_us, _writer)
        self.high_us = 0
        self.suspect = False
        self.settled = False
        """True once a full look at the :data:`SKEW_US` window ran later than ``high_us + SKEW_US``:
        every record stamped up to ``high_us`` has landed, so syncs only ask for newer ones."""
        """True when own writes may be missing (they raced a rebuild): the next sync looks at every writer."""
        self._row: dict[str, int] = {}
        self._row_ids: list[str | None] = []
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._alive = np.zeros(0, dtype=bool)

    def __len__(self) -> int:
        return len(self.items)

    def apply(self, items: Sequence[StoredItem], stamps: Sequence[tuple[int, str]], vectors: Any) -> None:
        """Insert or replace items (their vectors only matter when the entry is exact)."""
        with self.lock:
            self.version += 1
            for n, (item, stamp) in enumerate(zip(items, stamps)):
                self.index.upsert(item.id, item.index_text, item.metadata)
                self.items[item.id] = item
                self.stamps[item.id] = stamp
                if stamp[0] > self.high_us:
                    self.high_us = stamp[0]
                    self.settled = False
                if self.exact:
                    self._set_row(item.id, np.asarray(vectors[n], dtype=np.float32))
            if self.exact and len(self.items) > EXACT_DENSE_MAX:
                self._drop_vectors()  # grew past the exact limit: Chroma's HNSW answers from now on

    def _drop_vectors(self) -> None:
        self.exact = False
        self._row, self._row_ids = {}, []
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._alive = np.zeros(0, dtype=bool)

    def remove(self, ids: Iterable[str]) -> None:
        with self.lock:
            self.version += 1
            for item_id in ids:
                self.index.remove(item_id)
                self.items.pop(item_id, None)
                self.stamps.pop(item_id, None)
                row = self._row.pop(item_id, None)
                if row is not None:
                    self._row_ids[row] = None
                    self._matrix[row] = 0.0
                    self._alive[row] = False

    def parts(self) -> EntryParts:
        """A consistent copy of everything a snapshot holds (the keyword index is swept first)."""
        with self.lock:
            ids = list(self.items)
            if self.exact and ids and self._row_ids == ids:
                # Rows already in item order (no tombstones): a view, not a copy of every vector. Safe to
                # read after the lock: a snapshot is written while no write may start (SnapshotDir.hold).
                vectors = self._matrix[: len(ids)]
            elif self.exact and ids:
                vectors = self._matrix[np.fromiter((self._row[i] for i in ids), dtype=np.int64, count=len(ids))]
            else:
                vectors = np.zeros((0, 0), dtype=np.float32)
            return EntryParts(
                self.version,
                self.high_us,
                self.exact,
                [self.items[i] for i in ids],
                [self.stamps[i] for i in ids],
                vectors,
                self.index.state(),
            )

    @classmethod
    def restore(cls, parts: EntryParts, source: str) -> SideEntry:
        """An entry equal to the one ``parts`` were taken from (``ValueError`` if they disagree)."""
        entry = cls(parts.exact, source)
        ids = [item.id for item in parts.items]
        entry.items = dict(zip(ids, parts.items))
        entry.stamps = dict(zip(ids, parts.stamps))
        if len(entry.items) != len(ids) or len(parts.stamps) != len(ids):
            raise ValueError("items must have unique ids and one stamp each")
        entry.high_us = parts.high_us
        entry.trusted = frozenset(w for us, w in parts.stamps if us > parts.high_us - SKEW_US)
        state = parts.keyword
        try:
            metadatas = [entry.items[i].metadata for i in state["ids"]]
        except (KeyError, TypeError):
            raise ValueError("the keyword index names an item the entry does not hold") from None
        entry.index = KeywordIndex.from_state(
            state["ids"], metadatas, state["vocab"], state["postings_ptr"], state["postings_slots"], state["postings_tfs"]
        )
        if parts.exact:
            if parts.vectors.ndim != 2 or parts.vectors.shape[0] != len(ids):
                raise ValueError("an exact entry needs one vector per item")
            # Rows are already unit vectors: set as they were saved, so scores match to the bit.
            entry._matrix = np.ascontiguousarray(parts.vectors, dtype=np.float32)
            entry._alive = np.ones(len(ids), dtype=bool)
            entry._row = {item_id: row for row, item_id in enumerate(ids)}
            entry._row_ids = list(ids)
        entry.saved = entry.version
        return entry

    def _set_row(self, item_id: str, vector: np.ndarray) -> None:
        norm = float(np.linalg.norm(vector)) or 1.0
        row = self._row.get(item_id)
        if row is None:
            row = len(self._row_ids)
            if row >= self._matrix.shape[0]:  # grow by doubling: appends are amortised O(1)
                grown = np.zeros((max(64, 2 * self._matrix.shape[0]), vector.shape[0]), dtype=np.float32)
                alive = np.zeros(grown.shape[0], dtype=bool)
                if self._matrix.shape[0]:
                    grown[: self._matrix.shape[0]] = self._matrix
                    alive[: self._alive.shape[0]] = self._alive
                self._matrix, self._alive = grown, alive
            self._row[item_id] = row
            self._row_ids.append(item_id)
            self._alive[row] = True
        self._matrix[row] = vector / norm

    def dense(self, op: SearchOp, vector: np.ndarray) -> list[ScoredItem]:
        """Exact cosine ranking (best first, ties by id) over the entry's vectors.

        Only the best rows are sorted: the top ``offset + limit``, widened
        four-fold while a filter leaves the page short, never the namespace.
        """
        with self.lock:
            rows = len(self._row_ids)
            live = len(self.items)
            if not rows or not live:
                return []
            matrix = self._matrix[:rows]
            # einsum, not `matrix @ v`: BLAS spreads a matrix-vector product over every core, which on a
            # loaded host costs 4-8x a single core's time (and its last bits vary with the thread count).
            scores = np.einsum("ij,j->i", matrix, vector / (np.linalg.norm(vector) or 1.0))
            scores[~self._alive[:rows]] = -np.inf
            normal = validate_filter(op.filter)
            holds = match_function(normal) if normal else None
            end = op.offset + (live if op.limit is None else op.limit)  # limit=None: every match
            want = min(end, live)  # widened four-fold while a filter leaves the page short
            while True:
                kept: list[int] = []
                for row in self._top(scores, want).tolist():
                    item_id = self._row_ids[row]
                    if item_id is None or (holds is not None and not holds(self.items[item_id].metadata)):
                        continue
                    kept.append(row)
                    if len(kept) >= end:
                        break
                if len(kept) >= end or want >= live:
                    break
                want = min(4 * want, live)
            found = []
            for row in kept[op.offset :]:
                copy = matrix[row].copy() if op.with_vectors else None
                found.append(ScoredItem(copy_item(self.items[self._row_ids[row] or ""], copy), float(scores[row])))
            return found

    def _top(self, scores: np.ndarray, k: int) -> np.ndarray:
        """Rows of the ``k`` best scores (and every row tied with the k-th), best first, ties by id."""
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        if k < len(scores):
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            candidates = np.flatnonzero(scores >= kth)
        else:
            candidates = np.arange(len(scores))
        # numpy orders by score; Python only reorders runs of equal scores by id (rare with real vectors).
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        ranked = scores[order]
        ties = np.flatnonzero(ranked[1:] == ranked[:-1])
        if not len(ties):
            return order
        ids = self._row_ids
        out = order.tolist()
        start = 0
        while start < len(out):
            stop = start + 1
            while stop < len(out) and ranked[stop] == ranked[start]:
                stop += 1
            if stop - start > 1:
                out[start:stop] = sorted(out[start:stop], key=lambda r: ids[r] or "")
            start = stop
        return np.array(out, dtype=np.int64)

    def keyword(self, op: SearchOp) -> list[ScoredItem]:
        with self.lock:
            hits = self.index.search(op.query, op.filter, op.limit, op.offset, op.group_by)
            return [ScoredItem(copy_item(self.items[i]), score) for i, score in hits]


MAX_CACHED_ITEMS = 100_000
"""Items the side entries of one store hold in all before the least recently used namespace is
dropped (about 5 KB each with its vector: ~0.5 GB). One namespace larger than this stays alone."""


class SideCache:
    """Side entries per namespace, bounded by the items they hold (least recently used out first).

    Args:
        max_items: Items kept in all; the least recently used entries go first.
        exclusive: Every writer of the store goes through this cache, so an
            entry that is not ``suspect`` is current without asking Chroma.
    """

    def __init__(
        self, max_items: int = MAX_CACHED_ITEMS, *, exclusive: bool = False, snapshots: SnapshotDir | None = None
    ) -> None:
        self.max_items = max_items
        self.exclusive = exclusive
        self.snapshots = snapshots
        """Where entries are saved on release and loaded from on a cold read (embedded directories only)."""
        self._entries: OrderedDict[Namespace, SideEntry] = OrderedDict()
        self._generation: dict[Namespace, int] = {}
        self.registered: set[Namespace] = set()
        """Namespaces whose registry record this store object has written (or seen)."""
        self._lock = threading.Lock()

    def current(self, entry: SideEntry) -> bool:
        """True when ``entry`` needs no sync: every write went through this cache and none failed."""
        return self.exclusive and not entry.suspect

    def get(self, namespace: Namespace) -> SideEntry | None:
        with self._lock:
            entry = self._entries.get(namespace)
            if entry is not None:
                self._entries.move_to_end(namespace)
            return entry

    def generation(self, namespace: Namespace) -> int:
        """Changes whenever this store object writes the namespace (a rebuild started before is stale)."""
        with self._lock:
            return self._generation.get(namespace, 0)

    def install(self, namespace: Namespace, entry: SideEntry, generation: int) -> None:
        """Keep a rebuilt entry; if an own write landed while it was built, its next sync trusts nothing."""
        with self._lock:
            entry.suspect = entry.suspect or self._generation.get(namespace, 0) != generation
            self._entries[namespace] = entry
            self._entries.move_to_end(namespace)
            self._evict()

    def _evict(self) -> None:
        total = sum(len(e) for e in self._entries.values())
        while total > self.max_items and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            total -= len(dropped)

    def wrote(self, namespace: Namespace) -> SideEntry | None:
        """Note an own write; return the entry to apply it to, if one is cached."""
        with self._lock:
            self._generation[namespace] = self._generation.get(namespace, 0) + 1
            entry = self._entries.get(namespace)
            if entry is not None:
                self._entries.move_to_end(namespace)
            return entry

    def trim(self) -> None:
        """Drop least recently used entries until the bound holds again (after writes grew one)."""
        with self._lock:
            self._evict()

    def failed(self, namespace: Namespace) -> None:
        """A write failed after it may have reached Chroma: the entry (and any rebuild) must sync."""
        with self._lock:
            self._generation[namespace] = self._generation.get(namespace, 0) + 1
            entry = self._entries.get(namespace)
            if entry is not None:
                entry.suspect = True

    def erasing(self, namespace: Namespace) -> None:
        """About to delete from the namespace: its snapshot goes first, so no deleted text outlives it.

        No snapshot of it is written until :meth:`done` (call it once the entry is updated).
        """
        if self.snapshots is not None:
            self.snapshots.discard(namespace)

    def writing(self, namespace: Namespace) -> None:
        """A write to the namespace starts: no snapshot of it until :meth:`done`."""
        if self.snapshots is not None:
            self.snapshots.hold(namespace)

    def done(self, namespace: Namespace) -> None:
        """The write or delete that :meth:`writing` or :meth:`erasing` announced is over."""
        if self.snapshots is not None:
            self.snapshots.release(namespace)

    def persist(self) -> None:
        """Save every cached entry that changed since its snapshot (never raises: see ``SnapshotDir.save``)."""
        if self.snapshots is None:
            return
        with self._lock:
            entries = list(self._entries.items())
        for namespace, entry in entries:
            self.snapshots.save(namespace, entry)

    def forget(self, namespace: Namespace) -> None:
        with self._lock:
            dropped = self._entries.pop(namespace, None)
            if dropped is not None:
                dropped.retired = True
            self._generation[namespace] = self._generation.get(namespace, 0) + 1
            self.registered.discard(namespace)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.registered.clear()
            for namespace in self._generation:
                self._generation[namespace] += 1


_shared: dict[str, tuple[SideCache, int]] = {}
_shared_lock = threading.Lock()


def shared_cache(root: str) -> tuple[SideCache, Callable[[], None]]:
    """The exclusive cache of an embedded directory, shared by its store objects in this process.

    The directory lock keeps other processes out, so the store objects of this
    process are its only writers; one cache for all of them sees every write.
    Returns the cache and the function that releases this hold; the last one saves
    the snapshots of entries that changed (``<root>/ltm-side/``) and clears it.
    """
    from ltm_agent.memory_stores.chroma.snapshot import SnapshotDir  # it builds SideEntry objects: import here

    key = f"{os.getpid()}:{root}"  # a forked child holds a lock, and a cache, of its own
    with _shared_lock:
        cache, holders = _shared.get(key, (None, 0))
        if cache is None:
            cache = SideCache(exclusive=True, snapshots=SnapshotDir(root))
        _shared[key] = (cache, holders + 1)
    released = False

    def release() -> None:
        nonlocal released
        with _shared_lock:
            if released:
                return
            released = True
            held, count = _shared[key]
            if count > 1:
                _shared[key] = (held, count - 1)
                return
            del _shared[key]
        held.persist()  # the directory is still locked: no other process writes while we save
        held.clear()

    return cache, release
