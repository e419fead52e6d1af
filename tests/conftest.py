"""Shared test setup: offline, HOME in a temp dir, fake embedder fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Before anything imports onnxruntime/chromadb: they write caches under $HOME.
_HOME = tempfile.mkdtemp(prefix="ltm-test-home-")
os.environ["HOME"] = _HOME
atexit.register(shutil.rmtree, _HOME, True)  # every run used to leave its HOME behind in /tmp
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from ltm_agent.embeddings import HashingEmbedder  # noqa: E402


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    """Deterministic hashing embedder (a fake; no model load)."""
    return HashingEmbedder(64)


# ---------------------------------------------------------------------------
# Store fixtures: a real Chroma server, and one maker per store backend.

import asyncio  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterator  # noqa: E402

from ltm_agent.embeddings import Embedder  # noqa: E402
from ltm_agent.store import MemoryStore  # noqa: E402


def _tmpfs_dir(prefix: str) -> Path | None:
    """A fresh directory on tmpfs (/dev/shm) when there is one: SQLite fsyncs cost ~40 ms on disk."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix=prefix, dir=shm))
    return None


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """Like ``tmp_path`` but on tmpfs when available (removed after the test)."""
    path = _tmpfs_dir("ltm-test-")
    yield path or tmp_path
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``chroma run`` on 127.0.0.1 for the session; yields its URL."""
    import httpx

    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:
        pytest.skip("the chroma executable is not installed next to this Python")
    shm = _tmpfs_dir("ltm-chroma-server-")
    data = shm or tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}; see {data / 'server.log'}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer within 30 s; see {data / 'server.log'}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


def new_server_database(url: str) -> str:
    """Create an empty Chroma database on the test server, so each test starts clean."""
    import chromadb

    from ltm_agent.memory_stores.chroma.connect import settings

    host, port = url.removeprefix("http://").split(":")
    name = f"test-{uuid.uuid4().hex}"
    admin = chromadb.AdminClient(
        settings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI", chroma_server_host=host, chroma_server_http_port=int(port)
        )
    )
    admin.create_database(name)
    return name


class StoreMaker:
    """Opens stores of one backend; ``open()`` again reaches the same data when ``persists``."""

    def __init__(self, kind: str, tmp_path: Path, server_url: str | None) -> None:
        self.kind = kind
        self.persists = kind in ("chroma-persistent", "chroma-server", "chroma-aserver")
        self.path = tmp_path / "store"
        self.url = server_url
        self.database = new_server_database(server_url) if server_url else None
        self.opened: list[MemoryStore] = []

    def open(self, embedder: Embedder | None = None) -> MemoryStore:
        from ltm_agent.memory_stores import ChromaStore, InMemoryStore

        embedder = embedder or HashingEmbedder(64)
        if self.kind == "memory":
            store: MemoryStore = InMemoryStore(embedder)
        elif self.kind == "chroma-ephemeral":
            store = ChromaStore.ephemeral(embedder=embedder)
        elif self.kind == "chroma-persistent":
            store = ChromaStore.persistent(self.path, embedder=embedder)
        elif self.kind == "chroma-server":
            store = ChromaStore.server(self.url, database=self.database, embedder=embedder)
        else:
            store = asyncio.run(ChromaStore.aserver(self.url, database=self.database, embedder=embedder))
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


STORE_KINDS = ["memory", "chroma-ephemeral", "chroma-persistent", "chroma-server", "chroma-aserver"]


@pytest.fixture(params=STORE_KINDS)
def store_maker(request: pytest.FixtureRequest, fast_tmp: Path) -> Iterator[StoreMaker]:
    """One :class:`StoreMaker` per backend (server kinds get a fresh database each test)."""
    url = request.getfixturevalue("chroma_server") if "server" in request.param else None
    maker = StoreMaker(request.param, fast_tmp, url)
    yield maker
    maker.close_all()


@pytest.fixture
def store(store_maker: StoreMaker) -> MemoryStore:
    """A fresh, empty store of each backend, with the fake hashing embedder."""
    return store_maker.open()


@pytest.fixture
def server_store(chroma_server: str) -> Iterator[Callable[..., MemoryStore]]:
    """Open ChromaStore.server stores on one fresh database of the test server."""
    from ltm_agent.memory_stores import ChromaStore

    database = new_server_database(chroma_server)
    opened: list[MemoryStore] = []

    def open_store(embedder: Embedder | None = None) -> MemoryStore:
        opened.append(ChromaStore.server(chroma_server, database=database, embedder=embedder or HashingEmbedder(64)))
        return opened[-1]

    yield open_store
    for s in opened:
        s.close()


@pytest.fixture
def server_database(chroma_server: str) -> str:
    """The name of a fresh, empty database on the test server."""
    return new_server_database(chroma_server)


@pytest.fixture
def unused_port() -> int:
    """A local TCP port with nothing listening (for unreachable-server tests)."""
    return free_port()
