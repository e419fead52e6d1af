"""How the read path ranks memories: :class:`RetrievalConfig`, one frozen set of measured settings.

Every field names the measurement behind its default (docs/retrieval.md has the
tables); ablations change one field with :meth:`RetrievalConfig.but`, and a question
type can get its own settings (:meth:`RetrievalConfig.for_query`).

Core types: :class:`RetrievalConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ltm_agent.errors import InvalidInputError
from ltm_agent.records import RecordKind
from ltm_agent.retrieval.query_types import asks_for_a_set, asks_what_was_said

__all__ = ["RetrievalConfig"]


@dataclass(frozen=True, slots=True)
class RetrievalConfig:
    """How the read path ranks memories. Defaults are the measured ``ltm`` configuration.

    Attributes:
        units: Record kinds that are retrievable (raw turns, rounds, windows, facts, ...).
        hybrid: Fuse BM25 with dense search; ``False`` = dense only.
        time_expansion: Move episodes inside the question's time window to the front.
        candidates: Results taken from each of dense and keyword search.
        rrf_k: Reciprocal-rank-fusion constant.
        dense_weight: Weight of the dense ranking in fusion.
        keyword_weight: Weight of the BM25 ranking in fusion.
        widen_days: Margin around a resolved time window (LongMemEval: 2).
        render_dates: Prefix each item's text with its date (counted in its tokens).
        share_dates: With ``render_dates``, give each day's date once: the first memory
            of a day in rank order starts with ``[8 May 2023]``, the later ones of that
            day do not, and a prompt renders them under it
            (:func:`~ltm_agent.llm.render_memory_block` groups a block by day). About 6
            tokens saved per memory whose day is already shown; measured in
            docs/retrieval.md (``ltm-own-dates`` is the ablation).
        speaker_boost: Multiply the fused score of memories said by a speaker the
            query names by ``1 + speaker_boost`` (0 = off).
        split_units: Rank each unit kind separately before fusion (a memory
            matched through several keys gains from each) instead of together.
        dense_units: Unit kinds searched densely (empty = ``units``).
        keyword_units: Unit kinds searched with BM25 (empty = ``units``).
        feedback_docs: Pseudo-relevance feedback on the first this-many fused
            memories (0 = off): BM25 again with the question plus their text, dense
            again with the question's vector moved to the mean of theirs (Rocchio),
            both joining the fusion. A second hop finds memories that share words
            with the best hits but not with the question.
        feedback_weight: Fusion weight of the feedback rankings (times the mode's weight).
        feedback_modes: Which modes search again (``"dense"``, ``"keyword"``).
        utility_weight: Opt-in usage mix (0 = off, the default): add
            ``utility_weight * tanh(utility)`` to each memory's fused score, where
            ``utility`` is what :func:`ltm_agent.evolution.feedback` recorded.
        heat_weight: Opt-in: add ``heat_weight * heat`` (MemoryOS heat: visits times
            recency with a 24 h time constant, :func:`ltm_agent.evolution.heat`).
        session_weight: Fuse a ranking of sessions (by their best memories' fused
            scores) into the memories' ranking with this weight (0 = off;
            :func:`~ltm_agent.retrieval.sessions.fuse_session_ranking`). Measured on
            the dev files: LongMemEval session recall_all@5 up, LoCoMo recall@1024t up.
        session_keyword_weight: With ``session_weight``, also rank whole sessions by BM25
            (each session's turns as one document; a store search with
            ``group_by="session_id"``) and fuse that ranking, with this weight, into the
            session ranking (0 = off). It finds a session whose turns share the
            question's words between them when no single turn does. Measured on the dev
            files (``ltm-no-session-bm25`` is the ablation): with the user's long turns
            in the context rankings (the default), LoCoMo recall@1024t .858 -> .861
            (multi-hop .619 -> .626) and LongMemEval recall@2048t .990 -> .987, session
            recall_all@5 .925 both; before that rule, LongMemEval recall@2048t .969 -> .985
            and session recall_all@5 .892 -> .903 (docs/retrieval.md).
        session_diversity: Greedy re-ordering over sessions: a memory's score is
            divided by ``1 + session_diversity * n`` for the ``n`` memories of its
            session placed before it (0 = off;
            :func:`~ltm_agent.retrieval.sessions.diversify_sessions`).
        long_turns_as_context: When a turn too long to get a context key
            (:func:`~ltm_agent.units.carries_own_context`) joins the context
            rankings as itself, so that its short neighbours, found through their
            keys, do not outrank it by a ranking it cannot have: ``"user"`` (the
            default) a turn the user said (``role="user"``) on every question, and
            any long turn on a question about what the assistant said
            (:func:`asks_what_was_said`: "you mentioned ...", "our previous chat ...",
            "remind me ..."); ``"recall"`` only on such a question (the default
            before, measured against: ``ltm-recall-long-turns``); ``"always"``;
            ``"never"``. Always would flood other questions with long assistant
            turns (measured: LongMemEval multi-session r@2048t .931 -> .542); the
            user's long turns are what they said happened, and standing alone
            raised LongMemEval recall@1024t .916 -> .964.
        excerpt_tokens: Render a memory longer than this many tokens as its
            sentences that best match the question, within this many tokens
            (0 = whole memories; :func:`~ltm_agent.retrieval.excerpts.excerpt`).
            Measured on the dev files (an excerpt that cut the gold answer not
            credited): 96 raised LongMemEval recall@1024t .851 -> .900 and left
            LoCoMo's unchanged; 64 raised LongMemEval further but lowered LoCoMo.
        excerpt_when_recalling: Excerpt also for a question about what the assistant
            said (:func:`asks_what_was_said`). Off: such a question gets whole turns,
            since its answer is often a detail of a long assistant turn that a
            sentence match cuts (measured on LongMemEval single-session-assistant).
        fusion: ``"rrf"`` (reciprocal-rank fusion, speaker boost, session ranking) or
            ``"learned"``: a logistic model over every ranking's rank and score replaces
            those three (:mod:`ltm_agent.retrieval.learned`; cross-validated numbers in
            docs/retrieval.md). The time-window partition applies after either.
        for_sets: Settings used instead for a question that asks for a set
            (:func:`~ltm_agent.retrieval.query_types.asks_for_a_set`: "What books has
            Melanie read?", "How many tournaments has Nate won?"), as ``(field, value)``
            pairs, e.g. ``(("session_diversity", 0.2),)``; empty = off (the default).
            Such evidence is often one turn in each of several sessions.
    """

    units: tuple[str, ...] = (str(RecordKind.TURN), str(RecordKind.CONTEXT))
    hybrid: bool = True
    time_expansion: bool = True
    candidates: int = 100
    rrf_k: float = 20.0
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    widen_days: float = 2.0
    render_dates: bool = True
    share_dates: bool = True
    speaker_boost: float = 0.6
    split_units: bool = True
    dense_units: tuple[str, ...] = ()
    keyword_units: tuple[str, ...] = ()
    feedback_docs: int = 3
    feedback_weight: float = 0.5
    feedback_modes: tuple[str, ...] = ("dense", "keyword")
    utility_weight: float = 0.0
    heat_weight: float = 0.0
    session_weight: float = 1.0
    session_keyword_weight: float = 1.0
    session_diversity: float = 0.0
    excerpt_tokens: int = 96
    excerpt_when_recalling: bool = False
    long_turns_as_context: Literal["never", "recall", "user", "always"] = "user"
    fusion: Literal["rrf", "learned"] = "rrf"
    for_sets: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        known = set(self.__dataclass_fields__) - {"for_sets"}
        for pair in self.for_sets:
            if not (isinstance(pair, tuple) and len(pair) == 2 and pair[0] in known):
                raise InvalidInputError(
                    f"RetrievalConfig.for_sets takes (field, value) pairs naming other RetrievalConfig fields; "
                    f"got {pair!r} ({type(pair).__name__}); use e.g. (('session_diversity', 0.2),)"
                )

    def for_query(self, query: str) -> RetrievalConfig:
        """The settings for this question: ``self``, or with ``for_sets`` applied when it asks for a set.

        Example:
            >>> config = RetrievalConfig(for_sets=(("session_diversity", 0.2),))
            >>> config.for_query("What books has Melanie read?").session_diversity
            0.2
            >>> config.for_query("When did Melanie read it?") is config
            True
        """
        if not self.for_sets or not asks_for_a_set(query):
            return self
        return replace(self, **dict(self.for_sets), for_sets=())  # type: ignore[arg-type]

    @property
    def shares_dates(self) -> bool:
        """Whether rendered memories give each day's date once (``render_dates`` and ``share_dates``)."""
        return self.render_dates and self.share_dates

    def but(self, **changes: object) -> RetrievalConfig:
        """A copy with some fields changed (for ablations)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def excerpt_budget(self, query: str) -> int:
        """The excerpt size for this question: ``excerpt_tokens``, or 0 (whole memories)
        for a question about what the assistant said unless ``excerpt_when_recalling``.

        Example:
            >>> config = RetrievalConfig(excerpt_tokens=64)
            >>> config.excerpt_budget("Where did I park?"), config.excerpt_budget("You mentioned a tram. Which one?")
            (64, 0)
        """
        if not self.excerpt_tokens or (not self.excerpt_when_recalling and asks_what_was_said(query)):
            return 0
        return self.excerpt_tokens
