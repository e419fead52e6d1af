"""Summaries of a GAIA run: success by level, by block and by family, steps per solved task, per condition.

:func:`summarize` reads ``results.jsonl`` rows; :func:`write_report` writes ``summary.json`` and
``report.md`` from them; :func:`rescore` (``ltm-agent gaia score``) scores the answers of a
results file again against a task set with :func:`~ltm_agent.app.gaia.scorer.gaia_score`, so a
run can be checked independently of the code that produced it.

Core functions: :func:`summarize`, :func:`write_report`, :func:`rescore`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ltm_agent.app.gaia.scorer import gaia_score
from ltm_agent.app.gaia.tasks import load_tasks
from ltm_agent.errors import DataFormatError

__all__ = ["read_results", "rescore", "summarize", "write_report"]


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``results.jsonl``."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{path}:{number} is not JSON ({exc.msg})") from None
    return rows


def _cell(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    scored = [r for r in rows if r.get("score") is not None]
    solved = [r for r in scored if r["score"]]
    return {
        "tasks": len(rows),
        "scored": len(scored),
        "solved": len(solved),
        "success": round(len(solved) / len(scored), 4) if scored else None,
        "steps_per_solved": round(sum(r["steps"] for r in solved) / len(solved), 2) if solved else None,
    }


def _group(rows: Iterable[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row.get(key))].append(row)
    return {name: _cell(group) for name, group in sorted(groups.items(), key=lambda kv: (len(kv[0]), kv[0]))}


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per condition: overall, by level, block, family and solver; held-out families; tokens; memory traffic."""
    out: dict[str, Any] = {}
    for condition in dict.fromkeys(r["condition"] for r in rows):
        mine = [r for r in rows if r["condition"] == condition]
        tokens: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for row in mine:
            for role, usage in (row.get("tokens") or {}).items():
                for k, v in usage.items():
                    tokens[role][k] += int(v)
        out[condition] = {
            **_cell(mine),
            "by_level": _group(mine, "level"),
            "by_block": _group(mine, "block"),
            "by_family": _group(mine, "family"),
            "by_solver": _group(mine, "solver"),
            "held_out": _cell([r for r in mine if r.get("held_out")]),
            "team_solved_without_script": sum(1 for r in mine if r.get("score") and r["solver"] != "demonstrator"),
            "tokens": {role: dict(v) for role, v in tokens.items()},
            "memories_read": sum(r.get("memories_read", 0) for r in mine),
            "memories_written": sum(r.get("memories_written", 0) for r in mine),
            "wall_s": round(sum(r.get("wall_s", 0.0) for r in mine), 2),
        }
    return out


def _pct(cell: Mapping[str, Any]) -> str:
    if cell.get("success") is None:
        return "-"
    return f"{cell['solved']}/{cell['scored']} ({100 * cell['success']:.0f}%)"


def _steps(cell: Mapping[str, Any]) -> str:
    return "-" if cell.get("steps_per_solved") is None else f"{cell['steps_per_solved']:.1f}"


def _table(summary: Mapping[str, Any], key: str, title: str) -> list[str]:
    conditions = list(summary)
    names = list(dict.fromkeys(n for c in conditions for n in summary[c][key]))
    head = f"| {title} | " + " | ".join(f"{c}: solved | {c}: steps/solved" for c in conditions) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(conditions))]
    for name in names:
        cells = [summary[c][key].get(name, {}) for c in conditions]
        lines.append(f"| {name} | " + " | ".join(f"{_pct(x)} | {_steps(x)}" for x in cells) + " |")
    return lines


def write_report(
    out_dir: Path, results: Path, *, notes: Sequence[str] = (), model: str | None = None
) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``report.md`` from ``results``; return both paths."""
    rows = read_results(results)
    summary = summarize(rows)
    payload = {"model": model or "none (offline policy)", "notes": list(notes), "conditions": summary}
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    lines = ["# GAIA run", "", f"Model: {payload['model']}", ""]
    lines += [f"- {n}" for n in notes] + [""]
    lines += ["| condition | solved | steps/solved | solved by the team (no script) | held-out solved | "
              "memories read | memories written |", "|---|---|---|---|---|---|---|"]
    for condition, cell in summary.items():
        lines.append(f"| {condition} | {_pct(cell)} | {_steps(cell)} | {cell['team_solved_without_script']} | "
                     f"{_pct(cell['held_out'])} | {cell['memories_read']} | {cell['memories_written']} |")
    for key, title in (("by_block", "block"), ("by_level", "level"), ("by_family", "family"),
                       ("by_solver", "solver")):
        lines += ["", *_table(summary, key, title)]
    report_path = out_dir / "report.md"
    report_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary_path, report_path


def rescore(results: str | Path, tasks_path: str | Path) -> dict[str, Any]:
    """Score every answer in ``results`` against ``tasks_path``'s gold again; summary per condition.

    Also reports rows whose stored score disagrees with the fresh one (should be none).
    """
    gold = {t.task_id: t for t in load_tasks(tasks_path)}
    rows = read_results(results)
    disagreements = []
    fresh = []
    for row in rows:
        task = gold.get(row["task_id"])
        score = int(gaia_score(row.get("answer"), task.final_answer)) if task and task.has_gold else None
        if row.get("score") != score:
            disagreements.append(row["task_id"])
        fresh.append({**row, "score": score})
    summary = summarize(fresh)
    return {
        "conditions": {c: {k: v[k] for k in ("tasks", "scored", "solved", "success", "by_level")}
                       for c, v in summary.items()},
        "disagreements": disagreements,
    }
