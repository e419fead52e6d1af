"""Erasure in Chroma's HNSW files: zero what lies beyond their elements.

Chroma's embedded index (its fork of hnswlib, persistence version 1) creates a
collection's files by writing its whole freshly allocated, never zeroed buffers:
``data_level0.bin`` (capacity x element size) and ``length.bin`` (capacity x 4
bytes), and later writes only the elements it holds. The bytes past the header's
element count are therefore whatever the process's heap held when the index was
made, and that can be the text of a memory the process had just read, written or
deleted (chroma-core/chroma#7688; measured: a repeated delete script found a
deleted text in another collection's ``data_level0.bin`` within 2 to 8 trials).

Nothing reads those bytes (a loaded index knows its count), so zeroing them is
safe whenever no Chroma system has the directory open: hnswlib only writes the
header and the elements it holds, at their own offsets. :func:`scrub_index_files`
does that; :class:`IndexGate` lets a store stop its directory's Chroma system
while no call of this process is inside it. Core types: :class:`IndexGate`.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["IndexGate", "gate_for", "scrub_index_files"]

log = logging.getLogger(__name__)

PERSISTENCE_VERSION = 1
"""The only hnswlib persistence layout this module knows; folders of another are left alone."""
_HEADER = struct.Struct("<iQQQQQQiIQQQdQ")  # version, offsetLevel0, max_elements, count, size_per_element, ...
_CHUNK = 1 << 20


def scrub_index_files(root: Path) -> list[Path]:
    """Zero the unused tails of every HNSW index file under ``root``; returns the files rewritten.

    Only call it while no Chroma system has ``root`` open (it would rewrite
    elements it adds past the count this function read). A folder whose header
    is not the known layout, or whose sizes disagree with it, is left as it is
    (logged): a scrub never risks an index.

    Example:
        >>> import tempfile
        >>> scrub_index_files(Path(tempfile.mkdtemp()))
        []
    """
    changed: list[Path] = []
    for folder in sorted(root.iterdir()):
        header = folder / "header.bin"
        if not _is_segment(folder) or not header.is_file():
            continue
        used = _used_bytes(header)
        if used is None:
            log.warning("left %s alone: its header.bin is not hnswlib persistence version %d", folder, PERSISTENCE_VERSION)
            continue
        for name, keep in zip(("data_level0.bin", "length.bin"), used):
            path = folder / name
            if path.is_file() and _zero_from(path, keep):
                changed.append(path)
    return changed


def _is_segment(folder: Path) -> bool:
    try:
        uuid.UUID(folder.name)
    except ValueError:
        return False
    return folder.is_dir()


def _used_bytes(header: Path) -> tuple[int, int] | None:
    """Bytes of ``data_level0.bin`` and ``length.bin`` that hold elements, or None for an unknown header."""
    data = header.read_bytes()
    if len(data) < _HEADER.size:
        return None
    version, _offset, capacity, count, per_element, label_offset, data_offset, *_ = _HEADER.unpack_from(data)
    if version != PERSISTENCE_VERSION or count > capacity or not 0 < data_offset < label_offset < per_element:
        return None
    return count * per_element, count * 4


def _zero_from(path: Path, keep: int) -> bool:
    """Overwrite ``path`` with zeros from byte ``keep`` to its end; False when already zero."""
    size = path.stat().st_size
    if size <= keep:
        return False
    with open(path, "r+b") as file:
        file.seek(keep)
        dirty = False
        while chunk := file.read(_CHUNK):
            if chunk.count(0) != len(chunk):
                dirty = True
                break
        if not dirty:
            return False
        file.seek(keep)
        left = size - keep
        zeros = bytes(min(_CHUNK, left))
        while left:
            left -= file.write(zeros[: min(len(zeros), left)])
        file.flush()
        os.fsync(file.fileno())
    return True


class IndexGate:
    """A reader-writer gate over one embedded directory's Chroma system in this process.

    Every Chroma call of the directory's store objects passes :meth:`shared`;
    erasing takes :meth:`exclusive`, so it can stop the system (dropping every
    index buffer), scrub the files and start it again while no call is inside.
    Writers are preferred: a waiting erase holds back new calls.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._depth = threading.local()  # a thread already inside passes again (no self-deadlock)
        self._inside = 0
        self._erasing = False
        self._waiting = 0
        self.holders = 0
        self.erased = False
        """True once a namespace was erased here: the last close scrubs again (indexes made since may leak)."""

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        with self._cond:
            while depth == 0 and (self._erasing or self._waiting):
                self._cond.wait()
            self._inside += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            with self._cond:
                self._inside -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                while self._erasing or self._inside:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._erasing = True
        try:
            yield
        finally:
            with self._cond:
                self._erasing = False
                self._cond.notify_all()


_gates: dict[str, IndexGate] = {}
_gates_lock = threading.Lock()


def gate_for(root: Path) -> tuple[IndexGate, Callable[[], bool]]:
    """The gate of an embedded directory in this process, and its release (True for the last holder)."""
    key = f"{os.getpid()}:{root}"
    with _gates_lock:
        gate = _gates.setdefault(key, IndexGate())
        gate.holders += 1
    released = False

    def release() -> bool:
        nonlocal released
        with _gates_lock:
            if released:
                return False
            released = True
            gate.holders -= 1
            if gate.holders:
                return False
            _gates.pop(key, None)
            return True

    return gate, release
