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
timeout, two primary-key lookups), so they never take a write lock. One
caveat of two SQLite libraries in one process (Python's and Chroma's
bundled one): closing our connection drops the process's POSIX locks on the
file, which matters only to *another process* writing the directory at that
moment — the directory lock (:mod:`~ltm_agent.memory_stores.chroma.dirlock`)
already keeps those out.

Core types: :func:`write_position`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["DATABASE", "write_position"]

DATABASE = "chroma.sqlite3"
"""Chroma's SQLite file in an embedded store directory."""
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
    database = Path(root) / DATABASE
    try:
        inode = os.stat(database).st_ino
        # Never mode=rw, never immutable=1 (that would skip locking and read a half-written file).
        connection = sqlite3.connect(
            f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None
        )
    except (OSError, sqlite3.Error):
        return None
    try:
        return _position(connection, collection_id, inode)
    except (sqlite3.Error, ValueError, TypeError) as exc:
        log.debug("no write position for collection %s: %s: %s", collection_id, type(exc).__name__, exc)
        return None
    finally:
        connection.close()


def _position(connection: sqlite3.Connection, collection_id: str, inode: int) -> dict[str, Any] | None:
    # One read transaction: the segment's position and the row it names are read at the same instant.
    connection.execute("BEGIN")
    try:
        segments = connection.execute(
            "SELECT m.seq_id FROM segments s LEFT JOIN max_seq_id m ON m.segment_id = s.id "
            "WHERE s.collection = ? AND s.scope = 'METADATA'",
            (collection_id,),
        ).fetchall()
        if len(segments) != 1:
            return None
        (seq,) = segments[0]
        if seq is None:
            # Never written to: a first write sets it. An empty queue row set proves the same.
            return {"seq": None, "row": None, "inode": inode}
        if type(seq) is not int:  # older Chroma stored positions as BLOBs: not a format this proof knows
            return None
        row = connection.execute(
            "SELECT topic, id, operation, vector, encoding, metadata, created_at FROM embeddings_queue WHERE seq_id = ?",
            (seq,),
        ).fetchone()
    finally:
        connection.rollback()
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
    return {"seq": seq, "row": digest.hexdigest(), "inode": inode}
