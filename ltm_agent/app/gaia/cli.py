"""``ltm-agent gaia``: ``stream`` (write an offline task stream), ``run`` (the team) and ``score``.

Registered as a sub-command of ``ltm-agent`` in :mod:`ltm_agent.app.cli`; heavy imports happen
inside the commands so ``ltm-agent --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ltm_agent.app.cli_common import console, fail, out
from ltm_agent.errors import LTMError

__all__ = ["gaia_app"]

gaia_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Multi-agent GAIA runs with shared long-term memory (docs/gaia.md).")


@gaia_app.command("stream")
def stream(
    out_dir: Path = typer.Option(..., "--out", help="Folder for metadata.jsonl, attachments and docs/."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated tasks and attachments."),
    per_family: int = typer.Option(7, "--per-family", help="Tasks per family (10 families)."),
    held_out: str = typer.Option("count_word,unit_conversion", "--held-out",
                                 help="Comma-separated families with no demonstration ('' for none)."),
) -> None:
    """Write an offline GAIA-format task stream (attachments generated from the seed)."""
    from ltm_agent.app.gaia.stream import write_stream

    try:
        families = tuple(f.strip() for f in held_out.split(",") if f.strip())
        path = write_stream(out_dir, seed=seed, per_family=per_family, held_out=families)
    except LTMError as exc:
        fail(exc)
        return
    console.print(f"wrote {path}")


@gaia_app.command("run")
def run(
    tasks: Path = typer.Option(..., "--tasks", help="GAIA metadata.jsonl (or its folder), or a stream from `gaia stream`."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: results.jsonl, summary.json, report.md, chroma/."),
    model: Optional[str] = typer.Option(
        None, "--model", help="provider:name (LangChain init_chat_model) or module:attr (a chat model or factory); "
        "omitted: offline policy (scripted demonstrations + workflows from memory)."
    ),
    memory: str = typer.Option("both", "--memory", help="both | on | off: conditions run in this command."),
    step_limit: int = typer.Option(30, "--step-limit", help="Most steps (role turns + tool calls) per task."),
    allow_python: bool = typer.Option(False, "--allow-python", help="Opt in to the sandboxed python tool."),
    docs: Optional[Path] = typer.Option(None, "--docs", help="Local document folder (default: docs/ beside the tasks)."),
    server: Optional[str] = typer.Option(None, "--server", help="Chroma server URL (default: embedded OUT/chroma)."),
    resume: bool = typer.Option(False, "--resume", help="Skip tasks already in OUT/results.jsonl; keep the memory."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N tasks."),
) -> None:
    """Run the team over a task set with memory on and off; one JSON line per task, summary by level and block."""
    from ltm_agent.app.gaia.runner import RunOptions, run_gaia

    conditions = {"both": ("memory", "no-memory"), "on": ("memory",), "off": ("no-memory",)}
    if memory not in conditions:
        raise typer.BadParameter("--memory is both, on or off")
    options = RunOptions(model=model, conditions=conditions[memory], step_limit=step_limit,
                         allow_python=allow_python, docs=docs, server=server, resume=resume, limit=limit)

    def progress(condition: str, task: object, row: dict) -> None:
        mark = {1: "solved", 0: "failed", None: "unscored"}[row["score"]]
        console.print(f"[{condition}] {row['task_id']}: {mark} ({row['solver']}, {row['steps']} steps)")

    try:
        result = run_gaia(tasks, out_dir, options, progress=progress)
    except LTMError as exc:
        fail(exc)
        return
    out.print(result.report.read_text(encoding="utf-8"), soft_wrap=True)
    console.print(f"wrote {result.results}, {result.summary}, {result.report}")


@gaia_app.command("score")
def score(
    results: Path = typer.Option(..., "--results", help="A results.jsonl written by `gaia run`."),
    tasks: Path = typer.Option(..., "--tasks", help="The task set with gold answers (metadata.jsonl or folder)."),
) -> None:
    """Score a run's answers again with GAIA's rules; print and write score.json beside the results."""
    from ltm_agent.app.gaia.report import rescore

    try:
        scored = rescore(results, tasks)
    except LTMError as exc:
        fail(exc)
        return
    target = results.parent / "score.json"
    target.write_text(json.dumps(scored, indent=1) + "\n", encoding="utf-8")
    out.print(json.dumps(scored, indent=1))
    console.print(f"wrote {target}")
