"""BM25 keyword side index shared by every store.

A :class:`KeywordIndex` is built from one namespace's ``(ids, index_texts,
metadatas)`` and answers keyword searches with BM25 (``bm25s``, Lucene
variant). It is a *derived* structure: stores rebuild it from their source of
truth whenever that changes, so it is never persisted and never authoritative.

Tokenisation: lowercase words of two or more word characters, English stop
words removed, Snowball English stemming (PyStemmer). Queries go through the
same pipeline; a query whose tokens are all unknown returns no results.

Core types: :class:`KeywordIndex`, :func:`tokenize`.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Mapping, Sequence

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from ltm_agent.filters import Filter, matches, validate_filter

__all__ = ["KeywordIndex", "tokenize"]

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)
# PyStemmer objects are not thread-safe; one per thread.
_local = threading.local()


def _stemmer() -> Any:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def tokenize(text: str) -> list[str]:
    """Lowercase, split into words, drop English stop words, stem.

    Example:
        >>> tokenize("The cats are running home")
        ['cat', 'run', 'home']
    """
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOPWORDS]
    return _stemmer().stemWords(words) if words else []


class KeywordIndex:
    """An immutable BM25 index over one namespace's items.

    Args:
        ids: Item ids, one per document.
        texts: The index text of each item (what is searched).
        metadatas: The metadata of each item (what filters test).

    Example:
        >>> index = KeywordIndex(["a", "b"], ["red apples", "green pears"], [{}, {}])
        >>> index.search("apple")[0][0]
        'a'
    """

    def __init__(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        if not (len(ids) == len(texts) == len(metadatas)):
            raise ValueError("ids, texts and metadatas must have the same length")
        self._ids = list(ids)
        self._metadatas = list(metadatas)
        self._vocab: dict[str, int] = {}
        self._bm25: bm25s.BM25 | None = None
        if not self._ids:
            return
        doc_tokens: list[list[int]] = []
        for text in texts:
            doc_tokens.append([self._vocab.setdefault(tok, len(self._vocab)) for tok in tokenize(text)])
        if not self._vocab:
            return  # every document is stop words only: nothing can match
        bm25 = bm25s.BM25(method="lucene")
        # Pass (token ids, vocab) so documents without tokens stay aligned with ids.
        bm25.index((doc_tokens, dict(self._vocab)), create_empty_token=False, show_progress=False)
        self._bm25 = bm25

    def __len__(self) -> int:
        return len(self._ids)

    def search(
        self,
        query: str,
        filter: Filter | None = None,
        limit: int | None = 10,
        offset: int = 0,
    ) -> list[tuple[str, float]]:
        """Rank documents against ``query``.

        Returns:
            ``(id, score)`` pairs with ``score > 0``, best first, ties by id,
            after ``offset`` and at most ``limit`` of them.
        """
        normal = validate_filter(filter)
        if self._bm25 is None:
            return []
        token_ids = sorted({self._vocab[t] for t in tokenize(query) if t in self._vocab})
        if not token_ids:
            return []
        scores = np.asarray(self._bm25.get_scores_from_ids(token_ids), dtype=np.float64)
        hits = np.flatnonzero(scores > 0)
        # Best first, ties by id; the filter is tested only until the page is full.
        order = sorted(hits.tolist(), key=lambda i: (-scores[i], self._ids[i]))
        end = None if limit is None else offset + limit
        ranked: list[tuple[str, float]] = []
        for i in order:
            if normal and not matches(self._metadatas[i], normal):
                continue
            ranked.append((self._ids[i], float(scores[i])))
            if end is not None and len(ranked) >= end:
                break
        return ranked[offset:end]
