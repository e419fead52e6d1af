"""Where a collection's write log stands: a cheap, exact proof that nothing was written since a snapshot.

Syncing a side-index snapshot with Chroma costs a where-filtered ``get``, and
Chroma's local (SQLite) metadata segment evaluates a filter on a metadata key
over the metadata of the *whole* database, not the collection (measured at 2M
items in 100 collections: 0.97 s for a ``$gt`` window with no hits, 5.7 s for
the ``$or``/``$nin`` form). Most cold reads follow a process that changed
nothing, so :func:`write_position` reads where the collection's write log
stands, and a snapshot that recorded the same position needs no sync.

How embedded Chroma 1.x (checked against 1.5.9) keeps its log, in
``chroma.sqlite3``:

* every ``add``/``upsert``/``update``/``delete`` of a collection (by any
  client of the directory: another process, a ``chroma run`` server on it) is
  one row per record in ``embeddings_queue`` (``seq_id INTEGER PRIMARY KEY``,
  the next one is ``MAX(seq_id) + 1``, ``topic`` ends with the collection id);
  a ``delete(where=...)`` that matches nothing writes no row and changes nothing;
* the collection's ``METADATA`` segment applies the rows before the call
  returns and sets its ``max_seq_id`` to the newest applied ``seq_id``;
* purging deletes a collection's rows *below* the smallest ``max_seq_id`` of
  its segments, so the row at the metadata segment's ``max_seq_id`` stays.

So a collection's position is that ``max_seq_id`` with a hash of the row it
names (topic, record id, operation, vector, metadata with the document,
``created_at``) and the database file's inode. A later write of the collection
gets a larger ``seq_id`` (its own newest row is still there, so ``MAX`` cannot
fall below it), and ``seq_id`` reuse after rows were deleted by other means,
or a snapshot copied in from a copy of the directory, would also have to
reproduce that row byte for byte in the same file. Anything unexpected (no
such table, a ``BLOB`` position from an older Chroma, no row, two metadata
segments, a locked or hot-journal database, a timeout) yields ``None``:
no proof, and the caller syncs as before.

The reads use a separate read-only connection (``mode=ro``, a 0.25 s busy
timeout, primary-key lookups), so they never take a write lock. Python's
SQLite and Chroma's bundled one live in one process, where POSIX locks never
block: SQLite's locking keeps other processes' writes away from our reads,
but not this process's own (another thread writing another namespace). So a
read counts only if no rollback journal and no WAL file exists and the
database header's change counter, size and mtime are the same before and
after it (:func:`_quiet`); Chroma writes with a rollback journal, so a
database someone switched to WAL never gives a proof. Closing our file
handles drops the process's POSIX locks on the file, which matters only to
*another process* writing the directory at that moment — the directory lock
(:mod:`~ltm_agent.memory_stores.chroma.dirlock`) already keeps those out.

When the position moved, :func:`written_since` lists the ids written since
from the log itself, provided the row the old position named is still there
with the same hash (purges delete a prefix of a collection's rows, so every
later row of it is still there too): the caller fetches those ids (a lookup
by id, not a filter) instead of syncing. Chroma's purge keeps a collection's
rows from its vector segment's last persisted position (every ~1,000
records), so this covers a few hundred writes since the snapshot; further
behind, ``None``, and the caller syncs.

Core types: :func:`write_position`, :func:`written_since`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable

__all__ = ["DATABASE", "MAX_LOGGED", "write_position", "written_since"]

DATABASE = "chroma.sqlite3"
"""Chroma's SQLite file in an embedded store directory."""
MAX_LOGGED = 20_000
"""Most log rows (of all collections) :func:`written_since` reads; further behind, the caller syncs."""
_BUSY_TIMEOUT_S = 0.25
"""A read waits at most this long for a writer; then there is no proof (a sync follows), never a stall."""

log = logging.getLogger(__name__)


def write_position(root: str | Path, collection_id: str) -> dict[str, Any] | None:
    """The collection's write position in ``<root>/chroma.sqlite3``, or ``None`` when it cannot be proven.

    Two calls return equal values only if no record of the collection was added,
    updated or deleted in between (see the module docstring for why).

    Args:
        root: The embedded store directory.
        collection_id: The Chroma collection's id (``str(collection.id)``).

    Returns:
        A JSON-serialisable ``{"seq": int, "row": hex digest, "inode": int}``, ``{"seq": None, ...}``
        for a collection never written to, or ``None``.

    Example:
        >>> import tempfile
        >>> write_position(tempfile.mkdtemp(), "00000000-0000-0000-0000-000000000000") is None
        True
    """
    return _read(root, collection_id, lambda db, inode: _position(db, collection_id, inode))


def written_since(root: str | Path, collection_id: str, recorded: dict[str, Any]) -> list[str] | None:
    """The ids of the collection's records written after position ``recorded``, from Chroma's log.

    ``None`` unless the log provably still holds every such write: the same database
    file, the row ``recorded`` names unchanged, at most :data:`MAX_LOGGED` rows since.
    An id listed may since have been deleted (the caller finds it gone).

    Example:
        >>> import tempfile
        >>> written_since(tempfile.mkdtemp(), "x", {"seq": 1, "row": "", "inode": 0}) is None
        True
    """
    return _read(root, collection_id, lambda db, inode: _since(db, collection_id, inode, recorded))


def _read(root: str | Path, collection_id: str, read: Callable[[sqlite3.Connection, int], Any]) -> Any:
    database = Path(root) / DATABASE
    before = _quiet(database)
    if before is None:
        return None
    try:
        inode = os.stat(database).st_ino
        # Never mode=rw, never immutable=1 (that would skip locking and read a half-written file).
        connection = sqlite3.connect(
            f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None
        )
    except (OSError, sqlite3.Error):
        return None
    try:
        connection.execute("BEGIN")  # one read transaction: every value read at the same instant
        found = read(connection, inode)
    except (sqlite3.Error, ValueError, TypeError) as exc:
        log.debug("no write position for collection %s: %s: %s", collection_id, type(exc).__name__, exc)
        return None
    finally:
        connection.close()  # also ends the read transaction
    return found if _quiet(database) == before else None


def _quiet(database: Path) -> tuple[int, int, int] | None:
    """The database's change counter, size and mtime while no write is under way; ``None`` otherwise.

    Chroma's connections live in *this* process, and POSIX locks never block a process
    against itself, so SQLite's locking does not keep our reader from pages Chroma is
    rewriting: the same value before and after the reads, and no rollback journal
    (it exists for the whole of a write) or WAL (whose readers rely on locks too)
    either time, prove that no write overlapped them.
    """
    try:
        if any(os.path.lexists(f"{database}{suffix}") for suffix in ("-journal", "-wal")):
            return None
        with open(database, "rb") as handle:
            header = handle.read(28)
            stat = os.fstat(handle.fileno())
    except OSError:
        return None
    if len(header) < 28 or not header.startswith(b"SQLite format 3\x00"):
        return None
    return int.from_bytes(header[24:28], "big"), stat.st_size, stat.st_mtime_ns


def _metadata_seq(connection: sqlite3.Connection, collection_id: str) -> tuple[bool, int | None]:
    """``(known, seq)``: the METADATA segment's ``max_seq_id`` (``None``: never written); ``known`` is False on doubt."""
    segments = connection.execute(
        "SELECT m.seq_id FROM segments s LEFT JOIN max_seq_id m ON m.segment_id = s.id "
        "WHERE s.collection = ? AND s.scope = 'METADATA'",
        (collection_id,),
    ).fetchall()
    if len(segments) != 1:
        return False, None
    (seq,) = segments[0]
    # Older Chroma stored positions as BLOBs: not a format this proof knows.
    return (seq is None or type(seq) is int), seq


def _row_digest(connection: sqlite3.Connection, seq: int, collection_id: str) -> str | None:
    row = connection.execute(
        "SELECT topic, id, operation, vector, encoding, metadata, created_at FROM embeddings_queue WHERE seq_id = ?",
        (seq,),
    ).fetchone()
    if row is None or not isinstance(row[0], str) or not row[0].endswith("/" + collection_id):
        return None
    digest = hashlib.sha256()
    for value in row:  # each value typed and length-prefixed: no two rows hash alike by concatenation
        if value is None:
            kind, data = b"n", b""
        elif isinstance(value, bytes):
            kind, data = b"b", value
        else:
            kind, data = type(value).__name__[:1].encode(), str(value).encode("utf-8", "surrogatepass")
        digest.update(kind + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _position(connection: sqlite3.Connection, collection_id: str, inode: int) -> dict[str, Any] | None:
    known, seq = _metadata_seq(connection, collection_id)
    if not known:
        return None
    if seq is None:  # never written to: a first write sets it
        return {"seq": None, "row": None, "inode": inode}
    digest = _row_digest(connection, seq, collection_id)
    return None if digest is None else {"seq": seq, "row": digest, "inode": inode}


def _since(connection: sqlite3.Connection, collection_id: str, inode: int, recorded: dict[str, Any]) -> list[str] | None:
    old = recorded.get("seq")
    if type(old) is not int or recorded.get("inode") != inode or not isinstance(recorded.get("row"), str):
        return None
    known, seq = _metadata_seq(connection, collection_id)
    if not known or seq is None or seq < old or seq - old > MAX_LOGGED:
        return None
    if _row_digest(connection, old, collection_id) != recorded["row"]:
        return None  # purged past it, or another row under its number: the log may lack writes
    rows = connection.execute(
        "SELECT seq_id, id FROM embeddings_queue WHERE seq_id > ? AND seq_id <= ? AND topic = ? ORDER BY seq_id",
        (old, seq, _topic(connection, old)),
    ).fetchall()
    if seq > old and (not rows or rows[-1][0] != seq):
        return None  # the row of the current position must be among them
    return list(dict.fromkeys(str(item_id) for _, item_id in rows))


def _topic(connection: sqlite3.Connection, seq: int) -> str:
    (topic,) = connection.execute("SELECT topic FROM embeddings_queue WHERE seq_id = ?", (seq,)).fetchone()
    return str(topic)
