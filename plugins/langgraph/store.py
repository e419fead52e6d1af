"""LangGraph's long-term memory store interface on an ltm-agent :class:`~ltm_agent.store.MemoryStore`.

:class:`LTMStore` is a :class:`langgraph.store.base.BaseStore`: pass it to
``graph.compile(store=...)`` (or ``create_react_agent(store=...)``) and use it
from nodes through ``get_store()`` or ``runtime.store``. It implements the two
primitives, ``batch`` and ``abatch``; ``put/get/search/delete/list_namespaces``
and their ``a``-prefixed twins come from ``BaseStore``.

Behaviour follows LangGraph's stores:

* ``search(prefix, query=...)`` ranks items by cosine similarity of their
  embedded fields (the best field counts), across every namespace that starts
  with ``prefix``; without a query, results have ``score=None`` and come most
  recently updated first.
* ``index`` config: ``fields`` (JSON paths to embed, default ``["$"]``, the
  whole value), ``embed`` (any LangChain ``Embeddings``, a sync function
  ``list[str] -> list[list[float]]``, an ltm-agent ``Embedder``, or a
  ``"provider:model"`` string when ``langchain`` is installed) and ``dims``.
  Without ``embed`` the offline MiniLM model embeds.
* ``put(..., index=False)`` stores an item without embedding it. As in
  LangGraph's ``InMemoryStore`` (the store users most often start from), a
  query search returns such items after the scored ones, with ``score=None``,
  when the page has room; ``get``, ``list_namespaces`` and query-less
  ``search`` see them as any other item.
* ``index_config`` keeps the ``index`` given to a factory as LangGraph's stores
  keep it, ``embed`` included.
* Namespaces live under a reserved root label, apart from the namespaces the
  core API and the memory nodes write (see :mod:`ltm_agent.plugins.langgraph._codec`);
  a LangGraph namespace holds at most 7 labels.
* Filters: equality (nested dicts compared structurally) and
  ``$eq $ne $gt $gte $lt $lte``, as LangGraph's ``InMemoryStore``.
* Updates keep ``created_at``. In one batch, reads see the state before the
  batch's writes, and the last write to a key wins (as LangGraph's stores).
* TTL is not supported (``supports_ttl = False``).

The layout of items in the underlying store is described in
:mod:`ltm_agent.plugins.langgraph._codec`.

Core types: :class:`LTMStore`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)

from ltm_agent.embeddings import Embedder
from ltm_agent.errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError, describe
from ltm_agent.namespaces import Namespace
from ltm_agent.plugins.langgraph import _codec as codec
from ltm_agent.plugins.langgraph._index import check_dims, embedder_from_index
from ltm_agent.plugins.langgraph._plan import Plan, arun_plan, run_plan
from ltm_agent.records import StoredItem
from ltm_agent.store import DeleteOp as StoreDeleteOp
from ltm_agent.store import GetOp as StoreGetOp
from ltm_agent.store import ListNamespacesOp as StoreListNamespacesOp
from ltm_agent.store import ListOp as StoreListOp
from ltm_agent.store import MemoryStore
from ltm_agent.store import Op as StoreOp
from ltm_agent.store import PutOp as StorePutOp
from ltm_agent.store import SearchOp as StoreSearchOp

__all__ = ["LTMStore", "embedder_from_index"]

_PAGE = 1000  # namespaces per listing call


class LTMStore(BaseStore):
    """LangGraph's ``BaseStore`` backed by an ltm-agent store (Chroma or in-memory).

    Args:
        store: The ltm-agent store that holds the items; it owns the embedder.
        index: LangGraph index config. Here only ``fields`` (default ``["$"]``)
            and ``dims`` (checked against the store's embedder) apply: the
            store already embeds, so ``embed`` is refused; use
            :meth:`memory` or :meth:`chroma` to choose an embedder.

    Example:
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> store = LTMStore.memory(index={"embed": HashingEmbedder(64), "fields": ["text"]})
        >>> store.put(("user-1", "memories"), "m1", {"text": "I moved to Lisbon in May"})
        >>> store.put(("user-1", "memories"), "m2", {"text": "My cat is called Miso"})
        >>> [hit.key for hit in store.search(("user-1",), query="where do I live? Lisbon", limit=1)]
        ['m1']
        >>> store.get(("user-1", "memories"), "m2").value
        {'text': 'My cat is called Miso'}
    """

    supports_ttl = False

    def __init__(self, store: MemoryStore, *, index: IndexConfig | None = None) -> None:
        if not isinstance(store, MemoryStore):
            raise InvalidTypeError(
                f"LTMStore wraps an ltm_agent MemoryStore, got {describe(store)}; "
                f"use LTMStore.memory() or LTMStore.chroma(path)"
            )
        config: dict[str, Any] = dict(index or {})
        own = getattr(store, "embedder", None)
        if config.get("embed") is not None and config["embed"] is not own:
            raise InvalidInputError(
                "LTMStore(store, index=...) cannot change the embedder of an open store (it embeds with "
                f"{store.embedder_name!r}); open the store with embedder=..., or call "
                "LTMStore.memory(index=...) / LTMStore.chroma(path, index=...)"
            )
        if isinstance(own, Embedder):
            check_dims(own, config.get("dims"))
        fields = config.get("fields") or ["$"]
        if isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields):
            raise InvalidInputError(f"index['fields'] must be a list of JSON paths, got {describe(fields)}")
        config["fields"] = list(fields)
        self.store = store
        self.index_config: dict[str, Any] = config
        self._paths = codec.tokenize_fields(config["fields"])
        self._owns_store = False  # set by the factories, which open the store themselves

    # -- factories --------------------------------------------------------

    @classmethod
    def memory(cls, *, index: IndexConfig | None = None) -> LTMStore:
        """An ``LTMStore`` on the in-process reference store (nothing persisted).

        ``index["embed"]`` chooses the embedder (default: offline MiniLM).
        """
        from ltm_agent.memory_stores import InMemoryStore

        embedder = embedder_from_index(index)
        rest = {k: v for k, v in (index or {}).items() if k != "embed"}
        return cls._owning(InMemoryStore(embedder), rest, index)

    @classmethod
    def chroma(cls, path: str | Path | None = None, *, index: IndexConfig | None = None) -> LTMStore:
        """An ``LTMStore`` on Chroma: a persistent directory, or ephemeral when ``path`` is ``None``.

        For a Chroma server, open ``ChromaStore.server(url, embedder=...)`` and
        pass it to ``LTMStore(store)``. :meth:`close` closes the Chroma store.
        """
        from ltm_agent.memory_stores import ChromaStore

        embedder = embedder_from_index(index)
        rest = {k: v for k, v in (index or {}).items() if k != "embed"}
        opened = (
            ChromaStore.ephemeral(embedder=embedder)
            if path is None
            else ChromaStore.persistent(path, embedder=embedder)
        )
        return cls._owning(opened, rest, index)

    @classmethod
    def _owning(cls, store: MemoryStore, index: dict[str, Any], given: IndexConfig | None) -> LTMStore:
        wrapped = cls(store, index=index)  # type: ignore[arg-type]
        if given and given.get("embed") is not None:
            wrapped.index_config["embed"] = given["embed"]  # kept as given, as LangGraph's stores keep it
        wrapped._owns_store = True
        return wrapped

    def close(self) -> None:
        """Close the underlying store when a factory opened it."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> LTMStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- primitives -------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run LangGraph operations; reads see the state before this batch's writes."""
        return run_plan(self.store, self._plan(list(ops)))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async twin of :meth:`batch`."""
        return await arun_plan(self.store, self._plan(list(ops)))

    # -- the plan ---------------------------------------------------------

    def _plan(self, ops: list[Op]) -> Plan[list[Result]]:
        writes = self._prepare(ops)  # every op is checked before anything runs
        results: list[Result] = [None] * len(ops)
        # A namespace deeper than any put accepts holds nothing: such a get is None.
        gets = [
            (i, op) for i, op in enumerate(ops) if isinstance(op, GetOp) and len(op.namespace) <= codec.MAX_LG_DEPTH
        ]
        if gets:
            found = yield [StoreGetOp(codec.encode_namespace(g.namespace), (codec.doc_id(g.key),)) for _, g in gets]
            for (i, get), (stored,) in zip(gets, found):
                results[i] = _to_item(stored, get.namespace) if _is_doc(stored) else None
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[i] = yield from self._search(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self._list_namespaces(op)
        if writes:
            yield from self._write(writes)
        return results

    def _prepare(self, ops: list[Op]) -> dict[tuple[Namespace, str], tuple[PutOp, codec.DocRecord | None]]:
        writes: dict[tuple[Namespace, str], tuple[PutOp, codec.DocRecord | None]] = {}
        for op in ops:
            if not isinstance(op, (GetOp, SearchOp, ListNamespacesOp, PutOp)):
                raise InvalidTypeError(f"unknown LangGraph store operation {describe(op)}")
            validate_op_namespace(op)
            if isinstance(op, SearchOp):
                codec.compile_filter(op.filter)
                _check_page(op.limit, op.offset)
            elif isinstance(op, ListNamespacesOp):
                _check_page(op.limit, op.offset)
                if op.max_depth is not None and (not isinstance(op.max_depth, int) or op.max_depth < 1):
                    raise InvalidInputError(f"max_depth must be an int >= 1 or None, got {describe(op.max_depth)}")
            elif isinstance(op, GetOp):
                codec.doc_id(op.key)
            else:
                if not op.namespace:
                    raise InvalidInputError("a namespace needs at least one label, got ()")
                if op.ttl is not None:
                    raise UnsupportedOperationError(
                        "LTMStore does not support TTL (supports_ttl is False); put without ttl, "
                        "and delete items you no longer need with store.delete(namespace, key)"
                    )
                if op.value is None and len(op.namespace) > codec.MAX_LG_DEPTH:
                    continue  # deleting from a namespace no put could have written
                encoded = codec.encode_namespace(op.namespace)
                record = None
                if op.value is not None:
                    paths = (
                        None
                        if op.index is False
                        else (self._paths if op.index is None else codec.tokenize_fields(op.index))
                    )
                    record = codec.build_records(
                        encoded,
                        tuple(op.namespace),
                        op.key,
                        op.value,
                        paths,
                        max_text_chars=self.store.limits.max_text_chars,
                    )
                writes[(encoded, op.key)] = (op, record)
        return writes

    def _write(self, writes: dict[tuple[Namespace, str], tuple[PutOp, codec.DocRecord | None]]) -> Plan[None]:
        keys = list(writes)
        previous = yield [StoreGetOp(ns, (codec.doc_id(key),)) for ns, key in keys]
        ops: list[StoreOp] = []
        for (ns, key), (stored,) in zip(keys, previous):
            record = writes[(ns, key)][1]
            old = stored if _is_doc(stored) else None
            if record is None:
                if old is not None:
                    ops.append(StoreDeleteOp(ns, (old.id, *codec.stale_vector_ids(old, 0))))
                continue
            stale = codec.stale_vector_ids(old, len(record.vectors))
            if stale:
                ops.append(StoreDeleteOp(ns, stale))
            ops.extend(StorePutOp(item) for item in (record.doc, *record.vectors))
        if ops:
            yield ops

    # -- search -------------------------------------------------------------

    def _namespaces_under(self, prefix: tuple[str, ...]) -> Plan[list[Namespace]]:
        if len(prefix) > codec.MAX_LG_DEPTH:
            return []
        encoded = codec.encode_namespace(prefix)
        found: list[Namespace] = []
        while True:
            (page,) = yield [StoreListNamespacesOp(encoded, _PAGE, len(found))]
            found.extend(page)
            if len(page) < _PAGE:
                return found

    def _search(self, op: SearchOp) -> Plan[list[SearchItem]]:
        pushed = codec.compile_filter(op.filter)
        prefix = tuple(op.namespace_prefix)
        namespaces = yield from self._namespaces_under(prefix)
        need = op.offset + op.limit
        if not namespaces or op.limit == 0:
            return []
        if op.query:
            hits = yield from self._rank(namespaces, op.query, pushed, op.filter, need)
            hits.sort(key=lambda h: (-h[0], h[1].namespace, h[1].key))
            found = [_search_item(item, score) for score, item in hits[op.offset : need]]
            if len(found) < op.limit:
                # As LangGraph's InMemoryStore: items with nothing embedded (put with index=False,
                # or without the indexed fields) fill the rest of the page, unscored.
                lists = yield [StoreListOp(ns, filter={**pushed, "lg.role": "doc", "lg.vec": False}) for ns in namespaces]
                rest = sorted((_to_item(s) for got in lists for s in got), key=lambda it: (it.namespace, it.key))
                rest = [it for it in rest if it.namespace[: len(prefix)] == prefix and codec.matches(it.value, op.filter)]
                found += [_search_item(it, None) for it in rest[: op.limit - len(found)]]
            return found
        lists = yield [StoreListOp(ns, filter={**pushed, "lg.role": "doc"}) for ns in namespaces]
        items = [_to_item(s) for found in lists for s in found]
        kept = [it for it in items if it.namespace[: len(prefix)] == prefix and codec.matches(it.value, op.filter)]
        kept.sort(key=lambda it: (it.namespace, it.key))
        kept.sort(key=lambda it: it.updated_at, reverse=True)
        return [_search_item(it, None) for it in kept[op.offset : need]]

    def _rank(
        self, namespaces: list[Namespace], query: str, pushed: dict[str, Any], filter: dict[str, Any] | None, need: int
    ) -> Plan[list[tuple[float, Item]]]:
        """The best ``need`` (score, item) of each namespace, widening each search until it is certain."""
        where = {**pushed, "lg.vec": True}
        window = {ns: max(2 * need, 20) for ns in namespaces}
        done: list[tuple[float, Item]] = []
        while window:
            pending = list(window)
            rounds = yield [StoreSearchOp(ns, query, "dense", where, window[ns]) for ns in pending]
            owners = {
                (ns, hit.item.metadata["lg.owner"])
                for ns, hits in zip(pending, rounds)
                for hit in hits
                if hit.item.metadata.get("lg.role") == "vec"
            }
            docs = {
                (ns, hit.item.id): hit.item for ns, hits in zip(pending, rounds) for hit in hits if _is_doc(hit.item)
            }
            missing = [key for key in owners if key not in docs]
            if missing:
                fetched = yield [StoreGetOp(ns, (owner,)) for ns, owner in missing]
                docs.update({key: got for key, (got,) in zip(missing, fetched) if _is_doc(got)})
            for ns, hits in zip(pending, rounds):
                best: dict[str, float] = {}
                for hit in hits:  # ranked best first, so the first hit of an owner is its best
                    meta = hit.item.metadata
                    doc = docs.get((ns, str(meta.get("lg.owner"))))
                    if doc is not None and doc.metadata.get("lg.rev") == meta.get("lg.rev"):
                        best.setdefault(doc.id, hit.score)
                accepted = [(s, _to_item(docs[(ns, owner)])) for owner, s in best.items()]
                accepted = [(s, it) for s, it in accepted if codec.matches(it.value, filter)]
                if len(accepted) >= need or len(hits) < window[ns]:
                    done.extend(accepted[:need])
                    del window[ns]
                else:
                    window[ns] *= 4
        return done

    # -- namespaces -----------------------------------------------------------

    def _list_namespaces(self, op: ListNamespacesOp) -> Plan[list[tuple[str, ...]]]:
        literal: list[str] = []
        for condition in op.match_conditions or ():
            if condition.match_type == "prefix":
                for label in condition.path:
                    if label == "*":
                        break
                    literal.append(label)
                break
        encoded = yield from self._namespaces_under(tuple(literal))
        hashed = [ns for ns in encoded if codec.is_hashed(ns)]
        names = {ns: codec.decode_namespace(ns) for ns in encoded if not codec.is_hashed(ns)}
        if hashed:
            found = yield [StoreListOp(ns, filter={"lg.role": "doc"}, limit=1) for ns in hashed]
            names.update({ns: tuple(json.loads(str(f[0].metadata["lg.ns"]))) for ns, f in zip(hashed, found) if f})
        namespaces = [ns for ns in names.values() if ns is not None]
        conditions = op.match_conditions or ()
        namespaces = [ns for ns in namespaces if all(_does_match(c, ns) for c in conditions)]
        if op.max_depth is not None:
            namespaces = [ns[: op.max_depth] for ns in namespaces]
        return sorted(set(namespaces))[op.offset : op.offset + op.limit]


# ---------------------------------------------------------------------------
# Helpers


def _check_page(limit: object, offset: object) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInputError(f"{name} must be a non-negative int, got {describe(value)}")


def _is_doc(stored: StoredItem | None) -> bool:
    return stored is not None and stored.metadata.get("lg.role") == "doc"


def _to_item(stored: StoredItem, namespace: tuple[str, ...] | None = None) -> Item:
    meta = stored.metadata
    return Item(
        value=json.loads(stored.text),
        key=str(meta["lg.key"]),
        namespace=tuple(namespace) if namespace is not None else tuple(json.loads(str(meta["lg.ns"]))),
        created_at=stored.created_at,  # type: ignore[arg-type]
        updated_at=stored.updated_at,  # type: ignore[arg-type]
    )


def _search_item(item: Item, score: float | None) -> SearchItem:
    return SearchItem(item.namespace, item.key, item.value, item.created_at, item.updated_at, score)


def _does_match(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """LangGraph's namespace match: ``*`` matches any one label."""
    path = condition.path
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path))
    else:
        raise InvalidInputError(f"match_type must be 'prefix' or 'suffix', got {describe(condition.match_type)}")
    return all(p == "*" or label == p for label, p in pairs)
