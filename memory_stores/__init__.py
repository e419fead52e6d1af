"""Store backends: the dict-backed reference store and Chroma.

Installed as ``ltm_agent.memory_stores``.

* :class:`InMemoryStore` - in process memory; the reference behaviour.
* :class:`ChromaStore` - Chroma (persistent directory, ephemeral or server).
"""

from __future__ import annotations

from ltm_agent.memory_stores.memory import InMemoryStore

__all__ = ["ChromaStore", "InMemoryStore"]


def __getattr__(name: str) -> object:
    # Chroma is heavy to import; load it only when ChromaStore is asked for.
    if name == "ChromaStore":
        from ltm_agent.memory_stores.chroma import ChromaStore

        return ChromaStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
