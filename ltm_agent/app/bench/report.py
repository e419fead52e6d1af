"""Score a run's ``results.jsonl`` and write ``summary.json``, ``report.md`` and a plot.

Scoring reads only ``results.jsonl`` and the data file, so any run can be
re-scored later (``ltm-agent bench score``).

Core functions: :func:`score_results`, :func:`write_reports`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ltm_agent.app.bench.datasets import Question, is_scored
from ltm_agent.app.bench.metrics import (
    TOKEN_BUDGETS,
    aggregate,
    score_question,
    within_budget,
)
from ltm_agent.errors import MissingExtraError

__all__ = ["HEADLINE", "pyplot", "read_unavailable", "score_results", "unavailable_section", "write_reports"]

HEADLINE = {
    "locomo": ("recall@512t", "recall@1024t", "recall_all@1024t", "recall@2048t", "recall@5", "ndcg@10"),
    "longmemeval": (
        "recall@1024t", "recall@2048t", "recall_all@2048t", "session_recall_all@5", "recall@5", "ndcg@10",
    ),
}
"""Columns of the headline table per data set."""
FOCUS = {"locomo": "recall@1024t", "longmemeval": "recall@2048t"}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def score_results(results: Path, questions: Sequence[Question], systems: Sequence[str]) -> dict[str, Any]:
    """Per system: aggregated metrics (overall and per category), latency and context tokens."""
    by_id = {q.id: q for q in questions}
    rows: dict[str, list[dict | None]] = {name: [] for name in systems}
    latency: dict[str, list[float]] = {name: [] for name in systems}
    context: dict[str, dict[int, list[int]]] = {name: {b: [] for b in TOKEN_BUDGETS} for name in systems}
    for line in results.read_text(encoding="utf-8").splitlines():
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            continue
        name, question = result["system"], by_id.get(result["question_id"])
        if name not in rows or question is None:
            continue
        latency[name].append(float(result["latency_ms"]))
        if not is_scored(question):
            continue
        sessions = question.evidence_sessions if question.dataset == "longmemeval" else ()
        row = score_question(result["retrieved"], question.evidence, sessions)
        if row is not None:
            row["category"] = question.category
            for budget in TOKEN_BUDGETS:
                context[name][budget].append(sum(int(i["tokens"]) for i in within_budget(result["retrieved"], budget)))
        rows[name].append(row)
    scored: dict[str, Any] = {}
    for name in systems:
        summary = aggregate(rows[name])
        scored[name] = {
            "questions": summary["overall"]["n"],
            "metrics": summary["overall"]["metrics"],
            "by_category": summary["by_category"],
            "latency_ms_p50": _percentile(latency[name], 0.50),
            "latency_ms_p95": _percentile(latency[name], 0.95),
            "mean_context_tokens": {
                f"{b}t": statistics.fmean(v) if v else 0.0 for b, v in context[name].items()
            },
        }
    return scored


def read_unavailable(out_dir: Path, systems: Sequence[str]) -> dict[str, str]:
    """``{system: reason}`` from the run's ``unavailable.json``, for the given systems (empty when none)."""
    path = out_dir / "unavailable.json"
    found = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return {name: str(found[name]) for name in systems if name in found}


def unavailable_section(unavailable: dict[str, str]) -> list[str]:
    """The report's "Systems not run" section (no section when every system ran)."""
    if not unavailable:
        return []
    lines = [f"- `{name}`: {reason}" for name, reason in unavailable.items()]
    return ["## Systems not run", "\n".join(lines)]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend, or the pip line to get it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingExtraError("the benchmark plots need matplotlib: pip install 'ltm-agent[bench]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot(dataset: str, scored: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, data in scored.items():
        ys = [data["metrics"].get(f"recall@{b}t", float("nan")) for b in TOKEN_BUDGETS]
        ax.plot(TOKEN_BUDGETS, ys, marker="o", label=name, linewidth=2.5 if name == "ltm" else 1.2)
    ax.set_xscale("log", base=2)
    ax.set_xticks(TOKEN_BUDGETS, [str(b) for b in TOKEN_BUDGETS])
    ax.set_xlabel("context-token budget (cl100k)")
    ax.set_ylabel("evidence recall")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"{dataset}: evidence recall within a token budget")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_reports(
    dataset: str, out_dir: Path, questions: Sequence[Question], systems: Sequence[str]
) -> tuple[Path, Path]:
    """Score ``out_dir/results.jsonl`` and write ``summary.json``, ``report.md`` and ``recall_vs_budget.png``.

    Systems the run could not build (``unavailable.json``, written by
    :func:`~ltm_agent.app.bench.retrieval_bench.run_bench_loop`) are not scored; their
    reasons go to ``summary.json`` under ``"unavailable"`` and to a "Systems not
    run" section of ``report.md``.
    """
    unavailable = read_unavailable(out_dir, systems)
    scored = score_results(out_dir / "results.jsonl", questions, [s for s in systems if s not in unavailable])
    ingest = json.loads((out_dir / "ingest.json").read_text()) if (out_dir / "ingest.json").exists() else {}
    speed = json.loads((out_dir / "speed.json").read_text()) if (out_dir / "speed.json").exists() else {}
    for name, data in scored.items():
        if name in ingest:
            seconds, turns = ingest[name]["seconds"], ingest[name]["turns"]
            data["ingest_seconds"] = seconds
            data["ingest_turns_per_s"] = turns / seconds if seconds else None
        if name in speed:
            data["uncached_ingest_turns_per_s"] = speed[name]["turns_per_s"]
    summary = {
        "dataset": dataset,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "questions_scored": max((d["questions"] for d in scored.values()), default=0),
        "speed": speed,
        "systems": scored,
        "unavailable": unavailable,
    }
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot_path = out_dir / "recall_vs_budget.png"
    _plot(dataset, scored, plot_path)

    head = HEADLINE[dataset]
    rows = [
        [name, str(d["questions"])] + [f"{d['metrics'].get(m, float('nan')):.3f}" for m in head]
        + [f"{d['latency_ms_p50']:.1f}", f"{d['latency_ms_p95']:.1f}"]
        for name, d in scored.items()
    ]
    focus = FOCUS[dataset]
    categories = sorted({c for d in scored.values() for c in d["by_category"]})
    cat_rows = [
        [name] + [f"{d['by_category'].get(c, {}).get('metrics', {}).get(focus, float('nan')):.3f}" for c in categories]
        for name, d in scored.items()
    ]
    dense_rate = speed.get("dense-turn", {}).get("turns_per_s")
    speed_rows = [
        [name, f"{v['turns']:.0f}", f"{v['turns_per_s']:.1f}", f"{v['turns_per_s'] / dense_rate:.2f}" if dense_rate else ""]
        for name, v in speed.items()
    ]
    report = "\n\n".join(
        [
            f"# Retrieval benchmark: {dataset}",
            (
                f"Generated {summary['generated_at']} by `ltm-agent bench retrieval`; "
                f"{summary['questions_scored']} scored questions. Token budgets in cl100k tokens."
            ),
            _table(["system", "n", *head, "p50 ms", "p95 ms"], rows),
            f"## {focus} by category",
            _table(["system", *categories], cat_rows),
            "## Ingest speed (uncached embedder, first conversation, fastest of 2 runs)",
            _table(["system", "turns", "turns/s", "x dense-turn"], speed_rows) if speed_rows else "(not measured)",
            f"![recall against budget]({plot_path.name})",
            *unavailable_section(unavailable),
        ]
    )
    report_path = out_dir / "report.md"
    report_path.write_text(report + "\n", encoding="utf-8")
    return summary_path, report_path
