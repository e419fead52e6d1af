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
does that; a store runs it while its directory's Chroma system is stopped
(:mod:`~ltm_agent.memory_stores.chroma.gate`), then :func:`zero_new_allocations`
makes the index files created afterwards start from zeros, and the last close of
the directory scrubs once more. Core functions: :func:`scrub_index_files`,
:func:`zero_new_allocations`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import sys
import uuid
from pathlib import Path

__all__ = ["scrub_index_files", "zero_new_allocations"]

log = logging.getLogger(__name__)

PERSISTENCE_VERSION = 1
"""The only hnswlib persistence layout this module knows; folders of another are left alone."""
_HEADER = struct.Struct("<iQQQQQQiIQQQdQ")  # version, offsetLevel0, max_elements, count, size_per_element, ...
_CHUNK = 1 << 20


def scrub_index_files(root: Path, folders: set[str] | None = None) -> list[Path]:
    """Zero the unused tails of the HNSW index files under ``root`` (of ``folders`` only, if given).

    Returns the files rewritten. Only call it while no Chroma system has
    ``root`` open (it would write elements past the count this function read).
    A folder whose header is not the known layout, or whose sizes disagree
    with it, is left as it is (logged): a scrub never risks an index.

    Example:
        >>> import tempfile
        >>> scrub_index_files(Path(tempfile.mkdtemp()))
        []
    """
    changed: list[Path] = []
    for folder in sorted(root.iterdir()):
        header = folder / "header.bin"
        if not _is_segment(folder) or not header.is_file() or (folders is not None and folder.name not in folders):
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


_M_PERTURB = -6  # glibc <malloc.h>


def zero_new_allocations() -> bool:
    """From now on, glibc fills this process's new heap blocks with zeros (and freed ones with 0xFF).

    The index files Chroma creates after an erase are written from fresh buffers; with this,
    those buffers hold zeros instead of whatever the heap held (the erased text among it).
    ``mallopt(M_PERTURB, 0xFF)``: documented glibc behaviour, a ``memset`` per allocation and
    per free of blocks past glibc's per-thread cache (about 1 KB; smaller ones are left as
    they are, which the scrub at the last close covers). Returns False where it is not
    available (not Linux/glibc); the scrubs still run.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_PERTURB, 0xFF))
    except (AttributeError, OSError):
        return False


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
