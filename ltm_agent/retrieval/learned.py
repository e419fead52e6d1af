"""Learned fusion: a small logistic model scores each candidate from every ranking's rank and score.

The default read path fuses its rankings by weighted reciprocal-rank fusion,
then applies a speaker boost and a fused session ranking, all with hand-set
weights. ``RetrievalConfig(fusion="learned")`` replaces those three steps by a
logistic regression over a short, named list of features of each candidate
(:data:`FEATURES`, computed by :func:`candidate_features`, the one function used
both to train and to read); the time-window partition still applies after it.

The shipped weights (``learned_fusion.json`` beside this module) were fitted on
the development files only, by ``ltm-agent bench train-fusion``, which also
cross-validates them by conversation (see ``docs/retrieval.md``). Other weights
are tried with :func:`use_fusion_model`.

Core types: :class:`FusionModel`, :data:`FEATURES`. Core functions:
:func:`candidate_features`, :func:`learned_fusion`, :func:`fit_logistic`,
:func:`default_model`, :func:`use_fusion_model`, :func:`capture_candidates`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ltm_agent.errors import DataFormatError, InvalidInputError, describe
from ltm_agent.records import ScoredItem, StoredItem
from ltm_agent.retrieval.hybrid import _value_key, default_order, speakers_named
from ltm_agent.retrieval.query_types import asks_what_was_said
from ltm_agent.retrieval.rendering import event_time
from ltm_agent.retrieval.sessions import SESSION_TOP
from ltm_agent.units import carries_own_context

if TYPE_CHECKING:
    from ltm_agent.retrieval.config import RetrievalConfig
    from ltm_agent.retrieval.time_window import TimeWindow

__all__ = [
    "FEATURES",
    "RANKINGS",
    "CandidateSet",
    "FusionModel",
    "candidate_features",
    "capture_candidates",
    "capturing",
    "default_model",
    "fit_logistic",
    "learned_fusion",
    "ranking_names",
    "rrf_order",
    "use_fusion_model",
]

WEIGHTS_FILE = "learned_fusion.json"
"""The shipped weights, package data of :mod:`ltm_agent.retrieval`."""

RANKINGS = tuple(
    f"{mode}_{unit}_{stage}" for stage in ("first", "feedback") for mode in ("dense", "keyword") for unit in ("turn", "context")
)
"""The rankings of the default configuration: dense / keyword x unit kind x first pass / feedback."""

SESSION_AGREEMENT_TOP = 10
"""The fused candidates whose sessions ``session_share`` counts."""

FEATURES: tuple[str, ...] = (
    *(f"rr_{name}" for name in RANKINGS),  # 1 / (rrf_k + rank), 0 when absent
    *(f"score_{name}" for name in RANKINGS),  # score / the ranking's best score, 0 when absent
    "rr_fused",  # 1 / (rrf_k + rank) in the RRF fusion of all rankings
    "rr_default",  # 1 / (rrf_k + rank) in the default order (RRF, speaker boost, session ranking)
    "speaker_match",  # the query names the memory's speaker
    "in_window",  # inside the question's time window (order-neutral: the partition comes after)
    "long_turn",  # a turn too long for a context key (it carries its own context)
    "assistant",  # said by the assistant
    "log_chars",  # log(1 + characters of the memory)
    "session_share",  # share of the top fused candidates from the memory's session
    "session_rr",  # 1 / (rrf_k + rank) of its session in the fused session ranking
    "asks_said",  # the question asks what the assistant said (asks_what_was_said)
    "asks_said_x_assistant",
    "asks_said_x_long_turn",
)
"""Every feature, in the column order of :func:`candidate_features`."""

_COLUMN = {name: i for i, name in enumerate(FEATURES)}


def ranking_names(config: RetrievalConfig, count: int) -> list[str | None]:
    """The name of each ranking the read path built, in its order (``None``: not a feature).

    Mirrors :meth:`HybridRetriever._search`: per mode, per unit group, one ranking
    (dense: two, the second holding hits at cosine <= 0 with weight 0). The
    feedback pass searches again with ``feedback_modes``, without dense when no
    moved vector was found; ``count`` (how many rankings there are) tells which.
    """
    modes = [("dense", config.dense_units or config.units)]
    if config.hybrid:
        modes.append(("keyword", config.keyword_units or config.units))

    def names(chosen: Sequence[tuple[str, Sequence[str]]], stage: str) -> list[str | None]:
        out: list[str | None] = []
        for mode, units in chosen:
            for group in [[u] for u in units] if config.split_units else [list(units)]:
                out.append(f"{mode}_{'+'.join(group)}_{stage}")
                if mode == "dense":
                    out.append(None)  # no similarity is no evidence: kept out of the features
        return out

    first = names(modes, "first")
    again = [m for m in modes if m[0] in config.feedback_modes]
    for feedback in (names(again, "feedback"), names([m for m in again if m[0] != "dense"], "feedback"), []):
        if len(first) + len(feedback) == count:
            return first + feedback
    raise InvalidInputError(f"cannot name {count} rankings for this configuration ({len(first)} in the first pass)")


def candidate_features(
    query: str,
    rankings: Sequence[tuple[list[ScoredItem], float]],
    by_value: dict[str, StoredItem],
    fused: Sequence[tuple[str, float]],
    config: RetrievalConfig,
    window: TimeWindow | None,
) -> np.ndarray:
    """The feature matrix of the fused candidates (one row per ``fused`` entry, columns :data:`FEATURES`).

    Args:
        query: The question.
        rankings: The read path's rankings with their fusion weights, in its order.
        by_value: Each candidate's stored item.
        fused: The RRF fusion of ``rankings`` (candidate, score), best first.
        config: The retrieval configuration (``rrf_k``, unit layout).
        window: The question's time window, or ``None``.

    Raises:
        InvalidInputError: A ranking of this configuration has no feature (e.g.
            ``split_units=False``): the model knows only :data:`RANKINGS`.
    """
    k = config.rrf_k
    row = {value: i for i, (value, _) in enumerate(fused)}
    out = np.zeros((len(fused), len(FEATURES)), dtype=np.float64)
    for name, (ranking, _) in zip(ranking_names(config, len(rankings)), rankings, strict=True):
        if name is None:
            continue
        if name not in RANKINGS:
            raise InvalidInputError(
                f"fusion='learned' knows the rankings {list(RANKINGS)}, but this configuration builds {name!r}; "
                f"use the default units, split_units=True and hybrid=True, or fusion='rrf'"
            )
        rr, sc = _COLUMN[f"rr_{name}"], _COLUMN[f"score_{name}"]
        best = max((s.score for s in ranking), default=0.0)
        rank, previous, seen = 0, None, set()
        for position, scored in enumerate(ranking, start=1):
            if scored.score != previous:  # tied scores share a rank, as in the fusion
                rank, previous = position, scored.score
            value = _value_key(scored.item)
            if value in seen or value not in row:
                continue
            seen.add(value)
            out[row[value], rr] = 1.0 / (k + rank)
            out[row[value], sc] = scored.score / best if best > 0 else 0.0
    items = [by_value[v] for v, _ in fused]
    for position, (value, _) in enumerate(rrf_order(query, fused, by_value, config), start=1):
        out[row[value], _COLUMN["rr_default"]] = 1.0 / (k + position)
    named = speakers_named(query, items)
    said = 1.0 if asks_what_was_said(query) else 0.0
    sessions = [item.metadata.get("session_id") for item in items]
    top = Counter(s for s in sessions[:SESSION_AGREEMENT_TOP] if s is not None)
    best_scores: dict[object, list[float]] = {}
    for session, (_, score) in zip(sessions, fused, strict=True):
        if session is not None and len(best_scores.setdefault(session, [])) < SESSION_TOP:
            best_scores[session].append(score)
    session_rank = {s: r for r, s in enumerate(sorted(best_scores, key=lambda s: -sum(best_scores[s])), start=1)}
    for i, (item, session) in enumerate(zip(items, sessions, strict=True)):
        meta = item.metadata
        long_turn = 1.0 if carries_own_context(item) else 0.0
        assistant = 1.0 if str(meta.get("role", "")) == "assistant" else 0.0
        out[i, _COLUMN["rr_fused"]] = 1.0 / (k + i + 1)
        out[i, _COLUMN["speaker_match"]] = 1.0 if str(meta.get("speaker", "")).lower() in named else 0.0
        out[i, _COLUMN["in_window"]] = 1.0 if window is not None and window.contains(event_time(item)) else 0.0
        out[i, _COLUMN["long_turn"]] = long_turn
        out[i, _COLUMN["assistant"]] = assistant
        out[i, _COLUMN["log_chars"]] = math.log1p(len(item.text))
        if session is not None:
            out[i, _COLUMN["session_share"]] = top[session] / SESSION_AGREEMENT_TOP
            out[i, _COLUMN["session_rr"]] = 1.0 / (k + session_rank[session])
        out[i, _COLUMN["asks_said"]] = said
        out[i, _COLUMN["asks_said_x_assistant"]] = said * assistant
        out[i, _COLUMN["asks_said_x_long_turn"]] = said * long_turn
    return out


@dataclass(frozen=True)
class FusionModel:
    """Logistic-regression weights over standardised :data:`FEATURES`.

    ``score(x) = bias + sum(weights * (x - mean) / std)`` (a log-odds that the
    memory is evidence); only the order matters to the read path.

    Example:
        >>> m = FusionModel.of({"rr_fused": 1.0})
        >>> m.score(np.eye(len(FEATURES))[[_COLUMN["rr_fused"], 0]]).round(1).tolist()
        [1.0, 0.0]
    """

    features: tuple[str, ...]
    weights: np.ndarray
    bias: float = 0.0
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    about: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if tuple(self.features) != FEATURES:
            missing = [f for f in FEATURES if f not in self.features]
            extra = [f for f in self.features if f not in FEATURES]
            raise DataFormatError(
                f"fusion weights must list exactly the features {list(FEATURES)} in that order, got "
                f"{describe(list(self.features))} (missing {missing}, unknown {extra}); "
                f"retrain them with `ltm-agent bench train-fusion` at this version"
            )
        for name in ("weights", "mean", "std"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (len(FEATURES),):
                raise DataFormatError(
                    f"fusion weights: {name!r} needs {len(FEATURES)} numbers, one per feature, got shape "
                    f"{np.shape(value)}; retrain them with `ltm-agent bench train-fusion`"
                )

    @classmethod
    def of(cls, weights: dict[str, float], bias: float = 0.0) -> FusionModel:
        """A model from named raw-feature weights (no standardisation); unnamed features weigh 0."""
        unknown = sorted(set(weights) - set(FEATURES))
        if unknown:
            raise DataFormatError(f"unknown fusion features {unknown}; choose from {list(FEATURES)}")
        return cls(FEATURES, np.array([float(weights.get(f, 0.0)) for f in FEATURES]), float(bias))

    def score(self, x: np.ndarray) -> np.ndarray:
        """The model's score of each row of ``x`` (columns :data:`FEATURES`)."""
        z = x if self.mean is None else (x - self.mean) / self.std
        return np.asarray(z @ self.weights + self.bias, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (feature names, weights, bias, mean/std, ``about``: how it was made)."""
        return {
            "format": 1,
            "features": list(self.features),
            "weights": [round(float(w), 8) for w in self.weights],
            "bias": round(float(self.bias), 8),
            "mean": None if self.mean is None else [round(float(m), 8) for m in self.mean],
            "std": None if self.std is None else [round(float(s), 8) for s in self.std],
            "about": self.about,
        }

    def save(self, path: str | Path) -> Path:
        """Write the JSON form to ``path``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def from_dict(cls, data: object, source: str = "fusion weights") -> FusionModel:
        """Read the JSON form (raises :class:`~ltm_agent.errors.DataFormatError` naming what is wrong)."""
        if not isinstance(data, dict) or "features" not in data or "weights" not in data:
            raise DataFormatError(
                f"{source} must be a JSON object with 'features' and 'weights', got {describe(data)}; "
                f"write it with `ltm-agent bench train-fusion --write-weights`"
            )
        try:
            mean = None if data.get("mean") is None else np.asarray(data["mean"], dtype=np.float64)
            std = None if data.get("std") is None else np.asarray(data["std"], dtype=np.float64)
            weights = np.asarray(data["weights"], dtype=np.float64)
            return cls(tuple(data["features"]), weights, float(data.get("bias", 0.0)), mean, std, dict(data.get("about", {})))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, DataFormatError):
                raise
            raise DataFormatError(f"{source}: {exc}; weights, mean and std must be lists of numbers") from exc

    @classmethod
    def load(cls, path: str | Path) -> FusionModel:
        """Read weights written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), str(path))


@lru_cache(maxsize=1)
def default_model() -> FusionModel:
    """The shipped weights (package data, read once)."""
    text = resources.files("ltm_agent.retrieval").joinpath(WEIGHTS_FILE).read_text(encoding="utf-8")
    return FusionModel.from_dict(json.loads(text), f"ltm_agent/retrieval/{WEIGHTS_FILE}")


_MODEL: ContextVar[FusionModel | None] = ContextVar("ltm_fusion_model", default=None)
_CAPTURE: ContextVar[list[CandidateSet] | None] = ContextVar("ltm_fusion_capture", default=None)


@contextmanager
def use_fusion_model(model: FusionModel) -> Iterator[FusionModel]:
    """Rank with ``model`` instead of the shipped weights inside this block (this thread / task only).

    Example:
        >>> with use_fusion_model(FusionModel.of({"rr_fused": 1.0})) as m:
        ...     m.weights[FEATURES.index("rr_fused")]
        np.float64(1.0)
    """
    token = _MODEL.set(model)
    try:
        yield model
    finally:
        _MODEL.reset(token)


@dataclass(frozen=True)
class CandidateSet:
    """One question's candidates as the learned read path saw them (for training).

    ``default_order`` is the default ``fusion="rrf"`` order of the same
    candidates (indexes into ``items``), before the time-window partition.
    """

    items: list[StoredItem]
    features: np.ndarray
    default_order: list[int]


@contextmanager
def capture_candidates() -> Iterator[list[CandidateSet]]:
    """Collect a :class:`CandidateSet` per ``fusion="learned"`` retrieval in this block.

    While capturing, the read path returns the default order (no weights are needed),
    so training data can be gathered before any model exists.
    """
    sink: list[CandidateSet] = []
    token = _CAPTURE.set(sink)
    try:
        yield sink
    finally:
        _CAPTURE.reset(token)


def capturing() -> bool:
    """Whether a :func:`capture_candidates` block is collecting (the read path then needs the default order)."""
    return _CAPTURE.get() is not None


def rrf_order(
    query: str,
    fused: Sequence[tuple[str, float]],
    by_value: dict[str, StoredItem],
    config: RetrievalConfig,
    *,
    sessions: Sequence[Hashable] = (),
) -> list[tuple[str, float]]:
    """The default (``fusion="rrf"``) order of the candidates, as the read path gives it, without
    the opt-in usage mix (the read path applies that to either fusion). ``sessions``: the
    BM25 ranking of whole sessions (the features leave it out: the shipped model was trained
    without it)."""
    return default_order(query, fused, by_value, config, usage=False, sessions=sessions)


def learned_fusion(
    query: str,
    rankings: Sequence[tuple[list[ScoredItem], float]],
    by_value: dict[str, StoredItem],
    fused: Sequence[tuple[str, float]],
    config: RetrievalConfig,
    window: TimeWindow | None,
    *,
    sessions: Sequence[Hashable] = (),
) -> list[tuple[str, float]]:
    """The candidates ordered by the model's score (ties: RRF order); the read path's ``fusion="learned"``.

    While capturing (:func:`capture_candidates`) it returns the default order, built with
    ``sessions`` (the BM25 ranking of whole sessions) as the default read path builds it.
    """
    if not fused:
        return []
    x = candidate_features(query, rankings, by_value, fused, config, window)
    sink = _CAPTURE.get()
    if sink is not None:
        default = rrf_order(query, fused, by_value, config, sessions=sessions)
        index = {v: i for i, (v, _) in enumerate(fused)}
        sink.append(CandidateSet([by_value[v] for v, _ in fused], x, [index[v] for v, _ in default]))
        return default
    scores = (_MODEL.get() or default_model()).score(x)
    order = np.lexsort((np.arange(len(fused)), -scores))  # by score, ties in RRF order
    return [(fused[i][0], float(scores[i])) for i in order]


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    l2: float = 1.0,
    iterations: int = 50,
    about: dict[str, Any] | None = None,
) -> FusionModel:
    """Fit L2-regularised logistic regression by Newton's method (deterministic; numpy only).

    Features are standardised (mean 0, std 1; a constant column keeps std 1);
    the bias is not penalised.

    Example:
        >>> x = np.zeros((4, len(FEATURES))); x[:, 0] = [0, 1, 2, 3]
        >>> bool(fit_logistic(x, np.array([0, 0, 1, 1]), l2=0.1).weights[0] > 0)
        True
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(y) != len(x):
        raise InvalidInputError(f"fit_logistic needs x of shape (n, {len(FEATURES)}) and n labels, got {x.shape} and {y.shape}")
    if not (0 < y.sum() < len(y)):
        raise InvalidInputError("fit_logistic needs both evidence (1) and non-evidence (0) candidates; got one class only")
    w_rows = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-12] = 1.0
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -35, 35)))
        gradient = z.T @ (w_rows * (p - y)) + penalty * beta
        hessian = (z * (w_rows * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return FusionModel(FEATURES, beta[:-1].copy(), float(beta[-1]), mean, std, dict(about or {}))
