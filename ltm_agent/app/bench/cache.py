"""A persistent embedding cache, so a benchmark re-run after a crash does not start over.

Core type: :class:`CachedEmbedder`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ltm_agent.embeddings import Embedder

__all__ = ["CachedEmbedder"]


class CachedEmbedder(Embedder):
    """Wraps an embedder with a SQLite cache keyed by (the embedder's fingerprint, text hash).

    Vectors are identical to the wrapped embedder's, so the wrapper keeps its
    name and dimension (stores accept it as the same model). Queries
    (:meth:`embed_query`) are not cached, so measured query latency includes
    embedding.

    Args:
        inner: The embedder to cache.
        path: SQLite file (created on first use).
    """

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        return self._db

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.inner.fingerprint}\x1f{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        with self._lock:
            db = self._conn()
            found: dict[str, bytes] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", chunk).fetchall())
        missing = [i for i, k in enumerate(keys) if k not in found]
        for i, key in enumerate(keys):
            if key in found:
                out[i] = np.frombuffer(found[key], dtype=np.float32)
        if missing:
            vectors = self.inner.embed([texts[i] for i in missing])
            for row, i in enumerate(missing):
                out[i] = vectors[row]
            with self._lock:
                db = self._conn()
                db.executemany(
                    "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                    [(keys[i], vectors[row].astype(np.float32).tobytes()) for row, i in enumerate(missing)],
                )
                db.commit()
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
