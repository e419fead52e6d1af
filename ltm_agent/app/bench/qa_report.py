"""Score a QA run's ``results.jsonl`` and write ``summary.json``, ``report.md`` and a plot.

Line scores are recomputed from each line's ``answer``, ``gold``,
``category`` and ``question_id`` (and its ``judge`` verdict, which only the
judge model can reproduce), so any run can be re-scored from its files:

* **LoCoMo**: ``score`` = ``f1`` = the official per-category score
  (:func:`~ltm_agent.app.bench.qa_metrics.locomo_f1`; category 5 scores 1 when
  the answer says "not mentioned" / "no information available");
  ``exact_match`` and ``token_recall`` on categories 1-4. ``judge`` is always null.
* **LongMemEval**: ``f1`` = stemmed token F1 against the gold (``_abs``
  questions: 1 when the answer abstains); ``exact_match`` and ``token_recall``
  on answerable questions; ``score`` = the judge's verdict when there is one, else ``f1``.

Summary metric names (per system, overall and per category): ``score``
(mean over all questions), ``f1``, ``exact_match`` and ``token_recall`` (the
share of gold tokens the answer contains; answerable questions only),
``abstention_accuracy`` (LoCoMo category 5 / LongMemEval ``_abs``),
``judge_accuracy`` (judged lines), ``abstain_rate_answerable`` (answerable
questions the reader declined). LongMemEval ``_abs`` questions form their
own group, ``"abstention"``.

Core functions: :func:`score_line`, :func:`score_qa_results`, :func:`write_qa_reports`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ltm_agent.app.bench.datasets import Question
from ltm_agent.app.bench.qa_metrics import exact_match, is_abstention, locomo_f1, normalize_answer, token_f1

__all__ = [
    "EXTRACTIVE_NOTE",
    "LOCOMO_CATEGORY_NAMES",
    "QA_METRICS",
    "line_group",
    "plot_qa",
    "render_qa_report",
    "score_line",
    "score_qa_results",
    "token_recall",
    "write_qa_reports",
]

LOCOMO_CATEGORY_NAMES = {"1": "multi-hop", "2": "temporal", "3": "open-domain", "4": "single-hop", "5": "adversarial"}
"""LoCoMo's category numbers by name."""
QA_METRICS = (
    "score", "f1", "exact_match", "token_recall", "abstention_accuracy", "judge_accuracy", "abstain_rate_answerable",
)
"""Metric names of ``summary.json`` (overall; groups carry the same names)."""


def _unanswerable(dataset: str, category: str, question_id: str) -> bool:
    return category == "5" if dataset == "locomo" else question_id.endswith("_abs")


def line_group(row: Mapping[str, Any]) -> str:
    """The breakdown group of a line: LoCoMo category; LongMemEval type, or ``"abstention"`` for ``_abs``."""
    if row["dataset"] == "longmemeval" and str(row["question_id"]).endswith("_abs"):
        return "abstention"
    return str(row["category"])


@lru_cache(maxsize=1)
def _porter() -> Any:
    from nltk.stem import PorterStemmer  # the stemmer of LoCoMo's F1

    return PorterStemmer()


def token_recall(prediction: str, gold: str) -> float:
    """Share of the gold's stemmed tokens (as a multiset) that the prediction contains.

    Says whether a long answer (an extracted sentence) holds the answer, which
    F1 hides behind the sentence's length.

    Example:
        >>> token_recall("Ana: I finally tried that pottery class downtown.", "pottery class")
        1.0
    """
    stem = _porter().stem
    predicted = Counter(stem(w) for w in normalize_answer(prediction).split())
    expected = Counter(stem(w) for w in normalize_answer(gold).split())
    total = sum(expected.values())
    return sum((predicted & expected).values()) / total if total else 0.0


def score_line(row: Mapping[str, Any]) -> dict[str, float | None]:
    """``score``, ``f1``, ``exact_match`` and ``token_recall`` of one results line, from its answer and gold.

    Example:
        >>> score_line({"dataset": "locomo", "category": "5", "question_id": "c/q1",
        ...             "answer": "Not mentioned in memory.", "gold": "a dog", "judge": None})
        {'score': 1.0, 'f1': 1.0, 'exact_match': None, 'token_recall': None}
    """
    dataset, category, answer, gold = row["dataset"], str(row["category"]), str(row["answer"]), str(row["gold"])
    unanswerable = _unanswerable(dataset, category, str(row["question_id"]))
    if dataset == "locomo":
        f1 = locomo_f1(answer, gold, category)
    elif unanswerable:
        f1 = 1.0 if is_abstention(answer) else 0.0
    else:
        f1 = token_f1(answer, gold)
    em = None if unanswerable else exact_match(answer, gold)
    scope = gold.split(";")[0] if dataset == "locomo" and category == "3" else gold  # as LoCoMo's F1 does
    recall = None if unanswerable else token_recall(answer, scope)
    judge = row.get("judge")
    score = float(judge) if judge is not None and dataset == "longmemeval" else f1
    return {"score": score, "f1": f1, "exact_match": em, "token_recall": recall}


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _group_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    scored = [(row, score_line(row)) for row in rows]
    answerable = [(r, s) for r, s in scored if s["exact_match"] is not None]
    unanswerable = [s for _, s in scored if s["exact_match"] is None]
    judged = [float(r["judge"]) for r, _ in scored if r.get("judge") is not None]
    return {
        "n": len(rows),
        "score": _mean([s["score"] for _, s in scored]),  # type: ignore[misc]
        "f1": _mean([s["f1"] for _, s in answerable]),  # type: ignore[misc]
        "exact_match": _mean([s["exact_match"] for _, s in answerable]),  # type: ignore[misc]
        "token_recall": _mean([s["token_recall"] for _, s in answerable]),  # type: ignore[misc]
        "abstention_accuracy": _mean([s["score"] for s in unanswerable]),  # type: ignore[misc]
        "judge_accuracy": _mean(judged),
        "judged": len(judged),
        "abstain_rate_answerable": _mean([float(bool(r.get("abstained"))) for r, _ in answerable]),
    }


def _read_lines(results: Path, questions: Sequence[Question], systems: Sequence[str]) -> dict[str, list[dict]]:
    """The last line of each planned (system, question), per system."""
    planned = {q.id for q in questions}
    latest: dict[str, dict[str, dict]] = {name: {} for name in systems}
    for line in results.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if row.get("system") in latest and row.get("question_id") in planned and "answer" in row:
            latest[row["system"]][row["question_id"]] = row
    return {name: list(rows.values()) for name, rows in latest.items()}


def score_qa_results(results: Path, questions: Sequence[Question], systems: Sequence[str]) -> dict[str, Any]:
    """Per system: QA metrics overall and per group, reader/judge tokens, latency, retrieval metrics."""
    from ltm_agent.app.bench.report import score_results

    retrieval = score_results(results, questions, systems)
    scored: dict[str, Any] = {}
    for name, rows in _read_lines(results, questions, systems).items():
        groups: dict[str, list[dict]] = {}
        for row in rows:
            groups.setdefault(line_group(row), []).append(row)
        overall = _group_metrics(rows)
        prompt = sum(int(r["reader_tokens"]["prompt"]) for r in rows)
        completion = sum(int(r["reader_tokens"]["completion"]) for r in rows)
        scored[name] = {
            "questions": overall.pop("n"),
            "metrics": overall,
            "by_category": {
                g: _group_metrics(groups[g]) for g in sorted(groups, key=lambda g: (not g.isdigit(), g.zfill(4)))
            },
            "reader_tokens": {
                "prompt": prompt,
                "completion": completion,
                "total": prompt + completion,
                "mean_per_question": (prompt + completion) / len(rows) if rows else None,
            },
            "judge_tokens": sum(int(r.get("judge_tokens") or 0) for r in rows),
            "reader_errors": sum(1 for r in rows if r.get("error")),
            "context_tokens_mean": _mean([float(r["context_tokens"]) for r in rows]),
            "context_items_mean": _mean([float(r["context_items"]) for r in rows]),
            "latency_ms_p50": _percentile([float(r["latency_ms"]) for r in rows], 0.50),
            "latency_ms_p95": _percentile([float(r["latency_ms"]) for r in rows], 0.95),
            "reader_latency_ms_p50": _percentile([float(r["reader_latency_ms"]) for r in rows], 0.50),
            "reader_latency_ms_p95": _percentile([float(r["reader_latency_ms"]) for r in rows], 0.95),
            "retrieval_metrics": retrieval[name]["metrics"],
        }
    return scored


def _label(dataset: str, group: str) -> str:
    if dataset == "locomo" and group in LOCOMO_CATEGORY_NAMES:
        return f"{group} {LOCOMO_CATEGORY_NAMES[group]}"
    return group


HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")


def plot_qa(summary: Mapping[str, Any], path: Path) -> Path:
    """Score per category, one bar per system: distinct colours and hatches; ``ltm`` black-edged and first."""
    from ltm_agent.app.bench.report import PALETTE, pyplot

    plt = pyplot()
    dataset, scored = summary["dataset"], summary["systems"]
    names = sorted(scored, key=lambda n: n != "ltm")
    groups = sorted({g for d in scored.values() for g in d["by_category"]}, key=lambda g: (not g.isdigit(), g.zfill(4)))
    columns = [*groups, "overall"]
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(7.0, 1.3 * len(columns)), 4.8))
    top = 0.0
    for i, name in enumerate(names):
        data = scored[name]
        values = [data["by_category"].get(g, {}).get("score") for g in groups] + [data["metrics"]["score"]]
        heights = [v if v is not None else 0.0 for v in values]
        top = max(top, *heights)
        xs = [x + (i - (len(names) - 1) / 2) * width for x in range(len(columns))]
        style = ({"color": "#333333", "edgecolor": "black", "linewidth": 1.2} if name == "ltm"
                 else {"color": PALETTE[i % len(PALETTE)], "edgecolor": "white", "hatch": HATCHES[i % len(HATCHES)]})
        bars = ax.bar(xs, heights, width, label=name, **style)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.set_xticks(range(len(columns)), [_label(dataset, c) for c in columns], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("mean score (F1, abstention or judge; see report)")
    ax.set_ylim(0, min(1.0, max(0.1, top * 1.25)))
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{dataset}: answer score per category (reader {summary.get('reader')}, "
                 f"{summary.get('budget_tokens')} context tokens)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def write_qa_reports(
    dataset: str, out_dir: Path, questions: Sequence[Question], systems: Sequence[str]
) -> tuple[Path, Path]:
    """Score ``out_dir/results.jsonl``; write ``summary.json``, ``report.md`` and ``qa_score_by_category.png``.

    Systems the run could not build (``unavailable.json``) are not scored; their
    reasons go to ``summary.json`` and a "Systems not run" section of ``report.md``.
    """
    from ltm_agent.app.bench.report import read_unavailable

    unavailable = read_unavailable(out_dir, systems)
    scored = score_qa_results(out_dir / "results.jsonl", questions, [s for s in systems if s not in unavailable])
    config = json.loads((out_dir / "qa_config.json").read_text()) if (out_dir / "qa_config.json").exists() else {}
    ingest = json.loads((out_dir / "ingest.json").read_text()) if (out_dir / "ingest.json").exists() else {}
    for name, data in scored.items():
        if name in ingest:
            data["ingest_seconds"] = ingest[name]["seconds"]
    summary = {
        "bench": "qa",
        "dataset": dataset,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reader": config.get("reader"),
        "budget_tokens": config.get("budget_tokens"),
        "judge": config.get("judge"),
        "questions": max((d["questions"] for d in scored.values()), default=0),
        "systems": scored,
        "unavailable": unavailable,
    }
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot_path = plot_qa(summary, out_dir / QA_PLOT_NAME)
    report_path = out_dir / "report.md"
    report_path.write_text(render_qa_report(summary, plot_path.name) + "\n", encoding="utf-8")
    return summary_path, report_path


QA_PLOT_NAME = "qa_score_by_category.png"
EXTRACTIVE_NOTE = (
    "`extractive-fallback`, a deterministic sentence picker and not a language model: it answers with the context "
    "sentence that shares the most words with the question, verbatim. It is **not ALR²** (the library's "
    "retrieve-then-reason step, which rejects quotes memory does not contain and abstains when nothing grounds) "
    "and in practice **cannot abstain**: it declines only when no context sentence shares a fifth of the "
    "question's content words (stemmed), which 1,024 tokens of context almost never allow, so its abstention scores (LoCoMo category 5) are "
    "near zero for every system. With verbatim sentences for answers, F1 against short gold answers is low for "
    "every system; `token_recall` shows whether the answer sentence at least contains the gold answer. The table "
    "compares what each system's retrieval lets one fixed reader say; it is not a measure of answer quality "
    "with an LLM"
)
QA_METRIC_HELP = (
    "- **score**: the data set's official score, averaged over all questions (LoCoMo: token F1 per category, "
    "with category 5 scored 1 when the answer abstains; LongMemEval: the judge's verdict when a judge ran, else F1).\n"
    "- **f1**: token F1 between answer and gold answer (answerable questions only).\n"
    "- **exact_match**: 1 when the normalised answer equals the gold answer.\n"
    "- **token_recall**: share of the gold answer's (stemmed) words that the answer contains.\n"
    "- **abstention_accuracy**: share of unanswerable questions (LoCoMo category 5, LongMemEval `_abs`) "
    "where the reader declined.\n"
    "- **judge_accuracy**: share judged correct by the LLM judge (`-` when no judge ran).\n"
    "- **abstain_rate_answerable**: share of answerable questions the reader declined (lower is better).\n"
    "- **ctx tokens**: mean context given to the reader; **reader tokens**: prompt + completion tokens of the "
    "reader (0 for the extractive reader); latencies are medians per question."
)


def render_qa_report(summary: Mapping[str, Any], plot_name: str = QA_PLOT_NAME) -> str:
    """``report.md`` of a QA run from its summary (``bench docs`` re-renders old runs with it)."""
    from ltm_agent.app.bench.report import unavailable_section

    dataset, scored = summary["dataset"], summary["systems"]
    reader, budget = summary.get("reader"), summary.get("budget_tokens")
    rows = [
        [name, str(d["questions"])]
        + [_fmt(d["metrics"][m]) for m in QA_METRICS]
        + [_fmt(d["context_tokens_mean"], 0), str(d["reader_tokens"]["total"]),
           _fmt(d["latency_ms_p50"], 1), _fmt(d["reader_latency_ms_p50"], 1)]
        for name, d in scored.items()
    ]
    groups = sorted({g for d in scored.values() for g in d["by_category"]}, key=lambda g: (not g.isdigit(), g.zfill(4)))
    group_rows = [
        [name] + [_fmt(d["by_category"].get(g, {}).get("score")) for g in groups] for name, d in scored.items()
    ]
    group_counts = {g: max(d["by_category"].get(g, {}).get("n", 0) for d in scored.values()) for g in groups}
    reader_note = EXTRACTIVE_NOTE if reader == "extractive-fallback" else f"the chat model `{reader}`"
    judge_note = f"judge `{summary['judge']}`" if summary.get("judge") else "no LLM judge (judge null; F1/exact match)"
    counts = ", ".join(f"{n} {_label(dataset, g)}" for g, n in group_counts.items())
    return "\n\n".join([
        f"# QA benchmark: {dataset}",
        (
            f"Generated {summary['generated_at']} by `ltm-agent bench qa`; {summary['questions']} questions, every "
            f"question of the file including the unanswerable ones ({counts}); context: each system's ranked items "
            f"packed into {budget} cl100k tokens (stop at the first item that does not fit); {judge_note}."
        ),
        f"Reader: {reader_note}.",
        _table(["system", "n", *QA_METRICS, "ctx tokens", "reader tokens", "retrieval p50 ms", "reader p50 ms"], rows),
        "What the columns mean:\n\n" + QA_METRIC_HELP,
        "## score by category",
        _table(["system", *[_label(dataset, g) for g in groups]], group_rows),
        f"![score by category; ltm is the dark, black-edged bar]({plot_name})",
        *unavailable_section(summary.get("unavailable", {})),
    ])
