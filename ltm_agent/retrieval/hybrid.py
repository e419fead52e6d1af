"""Hybrid, time-aware retrieval over one namespace.

Read path: question (+ reference date) → candidates from dense and keyword
(BM25) search inside the namespace → reciprocal-rank fusion → a second search
moved towards the best hits (pseudo-relevance feedback), fused in → time-aware
expansion (episodes inside the question's time window move to the front,
order kept) → :class:`~ltm_agent.records.MemoryItem` s with text, score, time,
tokens and sources → optional packing into a token budget.

Core types: :class:`HybridRetriever` (its settings: :class:`~ltm_agent.retrieval.config.RetrievalConfig`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np

from ltm_agent.dates import require_aware, to_timestamp
from ltm_agent.errors import InvalidInputError, describe
from ltm_agent.filters import Filter
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import MemoryItem, RecordKind, ScoredItem, StoredItem
from ltm_agent.retrieval.config import RetrievalConfig
from ltm_agent.retrieval.fusion import reciprocal_rank_fusion
from ltm_agent.retrieval.packing import pack
from ltm_agent.retrieval.query_types import asks_what_was_said
from ltm_agent.retrieval.rendering import event_time, render_items, to_memory_item
from ltm_agent.retrieval.sessions import diversify_sessions, fuse_session_ranking
from ltm_agent.retrieval.time_window import TimeWindow, query_time_window, stable_partition
from ltm_agent.store import MemoryStore, SearchOp, validate_text
from ltm_agent.units import carries_own_context

__all__ = ["HybridRetriever", "RetrievalConfig", "asks_what_was_said", "render_items", "to_memory_item"]

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


FEEDBACK_CHARS = 2000
"""Characters of each feedback memory added to the keyword query (long memories stay bounded)."""

_SAME_TEXT_KINDS = frozenset({str(RecordKind.TURN), str(RecordKind.CONTEXT)})
"""Kinds that render exactly their source turn: one memory per source, whichever key found it."""


def _long_user_turn(item: StoredItem) -> bool:
    """A turn the user said that is too long for a context key (:func:`carries_own_context`)."""
    return item.metadata.get("role") == "user" and carries_own_context(item)


def _value_key(item: StoredItem) -> str:
    if item.metadata.get("kind") in _SAME_TEXT_KINDS and item.metadata.get("sources") not in (None, "[]"):
        return f"turn:{item.metadata['sources']}"
    return f"id:{item.id}"  # facts, notes, rounds: their own text, even when they share sources


def speakers_named(query: str, items: Iterable[StoredItem]) -> set[str]:
    """The (lowercased) speakers of ``items`` whose name is a word of ``query``."""
    words = {w.lower() for w in _WORD.findall(query)}
    return {s for s in (str(i.metadata.get("speaker", "")).lower() for i in items) if s and s in words}


def _boost_speakers(
    query: str, fused: list[tuple[str, float]], by_value: dict[str, StoredItem], boost: float
) -> list[tuple[str, float]]:
    """Raise memories said by a speaker the query names ("What did Caroline ...")."""
    named = speakers_named(query, by_value.values())
    if not named:
        return fused
    rescored = [
        (v, score * (1.0 + boost) if str(by_value[v].metadata.get("speaker", "")).lower() in named else score)
        for v, score in fused
    ]
    order = {v: i for i, (v, _) in enumerate(fused)}
    return sorted(rescored, key=lambda vs: (-vs[1], order[vs[0]]))


def _mix_usage(
    fused: list[tuple[str, float]], by_value: dict[str, StoredItem], config: RetrievalConfig
) -> list[tuple[str, float]]:
    """Fused scores plus the documented utility/heat terms, re-sorted (ties keep their order)."""
    from ltm_agent.evolution.utility import UsageMix

    mix = UsageMix(config.utility_weight, config.heat_weight)
    mixed = [(v, mix.score(score, by_value[v])) for v, score in fused]
    return sorted(mixed, key=lambda vs: -vs[1])


def default_order(
    query: str,
    fused: Sequence[tuple[str, float]],
    by_value: dict[str, StoredItem],
    config: RetrievalConfig,
    *,
    usage: bool = True,
    sessions: Sequence[Hashable] = (),
) -> list[tuple[str, float]]:
    """The ``fusion="rrf"`` read path after fusion: speaker boost, the opt-in usage mix (unless
    ``usage=False``), the fused session ranking (with ``sessions``, an independent ranking of
    sessions, fused in with ``config.session_keyword_weight``), the opt-in diversification
    over sessions."""
    out = list(fused)
    if config.speaker_boost:
        out = _boost_speakers(query, out, by_value, config.speaker_boost)
    if usage and (config.utility_weight or config.heat_weight):  # opt-in; off by default
        out = _mix_usage(out, by_value, config)
    if config.session_weight:
        others = [(sessions, config.session_keyword_weight)] if sessions and config.session_keyword_weight else []
        out = fuse_session_ranking(
            out,
            lambda v: by_value[v].metadata.get("session_id"),
            weight=config.session_weight,
            k=config.rrf_k,
            others=others,
        )
    if config.session_diversity:
        out = diversify_sessions(out, lambda v: by_value[v].metadata.get("session_id"), penalty=config.session_diversity)
    return out


def _rocchio(
    query: np.ndarray, top: Sequence[str], rankings: Sequence[tuple[list[ScoredItem], float]]
) -> np.ndarray | None:
    """The query vector moved to the mean of the top memories' vectors (``None`` when none is known).

    A memory's vector comes from the dense results (raw turn key preferred over
    its context key); memories found only by BM25 are skipped.
    """
    wanted = set(top)
    found: dict[str, np.ndarray] = {}
    for ranking, _ in rankings:
        for scored in ranking:
            value = _value_key(scored.item)
            if value in wanted and scored.item.vector is not None:
                if value not in found or scored.item.metadata.get("kind") == str(RecordKind.TURN):
                    found[value] = np.asarray(scored.item.vector, dtype=np.float32)
    if not found:
        return None
    docs = np.stack([v / (np.linalg.norm(v) or 1.0) for v in found.values()]).mean(axis=0)
    moved = query / (np.linalg.norm(query) or 1.0) + docs
    return moved / (np.linalg.norm(moved) or 1.0)


class HybridRetriever:
    """Dense + BM25 retrieval with fusion and time-aware expansion (a :class:`Retriever`).

    Args:
        store: The store to read.
        config: Ranking configuration.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.timeline import EpisodicTimeline
        >>> from ltm_agent.loaders import load_conversations
        >>> from ltm_agent.data import sample_conversation_path
        >>> store = InMemoryStore()
        >>> _ = EpisodicTimeline(store, ("maya",)).ingest(load_conversations(sample_conversation_path(), "jsonl")[0])
        >>> items = HybridRetriever(store).retrieve(("maya",), "What is the cat called?", budget_tokens=200)
        >>> all(i.tokens <= 200 for i in items)
        True
    """

    def __init__(self, store: MemoryStore, config: RetrievalConfig | None = None) -> None:
        self.store = store
        self.config = config or RetrievalConfig()

    def time_window(self, query: str, reference_time: datetime | None) -> TimeWindow | None:
        """The question's time window, or ``None`` (no reference time, expansion off, no time named)."""
        if reference_time is None or not self.config.time_expansion:
            return None
        return query_time_window(query, reference_time, widen=timedelta(days=self.config.widen_days))

    def _where(self, as_of: datetime | None, extra: Filter | None) -> dict:
        where: dict = {"kind": {"$in": list(self.config.units)}}
        if as_of is not None:
            where["event_ts"] = {"$lte": to_timestamp(require_aware(as_of, "as_of"))}
        if extra:
            where.update(extra)
        return where

    def rank(
        self,
        namespace: Namespace,
        query: str,
        *,
        reference_time: datetime | None = None,
        as_of: datetime | None = None,
        filter: Filter | None = None,
        depth: int | None = None,
        max_tokens: int | None = None,
    ) -> list[MemoryItem]:
        """Candidates in fused, time-expanded rank order (no budget); the first ``depth`` (all when ``None``).

        With ``max_tokens`` the list ends with the item whose tokens bring the total to
        ``max_tokens`` or past it: enough to fill that budget in rank order, and no
        rendering (token counts, excerpts) spent on items after it.
        """
        if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
            raise InvalidInputError(f"max_tokens must be a positive int or None, got {describe(max_tokens)}")
        config = self.config.for_query(query)
        ranked = self.ranked_items(
            namespace, query, reference_time=reference_time, as_of=as_of, filter=filter, depth=depth
        )
        # Rendering counts tokens: it is done only for the items a caller will look at.
        items = render_items(ranked, config, query)
        if max_tokens is None:
            return list(items)
        out: list[MemoryItem] = []
        total = 0
        for item in items:
            out.append(item)
            total += item.tokens
            if total >= max_tokens:
                break
        return out

    def ranked_items(
        self,
        namespace: Namespace,
        query: str,
        *,
        reference_time: datetime | None = None,
        as_of: datetime | None = None,
        filter: Filter | None = None,
        depth: int | None = None,
    ) -> list[tuple[StoredItem, float]]:
        """:meth:`rank` before rendering: the stored items with their fused scores."""
        config = self.config.for_query(query)
        if config is not self.config:  # a question type with its own settings (``for_sets``)
            return HybridRetriever(self.store, config).ranked_items(
                namespace, query, reference_time=reference_time, as_of=as_of, filter=filter, depth=depth
            )
        namespace = validate_namespace(namespace)
        validate_text(query, limits=self.store.limits, what="query")
        where = self._where(as_of, filter)
        # One dense and one keyword ranking per unit kind (or over all kinds at once):
        # a turn found through its own key and through its context key gets credit for both.
        modes = [("dense", self.config.dense_units or self.config.units, self.config.dense_weight)]
        if self.config.hybrid:
            modes.append(("keyword", self.config.keyword_units or self.config.units, self.config.keyword_weight))
        feedback = self.config.feedback_docs > 0
        # With feedback the question's vector is needed twice: embed it once, here.
        vector = self.store.embedder.embed_query(query) if feedback and self.store.embedder is not None else None
        rankings: list[tuple[list[ScoredItem], float]] = []
        stand_alone = self._stands_alone(query)
        # Sessions ranked as whole documents, asked in the same store batch as the memories.
        session_op = self._session_op(namespace, where, query)
        found, session_hits = self._search(
            namespace, where, modes, query, vector, with_vectors=feedback, stand_alone=stand_alone,
            extra=[session_op] if session_op else [],
        )
        rankings += found
        sessions = [hit.item.metadata.get("session_id") for hit in session_hits[0]] if session_hits else []
        by_value: dict[str, StoredItem] = {}
        fused = self._fuse(rankings, by_value)
        if feedback and fused:
            # Pseudo-relevance feedback: BM25 on the question plus the best memories' text, dense
            # on the question's vector moved towards theirs (Rocchio: no second embedding).
            top = [v for v, _ in fused[: self.config.feedback_docs]]
            again = [m for m in modes if m[0] in self.config.feedback_modes]
            text = "\n".join([query, *(by_value[v].text[:FEEDBACK_CHARS] for v in top)])
            text = text[: self.store.limits.max_text_chars]
            moved = _rocchio(vector, top, rankings) if vector is not None else None
            if moved is None:
                again = [m for m in again if m[0] != "dense"]
            found, _ = self._search(namespace, where, again, text, moved, stand_alone=stand_alone)
            rankings += [(ranking, weight * self.config.feedback_weight) for ranking, weight in found]
            fused = self._fuse(rankings, by_value)
        window = self.time_window(query, reference_time)
        if self.config.fusion == "learned":  # the model scores every candidate; speaker and session are features
            from ltm_agent.retrieval.learned import learned_fusion

            fused = learned_fusion(query, rankings, by_value, fused, self.config, window, sessions=sessions)
            if self.config.utility_weight or self.config.heat_weight:  # opt-in; off by default
                fused = _mix_usage(fused, by_value, self.config)
        else:
            fused = default_order(query, fused, by_value, self.config, sessions=sessions)
        if window is not None:
            fused = stable_partition(fused, lambda vs: window.contains(event_time(by_value[vs[0]])))
        chosen = fused if depth is None else fused[:depth]
        return [(by_value[v], score) for v, score in chosen]

    def _stands_alone(self, query: str) -> Callable[[StoredItem], bool] | None:
        """Which turns too long for a context key stand for themselves in the context rankings
        (``long_turns_as_context``); ``None``: none."""
        policy = self.config.long_turns_as_context
        if policy == "always" or (policy in ("recall", "user") and asks_what_was_said(query)):
            return carries_own_context
        if policy == "user":
            return _long_user_turn
        return None

    def _session_op(self, namespace: Namespace, where: dict, query: str) -> SearchOp | None:
        """The search that ranks sessions by BM25 over each session's turns as one document
        (``None`` when the settings leave the session ranking, keyword search or turns out).
        The learned fusion does not use it, except as the default order it is trained against."""
        config = self.config
        turn = str(RecordKind.TURN)
        if not (config.session_weight and config.session_keyword_weight and config.hybrid and turn in config.units):
            return None
        if config.fusion == "learned":
            from ltm_agent.retrieval.learned import capturing

            if not capturing():  # the model's order does not read it: no search for nothing
                return None
        where = {**where, "kind": {"$in": [turn]}}
        return SearchOp(namespace, query, "keyword", where, config.candidates, group_by="session_id")

    def _search(
        self,
        namespace: Namespace,
        where: dict,
        modes: Sequence[tuple[str, Sequence[str], float]],
        text: str,
        vector: np.ndarray | None,
        *,
        with_vectors: bool = False,
        stand_alone: Callable[[StoredItem], bool] | None = None,
        extra: Sequence[SearchOp] = (),
    ) -> tuple[list[tuple[list[ScoredItem], float]], list[list[ScoredItem]]]:
        """One store search per mode (all its unit kinds at once), split into a ranking per kind
        (the turns ``stand_alone`` picks join the context ranking); ``extra`` searches run in
        the same store batch and come back as they are, second."""
        limit = self.config.candidates
        ops = [
            SearchOp(
                namespace, text, mode, {**where, "kind": {"$in": list(units)}}, limit * len(units),
                vector=vector if mode == "dense" else None, with_vectors=with_vectors and mode == "dense",
            )
            for mode, units, _ in modes
        ]
        results = self.store.batch([*ops, *extra])
        out: list[tuple[list[ScoredItem], float]] = []
        for (mode, units, weight), found in zip(modes, results[: len(ops)], strict=True):
            groups = [[u] for u in units] if self.config.split_units else [list(units)]
            for group in groups:
                # A turn too long for a context key stands for itself in the context ranking:
                # otherwise its short neighbours, found through their keys, gain a ranking it cannot.
                alone = stand_alone if group == [str(RecordKind.CONTEXT)] else None
                ranking = [
                    s for s in found if s.item.metadata.get("kind") in group or (alone is not None and alone(s.item))
                ][:limit]
                if mode != "dense":
                    out.append((ranking, weight))
                    continue
                # No similarity is no evidence: hits at cosine <= 0 would tie, share rank 1 in fusion
                # and bury what keyword search found. They stay candidates, after all evidence.
                out.append(([s for s in ranking if s.score > 0.0], weight))
                out.append(([s for s in ranking if s.score <= 0.0], 0.0))
        return out, results[len(ops) :]

    def _fuse(
        self, rankings: Sequence[tuple[list[ScoredItem], float]], by_value: dict[str, StoredItem]
    ) -> list[tuple[str, float]]:
        """RRF at the level of what is rendered (the source turns): a turn found through
        its own key and through its context key counts as one memory."""
        keys: list[list[str]] = []
        scores: list[list[float]] = []
        for ranking, _ in rankings:
            seen: dict[str, float] = {}
            for scored in ranking:
                value = _value_key(scored.item)
                by_value.setdefault(value, scored.item)
                seen.setdefault(value, scored.score)
            keys.append(list(seen))
            scores.append(list(seen.values()))
        # Tied scores share a rank and equal fused scores order by value, so the result does
        # not depend on how a store broke ties (by item id, which differs between namespaces).
        return reciprocal_rank_fusion(
            keys, k=self.config.rrf_k, weights=[w for _, w in rankings], scores=scores, tie_key=str
        )

    def retrieve(
        self,
        namespace: Namespace,
        query: str,
        *,
        reference_time: datetime | None = None,
        budget_tokens: int | None = None,
        k: int = 10,
        as_of: datetime | None = None,
        filter: Filter | None = None,
    ) -> list[MemoryItem]:
        """Top ``k`` memories for ``query`` in ``namespace``, packed into ``budget_tokens`` when given.

        Args:
            namespace: Tenant namespace to read (only this one).
            query: The question or message.
            reference_time: When the question is asked (resolves "last week").
            budget_tokens: Token budget for the returned items (greedy packing).
            k: Most items returned.
            as_of: Only episodes that happened on or before this time (facts have
                their own bi-temporal view: ``EpisodicTimeline.facts_as_of``).
            filter: Extra metadata filter.
        """
        # Enough depth for k items even when packing skips some already covered by others;
        # rendered lazily, so packing stops rendering once it holds k items or the budget is full.
        config = self.config.for_query(query)
        ranked = self.ranked_items(
            namespace, query, reference_time=reference_time, as_of=as_of, filter=filter, depth=4 * k + 20
        )
        return pack(render_items(ranked, config, query), budget_tokens, share_dates=config.shares_dates, limit=k)
