"""``ltm-agent bench train-fusion``: train and cross-validate the learned fusion on the dev files.

1. **Candidates.** Every conversation is ingested as the retrieval benchmark
   does (:class:`~ltm_agent.timeline.EpisodicTimeline` into an ephemeral
   :class:`ChromaStore`, embeddings cached under ``DIR/<dataset>/cache``), and
   each scored question runs the real read path with ``fusion="learned"`` while
   :func:`~ltm_agent.retrieval.learned.capture_candidates` records its
   candidates, their features (the read path's own function), and the default
   RRF order of the same candidates. Label: the memory's sources intersect the
   question's evidence turns.
2. **Cross-validation by conversation** (LoCoMo: the conversation; LongMemEval:
   each question's haystack), folds drawn per data set by ``--seed``. Each fold's
   model is fitted on the other folds of both files; its questions are ranked
   with it (then the time-window partition, as on the read path) and scored by
   :mod:`ltm_agent.app.bench.metrics`, next to the default ranking of the same
   candidates. ``DIR/report.md`` and ``DIR/cv.json``.
3. **Final weights**: one model fitted on every question of both files,
   ``DIR/weights.json`` (and ``--write-weights PATH``), with how it was made.

Core function: :func:`train_fusion`; :func:`register` adds the command.
"""

from __future__ import annotations

import json
import pickle
import shlex
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ltm_agent.app.bench.fusion_report import render_report, summarise
from ltm_agent.app.bench.metrics import score_question
from ltm_agent.dates import day_label
from ltm_agent.embeddings import Embedder
from ltm_agent.errors import InvalidInputError
from ltm_agent.retrieval.learned import FEATURES, FusionModel, fit_logistic
from ltm_agent.tokens import count_tokens

__all__ = ["QuestionCandidates", "TrainRun", "collect_candidates", "register", "train_fusion"]

DEPTH = 200
"""Items of each ranking that are scored (as ``bench retrieval`` keeps: ``systems.DEPTH``)."""
_IN_WINDOW = FEATURES.index("in_window")
TOP = 100
"""Candidates of each question (in the default order) that training looks at."""


@dataclass
class QuestionCandidates:
    """One question's candidates: features, labels, what each renders to, and the default order."""

    dataset: str
    question_id: str
    category: str
    group: str
    features: np.ndarray
    labels: np.ndarray
    tokens: list[int]
    sources: list[tuple[str, ...]]
    default_order: list[int]
    evidence: tuple[str, ...]
    evidence_sessions: tuple[str, ...]
    cut: dict[int, list[str]] = field(default_factory=dict)
    """Candidates rendered as excerpts that cut the gold answer: their evidence turns not credited
    (:func:`~ltm_agent.app.bench.retrieval_bench.cut_evidence`, as ``bench retrieval`` scores them)."""
    days: list[str | None] = field(default_factory=list)
    """Each candidate's day label when its text carries one (``tokens`` count it), for shared dates."""
    undated_tokens: list[int] = field(default_factory=list)
    """Each candidate's tokens without its day label: what it costs when its day was already shown."""

    def ranked(self, order: list[int] | np.ndarray) -> list[dict]:
        """Items in ``order`` after the time-window partition (as the read path), first :data:`DEPTH`,
        each charged as the read path renders it in that order (each day's date once, when ``days``)."""
        inside = self.features[:, _IN_WINDOW] > 0.5
        final = [i for i in order if inside[i]] + [i for i in order if not inside[i]]
        shown: set[str] = set()
        out = []
        for i in final[:DEPTH]:
            day = self.days[i] if self.days else None
            tokens = self.undated_tokens[i] if day is not None and day in shown else self.tokens[i]
            if day is not None:
                shown.add(day)
            out.append({"tokens": tokens, "sources": list(self.sources[i]),
                        **({"cut_evidence": self.cut[i]} if i in self.cut else {})})
        return out

    def score(self, order: list[int] | np.ndarray) -> dict[str, float]:
        row = score_question(self.ranked(order), self.evidence, self.evidence_sessions) or {}
        return {**row, "category": self.category}  # type: ignore[dict-item]


def learned_order(candidates: QuestionCandidates, model: FusionModel) -> np.ndarray:
    """The model's order of the candidates (ties: RRF order), as :func:`learned_fusion` ranks them."""
    scores = model.score(candidates.features)
    return np.lexsort((np.arange(len(scores)), -scores))


def collect_candidates(
    dataset: str,
    data: Path,
    cache_dir: Path,
    *,
    embedder: Embedder | None = None,
    conversations: int | None = None,
    stride: int = 1,
    progress: bool = True,
) -> list[QuestionCandidates]:
    """Run the real read path on every scored question of ``data`` and record its candidates."""
    from tqdm.auto import tqdm

    from ltm_agent.app.bench.cache import CachedEmbedder
    from ltm_agent.app.bench.datasets import is_scored, load_questions
    from ltm_agent.app.bench.retrieval_bench import _select, cut_evidence
    from ltm_agent.embeddings import default_embedder
    from ltm_agent.loaders import load_conversations
    from ltm_agent.memory_stores.chroma import ChromaStore
    from ltm_agent.retrieval import HybridRetriever, RetrievalConfig
    from ltm_agent.retrieval.learned import capture_candidates
    from ltm_agent.retrieval.rendering import to_memory_item
    from ltm_agent.timeline import EpisodicTimeline

    config = RetrievalConfig()
    cached = CachedEmbedder(embedder or default_embedder(), cache_dir / "embeddings.sqlite")
    convs = load_conversations(data, dataset)  # type: ignore[arg-type]
    # --stride picks questions as `bench retrieval --stride` does (before dropping unscored ones): the same sample.
    every = _select(convs, load_questions(data, dataset, conversations=convs), None, stride)  # type: ignore[arg-type]
    plan = [(conv, kept) for conv, qs in every if (kept := [q for q in qs if is_scored(q)])][:conversations]
    store = ChromaStore.ephemeral(embedder=cached)
    retriever = HybridRetriever(store, config.but(fusion="learned"))
    out: list[QuestionCandidates] = []
    bar = tqdm(total=sum(len(qs) for _, qs in plan), desc=f"{dataset} candidates", unit="q", disable=not progress)
    try:
        for conversation, qs in plan:
            namespace = ("train-fusion", conversation.id.replace("/", "_")[:100])
            EpisodicTimeline(store, namespace, units=config.units).ingest(conversation)
            turns = {t.id: t.text for session in conversation.sessions for t in session.turns}
            try:
                for q in qs:
                    with capture_candidates() as sink:
                        retriever.ranked_items(namespace, q.text, reference_time=q.question_time)
                    if not sink:
                        continue  # nothing stored matched at all
                    found = sink[0]
                    evidence = set(q.evidence)
                    rendered = [
                        to_memory_item(item, 0.0, render_dates=config.render_dates, query=q.text,
                                       excerpt_tokens=config.excerpt_budget(q.text))
                        for item in found.items
                    ]
                    # Which day each one shows, and its cost without it: ranked() shares dates per order.
                    days = [day_label(m.time) if config.shares_dates and m.time is not None else None
                            for m in rendered]
                    undated = [count_tokens(m.text.removeprefix(f"{d} ")) if d else m.tokens
                               for m, d in zip(rendered, days, strict=True)]
                    out.append(QuestionCandidates(
                        dataset, q.id, q.category, f"{dataset}:{q.conversation_id}", found.features.astype(np.float32),
                        np.array([not evidence.isdisjoint(m.sources) for m in rendered]),
                        [m.tokens for m in rendered], [tuple(m.sources) for m in rendered], found.default_order,
                        tuple(q.evidence), tuple(q.evidence_sessions) if dataset == "longmemeval" else (),
                        {i: cut for i, m in enumerate(rendered) if (cut := cut_evidence(m.text, m.sources, q, turns))},
                        days, undated,
                    ))
                    bar.update(1)
            finally:
                store.delete(namespace)
    finally:
        bar.close()
        store.close()
        cached.close()
    return out


def assign_folds(candidates: list[QuestionCandidates], folds: int, seed: int) -> dict[str, int]:
    """A fold per conversation, drawn per data set by ``seed`` (conversations spread evenly over folds)."""
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for dataset in sorted({c.dataset for c in candidates}):
        groups = sorted({c.group for c in candidates if c.dataset == dataset})
        for i, index in enumerate(rng.permutation(len(groups))):
            fold_of[groups[int(index)]] = i % folds
    return fold_of


def fit(
    candidates: list[QuestionCandidates],
    l2: float,
    about: dict[str, Any] | None = None,
    *,
    objective: str = "pairwise",
    top: int = TOP,
) -> FusionModel:
    """One model on these questions; each data set weighs the same in the loss, whatever its size.

    Only each question's first ``top`` candidates in the default order are used (0: all): the
    order there is what a budget sees. ``pairwise`` (RankNet-style, linear): logistic regression
    on the feature differences of each (evidence, other) pair of one question, both ways round,
    so the model learns to order candidates within a question; ``pointwise``: on the candidates.
    """
    if objective not in ("pairwise", "pointwise"):
        raise InvalidInputError(f"--objective must be pairwise or pointwise, got {objective!r}")
    counts = Counter(c.dataset for c in candidates)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    for c in candidates:
        keep = np.asarray(c.default_order[:top] if top else c.default_order, dtype=int)
        x, y = c.features[keep].astype(np.float64), c.labels[keep]
        share = 1.0 / (len(counts) * counts[c.dataset])  # a question's weight
        if objective == "pointwise":
            xs.append(x)
            ys.append(y.astype(np.float64))
            ws.append(np.full(len(y), share / len(y)))
            continue
        diff = (x[y][:, None, :] - x[~y][None, :, :]).reshape(-1, x.shape[1])
        if len(diff):
            xs += [diff, -diff]
            ys += [np.ones(len(diff)), np.zeros(len(diff))]
            ws += [np.full(len(diff), share / (2 * len(diff)))] * 2
    if not xs:
        raise InvalidInputError("no question has both evidence and other candidates to learn from")
    weight = np.concatenate(ws)
    return fit_logistic(np.vstack(xs), np.concatenate(ys), sample_weight=weight * len(weight) / weight.sum(), l2=l2,
                        about=about)


def changed(rrf: list[dict], learned: list[dict]) -> dict[str, dict[str, int]]:
    """Per metric and category (``"all"`` too): how many questions the learned order scored higher / lower.

    A small mean difference made of a handful of questions reads differently from one made of many.
    """
    out: dict[str, dict[str, int]] = {}
    for a, b in zip(rrf, learned, strict=True):
        for metric, value in a.items():
            if metric == "category" or metric not in b:
                continue
            for group in ("all", str(a["category"])):
                counts = out.setdefault(f"{group} {metric}", {"up": 0, "down": 0})
                if b[metric] > value + 1e-12:
                    counts["up"] += 1
                elif b[metric] < value - 1e-12:
                    counts["down"] += 1
    return out


def cross_validate(
    candidates: list[QuestionCandidates], folds: int, seed: int, l2: float, *, objective: str = "pairwise", top: int = TOP
) -> dict[str, Any]:
    """Out-of-fold scores of the learned order and the default order, per question, per fold."""
    fold_of = assign_folds(candidates, folds, seed)
    rows: dict[str, dict[str, list[dict]]] = {}
    per_fold: list[dict[str, Any]] = []
    for fold in range(folds):
        test = [c for c in candidates if fold_of[c.group] == fold]
        train = [c for c in candidates if fold_of[c.group] != fold]
        if not test:
            continue
        if not train or not any(c.labels.any() for c in train):
            raise InvalidInputError(f"fold {fold} has no training questions with evidence; use fewer --folds")
        model = fit(train, l2, objective=objective, top=top)
        record: dict[str, Any] = {"fold": fold, "train_questions": len(train), "datasets": {}}
        for dataset in sorted({c.dataset for c in test}):
            mine = [c for c in test if c.dataset == dataset]
            rrf = [c.score(c.default_order) for c in mine]
            learned = [c.score(learned_order(c, model)) for c in mine]
            bucket = rows.setdefault(dataset, {"rrf": [], "learned": []})
            bucket["rrf"] += rrf
            bucket["learned"] += learned
            record["datasets"][dataset] = {
                "questions": len(mine),
                "conversations": len({c.group for c in mine}),
                "rrf": summarise(rrf)["overall"]["metrics"],
                "learned": summarise(learned)["overall"]["metrics"],
            }
        per_fold.append(record)
    return {
        "folds": folds,
        "seed": seed,
        "l2": l2,
        "objective": objective,
        "top": top,
        "datasets": {
            d: {"rrf": summarise(r["rrf"]), "learned": summarise(r["learned"]), "changed": changed(r["rrf"], r["learned"])}
            for d, r in rows.items()
        },
        "per_fold": per_fold,
    }


@dataclass(frozen=True)
class TrainRun:
    """What a run wrote."""

    report: Path
    cv: Path
    weights: Path


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/ltm_agent"],
                               capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+uncommitted" if dirty else head


def train_fusion(
    out: Path,
    *,
    locomo: Path | None = None,
    longmemeval: Path | None = None,
    folds: int = 5,
    seed: int = 0,
    l2: float = 1.0,
    objective: str = "pairwise",
    top: int = TOP,
    stride: int = 1,
    conversations: int | None = None,
    write_weights: Path | None = None,
    reuse: bool = False,
    embedder: Embedder | None = None,
    progress: bool = True,
    command: str | None = None,
) -> TrainRun:
    """Collect candidates, cross-validate by conversation, fit on everything; write report, cv and weights.

    Args:
        out: Output folder (``report.md``, ``cv.json``, ``weights.json``, ``<dataset>/``).
        locomo: A LoCoMo dev file (at least one of ``locomo`` / ``longmemeval``).
        longmemeval: A LongMemEval dev file.
        folds: Cross-validation folds (by conversation).
        seed: Draws the folds.
        l2: L2 penalty of the logistic regression (on standardised features).
        objective: ``pairwise`` or ``pointwise`` (see :func:`fit`).
        top: Candidates per question used in training, in the default order (0: all).
        stride: Only every ``stride``-th LongMemEval question.
        conversations: Only the first this-many conversations of each file (a quick run).
        write_weights: Also write the final weights here (e.g. the package's data file).
        reuse: Reuse ``<dataset>/candidates.pkl`` from an earlier run of the same folder.
        embedder: Embedder (default: the offline MiniLM), cached on disk.
        progress: Show progress bars.
        command: The command line recorded in the weights (default: this process's).
    """
    from ltm_agent.retrieval import RetrievalConfig

    if folds < 2:
        raise InvalidInputError(f"--folds must be at least 2 for cross-validation, got {folds}")
    files = {name: path for name, path in (("locomo", locomo), ("longmemeval", longmemeval)) if path is not None}
    if not files:
        raise InvalidInputError("train-fusion needs --locomo FILE and/or --longmemeval FILE (dev files only)")
    out.mkdir(parents=True, exist_ok=True)
    candidates: list[QuestionCandidates] = []
    for dataset, path in files.items():
        saved = out / dataset / "candidates.pkl"
        # Saved candidates are reused only when made with the same features and rendering.
        made_with = {"features": FEATURES, "config": repr(RetrievalConfig())}
        kept = pickle.loads(saved.read_bytes()) if reuse and saved.exists() else {}
        if not isinstance(kept, dict) or kept.get("made_with") != made_with:
            found = collect_candidates(dataset, path, out / dataset / "cache", embedder=embedder,
                                       conversations=conversations, stride=stride if dataset == "longmemeval" else 1,
                                       progress=progress)
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_bytes(pickle.dumps({"made_with": made_with, "candidates": found}))
        else:
            found = kept["candidates"]
        candidates += found
    cv = cross_validate(candidates, folds, seed, l2, objective=objective, top=top)
    about = {
        "command": command or shlex.join(["ltm-agent", *sys.argv[1:]]),
        "commit": _commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": [
            {"dataset": d, "file": p.name, "bytes": p.stat().st_size,
             "questions": sum(1 for c in candidates if c.dataset == d),
             "conversations": len({c.group for c in candidates if c.dataset == d})}
            for d, p in files.items()
        ],
        "stride_longmemeval": stride,
        "l2": l2,
        "objective": objective,
        "top": top,
        "model": f"{objective} logistic regression (numpy Newton, L2 on standardised features) on each question's "
                 f"first {top or 'all'} candidates of the default order; each data set weighs the same",
    }
    model = fit(candidates, l2, about, objective=objective, top=top)
    weights = model.save(out / "weights.json")
    if write_weights is not None:
        model.save(write_weights)
    cv["weights"] = model.to_dict()
    cv_path = out / "cv.json"
    cv_path.write_text(json.dumps(cv, indent=2), encoding="utf-8")
    report = out / "report.md"
    report.write_text(render_report(cv, about), encoding="utf-8")
    return TrainRun(report, cv_path, weights)


def register(app: Any, bench_app: Any) -> None:
    """Add ``bench train-fusion`` to the CLI."""
    import typer

    @bench_app.command("train-fusion")
    def bench_train_fusion(
        out: Path = typer.Option(..., "--out", help="Output folder: report.md, cv.json, weights.json."),
        locomo: Path | None = typer.Option(None, "--locomo", help="LoCoMo dev file."),
        longmemeval: Path | None = typer.Option(None, "--longmemeval", help="LongMemEval dev file."),
        folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds (by conversation)."),
        seed: int = typer.Option(0, "--seed", help="Draws the folds."),
        l2: float = typer.Option(1.0, "--l2", min=0.0, help="L2 penalty on standardised features."),
        objective: str = typer.Option("pairwise", "--objective", help="pairwise | pointwise logistic regression."),
        top: int = typer.Option(TOP, "--top", min=0, help="Candidates per question used in training (0: all)."),
        stride: int = typer.Option(1, "--stride", min=1, help="Only every K-th LongMemEval question."),
        conversations: int | None = typer.Option(None, "--conversations", min=1,
                                                 help="Only the first N conversations of each file (a quick run)."),
        write_weights: Path | None = typer.Option(None, "--write-weights", help="Also write the final weights here."),
        reuse: bool = typer.Option(False, "--reuse", help="Reuse the candidates an earlier run saved in --out."),
    ) -> None:
        """Train the learned fusion on dev files: cross-validated report, then weights fitted on all of them."""
        run = train_fusion(out, locomo=locomo, longmemeval=longmemeval, folds=folds, seed=seed, l2=l2, objective=objective,
                           top=top, stride=stride,
                           conversations=conversations, write_weights=write_weights, reuse=reuse)
        typer.echo(run.report.read_text(encoding="utf-8"))
        typer.echo(f"wrote {run.report}, {run.cv}, {run.weights}" + (f", {write_weights}" if write_weights else ""))
