"""Opening Chroma safely: directory checks, clients, the registry, error translation.

Everything that decides whether a place is an ltm-agent store, and what a
caller is told when it is not, lives here: a path that is a file or a
non-Chroma directory, a corrupt ``chroma.sqlite3``, a Chroma directory written
by something else (collections but no ``ltm-registry``), a store written with
another embedder, an unreachable server. Raw ``chromadb`` errors never leave
for these cases; they become :class:`~ltm_agent.errors.CorruptStoreError`,
:class:`~ltm_agent.errors.EmbedderMismatchError` or
:class:`~ltm_agent.errors.StoreConnectionError`.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

from ltm_agent.embeddings import Embedder
from ltm_agent.errors import (
    CorruptStoreError,
    EmbedderMismatchError,
    InvalidInputError,
    StoreConnectionError,
    StoreError,
    describe,
)
from ltm_agent.memory_stores.chroma.dirlock import LOCK_NAME
from ltm_agent.memory_stores.chroma.layout import (
    REGISTRY,
    SCHEMA_VERSION,
    embedder_hint,
    registry_metadata,
)
from ltm_agent.memory_stores.chroma.ops import CLIENT, MISSING, Call, Step

__all__ = [
    "check_embedder",
    "check_store_dir",
    "drop_cached_system",
    "erase_deleted",
    "is_connection_error",
    "is_retryable",
    "open_registry",
    "parse_server_url",
    "settings",
]

_SQLITE_MAGIC = b"SQLite format 3\x00"
T = TypeVar("T")


def settings(**overrides: Any) -> Any:
    """Chroma settings for every client we make: telemetry off (nothing phones home)."""
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, **overrides)


def check_store_dir(root: Path) -> None:
    """Refuse paths Chroma would misuse: files, foreign directories, non-SQLite databases."""
    if root.exists() and not root.is_dir():
        raise CorruptStoreError(
            f"{root} is a file, not a store directory; pass a directory path (it is created if missing)"
        )
    database = root / "chroma.sqlite3"
    if root.is_dir() and not database.exists() and any(p.name != LOCK_NAME for p in root.iterdir()):
        raise CorruptStoreError(
            f"{root} is not a Chroma directory (it has files but no chroma.sqlite3); "
            f"pass an empty or new directory, e.g. {root / '.ltm'}"
        )
    if database.exists():
        with database.open("rb") as handle:
            header = handle.read(len(_SQLITE_MAGIC))
        if header and header != _SQLITE_MAGIC:
            raise CorruptStoreError(_corrupt_message(root, "chroma.sqlite3 is not an SQLite database"))
        tables = _tables(database, root)
        # Chroma migrates any SQLite file it is given; refuse one that another program wrote.
        if tables and "migrations" not in tables:
            raise CorruptStoreError(
                f"{database} is an SQLite database of another program (tables: {', '.join(sorted(tables)[:5])}), "
                f"not Chroma's; ltm-agent will not modify it: pass an empty or new directory"
            )


def _tables(database: Path, root: Path) -> set[str]:
    """Table names, read without writing (a read-only connection).

    A process killed inside a write transaction leaves a hot rollback journal
    (``chroma.sqlite3-journal``). A read-only connection cannot roll it back
    and fails with "attempt to write a readonly database", although the
    store is healthy; a read-write connection rolls it back on its first read,
    exactly as Chroma's own connection would, so that is what we open then.
    """
    journal = database.with_name(database.name + "-journal")
    hot = journal.exists() and journal.stat().st_size > 0
    try:
        connection = sqlite3.connect(database if hot else f"{database.as_uri()}?mode=ro", uri=not hot)
        try:
            rows = connection.execute("select name from sqlite_master where type = 'table'").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise CorruptStoreError(_corrupt_message(root, f"chroma.sqlite3 cannot be read ({exc})")) from exc
    return {str(row[0]) for row in rows}


def erase_deleted(root: Path) -> None:
    """Leave no bytes of deleted collections in an embedded store directory.

    Removes index folders (named by segment id) that no segment of
    ``chroma.sqlite3`` refers to any more, then runs ``VACUUM``, which rewrites
    the database without its free pages. Best effort against a busy database:
    it waits up to 30 s for Chroma's own connections, then raises.
    """
    import shutil
    import uuid

    database = root / "chroma.sqlite3"
    connection = sqlite3.connect(database, timeout=30, isolation_level=None)
    try:
        live = {str(row[0]) for row in connection.execute("select id from segments")}
        for folder in root.iterdir():
            try:
                uuid.UUID(folder.name)
            except ValueError:
                continue
            if folder.is_dir() and folder.name not in live:
                shutil.rmtree(folder, ignore_errors=True)
        connection.execute("VACUUM")
    except sqlite3.Error as exc:
        raise StoreError(
            f"the namespace was deleted from {root}, but its freed bytes could not be erased ({exc}); "
            f"run `sqlite3 {database} VACUUM` while no process has the store open"
        ) from exc
    finally:
        connection.close()


def _corrupt_message(root: Path | str, what: str) -> str:
    return (
        f"the store at {root} is unreadable: {what}; restore it from a backup, "
        f"or move the directory aside and let ltm-agent create a new store there"
    )


def corrupt(root: Path | str, exc: BaseException) -> CorruptStoreError:
    return CorruptStoreError(_corrupt_message(root, f"Chroma failed to open it ({type(exc).__name__}: {exc})"))


_EPHEMERAL_LOCK = threading.Lock()


def private_ephemeral_client() -> tuple[Any, str]:
    """A ``chromadb.EphemeralClient`` on a Chroma system of its own, and the name it is registered under.

    Chroma's clients find their system through a process-wide table keyed
    ``"ephemeral"`` for every in-memory client. The new client's system is
    moved to a key of its own (its admin client's too), and whatever held
    ``"ephemeral"`` before is put back, so other code's ``EphemeralClient()``
    neither sees our data nor trips over our settings. ``client.close()`` stops
    the private system.
    """
    import uuid

    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient as Shared

    key = f"ltm-ephemeral-{uuid.uuid4().hex}"
    with _EPHEMERAL_LOCK:
        saved = Shared._identifier_to_system.pop("ephemeral", None), Shared._identifier_to_refcount.pop("ephemeral", None)
        try:
            client = chromadb.EphemeralClient(settings=settings(is_persistent=False))
            Shared._identifier_to_system[key] = Shared._identifier_to_system.pop("ephemeral")
            Shared._identifier_to_refcount[key] = Shared._identifier_to_refcount.pop("ephemeral", 0)
            client._identifier = key
            client._admin_client._identifier = key
        finally:
            Shared._identifier_to_system.pop("ephemeral", None)
            Shared._identifier_to_refcount.pop("ephemeral", None)
            if saved[0] is not None:
                Shared._identifier_to_system["ephemeral"] = saved[0]
            if saved[1] is not None:
                Shared._identifier_to_refcount["ephemeral"] = saved[1]
    return client, key


def drop_cached_system(identifier: str) -> None:
    """Forget a Chroma system that failed to start, so the path can be opened again later."""
    from chromadb.api.shared_system_client import SharedSystemClient

    system = SharedSystemClient._identifier_to_system.pop(identifier, None)
    SharedSystemClient._identifier_to_refcount.pop(identifier, None)
    if system is not None:
        try:
            system.stop()
        except Exception:  # noqa: BLE001 - it failed to start; stopping is best effort
            pass


def parse_server_url(url: str | None, host: str, port: int, ssl: bool) -> tuple[str, int, bool]:
    """``http://host:port`` (or ``https://``) to ``(host, port, ssl)``; no URL keeps the arguments."""
    if url is None:
        return host, port, ssl
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"server URL {url!r} must look like http://host:port or https://host:port")
    secure = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if secure else 8000), secure


def is_connection_error(exc: BaseException) -> bool:
    """True for failures to reach or hear from a server in time (worth retrying)."""
    import httpx

    if isinstance(exc, StoreConnectionError):
        return True
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError)) or "Could not connect" in str(exc)


def is_retryable(exc: BaseException) -> bool:
    """Connection failures, and Chroma's transient "Error finding id" (a query that meets another
    client's write half-applied to the vector segment); every request we send is idempotent."""
    from chromadb.errors import InternalError

    return is_connection_error(exc) or (isinstance(exc, InternalError) and "Error finding id" in str(exc))


def connection_error(
    location: str, exc: BaseException, attempts: int = 1, timeout: float | None = None
) -> StoreConnectionError:
    import httpx

    if isinstance(exc, StoreConnectionError):
        return exc
    tries = f" after {attempts} tries" if attempts > 1 else ""
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        what = f"did not answer within {timeout:g} s{tries}" if timeout else f"timed out{tries}"
        return StoreConnectionError(
            f"the Chroma server at {location} {what} ({type(exc).__name__}); it may be overloaded or "
            f"frozen: the operation is safe to retry later, or raise timeout= in ChromaStore.server()"
        )
    return StoreConnectionError(
        f"cannot reach the Chroma server at {location}{tries} ({type(exc).__name__}: {exc}); "
        f"the operation is safe to retry once the server is back: start one with "
        f"`chroma run --path <dir> --port <port>` or fix the URL"
    )


def server_error(location: str, exc: BaseException, timeout: float | None = None) -> StoreError:
    if is_connection_error(exc):
        return connection_error(location, exc, 1, timeout)
    return StoreError(
        f"the Chroma server at {location} refused the connection ({type(exc).__name__}: {exc}); "
        f"check the tenant and database exist and the headers carry valid credentials"
    )


def check_bounds(timeout: object, retries: object) -> tuple[float, int]:
    """Validate ``timeout`` (seconds > 0) and ``retries`` (int >= 0) of a server store."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 86_400:
        raise InvalidInputError(f"timeout must be seconds between 0 and 86400, got {describe(timeout)}")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise InvalidInputError(f"retries must be an int from 0 to 10, got {describe(retries)}")
    return float(timeout), retries


def within(make: Callable[[], T], timeout: float) -> T:
    """``make()`` in a daemon thread, or :class:`TimeoutError` after ``timeout`` seconds.

    For Chroma calls that have no timeout of their own (building an HTTP
    client talks to the server); a thread left waiting on a frozen server
    ends when the server answers or the process exits.
    """
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, make()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box.append((False, exc))

    worker = threading.Thread(target=run, name="ltm-chroma-connect", daemon=True)
    worker.start()
    worker.join(timeout)
    if not box:
        raise TimeoutError(f"no answer within {timeout:g} s")
    ok, value = box[0]
    if not ok:
        raise value
    return value


def set_http_timeout(client: Any, timeout: float) -> None:
    """Bound every request of a Chroma HTTP client (its session is built with ``timeout=None``)."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is not None:
        session.timeout = httpx.Timeout(timeout)


def check_embedder(meta: Mapping[str, Any] | None, embedder: Embedder, what: str, location: str) -> None:
    """Raise unless ``meta`` (collection metadata) was written by ltm-agent with ``embedder``."""
    meta = meta or {}
    stored, dim, schema = meta.get("ltm:embedder"), meta.get("ltm:dim"), meta.get("ltm:schema")
    if stored is None or dim is None or schema is None:
        raise CorruptStoreError(
            f"{what} in {location} was not written by ltm-agent (no ltm:embedder record); "
            f"use another path or database for ltm-agent and leave this data alone"
        )
    if int(schema) > SCHEMA_VERSION:
        raise CorruptStoreError(
            f"{what} in {location} uses layout version {schema}, newer than this ltm-agent "
            f"understands ({SCHEMA_VERSION}); upgrade: pip install -U ltm-agent"
        )
    if stored != embedder.name or int(dim) != int(embedder.dimension):
        raise EmbedderMismatchError(
            f"{what} in {location} was written with embedder {stored!r} (dimension {dim}), "
            f"but this store was opened with {embedder.name!r} (dimension {embedder.dimension}); "
            f"vectors of different models cannot be mixed: reopen it with embedder="
            f"{embedder_hint(str(stored))}, or use a new path/database for the new embedder"
        )


def open_registry(embedder: Embedder, location: str) -> Step:
    """Find or create ``ltm-registry``; refuse foreign Chroma data and other embedders."""
    registry = yield Call(CLIENT, "get_collection", {"name": REGISTRY, "embedding_function": None}, missing_ok=True)
    if registry is MISSING:
        existing = yield Call(CLIENT, "count_collections", {})
        if existing:  # another process may have created the registry since we looked: look again
            registry = yield Call(CLIENT, "get_collection", {"name": REGISTRY, "embedding_function": None}, missing_ok=True)
        if existing and registry is MISSING:
            raise CorruptStoreError(
                f"{location} holds {existing} Chroma collection(s) but no {REGISTRY}: it belongs to "
                f"another application, and ltm-agent will not write into it; use a new path or database"
            )
    if registry is MISSING:
        registry = yield Call(
            CLIENT,
            "get_or_create_collection",
            {"name": REGISTRY, "metadata": registry_metadata(embedder), "embedding_function": None},
        )
    check_embedder(registry.metadata, embedder, f"the store registry ({REGISTRY})", location)
    return registry
