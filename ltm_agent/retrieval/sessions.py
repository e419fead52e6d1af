"""Session-level signals on a fused turn ranking: a session ranking fused in, and diversification.

Turn-level fusion scores every memory on its own, so the first places often go
to several turns of one session, and evidence spread over sessions (a person's
hobbies mentioned in four conversations) waits behind them. Two measured,
opt-in remedies work on the fused list, before time-aware expansion:

* :func:`fuse_session_ranking` ranks *sessions* by the evidence their memories
  gathered (the sum of their best memories' fused scores), fused with any
  independent session ranking (the retriever adds BM25 over whole sessions), and
  fuses that ranking in as one more reciprocal-rank term: every memory of the
  session in rank ``r`` gains ``weight / (k + r)``. It is a separate ranking, so
  a session that many rankings agree on lifts its memories by rank, not by raw score.
* :func:`diversify_sessions` re-orders greedily (maximal marginal relevance over
  sessions): each memory's score is divided by ``1 + penalty * n``, where ``n``
  is how many memories of its session were already placed, so the budget
  reaches more sessions before it spends a second item on one.

Core functions: :func:`fuse_session_ranking`, :func:`diversify_sessions`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from ltm_agent.retrieval.fusion import reciprocal_rank_fusion

__all__ = ["diversify_sessions", "fuse_session_ranking"]

V = TypeVar("V")

SESSION_TOP = 3
"""Memories of a session whose fused scores make its session score (a few strong
hits, not the session's length)."""


def fuse_session_ranking(
    fused: Sequence[tuple[V, float]],
    session_of: Callable[[V], Hashable | None],
    *,
    weight: float,
    k: float,
    top: int = SESSION_TOP,
    others: Sequence[tuple[Sequence[Hashable], float]] = (),
) -> list[tuple[V, float]]:
    """Fuse a ranking of sessions into a ranking of memories (reciprocal-rank fusion).

    Args:
        fused: Memories with fused scores, best first.
        session_of: A memory's session (``None``: it has none and gains nothing).
        weight: Weight of the session ranking in the fusion.
        k: The RRF constant of the session ranking.
        top: How many of a session's best memories make its score.
        others: Independent rankings of sessions with their weights (e.g. BM25 over
            whole sessions), fused with the one from the memories' scores (weight 1,
            constant ``k``) into the session ranking. A session only they rank has no
            memory here to lift.

    Returns:
        The memories re-sorted by their new scores (ties keep their order).

    Example:
        >>> fused = [("a1", 0.050), ("b1", 0.049), ("b2", 0.048)]
        >>> [v for v, _ in fuse_session_ranking(fused, lambda v: v[0], weight=1.0, k=20)]
        ['b1', 'b2', 'a1']
    """
    best: dict[Hashable, list[float]] = defaultdict(list)
    for value, score in fused:
        session = session_of(value)
        if session is not None and len(best[session]) < top:
            best[session].append(score)
    order = sorted(best, key=lambda s: -sum(best[s]))  # stable: ties keep first-seen order
    if others:
        rankings = [order, *(ranking for ranking, _ in others)]
        fused_order = reciprocal_rank_fusion(rankings, k=k, weights=[1.0, *(w for _, w in others)])
        order = [session for session, _ in fused_order]
    rank = {session: r for r, session in enumerate(order, start=1)}
    rescored = []
    for value, score in fused:
        session = session_of(value)
        rescored.append((value, score + (weight / (k + rank[session]) if session in rank else 0.0)))
    position = {id(pair): i for i, pair in enumerate(rescored)}
    return sorted(rescored, key=lambda pair: (-round(pair[1], 12), position[id(pair)]))


def diversify_sessions(
    fused: Sequence[tuple[V, float]],
    session_of: Callable[[V], Hashable | None],
    *,
    penalty: float,
) -> list[tuple[V, float]]:
    """Re-order memories so that the first places cover more sessions (greedy MMR over sessions).

    The next memory placed is the one with the highest ``score / (1 + penalty * n)``,
    ``n`` being the memories of its session already placed. Scores returned are
    the original ones; only the order changes. ``penalty = 0`` keeps the order.

    Example:
        >>> fused = [("a1", 1.0), ("a2", 0.9), ("b1", 0.6)]
        >>> [v for v, _ in diversify_sessions(fused, lambda v: v[0], penalty=1.0)]
        ['a1', 'b1', 'a2']
    """
    if penalty <= 0 or len(fused) < 3:
        return list(fused)
    placed: dict[Hashable, int] = defaultdict(int)
    # Lazy greedy: a memory's value only falls as its session fills, so a popped entry whose
    # stored value is still current is the best left (ties: the earlier memory).
    heap = [(-score, i, 0) for i, (_, score) in enumerate(fused)]
    heapq.heapify(heap)
    out: list[tuple[V, float]] = []
    while heap:
        neg, i, seen = heapq.heappop(heap)
        value, score = fused[i]
        session = session_of(value)
        now = placed[session] if session is not None else 0
        if now != seen:
            heapq.heappush(heap, (-score / (1.0 + penalty * now), i, now))
            continue
        out.append((value, score))
        if session is not None:
            placed[session] += 1
    return out
