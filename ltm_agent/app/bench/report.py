"""Score a run's ``results.jsonl`` and write ``summary.json``, ``report.md`` and a plot.

Scoring reads only ``results.jsonl`` and the data file, so any run can be
re-scored later (``ltm-agent bench score``).

Core functions: :func:`score_results`, :func:`write_reports`.
"""

from __future__ import annotations

import json
import re
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

__all__ = [
    "HEADLINE",
    "category_label",
    "not_scored",
    "plot_recall",
    "pyplot",
    "read_unavailable",
    "render_report",
    "score_results",
    "system_style",
    "unavailable_section",
    "write_reports",
]

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


PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94",
)
"""Colours of the systems other than ``ltm`` (distinct hues; ``ltm`` is drawn in black, on top)."""
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def system_style(index: int, name: str) -> dict[str, Any]:
    """Plot style of the ``index``-th system: colour, line style and marker all differ between
    neighbours, so two systems never look alike even in grey print; ``ltm`` is black, thick and on top."""
    if name == "ltm":
        return {"color": "black", "linestyle": "-", "marker": "o", "linewidth": 2.8, "zorder": 10, "markersize": 6}
    return {
        "color": PALETTE[index % len(PALETTE)],
        "linestyle": LINESTYLES[index % len(LINESTYLES)],
        "marker": MARKERS[index % len(MARKERS)],
        "linewidth": 1.3,
        "zorder": 2,
        "markersize": 4,
    }


def plot_recall(summary: dict[str, Any], path: Path) -> Path:
    """Evidence recall against the token budget, one line per system, from ``summary.json``'s content."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8, 5))
    systems = summary["systems"]
    others = [name for name in systems if name != "ltm"]
    for index, name in enumerate([*others, *(["ltm"] if "ltm" in systems else [])]):
        budgets = [b for b in TOKEN_BUDGETS if f"recall@{b}t" in systems[name]["metrics"]]
        ys = [systems[name]["metrics"][f"recall@{b}t"] for b in budgets]
        ax.plot(budgets, ys, label=name, **system_style(index, name))
    ax.set_xscale("log", base=2)
    ax.set_xticks(TOKEN_BUDGETS, [str(b) for b in TOKEN_BUDGETS])
    ax.set_xlabel("context-token budget B (cl100k tokens)")
    ax.set_ylabel("evidence recall@B (share of evidence turns found)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"{summary['dataset']}: evidence recall within a token budget")
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] != "ltm")  # ltm first in the legend too
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7, loc="center left",
              bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
        "questions_total": len(questions),
        "questions_scored": max((d["questions"] for d in scored.values()), default=0),
        "not_scored": not_scored(questions),
        "speed": speed,
        "systems": scored,
        "unavailable": unavailable,
    }
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot_path = plot_recall(summary, out_dir / PLOT_NAME)
    report_path = out_dir / "report.md"
    report_path.write_text(render_report(summary, plot_path.name) + "\n", encoding="utf-8")
    return summary_path, report_path


PLOT_NAME = "recall_vs_budget.png"
METRIC_HELP = {
    "recall@{B}t": "share of a question's evidence turns inside the first ranked items that fit in B tokens "
    "(walk the ranking, stop at the first item that does not fit)",
    "recall_all@{B}t": "1 when *every* evidence turn is inside that budget, else 0 (multi-turn evidence complete)",
    "session_recall_all@5": "1 when every evidence session is among the sessions of the first 5 distinct "
    "sessions the ranking reaches (LongMemEval's session-level view)",
    "recall@5": "share of evidence turns among the first 5 items, whatever their length",
    "ndcg@10": "ranking quality of the first 10 items: relevant items (any source is evidence) count more "
    "the higher they rank; 1 is a perfect order",
    "p50 / p95 ms": "median and 95th-percentile retrieval latency per question, embedding the question included",
}


def not_scored(questions: Sequence[Question]) -> dict[str, int]:
    """Why questions of the file are left out of retrieval scoring, with counts."""
    reasons: dict[str, int] = {}
    for question in questions:
        if is_scored(question):
            continue
        if question.dataset == "locomo" and question.category == "5":
            reason = "category 5 (adversarial): the answer is not in the conversation, so there is no evidence to retrieve"
        elif question.abstention:
            reason = "abstention (_abs) questions: the asked-about event is not in the history"
        else:
            reason = "no evidence turn ids in the data set"
        reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def category_label(dataset: str, category: str) -> str:
    """``"1 multi-hop"`` for LoCoMo's numbered categories; other data sets' names as they are."""
    from ltm_agent.app.bench.qa_report import LOCOMO_CATEGORY_NAMES

    if dataset == "locomo" and category in LOCOMO_CATEGORY_NAMES:
        return f"{category} {LOCOMO_CATEGORY_NAMES[category]}"
    return category


def _definitions(head: Sequence[str]) -> str:
    keys: list[str] = []
    for column in head:
        generic = re.sub(r"@\d+t$", "@{B}t", column)
        if generic in METRIC_HELP and generic not in keys:
            keys.append(generic)
    keys.append("p50 / p95 ms")
    lines = [f"- **{key.replace('{B}', 'B')}**: {METRIC_HELP[key]}." for key in keys]
    return "What the columns mean:\n\n" + "\n".join(lines)


def render_report(summary: dict[str, Any], plot_name: str = PLOT_NAME) -> str:
    """``report.md`` from a run's summary (so ``bench docs`` can re-render old runs with today's wording)."""
    dataset, scored, speed = summary["dataset"], summary["systems"], summary.get("speed", {})
    head = HEADLINE[dataset]
    rows = [
        [name, str(d["questions"])] + [f"{d['metrics'].get(m, float('nan')):.3f}" for m in head]
        + [f"{d['latency_ms_p50']:.1f}", f"{d['latency_ms_p95']:.1f}"]
        for name, d in scored.items()
    ]
    focus = FOCUS[dataset]
    categories = sorted({c for d in scored.values() for c in d["by_category"]}, key=lambda c: (not c.isdigit(), c))
    cat_rows = [
        [name] + [f"{d['by_category'].get(c, {}).get('metrics', {}).get(focus, float('nan')):.3f}" for c in categories]
        for name, d in scored.items()
    ]
    dense_rate = speed.get("dense-turn", {}).get("turns_per_s")
    speed_rows = [
        [name, f"{v['turns']:.0f}", f"{v['turns_per_s']:.1f}", f"{v['turns_per_s'] / dense_rate:.2f}" if dense_rate else ""]
        for name, v in speed.items()
    ]
    total = summary.get("questions_total")
    counted = f"{summary['questions_scored']} scored questions"
    if total is not None:
        left = "; ".join(f"{n} {reason}" for reason, n in summary.get("not_scored", {}).items()) or "none"
        counted = f"{total} questions in the file, {summary['questions_scored']} scored (left out: {left})"
    return "\n\n".join(
        [
            f"# Retrieval benchmark: {dataset}",
            f"Generated {summary['generated_at']} by `ltm-agent bench retrieval`; {counted}. "
            f"Token budgets in cl100k tokens; `n` is the number of scored questions.",
            _table(["system", "n", *head, "p50 ms", "p95 ms"], rows),
            _definitions(head),
            f"## {focus} by category",
            _table(["system", *[category_label(dataset, c) for c in categories]], cat_rows),
            "## Ingest speed (uncached embedder, first conversation, fastest of 2 runs)",
            _table(["system", "turns", "turns/s", "x dense-turn"], speed_rows) if speed_rows else "(not measured)",
            f"![evidence recall against the token budget; ltm is the thick black line]({plot_name})",
            *unavailable_section(summary.get("unavailable", {})),
        ]
    )
