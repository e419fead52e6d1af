"""The I/O half of :class:`~ltm_agent.memory_stores.ChromaStore`: two drivers, one set of steps.

The operations in :mod:`ltm_agent.memory_stores.chroma.ops` yield requests;
:class:`ChromaDriver` answers them with the sync client (:meth:`ChromaDriver._run`)
or the async one (:meth:`ChromaDriver._arun`). Both share collection-handle
caching, embedder checks on every collection they open, and the translation of
Chroma failures: a deleted collection behind a cached handle reruns the unit
once with fresh handles; a lost server becomes
:class:`~ltm_agent.errors.StoreConnectionError`; anything else a
:class:`~ltm_agent.errors.StoreError`.

Core types: :class:`ChromaDriver`.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from contextlib import nullcontext
from typing import Any, Callable, ContextManager

from ltm_agent.embeddings import Embedder
from ltm_agent.errors import LTMError, StoreError
from ltm_agent.memory_stores.chroma.connect import check_embedder, connection_error, is_connection_error, is_retryable
from ltm_agent.memory_stores.chroma.gate import LOADING_METHODS, IndexGate
from ltm_agent.memory_stores.chroma.layout import collection_metadata, collection_name
from ltm_agent.memory_stores.chroma.ops import (
    CLIENT,
    MISSING,
    REGISTRY_HANDLE,
    Call,
    Compact,
    Embed,
    Forget,
    Open,
    Step,
)
from ltm_agent.memory_stores.chroma.sideindex import SideCache
from ltm_agent.namespaces import Namespace

__all__ = ["ChromaDriver"]

_HNSW = {"hnsw": {"space": "cosine"}}


class _Stale(Exception):
    """A cached collection handle points at a collection someone deleted."""


class ChromaDriver:
    """Runs operation steps against Chroma clients (base of ``ChromaStore``)."""

    embedder: Embedder
    location: str
    _client: Any
    _async_client: Any
    _registry: Any
    _aregistry: Any
    _handles: dict[Namespace, Any]
    _ahandles: dict[Namespace, Any]
    _keyword: SideCache
    _lock: threading.RLock
    _ef: Any
    _gate: IndexGate | None
    """An embedded directory's gate: Chroma calls pass it shared, an erase exclusive (None elsewhere)."""
    timeout: float | None
    """Seconds one server request may take before it counts as failed (``None``: embedded, no limit)."""
    retries: int
    """Extra tries of a request that failed to reach the server (every request we send is idempotent)."""

    # -- sync driver ------------------------------------------------------

    def _run(self, make: Callable[[], Step]) -> Any:
        for attempt in range(2):
            step, value = make(), None
            try:
                while True:
                    value = self._do(step.send(value))
            except StopIteration as done:
                return done.value
            except _Stale:
                step.close()
                if attempt:
                    raise StoreError(f"a collection in {self.location} keeps disappearing; retry later") from None
            except BaseException:
                step.close()  # now, not when the traceback goes: a failed write marks its side entry at once
                raise
        raise AssertionError("unreachable")

    def _inside(self) -> ContextManager[None]:
        return self._gate.shared() if self._gate is not None else nullcontext()

    def _restart(self, while_stopped: Callable[[], None] | None = None, keep: str | None = None) -> None:
        """Stop and start the embedded Chroma system while no call of this process is inside it.

        Every loaded index is dropped (what it had not written replays from Chroma's
        log when it loads again); ``while_stopped`` runs in between (an erase's scrub).
        See :mod:`~ltm_agent.memory_stores.chroma.gate`.
        """
        if self._gate is None:
            return
        with self._gate.exclusive():
            system = self._client._server
            system.stop()
            try:
                if while_stopped is not None:
                    while_stopped()
            finally:
                system.start()
            self._gate.restarted(keep)

    def _bound_memory(self, request: Call, target: Any) -> None:
        """Before a call that loads a collection's index: restart the system if loaded items pass the bound."""
        gate = self._gate
        if gate is None or request.method not in LOADING_METHODS or request.target in (CLIENT, REGISTRY_HANDLE):
            return
        if gate.held_here():
            return  # a call inside a call of this thread: the outer one is in, so no restart now
        key = str(target.id)
        added = len(request.kwargs.get("ids", ())) if request.method in ("upsert", "add") else 0

        def items() -> int:
            try:
                with self._inside():
                    return int(target.count())
            except Exception:  # noqa: BLE001 - an estimate; the call itself reports what went wrong
                return 0

        if gate.loads(key, items, added):
            self._restart(keep=key)

    def _do(self, request: Any) -> Any:
        if isinstance(request, Call):
            target = self._target(request.target, self._client, self._registry)
            self._bound_memory(request, target)
            method = getattr(target, request.method)
            with self._inside():
                return self._call(method, request, self._handles)
        if isinstance(request, Open):
            with self._inside():
                return self._open_collection(request)
        if isinstance(request, Embed):
            return self.embedder.embed_query(request.text)
        if isinstance(request, Forget):
            with self._lock:
                self._handles.pop(request.namespace, None)
            return None
        if isinstance(request, Compact):
            self._compact()
            return None
        raise AssertionError(f"unknown request {request!r}")

    def _open_collection(self, request: Open) -> Any:
        with self._lock:
            handle = self._handles.get(request.namespace)
            if handle is not None:
                return handle
            name = collection_name(request.namespace)
            call = self._open_call(request, name)
            handle = self._call(getattr(self._client, call.method), call, self._handles)
            if handle is MISSING:
                return None
            check_embedder(handle.metadata, self.embedder, f"collection {name}", self.location)
            self._handles[request.namespace] = handle
            return handle

    # -- async driver (same steps, awaited I/O) ----------------------------

    async def _arun(self, make: Callable[[], Step]) -> Any:
        for attempt in range(2):
            step, value = make(), None
            try:
                while True:
                    value = await self._ado(step.send(value))
            except StopIteration as done:
                return done.value
            except _Stale:
                step.close()
                if attempt:
                    raise StoreError(f"a collection in {self.location} keeps disappearing; retry later") from None
            except BaseException:
                step.close()  # now, not when the traceback goes: a failed write marks its side entry at once
                raise
        raise AssertionError("unreachable")

    async def _ado(self, request: Any) -> Any:
        if isinstance(request, Call):
            method = getattr(self._target(request.target, self._async_client, self._aregistry), request.method)
            return await self._acall(method, request, self._ahandles)
        if isinstance(request, Open):
            return await self._aopen_collection(request)
        if isinstance(request, Embed):
            return await asyncio.to_thread(self.embedder.embed_query, request.text)
        if isinstance(request, Forget):
            self._ahandles.pop(request.namespace, None)
            return None
        if isinstance(request, Compact):
            await asyncio.to_thread(self._compact)
            return None
        raise AssertionError(f"unknown request {request!r}")

    async def _aopen_collection(self, request: Open) -> Any:
        handle = self._ahandles.get(request.namespace)
        if handle is not None:
            return handle
        name = collection_name(request.namespace)
        call = self._open_call(request, name)
        handle = await self._acall(getattr(self._async_client, call.method), call, self._ahandles)
        if handle is MISSING:
            return None
        check_embedder(handle.metadata, self.embedder, f"collection {name}", self.location)
        self._ahandles[request.namespace] = handle
        return handle

    def _compact(self) -> None:
        """Erase what a deleted namespace left on disk (the store overrides this; servers cannot)."""

    # -- bounded calls: a timeout per request, a few retries with backoff ----

    def _call(self, method: Callable[..., Any], request: Call, handles: dict[Namespace, Any]) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return method(**request.kwargs)
            except Exception as exc:
                if attempt < self.retries and is_retryable(exc):
                    time.sleep(_backoff(attempt))
                    continue
                return self._failed(request, exc, handles, attempt + 1)
        raise AssertionError("unreachable")

    async def _acall(self, method: Callable[..., Any], request: Call, handles: dict[Namespace, Any]) -> Any:
        for attempt in range(self.retries + 1):
            try:
                # The async client's HTTP session has no timeout of its own.
                return await asyncio.wait_for(method(**request.kwargs), self.timeout)
            except Exception as exc:
                if attempt < self.retries and is_retryable(exc):
                    await asyncio.sleep(_backoff(attempt))
                    continue
                return self._failed(request, exc, handles, attempt + 1)
        raise AssertionError("unreachable")

    # -- shared by both drivers --------------------------------------------

    def _open_call(self, request: Open, name: str) -> Call:
        if request.create:
            kwargs = {
                "name": name,
                "metadata": collection_metadata(request.namespace, self.embedder),
                "configuration": _HNSW,
                "embedding_function": self._ef,
            }
            return Call(CLIENT, "get_or_create_collection", kwargs)
        return Call(CLIENT, "get_collection", {"name": name, "embedding_function": None}, missing_ok=True)

    @staticmethod
    def _target(target: Any, client: Any, registry: Any) -> Any:
        if target == CLIENT:
            return client
        if target == REGISTRY_HANDLE:
            return registry
        return target

    def _failed(self, request: Call, exc: Exception, handles: dict[Namespace, Any], attempts: int = 1) -> Any:
        """Translate a Chroma failure: MISSING, a retry of the unit, or an LTMError."""
        from chromadb.errors import NotFoundError

        if isinstance(exc, LTMError):
            raise exc
        if isinstance(exc, NotFoundError):
            if request.missing_ok:
                return MISSING
            if request.target not in (CLIENT, REGISTRY_HANDLE):
                with self._lock:
                    handles.clear()
                self._keyword.clear()
                raise _Stale() from exc
        if is_connection_error(exc):
            raise connection_error(self.location, exc, attempts, self.timeout) from exc
        raise StoreError(
            f"Chroma {request.method} failed on {self.location} ({type(exc).__name__}: {exc})"
        ) from exc


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: ~0.2 s, 0.4 s, 0.8 s ... capped at 2 s."""
    return min(2.0, 0.2 * 2**attempt) * (1 + random.random() / 2)
