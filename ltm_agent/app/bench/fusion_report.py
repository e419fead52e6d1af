"""The report of ``ltm-agent bench train-fusion``: cross-validated learned fusion against the default.

Core functions: :func:`summarise`, :func:`render_report`, :func:`beats_default`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ltm_agent.app.bench.metrics import Summary, aggregate
from ltm_agent.app.bench.report import category_label
from ltm_agent.retrieval.learned import FEATURES

__all__ = ["TARGETS", "beats_default", "render_report", "summarise"]

TARGETS: tuple[tuple[str, str | None, str], ...] = (
    ("locomo", None, "recall@1024t"),
    ("locomo", "1", "recall@1024t"),
    ("longmemeval", None, "recall@1024t"),
    ("longmemeval", None, "recall@2048t"),
    ("longmemeval", None, "session_recall_all@5"),
)
"""The metrics the default must lose on, every one, before the learned fusion may replace it
(data set, category or ``None`` for all questions, metric)."""

HEADLINE = ("recall@512t", "recall@1024t", "recall@2048t", "recall_all@1024t", "recall_all@2048t",
            "session_recall_all@5", "ndcg@10")


def summarise(rows: Iterable[Mapping[str, object]]) -> Summary:
    """:func:`ltm_agent.app.bench.metrics.aggregate` over scored rows (rows without metrics skipped)."""
    return aggregate(row for row in rows if len(row) > 1)


def _value(cv: Mapping[str, Any], dataset: str, category: str | None, metric: str, system: str) -> float | None:
    summary = cv["datasets"].get(dataset, {}).get(system)
    if summary is None:
        return None
    group = summary["overall"] if category is None else summary["by_category"].get(category)
    return None if group is None else group["metrics"].get(metric)


def beats_default(cv: Mapping[str, Any]) -> list[tuple[str, float | None, float | None, bool]]:
    """Each target: (label, default, learned, learned is higher)."""
    out = []
    for dataset, category, metric in TARGETS:
        rrf, learned = _value(cv, dataset, category, metric, "rrf"), _value(cv, dataset, category, metric, "learned")
        label = f"{dataset} {metric}" + (f" ({category_label(dataset, category)})" if category else "")
        out.append((label, rrf, learned, rrf is not None and learned is not None and learned > rrf))
    return out


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _d(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None else f"{b - a:+.3f}"


def _moved(cv: Mapping[str, Any], dataset: str, group: str, metric: str) -> str:
    counts = cv["datasets"].get(dataset, {}).get("changed", {}).get(f"{group} {metric}")
    return "–" if counts is None else f"{counts['up']} / {counts['down']}"


def render_report(cv: Mapping[str, Any], about: Mapping[str, Any]) -> str:
    """Markdown: targets, per data set the headline metrics and per category/type, per fold, weights."""
    lines = [
        "# Learned fusion: cross-validated against the default (RRF + speaker boost + session ranking)",
        "",
        f"Command: `{about['command']}` at commit {about['commit']}, {about['date']}.",
        f"{cv['folds']} folds by conversation (seed {cv['seed']}); {cv['objective']} logistic regression, L2 {cv['l2']}, "
        f"on each question's first {cv['top'] or 'all'} candidates of the default order; every question is ranked by the model "
        "of the fold that did not see its conversation, then the time-window partition, as on the read path. "
        "`rrf` is the default order of the same candidates in the same run. Data: "
        + "; ".join(f"{d['file']} ({d['bytes']:,} bytes, {d['questions']} scored questions, "
                    f"{d['conversations']} conversations)" for d in about["data"])
        + (f"; LongMemEval `--stride {about['stride_longmemeval']}` (every {about['stride_longmemeval']}-th question)" if about.get("stride_longmemeval", 1) > 1 else "")
        + ".",
        "",
        "## Targets (the default changes only if the learned fusion is higher on every one)",
        "",
        "| metric | rrf (default) | learned (out-of-fold) | Δ | questions up / down |",
        "|---|---|---|---|---|",
    ]
    targets = beats_default(cv)
    for (dataset, category, metric), (label, a, b, _) in zip(TARGETS, targets, strict=True):
        lines.append(f"| {label} | {_f(a)} | {_f(b)} | {_d(a, b)} | {_moved(cv, dataset, category or 'all', metric)} |")
    verdict = all(ok for *_, ok in targets)
    lines += ["", f"Higher on every target: **{'yes' if verdict else 'no'}**.", ""]
    for dataset, result in cv["datasets"].items():
        rrf, learned = result["rrf"], result["learned"]
        lines += [f"## {dataset} ({rrf['overall']['n']} questions)", "", "| metric | rrf | learned | Δ | up / down |",
                  "|---|---|---|---|---|"]
        for metric in HEADLINE:
            a, b = rrf["overall"]["metrics"].get(metric), learned["overall"]["metrics"].get(metric)
            if a is not None:
                lines.append(f"| {metric} | {_f(a)} | {_f(b)} | {_d(a, b)} | {_moved(cv, dataset, 'all', metric)} |")
        lines += ["", "| category / type | n | rrf r@1024t | learned r@1024t | rrf r@2048t | learned r@2048t |",
                  "|---|---|---|---|---|---|"]
        for category, group in rrf["by_category"].items():
            other = learned["by_category"][category]["metrics"]
            m = group["metrics"]
            lines.append(
                f"| {category_label(dataset, category)} | {group['n']} | {_f(m.get('recall@1024t'))} | "
                f"{_f(other.get('recall@1024t'))} | {_f(m.get('recall@2048t'))} | {_f(other.get('recall@2048t'))} |"
            )
        lines.append("")
    lines += ["## Per fold (recall@1024t)", "", "| fold | data set | questions | rrf | learned | Δ |", "|---|---|---|---|---|---|"]
    for record in cv["per_fold"]:
        for dataset, part in record["datasets"].items():
            a, b = part["rrf"].get("recall@1024t"), part["learned"].get("recall@1024t")
            lines.append(f"| {record['fold']} | {dataset} | {part['questions']} | {_f(a)} | {_f(b)} | {_d(a, b)} |")
    weights = cv["weights"]
    lines += ["", "## Weights fitted on every question (standardised features)", "", "| feature | weight |", "|---|---|"]
    lines += [f"| {name} | {w:+.3f} |" for name, w in sorted(zip(FEATURES, weights["weights"], strict=True),
                                                            key=lambda nw: -abs(nw[1]))]
    lines += ["", f"Bias {weights['bias']:+.3f}. The learned fusion ranked on these dev files after fitting on all of "
              "them is in-sample; the out-of-fold numbers above are the honest ones.", ""]
    return "\n".join(lines)
