"""The store interface: typed operations, two primitives, derived methods.

A backend implements :meth:`MemoryStore.batch` and :meth:`MemoryStore.abatch`;
everything else (``put/get/search/list/delete/count/list_namespaces`` and their
``a``-prefixed async twins) derives from them, as in LangGraph's ``BaseStore``.
Input validation lives here, shared by every backend and by sync and async.

Search has two modes: ``"dense"`` (embedding cosine similarity, score in
[-1, 1]) and ``"keyword"`` (BM25, score >= 0). Fusion of the two is a core
concern (:mod:`ltm_agent.retrieval`), not a store one.

Core types: :class:`MemoryStore`, the ops :class:`PutOp`, :class:`GetOp`,
:class:`SearchOp`, :class:`ListOp`, :class:`DeleteOp`, :class:`CountOp`,
:class:`ListNamespacesOp`, and :class:`StoreLimits`.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Sequence, Union

import numpy as np

from ltm_agent.embeddings import Embedder
from ltm_agent.errors import (
    EmptyTextError,
    InvalidInputError,
    InvalidTypeError,
    TextTooLargeError,
    UnsupportedOperationError,
    describe,
)
from ltm_agent.filters import Filter, validate_filter
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import ScoredItem, StoredItem

__all__ = [
    "CountOp",
    "DeleteOp",
    "GetOp",
    "ListNamespacesOp",
    "ListOp",
    "MemoryStore",
    "Op",
    "PutOp",
    "SearchMode",
    "SearchOp",
    "StoreLimits",
    "require_unicode",
    "validate_text",
]

SearchMode = Literal["dense", "keyword"]


class PutOp(NamedTuple):
    """Write one item (insert, or replace the item with the same id).

    ``created_at`` of a replaced item is kept.
    """

    item: StoredItem
    """The item; its namespace decides where it goes."""


class GetOp(NamedTuple):
    """Read items by id; missing ids come back as ``None``."""

    namespace: Namespace
    """Namespace to read from (exactly this one)."""
    ids: tuple[str, ...]
    """Ids to read, results in the same order."""


class SearchOp(NamedTuple):
    """Rank the items of one namespace against a query."""

    namespace: Namespace
    """Namespace to search (exactly this one)."""
    query: str
    """Query text."""
    mode: SearchMode = "dense"
    """``"dense"`` (embedding cosine) or ``"keyword"`` (BM25)."""
    filter: Filter | None = None
    """Metadata filter (see :mod:`ltm_agent.filters`)."""
    limit: int = 10
    """Maximum number of results."""
    offset: int = 0
    """Number of top results to skip."""
    vector: Sequence[float] | None = None
    """Dense only: rank by this vector (in the store embedder's space) instead of embedding ``query``."""
    with_vectors: bool = False
    """Dense only: return each item with its index vector in ``item.vector``."""
    group_by: str | None = None
    """Keyword only: rank the groups of items that share this metadata field's value, each
    group as one BM25 document (its members' text together), and return each group as its
    best-matching member, scored with the group's score (``"session_id"``: whole sessions)."""


class ListOp(NamedTuple):
    """List the items of one namespace, ordered by id."""

    namespace: Namespace
    """Namespace to list (exactly this one)."""
    filter: Filter | None = None
    """Metadata filter."""
    limit: int | None = None
    """Maximum number of items, ``None`` for all."""
    offset: int = 0
    """Number of items to skip."""
    with_vectors: bool = False
    """Return each item with its index vector in ``item.vector`` (stores with an embedder)."""


class DeleteOp(NamedTuple):
    """Delete items by id, or the whole namespace when ``ids`` is ``None``."""

    namespace: Namespace
    """Namespace to delete from."""
    ids: tuple[str, ...] | None = None
    """Ids to delete; ``None`` deletes every item of the namespace."""


class CountOp(NamedTuple):
    """Count the items of one namespace."""

    namespace: Namespace


class ListNamespacesOp(NamedTuple):
    """List namespaces that hold items, optionally under a prefix."""

    prefix: Namespace = ()
    """Only namespaces starting with these labels."""
    limit: int = 100
    offset: int = 0


Op = Union[PutOp, GetOp, SearchOp, ListOp, DeleteOp, CountOp, ListNamespacesOp]
Result = Any


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """Size rules every store enforces before writing.

    Attributes:
        max_text_chars: Longest text (and index key) accepted; longer text
            raises :class:`TextTooLargeError` (callers chunk it first).
        max_batch: Most items in one put batch.
    """

    max_text_chars: int = 100_000
    max_batch: int = 10_000


def validate_text(text: object, *, limits: StoreLimits, what: str = "text") -> str:
    """Check that ``text`` is a non-empty str within the size limit."""
    if not isinstance(text, str):
        raise InvalidTypeError(f"{what} must be str, got {describe(text)}; decode bytes first")
    if not text.strip():
        raise EmptyTextError(f"{what} is empty or only whitespace; skip it or write some content")
    if len(text) > limits.max_text_chars:
        raise TextTooLargeError(
            f"{what} has {len(text):,} characters, over the limit of {limits.max_text_chars:,}; "
            f"split it (ltm_agent.tokens.chunk_text) or raise StoreLimits.max_text_chars"
        )
    if "\x00" in text:
        raise InvalidInputError(f"{what} contains a NUL character; strip control characters first")
    require_unicode(text, what)
    return text


def require_unicode(text: str, what: str) -> str:
    """Refuse str that is not valid Unicode (lone surrogates such as ``"\\ud800"``).

    Such strings cannot be encoded as UTF-8, so no store, tokenizer or file
    can keep them; they come from decoding bytes with ``errors="surrogateescape"``
    or from broken JSON escapes.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid Unicode: a lone surrogate {text[exc.start]!r} at position {exc.start} "
            f"(in {describe(text)}); decode the bytes it came from with errors='replace'"
        ) from None
    return text


_I64 = (-(2**63), 2**63 - 1)


def _validate_metadata(item: StoredItem) -> None:
    if not isinstance(item.metadata, dict) and not hasattr(item.metadata, "items"):
        raise InvalidTypeError(f"metadata must be a dict, got {describe(item.metadata)}")
    for key, value in item.metadata.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"metadata keys must be non-empty str, got {describe(key)}")
        if key.startswith("_"):
            raise InvalidInputError(f"metadata key {key!r} is reserved (keys starting with '_')")
        if key.startswith("chroma:"):
            raise InvalidInputError(f"metadata key {key!r} is reserved (prefix 'chroma:'); rename it")
        require_unicode(key, "a metadata key")
        if isinstance(value, str):
            require_unicode(value, f"metadata {key!r}")
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidTypeError(
                f"metadata {key!r} must be a flat scalar (str, int, float, bool), got "
                f"{describe(value)}; serialise structure with json.dumps"
            )
        # Chroma silently drops or converts these; refuse them for every backend.
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(
                f"metadata {key!r} is {value!r}; stores cannot keep NaN or infinity, store a finite float or a str"
            )
        if isinstance(value, int) and not isinstance(value, bool) and not _I64[0] <= value <= _I64[1]:
            raise InvalidInputError(f"metadata {key!r} = {value} does not fit in 64 bits; store it as str")


def _filter_unicode(value: object) -> None:
    """Every str in a filter must be valid Unicode (Chroma answers "Invalid where clause" otherwise)."""
    if isinstance(value, str):
        require_unicode(value, "a filter value")
    elif isinstance(value, dict):
        for key, inner in value.items():
            _filter_unicode(key)
            _filter_unicode(inner)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for inner in value:
            _filter_unicode(inner)


def _validate_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise InvalidInputError(f"ids must be non-empty str of at most 256 characters, got {describe(value)}")
    return require_unicode(value, "an id")


def _validate_page(limit: int | None, offset: int) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"limit must be a non-negative int, got {describe(limit)}")
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInputError(f"offset must be a non-negative int, got {describe(offset)}")


class MemoryStore(ABC):
    """Abstract store: implement ``batch``/``abatch``, get everything else.

    Every operation is scoped to one namespace (listing to a prefix); there is
    no call that reads across tenants. Subclasses call :meth:`validate_ops`
    before touching storage, so a bad batch changes nothing.
    """

    limits: StoreLimits = StoreLimits()
    embedder_name: str = ""
    embedder: Embedder | None = None
    """The embedder that computes this store's vectors (``None`` for stores without dense search)."""
    shared: bool = False
    """Whether other processes may write this store at the same time (a store behind a server).

    Live writes (:meth:`~ltm_agent.timeline.EpisodicTimeline.add_turn`) then claim
    each turn's position with a read-back; writers of an unshared store all live
    in this process and take turns on a lock instead.
    """

    @property
    def write_domain(self) -> object:
        """What identifies this store's data in this process: store objects of one directory share it.

        Writers of one session in one domain take turns on one in-process lock.
        """
        return self

    # -- primitives -------------------------------------------------------

    @abstractmethod
    def batch(self, ops: Sequence[Op]) -> list[Result]:
        """Run operations in order and return one result per op."""

    @abstractmethod
    async def abatch(self, ops: Sequence[Op]) -> list[Result]:
        """Async twin of :meth:`batch`."""

    def close(self) -> None:
        """Release resources; the default does nothing."""

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- validation shared by every backend ------------------------------

    def validate_ops(self, ops: Sequence[Op]) -> list[Op]:
        """Validate every op before any is run; return them normalised."""
        checked: list[Op] = []
        puts = 0
        for op in ops:
            if isinstance(op, PutOp):
                puts += 1
                item = op.item
                if not isinstance(item, StoredItem):
                    raise InvalidTypeError(f"PutOp.item must be a StoredItem, got {describe(item)}")
                validate_namespace(item.namespace)
                _validate_id(item.id)
                validate_text(item.text, limits=self.limits)
                if item.key is not None:
                    validate_text(item.key, limits=self.limits, what="index key")
                _validate_metadata(item)
                checked.append(op)
            elif isinstance(op, GetOp):
                ids = tuple(_validate_id(i) for i in op.ids)
                checked.append(op._replace(namespace=validate_namespace(op.namespace), ids=ids))
            elif isinstance(op, SearchOp):
                if op.mode not in ("dense", "keyword"):
                    raise InvalidInputError(f"search mode must be 'dense' or 'keyword', got {op.mode!r}")
                validate_text(op.query, limits=self.limits, what="query")
                validate_filter(op.filter)
                _filter_unicode(op.filter)
                _validate_page(op.limit, op.offset)
                if op.group_by is not None and (op.mode != "keyword" or not isinstance(op.group_by, str) or not op.group_by):
                    raise InvalidInputError(
                        f"SearchOp.group_by must be a metadata field name and needs mode 'keyword'; "
                        f"got group_by={describe(op.group_by)} with mode {op.mode!r}"
                    )
                vector = None if op.vector is None else self._query_vector(op)
                checked.append(op._replace(namespace=validate_namespace(op.namespace), vector=vector))
            elif isinstance(op, ListOp):
                validate_filter(op.filter)
                _filter_unicode(op.filter)
                _validate_page(op.limit, op.offset)
                checked.append(op._replace(namespace=validate_namespace(op.namespace)))
            elif isinstance(op, DeleteOp):
                ids = None if op.ids is None else tuple(_validate_id(i) for i in op.ids)
                checked.append(op._replace(namespace=validate_namespace(op.namespace), ids=ids))
            elif isinstance(op, CountOp):
                checked.append(op._replace(namespace=validate_namespace(op.namespace)))
            elif isinstance(op, ListNamespacesOp):
                _validate_page(op.limit, op.offset)
                checked.append(op._replace(prefix=validate_namespace(op.prefix, allow_empty=True)))
            else:
                raise InvalidTypeError(f"unknown store operation {describe(op)}")
        if puts > self.limits.max_batch:
            raise InvalidInputError(
                f"{puts} puts in one batch, over the limit of {self.limits.max_batch}; split the batch"
            )
        return checked

    def _query_vector(self, op: SearchOp) -> np.ndarray:
        if op.mode != "dense":
            raise InvalidInputError("a query vector only applies to dense search")
        if self.embedder is None:
            raise UnsupportedOperationError(f"{type(self).__name__} has no embedder; it cannot search by vector")
        try:
            vector = np.asarray(op.vector, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidTypeError(f"SearchOp.vector must be a sequence of floats, got {describe(op.vector)}") from exc
        if vector.shape != (self.embedder.dimension,) or not np.all(np.isfinite(vector)):
            raise InvalidInputError(
                f"query vector of shape {vector.shape}; this store's embedder {self.embedder.name!r} makes "
                f"finite vectors of length {self.embedder.dimension}"
            )
        return vector

    def vectors_for(self, items: Sequence[StoredItem]) -> np.ndarray:
        """Index vectors of items: their own ``vector`` when set, else one embedder call for the rest."""
        if self.embedder is None:
            raise UnsupportedOperationError(f"{type(self).__name__} has no embedder; it cannot index vectors")
        dimension = self.embedder.dimension
        out = np.zeros((len(items), dimension), dtype=np.float32)
        missing = [i for i, item in enumerate(items) if item.vector is None]
        if missing:
            out[missing] = self.embedder.embed([items[i].index_text for i in missing])
        for i, item in enumerate(items):
            if item.vector is not None:
                vector = np.asarray(item.vector, dtype=np.float32)
                if vector.shape != (dimension,) or not np.all(np.isfinite(vector)):
                    raise InvalidInputError(
                        f"item {item.id!r} carries a vector of shape {vector.shape}; this store's embedder "
                        f"{self.embedder.name!r} makes finite vectors of length {dimension}"
                    )
                out[i] = vector
        return out

    # -- derived sync API -------------------------------------------------

    def put(self, items: Sequence[StoredItem]) -> None:
        """Write items (all validated first; nothing is written if one is bad)."""
        self.batch([PutOp(item) for item in items])

    def get(self, namespace: Namespace, ids: Sequence[str]) -> list[StoredItem | None]:
        """Read items by id from one namespace."""
        return self.batch([GetOp(tuple(namespace), tuple(ids))])[0]

    def search(
        self,
        namespace: Namespace,
        query: str,
        *,
        mode: SearchMode = "dense",
        filter: Filter | None = None,
        limit: int = 10,
        offset: int = 0,
        vector: Sequence[float] | None = None,
        with_vectors: bool = False,
        group_by: str | None = None,
    ) -> list[ScoredItem]:
        """Rank the items of one namespace against ``query`` (see :class:`SearchOp` for
        ``vector``, ``with_vectors`` and ``group_by``)."""
        op = SearchOp(tuple(namespace), query, mode, filter, limit, offset, vector, with_vectors, group_by)
        return self.batch([op])[0]

    def list(
        self,
        namespace: Namespace,
        *,
        filter: Filter | None = None,
        limit: int | None = None,
        offset: int = 0,
        with_vectors: bool = False,
    ) -> list[StoredItem]:
        """List the items of one namespace ordered by id (with their index vectors when asked)."""
        return self.batch([ListOp(tuple(namespace), filter, limit, offset, with_vectors)])[0]

    def delete(self, namespace: Namespace, ids: Sequence[str] | None = None) -> int:
        """Delete items (or the whole namespace); return how many were removed."""
        return self.batch([DeleteOp(tuple(namespace), None if ids is None else tuple(ids))])[0]

    def count(self, namespace: Namespace) -> int:
        """Number of items in one namespace."""
        return self.batch([CountOp(tuple(namespace))])[0]

    def list_namespaces(self, prefix: Namespace = (), *, limit: int = 100, offset: int = 0) -> list[Namespace]:
        """Namespaces holding items, sorted, optionally under ``prefix``."""
        return self.batch([ListNamespacesOp(tuple(prefix), limit, offset)])[0]

    def forget(self, prefix: Namespace) -> dict[Namespace, int]:
        """Delete every item under ``prefix``: the namespace itself and every namespace below it.

        Forgetting a tenant such as ``("user-42",)`` also removes ``("user-42", "c1")``
        and ``("user-42", "c2")``. The empty prefix (everything) is refused.

        Returns:
            Items removed per namespace (namespaces that held none are not listed).

        Example:
            >>> from ltm_agent.embeddings import HashingEmbedder
            >>> from ltm_agent.memory_stores import InMemoryStore
            >>> from ltm_agent.records import StoredItem
            >>> store = InMemoryStore(HashingEmbedder())
            >>> store.put([StoredItem(("user-42", "c1"), "a", "hi"), StoredItem(("user-42", "c2"), "b", "yo")])
            >>> store.forget(("user-42",))
            {('user-42', 'c1'): 1, ('user-42', 'c2'): 1}
        """
        prefix = validate_namespace(tuple(prefix))
        removed: dict[Namespace, int] = {}
        while found := [ns for ns in self.list_namespaces(prefix, limit=1000) if ns not in removed]:
            for namespace in found:  # a namespace that comes back empty-handed is not retried
                removed[namespace] = self.delete(namespace)
        return {ns: n for ns, n in removed.items() if n}

    def warm(self, namespace: Namespace) -> None:
        """Build the namespace's derived search structures now, so the next search does not pay for them.

        Bulk writers (:meth:`EpisodicTimeline.ingest`) call this once at the
        end. Stores without derived structures do nothing (the default).
        """
        validate_namespace(tuple(namespace))

    # -- derived async API ------------------------------------------------

    async def awarm(self, namespace: Namespace) -> None:
        """Async twin of :meth:`warm` (runs it in a worker thread)."""
        await asyncio.to_thread(self.warm, namespace)

    async def aput(self, items: Sequence[StoredItem]) -> None:
        await self.abatch([PutOp(item) for item in items])

    async def aget(self, namespace: Namespace, ids: Sequence[str]) -> list[StoredItem | None]:
        return (await self.abatch([GetOp(tuple(namespace), tuple(ids))]))[0]

    async def asearch(
        self,
        namespace: Namespace,
        query: str,
        *,
        mode: SearchMode = "dense",
        filter: Filter | None = None,
        limit: int = 10,
        offset: int = 0,
        vector: Sequence[float] | None = None,
        with_vectors: bool = False,
    ) -> list[ScoredItem]:
        op = SearchOp(tuple(namespace), query, mode, filter, limit, offset, vector, with_vectors)
        return (await self.abatch([op]))[0]

    async def alist(
        self,
        namespace: Namespace,
        *,
        filter: Filter | None = None,
        limit: int | None = None,
        offset: int = 0,
        with_vectors: bool = False,
    ) -> list[StoredItem]:
        return (await self.abatch([ListOp(tuple(namespace), filter, limit, offset, with_vectors)]))[0]

    async def adelete(self, namespace: Namespace, ids: Sequence[str] | None = None) -> int:
        return (await self.abatch([DeleteOp(tuple(namespace), None if ids is None else tuple(ids))]))[0]

    async def acount(self, namespace: Namespace) -> int:
        return (await self.abatch([CountOp(tuple(namespace))]))[0]

    async def alist_namespaces(
        self, prefix: Namespace = (), *, limit: int = 100, offset: int = 0
    ) -> list[Namespace]:
        return (await self.abatch([ListNamespacesOp(tuple(prefix), limit, offset)]))[0]

    async def aforget(self, prefix: Namespace) -> dict[Namespace, int]:
        """Async twin of :meth:`forget`."""
        prefix = validate_namespace(tuple(prefix))
        removed: dict[Namespace, int] = {}
        while found := [ns for ns in await self.alist_namespaces(prefix, limit=1000) if ns not in removed]:
            for namespace in found:
                removed[namespace] = await self.adelete(namespace)
        return {ns: n for ns, n in removed.items() if n}
