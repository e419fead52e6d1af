"""Retrieval metrics of the benchmark contract (``BENCHMARKS.md``), from plain data.

Every system is scored by this one module, and only from what
``results.jsonl`` holds, so any run can be re-scored: a ranked list of
retrieved items, each a mapping or object with ``tokens`` (int) and
``sources`` (the turn ids it came from), plus the question's evidence turn
ids and, for LongMemEval, its evidence session ids.

Rules (quoted from the contract):

* **recall@B tokens**: walk the ranking, keep each item while the running
  token total stays ≤ B and *stop at the first item that does not fit*
  (a later, smaller item is not used); covered = union of the kept items'
  sources; score = |evidence ∩ covered| / |evidence|. **recall_all@B** is 1
  when every evidence turn is covered.
* **recall@k / recall_all@k**: the same over the first k items.
* **session_recall_all@k** (LongMemEval): sessions of the covered turns in
  rank order until k distinct sessions; 1 when all evidence sessions are among them.
* An item's ``cut_evidence`` (an excerpt that cut those evidence turns'
  answer; see :func:`ltm_agent.app.bench.retrieval_bench.cut_evidence`) is
  taken out of its sources before any metric.
* **ndcg@10**: binary relevance (an item is relevant when any source is
  evidence), DCG = Σ rel_i / log2(i + 1); the ideal DCG has
  min(10, |evidence|) relevant items first; capped at 1.

A question without evidence has no recall: :func:`score_question` returns
``None`` for it (it is excluded from scoring), the single-metric functions
raise :class:`~ltm_agent.errors.InvalidInputError`.

Core functions: :func:`score_question`, :func:`aggregate`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import NamedTuple, TypedDict

from ltm_agent.errors import InvalidInputError, describe

__all__ = [
    "METRIC_NAMES",
    "RANK_CUTOFFS",
    "TOKEN_BUDGETS",
    "GroupSummary",
    "Summary",
    "aggregate",
    "longmemeval_session_of",
    "ndcg_at_10",
    "recall_all_at_budget",
    "recall_all_at_k",
    "recall_at_budget",
    "recall_at_k",
    "score_question",
    "session_recall_all_at_k",
    "within_budget",
]

TOKEN_BUDGETS = (256, 512, 1024, 2048, 4096)
"""Context-token budgets B of recall@Bt and recall_all@Bt."""
RANK_CUTOFFS = (1, 5, 10)
"""Item cutoffs k of recall@k, recall_all@k and session_recall_all@k."""
_NDCG_CUTOFF = 10

METRIC_NAMES: tuple[str, ...] = (
    *(f"recall@{b}t" for b in TOKEN_BUDGETS),
    *(f"recall_all@{b}t" for b in TOKEN_BUDGETS),
    *(f"recall@{k}" for k in RANK_CUTOFFS),
    *(f"recall_all@{k}" for k in RANK_CUTOFFS),
    *(f"session_recall_all@{k}" for k in RANK_CUTOFFS),
    f"ndcg@{_NDCG_CUTOFF}",
)
"""Every metric name, in report order (``summary.json`` keys)."""


class _Item(NamedTuple):
    tokens: int
    sources: tuple[str, ...]


def longmemeval_session_of(turn_id: str) -> str:
    """The session of a LongMemEval turn id: the part before ``#``.

    A ``~n`` copy marker (see :func:`ltm_agent.loaders.longmemeval_conversation`)
    is dropped, so a kept copy counts as its original session.

    Example:
        >>> longmemeval_session_of("answer_4be1b6b4_2#3"), longmemeval_session_of("s9~2#0")
        ('answer_4be1b6b4_2', 's9')
    """
    session = turn_id.rpartition("#")[0] if "#" in turn_id else turn_id
    base, marker, copy = session.rpartition("~")
    return base if marker and copy.isdigit() else session


def within_budget(retrieved: Sequence[object], budget: int) -> list[object]:
    """The items that fit in ``budget`` tokens: a ranked prefix, stopping at the first misfit.

    Example:
        >>> items = [{"tokens": 100, "sources": ["a"]}, {"tokens": 300, "sources": ["b"]},
        ...          {"tokens": 10, "sources": ["c"]}]
        >>> [i["sources"][0] for i in within_budget(items, 256)]
        ['a']
    """
    parsed = _parse(retrieved)
    return list(retrieved[: _budget_prefix(parsed, budget)])


def recall_at_budget(retrieved: Sequence[object], evidence: Collection[str], budget: int) -> float:
    """Share of evidence turns covered by the items that fit in ``budget`` tokens.

    Example:
        >>> items = [{"tokens": 200, "sources": ["D1:1"]}, {"tokens": 100, "sources": ["D1:2"]}]
        >>> recall_at_budget(items, ["D1:1", "D1:2"], 256)
        0.5
    """
    parsed = _parse(retrieved)
    return _recall(parsed[: _budget_prefix(parsed, budget)], _evidence(evidence))


def recall_all_at_budget(retrieved: Sequence[object], evidence: Collection[str], budget: int) -> float:
    """1.0 when the items that fit in ``budget`` tokens cover every evidence turn, else 0.0.

    Example:
        >>> recall_all_at_budget([{"tokens": 9, "sources": ["a", "b"]}], ["a", "b"], 256)
        1.0
    """
    parsed = _parse(retrieved)
    return _recall_all(parsed[: _budget_prefix(parsed, budget)], _evidence(evidence))


def recall_at_k(retrieved: Sequence[object], evidence: Collection[str], k: int) -> float:
    """Share of evidence turns covered by the first ``k`` items.

    Example:
        >>> recall_at_k([{"tokens": 5, "sources": ["x"]}, {"tokens": 5, "sources": ["a"]}], ["a"], 1)
        0.0
    """
    return _recall(_parse(retrieved)[: _cutoff(k)], _evidence(evidence))


def recall_all_at_k(retrieved: Sequence[object], evidence: Collection[str], k: int) -> float:
    """1.0 when the first ``k`` items cover every evidence turn, else 0.0.

    Example:
        >>> recall_all_at_k([{"tokens": 5, "sources": ["a"]}], ["a", "b"], 5)
        0.0
    """
    return _recall_all(_parse(retrieved)[: _cutoff(k)], _evidence(evidence))


def session_recall_all_at_k(
    retrieved: Sequence[object],
    evidence_sessions: Collection[str],
    k: int,
    session_of: Callable[[str], str] = longmemeval_session_of,
) -> float:
    """1.0 when the first ``k`` distinct sessions of the covered turns hold every evidence session.

    Sessions are taken in rank order (and in ``sources`` order inside an item)
    over the whole ranking; a session seen again does not count twice.

    Example:
        >>> items = [{"tokens": 5, "sources": ["s1#0"]}, {"tokens": 5, "sources": ["s1#4"]},
        ...          {"tokens": 5, "sources": ["s2#1"]}]
        >>> session_recall_all_at_k(items, ["s1", "s2"], 2)
        1.0
    """
    return _session_recall_all(_parse(retrieved), _evidence(evidence_sessions, "sessions"),
                               _cutoff(k), session_of)


def ndcg_at_10(retrieved: Sequence[object], evidence: Collection[str]) -> float:
    """nDCG over the first 10 items with binary relevance, capped at 1.

    Example:
        >>> items = [{"tokens": 5, "sources": ["x"]}, {"tokens": 5, "sources": ["a"]}]
        >>> round(ndcg_at_10(items, ["a"]), 4)
        0.6309
    """
    return _ndcg(_parse(retrieved), _evidence(evidence))


def score_question(
    retrieved: Sequence[object],
    evidence: Collection[str],
    evidence_sessions: Collection[str] = (),
    *,
    session_of: Callable[[str], str] = longmemeval_session_of,
) -> dict[str, float] | None:
    """Every metric of one question, keyed by its ``summary.json`` name.

    Args:
        retrieved: Ranked items with ``tokens`` and ``sources``.
        evidence: The question's evidence turn ids.
        evidence_sessions: LongMemEval ``answer_session_ids``; when given, the
            ``session_recall_all@k`` metrics are included (LoCoMo has none).
        session_of: Maps a turn id to its session id.

    Returns:
        ``{name: score}``, or ``None`` when ``evidence`` is empty: such a
        question has no recall and is excluded from scoring.

    Example:
        >>> row = score_question([{"tokens": 50, "sources": ["s1#2"]}], ["s1#2"], ["s1"])
        >>> row["recall_all@256t"], row["session_recall_all@1"], row["ndcg@10"]
        (1.0, 1.0, 1.0)
    """
    if not evidence:
        return None
    gold = _evidence(evidence)
    items = _parse(retrieved)
    row: dict[str, float] = {}
    for b in TOKEN_BUDGETS:
        row[f"recall@{b}t"] = _recall(items[: _budget_prefix(items, b)], gold)
    for b in TOKEN_BUDGETS:
        row[f"recall_all@{b}t"] = _recall_all(items[: _budget_prefix(items, b)], gold)
    for k in RANK_CUTOFFS:
        row[f"recall@{k}"] = _recall(items[:k], gold)
    for k in RANK_CUTOFFS:
        row[f"recall_all@{k}"] = _recall_all(items[:k], gold)
    if evidence_sessions:
        sessions = _evidence(evidence_sessions, "sessions")
        for k in RANK_CUTOFFS:
            row[f"session_recall_all@{k}"] = _session_recall_all(items, sessions, k, session_of)
    row[f"ndcg@{_NDCG_CUTOFF}"] = _ndcg(items, gold)
    return row


class GroupSummary(TypedDict):
    """Mean of each metric over ``n`` scored questions."""

    n: int
    metrics: dict[str, float]


class Summary(TypedDict):
    """What :func:`aggregate` returns: all questions, and per category (or type)."""

    overall: GroupSummary
    by_category: dict[str, GroupSummary]


def aggregate(rows: Iterable[Mapping[str, object] | None]) -> Summary:
    """Mean of every metric, overall and per ``category``.

    Rows are :func:`score_question` results, each with a ``"category"`` key
    added (LoCoMo category, LongMemEval question type); ``None`` rows
    (unscored questions) are skipped, keys that are not metric names ignored.
    A metric missing from some rows is averaged over the rows that have it.

    Example:
        >>> summary = aggregate([{"category": "1", "recall@1": 1.0}, {"category": "2", "recall@1": 0.0}])
        >>> summary["overall"], summary["by_category"]["2"]
        ({'n': 2, 'metrics': {'recall@1': 0.5}}, {'n': 1, 'metrics': {'recall@1': 0.0}})
    """
    kept = [row for row in rows if row is not None]
    groups: dict[str, list[Mapping[str, object]]] = {}
    for row in kept:
        category = row.get("category")
        if category is not None:
            groups.setdefault(str(category), []).append(row)
    return Summary(
        overall=_means(kept),
        by_category={name: _means(groups[name]) for name in sorted(groups, key=_natural)},
    )


# ---------------------------------------------------------------------------


def _means(rows: list[Mapping[str, object]]) -> GroupSummary:
    metrics: dict[str, float] = {}
    for name in METRIC_NAMES:
        values = [float(row[name]) for row in rows if row.get(name) is not None]  # type: ignore[arg-type]
        if values:
            metrics[name] = math.fsum(values) / len(values)
    return GroupSummary(n=len(rows), metrics=metrics)


def _natural(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def _parse(retrieved: Sequence[object]) -> list[_Item]:
    if isinstance(retrieved, (str, bytes, Mapping)) or not isinstance(retrieved, Sequence):
        raise InvalidInputError(
            f"retrieved must be a ranked list of items, got {describe(retrieved)}; "
            f"pass the 'retrieved' list of a results.jsonl row"
        )
    return [_item(entry, rank) for rank, entry in enumerate(retrieved, start=1)]


def _item(entry: object, rank: int) -> _Item:
    if isinstance(entry, Mapping):
        tokens, sources, cut = entry.get("tokens"), entry.get("sources"), entry.get("cut_evidence")
    else:
        tokens, sources, cut = getattr(entry, "tokens", None), getattr(entry, "sources", None), None
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        raise InvalidInputError(
            f"retrieved item {rank} needs 'tokens', a non-negative int, got {describe(tokens)}; "
            f"count the rendered text with ltm_agent.tokens.count_tokens()"
        )
    if isinstance(sources, (str, bytes)) or not isinstance(sources, (list, tuple)) or not all(
        isinstance(s, str) for s in sources
    ):
        raise InvalidInputError(
            f"retrieved item {rank} needs 'sources', a list of turn ids, got {describe(sources)}; "
            f"list the ids of the turns the item came from"
        )
    if cut:  # an excerpt that cut these evidence turns' answer does not cover them
        dropped = set(cut)
        sources = [s for s in sources if s not in dropped]
    return _Item(tokens, tuple(sources))


def _evidence(evidence: Collection[str], what: str = "turns") -> frozenset[str]:
    if isinstance(evidence, str):
        raise InvalidInputError(
            f"evidence must be a collection of ids, got {describe(evidence)}; wrap it: [{evidence!r}]"
        )
    gold = frozenset(evidence)
    if not gold:
        raise InvalidInputError(
            f"no evidence {what}: recall is undefined; skip the question "
            f"(ltm_agent.app.bench.datasets.is_scored) or use score_question(), which returns None"
        )
    return gold


def _cutoff(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidInputError(f"k must be a positive int, got {describe(k)}; use 1, 5 or 10")
    return k


def _budget_prefix(items: list[_Item], budget: int) -> int:
    """How many leading items fit in ``budget`` tokens (stop at the first that does not)."""
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
        raise InvalidInputError(
            f"budget must be a non-negative int of tokens, got {describe(budget)}; e.g. 1024"
        )
    total = 0
    for count, item in enumerate(items):
        total += item.tokens
        if total > budget:
            return count
    return len(items)


def _covered(items: Iterable[_Item]) -> set[str]:
    return {source for item in items for source in item.sources}


def _recall(items: list[_Item], gold: frozenset[str]) -> float:
    return len(gold & _covered(items)) / len(gold)


def _recall_all(items: list[_Item], gold: frozenset[str]) -> float:
    return 1.0 if gold <= _covered(items) else 0.0


def _session_recall_all(
    items: list[_Item], gold: frozenset[str], k: int, session_of: Callable[[str], str]
) -> float:
    seen: set[str] = set()
    for item in items:
        for source in item.sources:
            session = session_of(source)
            if session in seen:
                continue
            if len(seen) == k:
                return 1.0 if gold <= seen else 0.0
            seen.add(session)
    return 1.0 if gold <= seen else 0.0


def _ndcg(items: list[_Item], gold: frozenset[str]) -> float:
    dcg = sum(
        1.0 / math.log2(i + 1)
        for i, item in enumerate(items[:_NDCG_CUTOFF], start=1)
        if not gold.isdisjoint(item.sources)
    )
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(_NDCG_CUTOFF, len(gold)) + 1))
    return min(1.0, dcg / ideal)
