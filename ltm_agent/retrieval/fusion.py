"""Rank fusion: combine several rankings of the same ids into one.

Core function: :func:`reciprocal_rank_fusion` (Cormack et al., 2009).
"""

from __future__ import annotations

from typing import Hashable, Sequence, TypeVar

__all__ = ["reciprocal_rank_fusion"]

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]],
    *,
    k: float = 60.0,
    weights: Sequence[float] | None = None,
) -> list[tuple[K, float]]:
    """Fuse rankings by summing ``weight / (k + rank)`` (rank from 1).

    Ties keep the order in which ids were first seen, so the result is
    deterministic.

    Example:
        >>> [i for i, _ in reciprocal_rank_fusion([["a", "b"], ["b", "c"]])]
        ['b', 'a', 'c']
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[K, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    first_seen = {key: i for i, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))
