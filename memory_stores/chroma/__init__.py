"""The Chroma backend: embedded (persistent or ephemeral) or a Chroma server, sync and async.

Modules: ``store`` (:class:`ChromaStore` and its factories), ``layout`` (collection names,
metadata encoding), ``ops`` (every operation written once as a plan of Chroma calls),
``driver`` (the sync and async drivers that run plans), ``connect`` (opening checks and error
translation), ``embedding_function`` (our offline MiniLM registered with Chroma by name).

Example:
    >>> from ltm_agent.memory_stores.chroma import ChromaStore
    >>> with ChromaStore.ephemeral() as store:  # doctest: +SKIP
    ...     store.count(("user-42",))
"""

from ltm_agent.memory_stores.chroma.store import ChromaStore

__all__ = ["ChromaStore"]
