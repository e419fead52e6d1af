"""Snapshots of an embedded Chroma store's side index: a cold first query loads a file, not the namespace.

A side entry (:mod:`~ltm_agent.memory_stores.chroma.sideindex`) is derived from
Chroma; building one reads the whole namespace back and tokenizes it (measured:
3.9-5.5 s at 10,000 turns, 62 s at 100,000). So when the last store object of an
embedded directory in a process closes, every cached entry that changed since
its last snapshot is written to ``<dir>/ltm-side/<collection name>.npz``,
with the collection's *write position* in Chroma's SQLite log
(:mod:`~ltm_agent.memory_stores.chroma.writepos`: the metadata segment's
``max_seq_id``, a hash of the log row it names and the database file's inode),
read while no write of the process is in flight. The first read of the
namespace in a later process loads the file, then:

* **the position is unchanged**: no record of the collection was added,
  updated or deleted since (by anyone: another process, a ``chroma run`` on
  the directory), so the entry answers as it is, with no question to Chroma
  (a where-filtered ``get`` costs 1-6 s at 2M items: Chroma's SQLite filters
  the metadata of the whole database);
* **it moved, but the log still holds the snapshot's row**: the ids written
  since are read from the log and fetched by id (a few hundred writes; Chroma
  purges older rows), then the counts must agree;
* **otherwise** (no position: an older file, a write under way, a locked,
  hot-journal or WAL-mode database, a copied directory, a purged log; or a
  count that disagrees) it is
  synced as after a failed write: records stamped after the snapshot's newest
  minus :data:`~ltm_agent.memory_stores.chroma.sideindex.SKEW_US` are fetched,
  and a count that disagrees (a delete the snapshot cannot know) rebuilds.

A snapshot may be old, but what is served is never wrong. Writers that ignore
the directory lock while this process holds it (a raw client or server on the
directory at the same time) are not supported by the side index at all; their
writes made before a snapshot is saved could be counted in its position.

Rules, because a store directory may come from elsewhere:

* **Safe formats only**: numpy arrays read with ``allow_pickle=False`` and
  JSON. Nothing in a snapshot is ever unpickled or executed.
* **Atomic writes** (temp file, ``fsync``, ``os.replace``, ``fsync`` of the
  folder) by the process that holds the directory lock; a suspect entry (a
  write failed half-way) is never saved.
* **Nothing trusted unchecked**: format version, collection name and id,
  JSON types, array shapes, dtypes and ranges, and the keyword index against
  the items. A file that fails any check is deleted with a WARNING and the
  namespace is rebuilt from Chroma; the user never sees an error.
* **Erasure**: a delete in a namespace (by id, or of the namespace) deletes
  its snapshot first (:meth:`SnapshotDir.discard`), so a deleted text never
  survives in one.

Core types: :class:`SnapshotDir`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ltm_agent.errors import StoreError
from ltm_agent.memory_stores._keyword import UNINDEXED_KINDS
from ltm_agent.memory_stores.chroma.layout import collection_name, decode, from_micros, to_micros
from ltm_agent.memory_stores.chroma.sideindex import EntryParts, SideEntry
from ltm_agent.memory_stores.chroma.writepos import write_position, written_since
from ltm_agent.namespaces import Namespace, namespace_key
from ltm_agent.records import StoredItem

__all__ = ["FOLDER", "FORMAT", "SnapshotDir"]

FORMAT = 1
"""Version of the file layout; a file of another version is ignored (and rebuilt)."""
FOLDER = "ltm-side"
"""The folder of the store directory that holds the snapshots, one ``.npz`` file per namespace."""

log = logging.getLogger(__name__)

_ARRAYS = {
    "header": (np.uint8, 1),  # UTF-8 JSON
    "items": (np.uint8, 1),  # UTF-8 JSON
    "stamp_us": (np.int64, 1),
    "stamp_writer": (np.int32, 1),
    "vectors": (np.float32, 2),
    "postings_ptr": (np.int64, 1),
    "postings_slots": (np.int64, 1),
    "postings_tfs": (np.float32, 1),
}


class SnapshotDir:
    """The snapshots of one embedded store directory (``<root>/ltm-side/``).

    Args:
        root: The store directory.

    Example:
        >>> import tempfile
        >>> snapshots = SnapshotDir(tempfile.mkdtemp())
        >>> snapshots.path(("user-1",)).parent.name
        'ltm-side'
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.folder = self.root / FOLDER
        self._lock = threading.Lock()
        self._busy: Counter[Namespace] = Counter()  # writes and deletes in flight: no snapshot of these

    def path(self, namespace: Namespace) -> Path:
        return self.folder / f"{collection_name(namespace)}.npz"

    def hold(self, namespace: Namespace) -> None:
        """A write to the namespace starts: no snapshot of it until the matching :meth:`release`.

        A snapshot is taken only while no write is in flight, so it holds every record
        its writers stamped up to its newest stamp (see ``SideEntry.trusted``).
        """
        with self._lock:
            self._busy[namespace] += 1

    def exists(self, namespace: Namespace) -> bool:
        return os.path.lexists(self.path(namespace))

    def discard(self, namespace: Namespace) -> None:
        """Delete the namespace's snapshot now (before a delete in it reaches Chroma).

        Like :meth:`hold`: no snapshot of the namespace until the matching :meth:`release`.

        Raises:
            StoreError: The file could not be deleted; the caller must not delete from
                the namespace then (its text would outlive the delete in the file).
        """
        with self._lock:
            self._busy[namespace] += 1
            try:
                self._remove(namespace)
            except OSError as exc:
                self._busy[namespace] -= 1
                raise StoreError(
                    f"could not delete the side-index snapshot {self.path(namespace)} before deleting from "
                    f"namespace {namespace!r} ({exc}); nothing was deleted: remove the file by hand, then retry"
                ) from exc

    def release(self, namespace: Namespace) -> None:
        """The write or delete announced by :meth:`hold` or :meth:`discard` is over (and in the side entry)."""
        with self._lock:
            self._busy[namespace] -= 1
            if self._busy[namespace] <= 0:
                del self._busy[namespace]

    def _remove(self, namespace: Namespace) -> None:
        path = self.path(namespace)
        if path.is_dir() and not path.is_symlink():  # not ours to keep: something else took the name
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)  # a save a crash cut short

    def save(self, namespace: Namespace, entry: SideEntry) -> bool:
        """Write the entry's snapshot if it changed since the last one; ``False`` when nothing was written.

        Never raises: a snapshot is an optimisation, and closing a store must not fail
        for it (a failure is logged at WARNING and the old snapshot, if any, stays valid).
        """
        with self._lock:  # a delete in this namespace cannot start (or be in flight) meanwhile
            if self._busy[namespace] > 0:
                return False
            with entry.lock:
                if entry.saved == entry.version or entry.suspect or entry.retired or entry.source is None:
                    return False
                parts = entry.parts()
                source = entry.source
            # Read while no write of this process can start (hold() waits for our lock) and none is in
            # flight: the position is the one of the Chroma state the parts were taken from.
            position = write_position(self.root, source)
            try:
                self._write(self.path(namespace), _encode(namespace, source, parts, position))
            except Exception as exc:  # noqa: BLE001 - see the docstring
                log.warning("could not save the side-index snapshot of namespace %r: %s: %s", namespace, type(exc).__name__, exc)
                return False
        with entry.lock:
            entry.saved = parts.version
        return True

    def _write(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        self.folder.mkdir(exist_ok=True)
        temp = path.with_name(path.name + ".tmp")
        try:
            with temp.open("wb") as handle:
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        folder = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a power cut
        finally:
            os.close(folder)

    def load(self, namespace: Namespace, collection: Any) -> SideEntry | None:
        """The namespace's entry from its snapshot, or ``None`` (no file, or a bad one, which is deleted).

        The entry's ``proven`` is true when it is provably current: the collection's
        write position (:func:`~ltm_agent.memory_stores.chroma.writepos.write_position`)
        is the one the snapshot recorded (nothing was written since), or Chroma's log
        still lists every id written since (:func:`~ltm_agent.memory_stores.chroma.writepos.written_since`)
        and those records, fetched by id, were applied and the counts agree. Otherwise it
        must be synced with Chroma before it answers (the caller marks it suspect). An
        entry whose position moved is saved again at close, even if nothing else changed.
        """
        path = self.path(namespace)
        if not os.path.lexists(path):
            return None
        try:
            source = str(collection.id)
            dim = (collection.metadata or {}).get("ltm:dim")
            if not path.is_file():  # a folder, or a FIFO or device that reading would block on or never end
                raise ValueError("not a regular file")
            with np.load(path, allow_pickle=False) as data:
                if set(data.files) != set(_ARRAYS):
                    raise ValueError(f"arrays {sorted(data.files)}, expected {sorted(_ARRAYS)}")
                arrays = {name: data[name] for name in _ARRAYS}
            parts, recorded = _decode(namespace, source, dim, arrays)
            entry = SideEntry.restore(parts, source)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, Chroma has the truth
            log.warning(
                "ignoring the side-index snapshot %s of namespace %r (%s: %s); rebuilding it from Chroma",
                path, namespace, type(exc).__name__, str(exc)[:200],
            )
            with self._lock:
                try:
                    self._remove(namespace)
                except OSError as error:
                    log.warning("could not delete the bad snapshot %s: %s", path, error)
            return None
        position = write_position(self.root, source)
        entry.proven = recorded is not None and recorded == position
        if not entry.proven and position is not None:
            entry.saved = -1  # its position is stale but a proof is possible: worth writing again at close
            written = None if recorded is None else written_since(self.root, source, recorded)
            entry.proven = written is not None and _catch_up(namespace, entry, collection, written)
        if entry.proven:
            entry.trusted = None  # as after a sync: a later failed write makes the next sync look at every writer
        return entry


_FETCH_PAGE = 2000
"""Ids per ``get`` when catching up from the log (the store's page: far below SQLite's variable limit)."""


def _catch_up(namespace: Namespace, entry: SideEntry, collection: Any, written: list[str]) -> bool:
    """Apply the current records of ``written`` (ids the log lists since the snapshot) to ``entry``.

    ``True`` when the entry then holds as many items as the collection; ``False`` (the caller
    syncs, which applies the same records again if need be) on a count that disagrees or any
    error, which is logged, never raised: the snapshot file itself is sound.
    """
    try:
        include = ["documents", "metadatas", *(["embeddings"] if entry.exact else [])]
        seen: set[str] = set()
        for start in range(0, len(written), _FETCH_PAGE):
            got = collection.get(ids=written[start : start + _FETCH_PAGE], include=include)
            ids, docs, metas = list(got["ids"]), got["documents"], got["metadatas"]
            if ids:
                items = [decode(namespace, i, d, m) for i, d, m in zip(ids, docs, metas)]
                stamps = [(int((m or {}).get("_updated_us", 0)), str((m or {}).get("_writer", ""))) for m in metas]
                vectors = np.asarray(got["embeddings"], dtype=np.float32) if entry.exact else None
                entry.apply(items, stamps, vectors)
            seen.update(ids)
        gone = [i for i in written if i not in seen and i in entry.items]
        if gone:
            entry.remove(gone)
        return int(collection.count()) == len(entry)
    except Exception as exc:  # noqa: BLE001 - an optimisation: the sync that follows reports real errors
        log.warning("could not catch namespace %r up from Chroma's log (%s: %s); syncing it", namespace, type(exc).__name__, exc)
        return False


# -- the file layout ----------------------------------------------------------


def _json(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), dtype=np.uint8)


def _encode(namespace: Namespace, source: str, parts: EntryParts, position: dict[str, Any] | None) -> dict[str, np.ndarray]:
    writers = sorted({writer for _, writer in parts.stamps})
    index_of = {writer: n for n, writer in enumerate(writers)}
    items = parts.items
    header = {
        "format": FORMAT,
        "collection": collection_name(namespace),
        "collection_id": source,
        "namespace": namespace_key(namespace),
        "high_us": parts.high_us,
        "exact": parts.exact,
        "count": len(items),
        "writers": writers,
        "position": position,  # None: no proof, a later load syncs (files without the key read the same)
    }
    body = {
        "ids": [item.id for item in items],
        "texts": [item.text for item in items],
        "keys": [item.key for item in items],
        "metadata": [dict(item.metadata) for item in items],
        "created_us": [None if item.created_at is None else to_micros(item.created_at) for item in items],
        "updated_us": [None if item.updated_at is None else to_micros(item.updated_at) for item in items],
        "keyword_ids": parts.keyword["ids"],
        "vocab": parts.keyword["vocab"],
    }
    return {
        "header": _json(header),
        "items": _json(body),
        "stamp_us": np.array([us for us, _ in parts.stamps], dtype=np.int64),
        "stamp_writer": np.array([index_of[writer] for _, writer in parts.stamps], dtype=np.int32),
        "vectors": np.asarray(parts.vectors, dtype=np.float32),
        "postings_ptr": parts.keyword["postings_ptr"],
        "postings_slots": parts.keyword["postings_slots"],
        "postings_tfs": parts.keyword["postings_tfs"],
    }


def _need(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(what)


def _decode(
    namespace: Namespace, source: str, dim: Any, arrays: Mapping[str, np.ndarray]
) -> tuple[EntryParts, dict[str, Any] | None]:
    """Check every array and JSON value of a snapshot, then assemble its parts (``ValueError`` otherwise).

    Also returns the write position it recorded (``None``: none, or not a JSON object).
    """
    for name, (dtype, ndim) in _ARRAYS.items():
        array = arrays[name]
        _need(array.dtype == dtype and array.ndim == ndim, f"{name} is {array.dtype} {array.shape}")
    header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    _need(isinstance(header, dict), "the header is not a JSON object")
    _need(header.get("format") == FORMAT, f"format {header.get('format')!r}, this version reads {FORMAT}")
    _need(header.get("collection") == collection_name(namespace), f"it belongs to {header.get('collection')!r}")
    _need(header.get("collection_id") == source, "it was written for an earlier collection of this name")
    high_us, exact, count, writers = (header.get(k) for k in ("high_us", "exact", "count", "writers"))
    _need(_is_int(high_us) and _is_int(count) and count >= 0 and isinstance(exact, bool), "bad header values")
    _need(isinstance(writers, list) and all(isinstance(w, str) for w in writers), "bad writers")
    body = json.loads(arrays["items"].tobytes().decode("utf-8"))
    _need(isinstance(body, dict), "the items are not a JSON object")
    columns = ("ids", "texts", "keys", "metadata", "created_us", "updated_us")
    _need(all(isinstance(body.get(c), list) and len(body[c]) == count for c in columns), "item columns of wrong length")
    stamp_us, stamp_writer = arrays["stamp_us"], arrays["stamp_writer"]
    _need(len(stamp_us) == count == len(stamp_writer), "stamps of wrong length")
    _need(not count or (stamp_writer.min() >= 0 and stamp_writer.max() < len(writers)), "stamp writers out of range")
    _need(not count or int(stamp_us.max()) <= high_us, "a stamp is newer than the snapshot's newest")
    items = _items(namespace, *(body[c] for c in columns))
    vectors = arrays["vectors"]
    if exact:
        fits = vectors.shape == (count, dim) or vectors.shape == (0, 0) == (count, 0)
        _need(fits and bool(np.isfinite(vectors).all()), f"vectors {vectors.shape}, not ({count}, {dim})")
    else:
        _need(vectors.shape == (0, 0), "vectors in an entry that is not exact")
    keyword_ids, vocab = body.get("keyword_ids"), body.get("vocab")
    _need(isinstance(keyword_ids, list) and isinstance(vocab, list), "no keyword ids or vocabulary")
    indexed = {item.id for item in items if item.metadata.get("kind") not in UNINDEXED_KINDS}
    _need(len(keyword_ids) == len(indexed) and set(keyword_ids) == indexed, "the keyword index and the items disagree")
    stamps = [(us, writers[w]) for us, w in zip(stamp_us.tolist(), stamp_writer.tolist())]
    keyword = {
        "ids": keyword_ids,
        "vocab": vocab,
        "postings_ptr": arrays["postings_ptr"],
        "postings_slots": arrays["postings_slots"],
        "postings_tfs": arrays["postings_tfs"],
    }
    position = header.get("position")
    return EntryParts(0, high_us, exact, items, stamps, vectors, keyword), position if isinstance(position, dict) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_SCALARS = frozenset({str, int, float, bool})


def _items(namespace: Namespace, ids: list, texts: list, keys: list, metas: list, created: list, updated: list) -> list[StoredItem]:
    """The snapshot's items, each column type-checked first (whole columns: 20,000 items in ~0.1 s)."""
    _need(all(type(i) is str for i in ids) and all(type(t) is str for t in texts), "ids and texts must be strings")
    _need(all(k is None or type(k) is str for k in keys), "keys must be strings or null")
    _need(all(type(m) is dict for m in metas), "metadata must be objects")
    scalars = _SCALARS
    for meta in metas:
        _need(all(type(v) in scalars for v in meta.values()), "metadata values must be scalars")
        _need(not any(k.startswith("_") for k in meta), "metadata keys starting with '_' are reserved")
    for column in (created, updated):
        _need(all(v is None or type(v) is int for v in column), "times must be integers or null")
    return [
        StoredItem(namespace, i, t, m, k, None if c is None else from_micros(c), None if u is None else from_micros(u))
        for i, t, k, m, c, u in zip(ids, texts, keys, metas, created, updated)
    ]
