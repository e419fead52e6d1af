"""One process per embedded store directory: an advisory lock file.

Chroma's embedded ``PersistentClient`` keeps an in-process HNSW index and
caches per directory; a second process writing the same directory makes both
see stale or broken indexes (measured: ``InternalError: Error finding id`` on
keyword search, 1 of 41 items from dense search). ltm-agent refuses the second
opener instead: :func:`lock_store_dir` takes an exclusive ``flock`` on
``<dir>/ltm.lock`` for the life of the store and raises
:class:`~ltm_agent.errors.StoreInUseError` naming the server mode when another
process holds it. Several stores of one directory inside one process share the
lock (reference-counted). The operating system drops the lock when the process
dies, so a crash never leaves the directory locked. The file holds nothing
but the holder's pid.

Core types: :func:`lock_store_dir`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

from ltm_agent.errors import StoreInUseError

__all__ = ["LOCK_NAME", "lock_store_dir"]

LOCK_NAME = "ltm.lock"

_held: dict[str, tuple[int, int, int]] = {}  # path -> (fd, refcount, pid that took it)
_guard = threading.Lock()


def lock_store_dir(root: Path) -> Callable[[], None]:
    """Lock ``root`` for this process; return the function that releases this hold.

    Raises:
        StoreInUseError: Another process has the directory open.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; Chroma's own file locks are all there is
        return lambda: None
    key = str(root)
    with _guard:
        held = _held.get(key)
        if held is not None and held[2] == os.getpid():
            _held[key] = (held[0], held[1] + 1, held[2])
            return _releaser(key)
        # A fork inherits the parent's entry but must take a lock of its own.
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StoreInUseError(
                f"the store at {root} is open in another process{holder}; an embedded store serves one "
                f"process (two would corrupt each other's indexes): close the other process, or share the "
                f"directory through a server: `chroma run --path {root} --port 8000` and "
                f"ChromaStore.server('http://localhost:8000') in every process"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _held[key] = (fd, 1, os.getpid())
        return _releaser(key)


def _releaser(key: str) -> Callable[[], None]:
    done = False

    def release() -> None:
        nonlocal done
        with _guard:
            if done:
                return
            done = True
            fd, count, pid = _held[key]
            if count > 1:
                _held[key] = (fd, count - 1, pid)
                return
            del _held[key]
            os.close(fd)  # closing the last descriptor drops the flock

    return release


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
