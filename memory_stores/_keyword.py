"""BM25 keyword side index shared by every store, updated in place.

A :class:`KeywordIndex` holds one namespace's ``(id, index_text, metadata)``
and answers keyword searches with BM25 (the Lucene variant as ``bm25s``
computes it: ``idf = ln(1 + (N - df + .5) / (df + .5))``, term part
``tf / (tf + k1 (1 - b + b dl / avgdl))``, k1 = 1.5, b = 0.75). It is a
*derived* structure, never authoritative: stores rebuild it from their source
of truth when they cannot follow the changes. :meth:`KeywordIndex.state` and
:meth:`KeywordIndex.from_state` turn it into plain arrays and back without
tokenizing (the Chroma store's snapshots use them).

Unlike a ``bm25s`` index it changes in place: :meth:`KeywordIndex.upsert`
and :meth:`KeywordIndex.remove` cost the size of the documents they touch,
not of the namespace, so a read after a write does not rebuild anything.
Postings are compact arrays per term; a removed document is a tombstone,
swept when tombstones outnumber live documents.

Tokenisation: lowercase words of two or more word characters, English stop
words removed, Snowball English stemming (PyStemmer). Queries go through the
same pipeline; a query whose tokens are all unknown returns no results.

Core types: :class:`KeywordIndex`, :func:`tokenize`.
"""

from __future__ import annotations

import math
import re
import threading
from array import array
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from ltm_agent.filters import Filter, validate_filter
from ltm_agent.live import SESSION_KIND
from ltm_agent.memory_stores._common import match_function

__all__ = ["UNINDEXED_KINDS", "KeywordIndex", "tokenize"]

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)
_K1, _B = 1.5, 0.75
UNINDEXED_KINDS = frozenset({SESSION_KIND})
"""``kind`` values of bookkeeping records (the live path's per-session records): kept out of the
index, so keyword statistics are those of the memories alone, as after a bulk ingest."""
# PyStemmer objects are not thread-safe; one per thread.
_local = threading.local()


def _stemmer() -> Any:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


_STEMS: dict[str, str] = {}
"""word -> stem, shared by every index: a namespace's vocabulary is small next to its words, and
stemming each word once instead of at every occurrence is most of what indexing costs."""
_STEMS_MAX = 500_000


def tokenize(text: str) -> list[str]:
    """Lowercase, split into words, drop English stop words, stem.

    Example:
        >>> tokenize("The cats are running home")
        ['cat', 'run', 'home']
    """
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOPWORDS]
    if not words:
        return []
    stems = _STEMS
    unknown = [w for w in words if w not in stems]
    fresh: dict[str, str] = {}
    if unknown:
        if len(stems) > _STEMS_MAX:
            stems.clear()
        unique = list(dict.fromkeys(unknown))
        fresh = dict(zip(unique, _stemmer().stemWords(unique)))
        stems.update(fresh)
    # Another thread may clear the shared cache meanwhile: fall back to this call's own stems.
    return [stems.get(w) or fresh.get(w) or _stemmer().stemWord(w) for w in words]


class KeywordIndex:
    """A BM25 index over one namespace's items that updates in place.

    Args:
        ids: Item ids, one per document.
        texts: The index text of each item (what is searched).
        metadatas: The metadata of each item (what filters test).

    Not thread-safe by itself: the stores serialise writers and readers.

    Example:
        >>> index = KeywordIndex(["a", "b"], ["red apples", "green pears"], [{}, {}])
        >>> index.search("apple")[0][0]
        'a'
        >>> index.upsert("c", "apple pie with apple jam", {})
        >>> [i for i, _ in index.search("apple")]
        ['c', 'a']
    """

    def __init__(
        self,
        ids: Sequence[str] = (),
        texts: Sequence[str] = (),
        metadatas: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        if not (len(ids) == len(texts) == len(metadatas)):
            raise ValueError("ids, texts and metadatas must have the same length")
        self._slot: dict[str, int] = {}
        self._ids: list[str | None] = []  # slot -> id, None for a tombstone
        self._metadatas: list[Mapping[str, Any] | None] = []
        self._terms: list[tuple[int, ...]] = []  # slot -> its distinct term ids (to undo df on removal)
        self._length = array("f")  # slot -> document length in tokens
        self._alive = array("b")  # slot -> 1 while the document is live
        self._vocab: dict[str, int] = {}
        self._slots: list[array] = []  # term id -> slots holding it (may include tombstones)
        self._tfs: list[array] = []  # term id -> term frequency in each of those slots
        self._df: list[int] = []  # term id -> live documents holding it
        self._total_length = 0.0
        self._changes = 0  # bumped by every change, so the cached length norms know they are stale
        self._norm_key: tuple[int, int, float, int] | None = None
        self._norm_cache = np.zeros(0, dtype=np.float64)
        self._group_cache: dict[tuple[Any, ...], tuple[np.ndarray, int]] = {}
        for item_id, text, metadata in zip(ids, texts, metadatas):
            self.upsert(item_id, text, metadata)

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._slot

    def upsert(self, item_id: str, text: str, metadata: Mapping[str, Any]) -> None:
        """Add a document, or replace the one with this id (bookkeeping records are left out)."""
        self.remove(item_id)
        self._changes += 1
        if metadata.get("kind") in UNINDEXED_KINDS:
            return  # never searched: it must not count in N, avgdl or any df either
        counts = Counter(tokenize(text))
        slot = len(self._ids)
        self._slot[item_id] = slot
        self._ids.append(item_id)
        self._metadatas.append(metadata)
        self._length.append(float(sum(counts.values())))
        self._alive.append(1)
        self._total_length += self._length[slot]
        terms = []
        for token, tf in counts.items():
            term = self._vocab.get(token)
            if term is None:
                term = self._vocab[token] = len(self._df)
                self._slots.append(array("l"))
                self._tfs.append(array("f"))
                self._df.append(0)
            self._slots[term].append(slot)
            self._tfs[term].append(float(tf))
            self._df[term] += 1
            terms.append(term)
        self._terms.append(tuple(terms))

    def remove(self, item_id: str) -> bool:
        """Drop a document (a tombstone until the next sweep); ``False`` if absent."""
        slot = self._slot.pop(item_id, None)
        if slot is None:
            return False
        self._changes += 1
        self._ids[slot] = None
        self._metadatas[slot] = None
        self._alive[slot] = 0
        self._total_length -= self._length[slot]
        for term in self._terms[slot]:
            self._df[term] -= 1
        if len(self._ids) > 64 and len(self._ids) > 2 * len(self._slot):
            self._sweep()
        return True

    def _sweep(self) -> None:
        """Rebuild without tombstones (amortised: after as many removals as live documents)."""
        live = [(i, self._metadatas[s], s) for i, s in sorted(self._slot.items(), key=lambda kv: kv[1])]
        old_terms, old_slots, old_tfs = self._terms, self._slots, self._tfs
        remap = {s: n for n, (_, _, s) in enumerate(live)}
        self._ids = [i for i, _, _ in live]
        self._metadatas = [m for _, m, _ in live]
        self._slot = {i: n for n, (i, _, _) in enumerate(live)}
        self._length = array("f", (self._length[s] for _, _, s in live))
        self._alive = array("b", [1] * len(live))
        self._terms = [old_terms[s] for _, _, s in live]
        self._slots, self._tfs = [], []
        for term in range(len(self._df)):
            keep = [(remap[s], tf) for s, tf in zip(old_slots[term], old_tfs[term]) if s in remap]
            self._slots.append(array("l", (s for s, _ in keep)))
            self._tfs.append(array("f", (tf for _, tf in keep)))

    def state(self) -> dict[str, Any]:
        """The index as plain data (no tombstones: swept first), for :meth:`from_state`.

        Returns ``ids`` (documents in slot order), ``vocab`` (tokens in term-id order) and
        the postings as three numpy arrays: ``postings_ptr`` (term ``t``'s postings are
        ``postings_ptr[t]:postings_ptr[t + 1]``), ``postings_slots`` (int64) and
        ``postings_tfs`` (float32). Metadata is not included: the caller holds it per id.
        Everything else (lengths, document frequencies, each document's terms) follows
        from the postings, so a loaded index cannot disagree with itself.
        """
        if len(self._ids) != len(self._slot):
            self._sweep()
        sizes = np.fromiter((len(s) for s in self._slots), dtype=np.int64, count=len(self._slots))
        ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=ptr[1:])
        slots = b"".join(s.tobytes() for s in self._slots)
        tfs = b"".join(t.tobytes() for t in self._tfs)
        vocab = [""] * len(self._vocab)
        for token, term in self._vocab.items():
            vocab[term] = token
        return {
            "ids": list(self._ids),
            "vocab": vocab,
            "postings_ptr": ptr,
            "postings_slots": np.frombuffer(slots, dtype=np.int64).copy(),
            "postings_tfs": np.frombuffer(tfs, dtype=np.float32).copy(),
        }

    @classmethod
    def from_state(
        cls,
        ids: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
        vocab: Sequence[str],
        postings_ptr: np.ndarray,
        postings_slots: np.ndarray,
        postings_tfs: np.ndarray,
    ) -> KeywordIndex:
        """Rebuild an index from :meth:`state` without tokenizing anything.

        Args:
            ids: Document ids in slot order (unique).
            metadatas: Each document's metadata, in the same order.
            vocab: Tokens in term-id order (unique).
            postings_ptr: ``len(vocab) + 1`` int64 offsets into the postings, from 0, non-decreasing.
            postings_slots: Slots per term, strictly increasing within each term.
            postings_tfs: Term frequencies (whole numbers >= 1), one per posting.

        Raises:
            ValueError: The state is inconsistent (wrong types, shapes, ranges or duplicates).

        Example:
            >>> index = KeywordIndex(["a", "b"], ["red apples", "green pears"], [{}, {}])
            >>> state = index.state()
            >>> copy = KeywordIndex.from_state(state["ids"], [{}, {}], state["vocab"],
            ...     state["postings_ptr"], state["postings_slots"], state["postings_tfs"])
            >>> copy.search("apple") == index.search("apple")
            True
        """
        n, terms = len(ids), len(vocab)
        ptr, slots, tfs = _checked_postings(n, terms, postings_ptr, postings_slots, postings_tfs)
        if len(metadatas) != n or not all(isinstance(m, Mapping) for m in metadatas):
            raise ValueError("metadatas must be one mapping per id")
        if not all(isinstance(i, str) for i in ids) or len(set(ids)) != n:
            raise ValueError("ids must be unique strings")
        if not all(isinstance(t, str) for t in vocab) or len(set(vocab)) != terms:
            raise ValueError("vocab must be unique strings")
        index = cls()
        index._ids = list(ids)
        index._slot = {item_id: slot for slot, item_id in enumerate(ids)}
        index._metadatas = list(metadatas)
        index._vocab = {token: term for term, token in enumerate(vocab)}
        sizes = np.diff(ptr)
        index._df = sizes.tolist()
        index._slots, index._tfs = [], []
        for start, stop in zip(ptr[:-1].tolist(), ptr[1:].tolist()):
            index._slots.append(array("l", slots[start:stop].tobytes()))
            index._tfs.append(array("f", tfs[start:stop].tobytes()))
        lengths = np.bincount(slots, weights=tfs, minlength=n).astype(np.float32)
        index._length = array("f", lengths.tobytes())
        index._alive = array("b", bytes([1]) * n)
        index._total_length = float(lengths.astype(np.float64).sum())
        # Each document's terms, to undo its document frequencies when it is removed.
        term_of = np.repeat(np.arange(terms, dtype=np.int64), sizes)
        order = np.argsort(slots, kind="stable")
        bounds = np.cumsum(np.bincount(slots, minlength=n))[:-1]
        index._terms = [tuple(part.tolist()) for part in np.split(term_of[order], bounds)] if n else []
        return index

    def search(
        self,
        query: str,
        filter: Filter | None = None,
        limit: int | None = 10,
        offset: int = 0,
        group_by: str | None = None,
    ) -> list[tuple[str, float]]:
        """Rank documents against ``query``, or with ``group_by`` the groups they form.

        With ``group_by`` (a metadata field) the documents that pass ``filter`` and have
        that field are grouped by its value, and each group is ranked by BM25 as one
        document: its members' text together (term frequencies and lengths summed;
        N, document frequencies and the average length counted over groups). A group
        comes back as its member with the best BM25 score of its own, scored with
        the group's score. The retriever ranks whole sessions this way
        (``group_by="session_id"``).

        Returns:
            ``(id, score)`` pairs with ``score > 0``, best first, ties by id,
            after ``offset`` and at most ``limit`` of them.

        Example:
            >>> index = KeywordIndex(["a1", "a2", "b1"], ["red apples", "green apples", "green pears"],
            ...                      [{"s": "a"}, {"s": "a"}, {"s": "b"}])
            >>> [i for i, _ in index.search("green apple", group_by="s")]
            ['a2', 'b1']
        """
        normal = validate_filter(filter)
        live = len(self._slot)
        if not live:
            return []
        # Summed in token order, not term-id order: a term's id depends on the order the index
        # was filled in, and scores must not (a rebuilt and a loaded index rank alike to the bit).
        terms = [self._vocab[t] for t in sorted({t for t in tokenize(query) if t in self._vocab})]
        terms = [t for t in terms if self._df[t] > 0]
        if not terms:
            return []
        if group_by is not None:
            return self._search_groups(terms, normal, group_by, limit, offset)
        norm = self._norm(live)
        scores = np.zeros(len(self._ids), dtype=np.float64)
        for term in terms:
            df = self._df[term]
            idf = math.log(1 + (live - df + 0.5) / (df + 0.5))
            slots = np.frombuffer(self._slots[term], dtype=np.int64)
            tfs = np.frombuffer(self._tfs[term], dtype=np.float32).astype(np.float64)
            scores[slots] += idf * tfs / (tfs + norm[slots])
        scores[np.frombuffer(self._alive, dtype=np.int8) == 0] = 0.0  # tombstones keep their postings
        hits = np.flatnonzero(scores > 0)
        end = None if limit is None else offset + limit
        # Only the best hits are sorted: the top `end`, widened four-fold while a filter leaves the
        # page short; every hit tied with the last one kept is in, so ties still go by id.
        want = len(hits) if end is None else min(end, len(hits))
        while True:
            ranked = self._ranked(scores, self._best(scores, hits, want), normal, end)
            if (end is not None and len(ranked) >= end) or want >= len(hits):
                return ranked[offset:end]
            want = min(4 * want, len(hits))

    def _search_groups(
        self, terms: list[int], normal: Any, field: str, limit: int | None, offset: int
    ) -> list[tuple[str, float]]:
        """:meth:`search` with ``group_by=field``: BM25 over groups of documents."""
        codes, groups = self._groups(normal, field)
        if not groups:
            return []
        in_group = codes >= 0
        lengths = np.frombuffer(self._length, dtype=np.float32).astype(np.float64)
        group_length = np.bincount(codes[in_group], weights=lengths[in_group], minlength=groups)
        norm = _K1 * ((1 - _B) + _B * group_length / (group_length.sum() / groups or 1.0))
        group_scores = np.zeros(groups, dtype=np.float64)
        own = np.zeros(len(self._ids), dtype=np.float64)  # each member's own score, to pick its representative
        own_norm = self._norm(len(self._slot))
        for term in terms:
            slots = np.frombuffer(self._slots[term], dtype=np.int64)
            tfs = np.frombuffer(self._tfs[term], dtype=np.float32).astype(np.float64)
            keep = in_group[slots]  # tombstones and filtered-out documents have code -1
            slots, tfs = slots[keep], tfs[keep]
            if not slots.size:
                continue
            tf = np.bincount(codes[slots], weights=tfs, minlength=groups)
            df = int(np.count_nonzero(tf))
            group_scores += math.log(1 + (groups - df + 0.5) / (df + 0.5)) * tf / (tf + norm)
            idf = math.log(1 + (len(self._slot) - self._df[term] + 0.5) / (self._df[term] + 0.5))
            own[slots] += idf * tfs / (tfs + own_norm[slots])
        members = np.flatnonzero(own > 0)
        if not members.size:
            return []
        ids = self._ids
        # Representative: the member with the best own score (ties: the smaller id).
        best: dict[int, int] = {}
        for slot in sorted(members.tolist(), key=lambda m: (-own[m], ids[m] or "")):
            best.setdefault(int(codes[slot]), slot)
        ranked = sorted(
            ((ids[slot] or "", float(group_scores[group])) for group, slot in best.items() if group_scores[group] > 0),
            key=lambda pair: (-pair[1], pair[0]),
        )
        return ranked[offset : None if limit is None else offset + limit]

    def _groups(self, normal: Any, field: str) -> tuple[np.ndarray, int]:
        """Each slot's group code under ``field`` (-1: a tombstone, filtered out or without the
        field) and the number of groups; cached until the index changes."""
        key = (self._changes, len(self._ids), repr(sorted(normal.items())), field)
        cached = self._group_cache.get(key)
        if cached is not None:
            return cached
        holds = match_function(normal) if normal else None
        codes = np.full(len(self._ids), -1, dtype=np.int64)
        seen: dict[Any, int] = {}
        for slot, metadata in enumerate(self._metadatas):
            if metadata is None or (holds is not None and not holds(metadata)):
                continue
            value = metadata.get(field)
            if value is not None:
                codes[slot] = seen.setdefault(value, len(seen))
        if len(self._group_cache) >= 8 or any(k[0] != self._changes for k in self._group_cache):
            self._group_cache.clear()
        self._group_cache[key] = (codes, len(seen))
        return codes, len(seen)

    def _norm(self, live: int) -> np.ndarray:
        """``k1 (1 - b + b dl / avgdl)`` per slot, recomputed only after the index changed."""
        key = (len(self._ids), live, self._total_length, self._changes)
        if self._norm_key != key:
            lengths = np.frombuffer(self._length, dtype=np.float32).astype(np.float64)
            average = self._total_length / live or 1.0
            self._norm_cache = _K1 * ((1 - _B) + _B * lengths / average)
            self._norm_key = key
        return self._norm_cache

    @staticmethod
    def _best(scores: np.ndarray, hits: np.ndarray, k: int) -> np.ndarray:
        """The hits with the ``k`` best scores (and every hit tied with the k-th), best first."""
        if k < len(hits):
            part = scores[hits]
            kth = np.partition(part, len(part) - k)[len(part) - k]
            hits = hits[part >= kth]
        return hits[np.argsort(-scores[hits], kind="stable")]

    def _ranked(
        self, scores: np.ndarray, order: np.ndarray, normal: Any, end: int | None
    ) -> list[tuple[str, float]]:
        """``order`` as ``(id, score)`` pairs, each run of equal scores by id, filtered, up to ``end``."""
        slots, values = order.tolist(), scores[order].tolist()
        ids, metadatas = self._ids, self._metadatas
        holds = match_function(normal) if normal else None
        ranked: list[tuple[str, float]] = []
        start = 0
        while start < len(slots) and (end is None or len(ranked) < end):
            stop = start + 1
            while stop < len(slots) and values[stop] == values[start]:
                stop += 1
            for i in sorted(slots[start:stop], key=lambda slot: ids[slot] or ""):
                if holds is not None and not holds(metadatas[i] or {}):
                    continue
                ranked.append((ids[i] or "", float(scores[i])))
                if end is not None and len(ranked) >= end:
                    break
            start = stop
        return ranked


def _checked_postings(
    n: int, terms: int, ptr: Any, slots: Any, tfs: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The postings arrays as int64/int64/float32, or ``ValueError`` when they cannot be an index's."""
    for name, value, kind in (("postings_ptr", ptr, "i"), ("postings_slots", slots, "i"), ("postings_tfs", tfs, "f")):
        if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.kind != kind:
            raise ValueError(f"{name} must be a 1-d numpy array of kind {kind!r}")
    ptr, slots, tfs = ptr.astype(np.int64), slots.astype(np.int64), tfs.astype(np.float32)
    if len(ptr) != terms + 1 or ptr[0] != 0 or ptr[-1] != len(slots) or len(tfs) != len(slots):
        raise ValueError("postings_ptr must run from 0 to the number of postings, one offset per term and one more")
    if np.any(np.diff(ptr) < 0):
        raise ValueError("postings_ptr must be non-decreasing")
    if len(slots) and (slots.min() < 0 or slots.max() >= n):
        raise ValueError(f"postings_slots must lie in [0, {n})")
    if not np.all(np.isfinite(tfs)) or np.any(tfs < 1) or np.any(tfs != np.round(tfs)):
        raise ValueError("postings_tfs must be whole numbers >= 1")
    steps = np.diff(slots)
    starts = np.zeros(len(slots), dtype=bool)
    starts[ptr[:-1][ptr[:-1] < len(slots)]] = True
    if np.any((steps <= 0) & ~starts[1:]):
        raise ValueError("postings_slots must increase strictly within each term")
    return ptr, slots, tfs
