"""The Chroma store: one collection per namespace, a registry, a BM25 side index.

Open a store with a factory, never the constructor:

* :meth:`ChromaStore.persistent` - a directory on disk (embedded, one process).
* :meth:`ChromaStore.ephemeral` - in memory, for tests and notebooks.
* :meth:`ChromaStore.server` - a Chroma server over HTTP (sync client).
* :meth:`ChromaStore.aserver` - the same with an async client, so ``abatch``
  awaits the network instead of borrowing a thread.

An embedded ``PersistentClient`` is single-process: several processes that
share memory must go through a Chroma server (``chroma run --path <dir>``).
Inside one process the store is thread-safe.

Core types: :class:`ChromaStore`.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from ltm_agent.embeddings import Embedder, MiniLMEmbedder
from ltm_agent.errors import InvalidInputError, LTMError, StoreError, describe
from ltm_agent.memory_stores.chroma import ops as ops_
from ltm_agent.memory_stores.chroma.connect import (
    check_bounds,
    check_store_dir,
    corrupt,
    drop_cached_system,
    erase_deleted,
    open_registry,
    parse_server_url,
    private_ephemeral_client,
    server_error,
    set_http_timeout,
    settings,
    within,
)
from ltm_agent.memory_stores.chroma.dirlock import lock_store_dir
from ltm_agent.memory_stores.chroma.driver import ChromaDriver
from ltm_agent.memory_stores.chroma.embedding_function import MiniLMEmbeddingFunction  # registers it with Chroma
from ltm_agent.memory_stores.chroma.gate import MAX_RESIDENT_ITEMS, IndexGate, gate_for
from ltm_agent.memory_stores.chroma.ops import Step
from ltm_agent.memory_stores.chroma.scrub import scrub_index_files, zero_new_allocations
from ltm_agent.memory_stores.chroma.sideindex import SideCache, shared_cache
from ltm_agent.namespaces import Namespace
from ltm_agent.records import StoredItem
from ltm_agent.store import (
    CountOp,
    DeleteOp,
    GetOp,
    ListNamespacesOp,
    ListOp,
    MemoryStore,
    Op,
    PutOp,
    Result,
    SearchOp,
)

__all__ = ["ChromaStore"]

class _Unit(NamedTuple):
    make: Callable[[], Step]
    slot: int | None  # where its result goes; None for puts (their result is None)



class _Domain:
    """The identity of one store directory's data in this process (see ``write_domain``)."""

    __slots__ = ("__weakref__", "path")

    def __init__(self, path: str) -> None:
        self.path = path


_DOMAINS: dict[str, _Domain] = {}
_DOMAINS_LOCK = threading.Lock()


def _directory_domain(root: Path) -> _Domain:
    with _DOMAINS_LOCK:
        return _DOMAINS.setdefault(str(root), _Domain(str(root)))


class ChromaStore(ChromaDriver, MemoryStore):
    """A :class:`~ltm_agent.store.MemoryStore` on Chroma.

    Vectors are computed by the store's embedder (one ``embed`` call per
    batch of puts) and handed to Chroma; collections use cosine space, so a
    dense score is ``1 - cosine distance``. Keyword search runs BM25 over an
    in-process side index per namespace
    (:mod:`~ltm_agent.memory_stores.chroma.sideindex`): this object's own
    writes update it in place, and other writers' changes are found in Chroma
    itself (records carry their write time and writer), so it is consistent
    after a crash, a restart and across clients of one server.

    Puts to one namespace in one batch are a single Chroma upsert, which is
    atomic up to Chroma's maximum batch size (``client.get_max_batch_size()``,
    5461 for embedded Chroma); a batch that fails validation writes nothing.

    Example:
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.records import StoredItem
        >>> with ChromaStore.ephemeral(embedder=HashingEmbedder()) as store:
        ...     store.put([StoredItem(("user-1",), "m1", "I moved to Lisbon in May")])
        ...     [hit.item.id for hit in store.search(("user-1",), "Lisbon", mode="keyword")]
        ['m1']
    """

    def __init__(
        self,
        client: Any,
        *,
        embedder: Embedder,
        location: str,
        async_client: Any = None,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        """Wrap opened clients; use the factories, which also check the store."""
        self.embedder = embedder
        self.embedder_name = embedder.name
        self.location = location
        self._client = client
        self._async_client = async_client
        self._cleanup = cleanup
        self._unlock: Callable[[], None] | None = None  # the directory lock, released after the client
        self.timeout: float | None = None
        self._root: Path | None = None  # the directory of a persistent store
        self._domain: object = self  # see write_domain
        self.retries = 0
        self._registry: Any = None
        self._aregistry: Any = None
        self._handles: dict[Namespace, Any] = {}
        self._ahandles: dict[Namespace, Any] = {}
        self._keyword = SideCache()  # a server has other writers: the side index syncs before reads
        self._release_cache: Callable[[], None] | None = None
        self._gate: IndexGate | None = None
        self._release_gate: Callable[[], bool] | None = None
        self._writer = uuid.uuid4().hex[:16]  # stamps this object's records, so its side index knows them
        self._lock = threading.RLock()
        self._closed = False
        self._max_batch = 5461
        # Attached to MiniLM collections so they describe themselves to Chroma tools.
        self._ef: Any = None
        if isinstance(embedder, MiniLMEmbedder):
            self._ef = MiniLMEmbeddingFunction(batch_size=embedder.batch_size, max_length=embedder.max_length)

    @property
    def write_domain(self) -> object:
        """Store objects of one directory in this process share one domain (and live writers' locks)."""
        return self._domain

    # -- factories --------------------------------------------------------

    @classmethod
    def persistent(
        cls,
        path: str | Path = ".ltm",
        *,
        embedder: Embedder | None = None,
        max_resident_items: int | None = MAX_RESIDENT_ITEMS,
    ) -> ChromaStore:
        """Open (or create) a store in a directory, embedded in this process.

        Closing it saves each side index that changed as a snapshot in
        ``<path>/ltm-side/``, so the first query of a namespace in the next
        process loads a file instead of reading the namespace back
        (:mod:`~ltm_agent.memory_stores.chroma.snapshot`).

        Args:
            path: The store directory; created if missing. It must be new,
                empty, or a store ltm-agent wrote.
            embedder: Defaults to :class:`~ltm_agent.embeddings.MiniLMEmbedder`.
                Reopen a store with the embedder that wrote it.
            max_resident_items: Items of the namespaces whose vector indexes
                Chroma holds in memory, above which it drops them all (they
                load again when used; ``None``: never). Chroma's embedded core
                otherwise keeps every index it loaded, about 2 KB per item
                (:mod:`~ltm_agent.memory_stores.chroma.gate`). Store objects of
                one directory share the bound the first one set.

        Raises:
            CorruptStoreError: The path is a file, a non-Chroma directory, a
                corrupt database, or Chroma data of another application.
            StoreInUseError: Another process has the directory open (an
                embedded store serves one process; share one through
                ``chroma run --path <dir>`` and :meth:`server`).
            EmbedderMismatchError: The store was written with another embedder.

        Example:
            >>> import tempfile
            >>> from ltm_agent.embeddings import HashingEmbedder
            >>> with ChromaStore.persistent(tempfile.mkdtemp(), embedder=HashingEmbedder()) as store:
            ...     store.count(("user-1",))
            0
        """
        import chromadb

        bad_bound = isinstance(max_resident_items, bool) or not isinstance(max_resident_items, (int, type(None)))
        if bad_bound or (max_resident_items is not None and max_resident_items < 1):
            raise InvalidInputError(f"max_resident_items must be a positive int or None, got {describe(max_resident_items)}")
        embedder = embedder if embedder is not None else MiniLMEmbedder()
        root = Path(path).expanduser().resolve()
        check_store_dir(root)
        release = lock_store_dir(root)  # one process per directory: refuse a second one clearly
        try:
            client = chromadb.PersistentClient(path=str(root), settings=settings())
        except Exception as exc:
            release()
            drop_cached_system(str(root))
            raise corrupt(root, exc) from exc
        store = cls(client, embedder=embedder, location=str(root))
        store._unlock = release
        store._root = root
        # This process holds the directory: its store objects are the only writers, and share a side index.
        store._keyword, store._release_cache = shared_cache(str(root))
        store._domain = _directory_domain(root)
        store._gate, store._release_gate = gate_for(root, max_resident_items)
        store._open(lambda exc: corrupt(root, exc))
        return store

    @classmethod
    def ephemeral(cls, *, embedder: Embedder | None = None) -> ChromaStore:
        """An in-memory store that vanishes on :meth:`close` (each one is isolated).

        Chroma keeps one in-memory system per process under the name
        ``"ephemeral"``, and refuses a later ``chromadb.EphemeralClient()`` whose
        settings differ from the first one's (LangChain's and LlamaIndex's Chroma
        vector stores create such clients). So every ephemeral store runs a
        private Chroma system of its own, registered under a name of its own, and
        leaves the ``"ephemeral"`` slot as it found it.
        """
        embedder = embedder if embedder is not None else MiniLMEmbedder()
        client, key = private_ephemeral_client()
        store = cls(client, embedder=embedder, location=f"ephemeral store {key}")
        store._keyword = SideCache(exclusive=True)  # a private system: this object is its only writer
        store._open(lambda exc: StoreError(f"could not set up an ephemeral Chroma store: {exc}"))
        return store

    @classmethod
    def server(
        cls,
        url: str | None = None,
        *,
        host: str = "localhost",
        port: int = 8000,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        tenant: str | None = None,
        database: str | None = None,
        embedder: Embedder | None = None,
        timeout: float = 30.0,
        retries: int = 2,
    ) -> ChromaStore:
        """Connect to a Chroma server (``chroma run``); ``abatch`` runs ``batch`` in a thread.

        Every request is bounded: one that gets no answer within ``timeout``
        seconds, or cannot connect, is tried again up to ``retries`` times with
        exponential backoff (all requests the store sends are idempotent:
        reads, upserts, deletes by id), then fails with a
        :class:`~ltm_agent.errors.StoreConnectionError`, which is safe to retry.
        A frozen server therefore costs at most about
        ``(retries + 1) * timeout`` seconds per call, never a hang.

        Args:
            url: ``http://host:port`` or ``https://host:port``; overrides
                ``host``/``port``/``ssl``.
            headers: Extra HTTP headers (e.g. an auth token).
            tenant: Chroma tenant (default: Chroma's default tenant).
            database: Chroma database (default: Chroma's default database).
            embedder: Defaults to :class:`~ltm_agent.embeddings.MiniLMEmbedder`.
            timeout: Seconds per HTTP request (connect, read, write).
            retries: Extra tries of a request that could not reach the server (or met
                Chroma's transient "Error finding id").

        Raises:
            StoreConnectionError: The server cannot be reached or does not answer in time.

        Example:
            >>> store = ChromaStore.server("http://localhost:8000")  # doctest: +SKIP
        """
        embedder = embedder if embedder is not None else MiniLMEmbedder()
        timeout, retries = check_bounds(timeout, retries)
        client, location = cls._http_client(url, host, port, ssl, headers, tenant, database, timeout)
        store = cls(client, embedder=embedder, location=location)
        store.timeout, store.retries, store.shared = timeout, retries, True
        store._open(lambda exc: server_error(location, exc))
        return store

    @classmethod
    async def aserver(
        cls,
        url: str | None = None,
        *,
        host: str = "localhost",
        port: int = 8000,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        tenant: str | None = None,
        database: str | None = None,
        embedder: Embedder | None = None,
        timeout: float = 30.0,
        retries: int = 2,
    ) -> ChromaStore:
        """Like :meth:`server`, plus an async client: ``abatch`` is truly async.

        Sync calls keep working through a second, sync client.

        Example:
            >>> store = await ChromaStore.aserver("http://localhost:8000")  # doctest: +SKIP
        """
        import chromadb
        from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT

        embedder = embedder if embedder is not None else MiniLMEmbedder()
        timeout, retries = check_bounds(timeout, retries)
        client, location = await asyncio.to_thread(
            cls._http_client, url, host, port, ssl, headers, tenant, database, timeout
        )
        host, port, ssl = parse_server_url(url, host, port, ssl)
        try:
            async_client = await asyncio.wait_for(chromadb.AsyncHttpClient(
                host=host,
                port=port,
                ssl=ssl,
                headers=headers,
                tenant=tenant or DEFAULT_TENANT,
                database=database or DEFAULT_DATABASE,
                settings=settings(),
            ), timeout)
        except Exception as exc:
            client.close()
            raise server_error(location, exc, timeout) from exc
        store = cls(client, embedder=embedder, location=location, async_client=async_client)
        store.timeout, store.retries, store.shared = timeout, retries, True
        await asyncio.to_thread(store._open, lambda exc: server_error(location, exc))
        try:
            store._aregistry = await store._arun(lambda: open_registry(embedder, location))
        except Exception:
            store.close()
            raise
        return store

    @staticmethod
    def _http_client(
        url: str | None,
        host: str,
        port: int,
        ssl: bool,
        headers: dict[str, str] | None,
        tenant: str | None,
        database: str | None,
        timeout: float,
    ) -> tuple[Any, str]:
        import chromadb
        from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT

        host, port, ssl = parse_server_url(url, host, port, ssl)
        location = f"{'https' if ssl else 'http'}://{host}:{port}"

        def connect() -> Any:
            return chromadb.HttpClient(
                host=host,
                port=port,
                ssl=ssl,
                headers=headers,
                tenant=tenant or DEFAULT_TENANT,
                database=database or DEFAULT_DATABASE,
                settings=settings(),
            )

        try:
            # Chroma's client talks to the server while it is built, with no timeout of its own.
            client = within(connect, timeout)
        except Exception as exc:
            raise server_error(location, exc, timeout) from exc
        set_http_timeout(client, timeout)
        return client, location

    def _open(self, wrap: Callable[[Exception], LTMError]) -> None:
        """Check the registry (creating it in a new store); close and raise on failure."""
        try:
            self._max_batch = int(self._client.get_max_batch_size())
            self._registry = self._run(lambda: open_registry(self.embedder, self.location))
        except LTMError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise wrap(exc) from exc

    def _compact(self) -> None:
        """After a namespace was deleted: leave none of its bytes in any file of the directory.

        Chroma deletes a collection's rows but SQLite keeps their bytes in free
        pages, the collection's HNSW folder stays on disk, and other
        collections' HNSW files can hold stale process memory
        (:mod:`~ltm_agent.memory_stores.chroma.scrub`). So, while no Chroma call
        of this process is inside, the directory's Chroma system stops (its
        index buffers go; what they had not written is in Chroma's log), the
        folder goes, ``VACUUM`` runs and the index files are scrubbed; then the
        system starts again, with new heap blocks zero-filled from then on (index
        files created later start from zeros; :func:`~ltm_agent.memory_stores.chroma.scrub.zero_new_allocations`).
        A server's files are its operator's (see docs/stores.md).
        """
        root, gate = self._root, self._gate
        if root is None or gate is None:
            return

        def erase() -> None:
            erase_deleted(root)
            scrub_index_files(root)
            gate.erased = True
            zero_new_allocations()  # index files Chroma creates from now on start from zeros

        self._restart(erase)

    def close(self) -> None:
        """Release the clients; a persistent directory can then be reopened in this process."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._handles.clear()
            self._ahandles.clear()
            if self._release_cache is not None:
                self._release_cache()  # a shared side index is cleared by its last holder
            else:
                self._keyword.clear()
        try:
            if self._cleanup is not None:
                self._cleanup()
        finally:
            try:
                self._client.close()  # last client of a path stops its system and frees the cache
                if self._async_client is not None:
                    from chromadb.api.shared_system_client import SharedSystemClient

                    SharedSystemClient._identifier_to_system.pop(self._async_client._identifier, None)
            finally:
                try:
                    self._scrub_after_close()
                finally:
                    if self._unlock is not None:
                        self._unlock()

    def _scrub_after_close(self) -> None:
        """The last store object of a directory that erased something scrubs once more.

        Index files made after the erase (a new namespace) were written from
        buffers of a heap that had held the erased text.
        """
        if self._release_gate is None or self._gate is None or self._root is None:
            return
        from chromadb.api.shared_system_client import SharedSystemClient

        if self._release_gate() and self._gate.erased and self._client._identifier not in SharedSystemClient._identifier_to_system:
            scrub_index_files(self._root)

    # -- primitives -------------------------------------------------------

    def batch(self, ops: Sequence[Op]) -> list[Result]:
        """Run operations in order; a bad op anywhere means nothing runs."""
        checked = self._checked(ops)
        vectors = self._embed_puts(checked)
        results: list[Result] = [None] * len(checked)
        for unit in self._plan(checked, vectors):
            value = self._run(unit.make)
            if unit.slot is not None:
                results[unit.slot] = value
        return results

    def warm(self, namespace: Namespace) -> None:
        """Build the namespace's keyword side index now (when it is not current).

        A bulk ingest ends with this, so the first keyword search after it
        does not pay for reading the namespace back and indexing it.
        """
        checked = self._checked([CountOp(tuple(namespace))])[0].namespace
        self._run(lambda: ops_.warm(checked, self._keyword, self._writer))

    async def awarm(self, namespace: Namespace) -> None:
        """Async twin of :meth:`warm`."""
        if self._async_client is None:
            await asyncio.to_thread(self.warm, namespace)
            return
        checked = self._checked([CountOp(tuple(namespace))])[0].namespace
        await self._arun(lambda: ops_.warm(checked, self._keyword, self._writer))

    async def abatch(self, ops: Sequence[Op]) -> list[Result]:
        """Async twin of :meth:`batch`.

        On a store from :meth:`aserver` the I/O is awaited on Chroma's async
        client. Embedded stores (and :meth:`server`) have no async client, so
        this runs :meth:`batch` in a worker thread (``asyncio.to_thread``).
        """
        if self._async_client is None:
            return await asyncio.to_thread(self.batch, ops)
        checked = self._checked(ops)
        vectors = await asyncio.to_thread(self._embed_puts, checked)
        results: list[Result] = [None] * len(checked)
        for unit in self._plan(checked, vectors):
            value = await self._arun(unit.make)
            if unit.slot is not None:
                results[unit.slot] = value
        return results

    # -- planning (no I/O) ------------------------------------------------

    def _checked(self, ops: Sequence[Op]) -> list[Op]:
        if self._closed:
            raise StoreError(f"the store at {self.location} is closed; open it again with a ChromaStore factory")
        return self.validate_ops(ops)

    def _embed_puts(self, ops: Sequence[Op]) -> np.ndarray:
        return self.vectors_for([op.item for op in ops if isinstance(op, PutOp)])

    def _plan(self, ops: Sequence[Op], vectors: np.ndarray) -> list[_Unit]:
        """One unit per op, except that a run of puts becomes one upsert per namespace."""
        units: list[_Unit] = []
        synced: set[Namespace] = set()  # namespaces whose side index this batch already synced
        run: dict[Namespace, dict[str, tuple[StoredItem, np.ndarray]]] = {}
        row = 0

        def flush() -> None:
            for namespace, rows in run.items():
                items = [item for item, _ in rows.values()]
                matrix = np.stack([vector for _, vector in rows.values()])
                units.append(_Unit(self._put_maker(namespace, items, matrix), None))
            run.clear()

        for slot, op in enumerate(ops):
            if isinstance(op, PutOp):
                # The last write of an id in a run wins, as if the puts ran one by one.
                rows = run.setdefault(op.item.namespace, {})
                rows.pop(op.item.id, None)
                rows[op.item.id] = (op.item, vectors[row])
                row += 1
                continue
            flush()
            units.append(_Unit(self._op_maker(op, synced), slot))
        flush()
        return units

    def _put_maker(self, namespace: Namespace, items: list[StoredItem], matrix: np.ndarray) -> Callable[[], Step]:
        return lambda: ops_.put_namespace(namespace, items, matrix, self._max_batch, self._keyword, self._writer)

    def _op_maker(self, op: Op, synced: set[Namespace]) -> Callable[[], Step]:
        if isinstance(op, GetOp):
            return lambda: ops_.get(op)
        if isinstance(op, SearchOp):
            if op.mode == "keyword":
                return lambda: ops_.keyword_search(op, self._keyword, self._writer, synced)
            return lambda: ops_.dense_search(op, self._keyword, self._writer, synced)
        if isinstance(op, ListOp):
            return lambda: ops_.list_items(op)
        if isinstance(op, DeleteOp):
            return lambda: ops_.delete(op, self._keyword)
        if isinstance(op, CountOp):
            return lambda: ops_.count(op)
        if isinstance(op, ListNamespacesOp):
            return lambda: ops_.list_namespaces(op)
        raise AssertionError(f"unhandled op {op!r}")  # validate_ops rejects unknown ops
