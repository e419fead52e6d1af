"""One embedded directory's Chroma system in this process: a gate to restart it, and a bound on its memory.

Chroma's embedded core keeps the HNSW index of every collection it has loaded
(a write or a dense query loads it) until the system stops: about 2 KB per item
at 384 dimensions, so a process that writes 100 namespaces of 20,000 items
holds 4 GB (measured: a plain loop of 12 namespaces of 20,000 items grew 40 MB
per namespace; with a restart every two namespaces it stayed under 640 MB).
Chroma's own cache bound (``hnsw_cache_size``) did not bound it. So the store
objects of a directory share an :class:`IndexGate` that counts the items of the
collections loaded since the system last started and, past
:data:`MAX_RESIDENT_ITEMS`, stops and starts the system while no call of this
process is inside it (every index buffer goes; what an index had not written
is in Chroma's log and replays when it loads again). An erase uses the same
gate to scrub index files while the system is stopped
(:mod:`~ltm_agent.memory_stores.chroma.scrub`).

Core types: :class:`IndexGate`.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["LOADING_METHODS", "MAX_RESIDENT_ITEMS", "IndexGate", "gate_for"]

MAX_RESIDENT_ITEMS = 400_000
"""Items of loaded collections above which the embedded system restarts (about 0.8 GB of HNSW
indexes at 384 dimensions); ``ChromaStore.persistent(max_resident_items=...)`` changes it."""

LOADING_METHODS = frozenset({"query", "upsert", "add", "update", "delete"})
"""Collection calls that load its HNSW index into Chroma's memory (``get`` and ``count`` read SQLite)."""


class IndexGate:
    """A reader-writer gate over one embedded directory's Chroma system in this process.

    Every Chroma call of the directory's store objects passes :meth:`shared`; a
    restart (the memory bound, or an erase, which scrubs the files while the
    system is stopped) takes :meth:`exclusive`, so no call is inside Chroma
    while its system stops and starts. A waiting restart holds back new calls.
    It also counts the items of the collections loaded since the last start
    (:meth:`loads`).
    """

    def __init__(self, max_resident_items: int | None = MAX_RESIDENT_ITEMS) -> None:
        self.max_resident_items = max_resident_items
        self._resident: dict[str, int] = {}  # collection id -> items, for collections loaded since the start
        self._kept: str | None = None  # the collection the last restart was made for (not counted)
        self._cond = threading.Condition()
        self._depth = threading.local()  # a thread already inside passes again (no self-deadlock)
        self._inside = 0
        self._restarting = False
        self._waiting = 0
        self.holders = 0
        self.erased = False
        """True once a namespace was erased here: the last close scrubs every index file again."""

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        with self._cond:
            while depth == 0 and (self._restarting or self._waiting):
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

    def held_here(self) -> bool:
        """Whether this thread is inside a call (it must not wait for :meth:`exclusive`)."""
        return getattr(self._depth, "n", 0) > 0

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if self.held_here():
            raise RuntimeError("a thread inside a Chroma call cannot restart the system it is in")
        with self._cond:
            self._waiting += 1
            try:
                while self._restarting or self._inside:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._restarting = True
        try:
            yield
        finally:
            with self._cond:
                self._restarting = False
                self._cond.notify_all()

    def loads(self, collection: str, items: Callable[[], int], added: int = 0) -> bool:
        """Note a call that loads ``collection``'s index; True when the loaded items pass the bound.

        ``items`` counts the collection's items (asked once per collection per start);
        ``added`` is what the call writes. The caller then restarts the system
        (:meth:`restarted`) before the call. The collection kept through the last
        restart does not count, so a namespace larger than the bound is reloaded
        only after the bound's worth of other namespaces were (never after each
        switch), and one namespace alone never restarts anything.
        """
        if self.max_resident_items is None:
            return False
        with self._cond:
            known = collection in self._resident
        size = 0 if known else items()
        with self._cond:
            self._resident[collection] = self._resident.get(collection, size) + added
            others = sum(n for key, n in self._resident.items() if key != self._kept)
            return len(self._resident) > 1 and others > self.max_resident_items

    def restarted(self, keep: str | None = None) -> None:
        """The system restarted: nothing is loaded (but ``keep``, which the next call loads)."""
        with self._cond:
            kept = self._resident.get(keep) if keep is not None else None
            self._resident = {keep: kept} if keep is not None and kept is not None else {}
            self._kept = keep if kept is not None else None


_gates: dict[str, IndexGate] = {}
_gates_lock = threading.Lock()


def gate_for(root: Path, max_resident_items: int | None = MAX_RESIDENT_ITEMS) -> tuple[IndexGate, Callable[[], bool]]:
    """The gate of an embedded directory in this process, and its release (True for the last holder).

    The store objects of a directory share one gate; the bound is the one the first of them set.
    """
    key = f"{os.getpid()}:{root}"
    with _gates_lock:
        gate = _gates.setdefault(key, IndexGate(max_resident_items))
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
