"""Rank fusion: combine several rankings of the same ids into one.

Core function: :func:`reciprocal_rank_fusion` (Cormack et al., 2009).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Sequence, TypeVar

__all__ = ["reciprocal_rank_fusion"]

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]],
    *,
    k: float = 60.0,
    weights: Sequence[float] | None = None,
    scores: Sequence[Sequence[float]] | None = None,
    tie_key: Callable[[K], Any] | None = None,
) -> list[tuple[K, float]]:
    """Fuse rankings by summing ``weight / (k + rank)`` (rank from 1).

    Args:
        rankings: Ids, best first, one list per ranking.
        k: The RRF constant.
        weights: One weight per ranking (default 1).
        scores: The score of each id in each ranking; ids with equal scores in a
            ranking share the rank of the first of them, so how a ranker broke
            its own ties does not change the fusion.
        tie_key: Orders ids whose fused scores are equal (default: the order in
            which they were first seen). Either way the result is deterministic.

    Example:
        >>> [i for i, _ in reciprocal_rank_fusion([["a", "b"], ["b", "c"]])]
        ['b', 'a', 'c']
        >>> [i for i, _ in reciprocal_rank_fusion([["b", "a"]], scores=[[1.0, 1.0]], tie_key=str)]
        ['a', 'b']
    """
    weights = weights or [1.0] * len(rankings)
    fused: dict[K, float] = {}
    for index, (ranking, weight) in enumerate(zip(rankings, weights, strict=True)):
        values = scores[index] if scores is not None else None
        rank = 0
        for position, key in enumerate(ranking, start=1):
            if values is None or position == 1 or values[position - 1] != values[position - 2]:
                rank = position
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    if tie_key is None:
        first_seen = {key: i for i, key in enumerate(fused)}
        return sorted(fused.items(), key=lambda kv: (-round(kv[1], 12), first_seen[kv[0]]))
    return sorted(fused.items(), key=lambda kv: (-round(kv[1], 12), tie_key(kv[0])))
