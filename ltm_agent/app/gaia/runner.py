"""``ltm-agent gaia run``: run a task set through the team, memory on and off, one JSON line per task.

Both conditions run in the same command over the same tasks, in order, each with its own team
(namespaces ``("gaia", "<name>-memory", ...)`` and ``("gaia", "<name>-no-memory", ...)``) in
one store: an embedded Chroma directory (``DIR/chroma``) or one Chroma server. Writes:

* ``DIR/results.jsonl`` - per (condition, task): answer, gold, score, solver, level, family,
  block, steps, tokens per role, memories read and written, wall time, notes;
* ``DIR/summary.json`` and ``DIR/report.md`` (:mod:`~ltm_agent.app.gaia.report`).

``resume=True`` skips the (condition, task) pairs already in ``results.jsonl`` and reopens the
same store and run id, so the memory condition continues with what it had learnt.

Core: :func:`run_gaia`, :class:`RunOptions`, :class:`RunOutput`, :func:`load_model`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltm_agent.app.gaia.report import write_report
from ltm_agent.app.gaia.sandbox import PythonSandbox
from ltm_agent.app.gaia.scorer import gaia_score
from ltm_agent.app.gaia.tasks import GaiaTask, load_tasks
from ltm_agent.app.gaia.team import DEMONSTRATOR, Team
from ltm_agent.app.gaia.tools import DocumentSearch, Toolbox, WebSearch
from ltm_agent.embeddings import Embedder
from ltm_agent.errors import InvalidInputError, MissingExtraError
from ltm_agent.store import MemoryStore

__all__ = ["CONDITIONS", "RunOptions", "RunOutput", "load_model", "run_gaia"]

CONDITIONS = ("memory", "no-memory")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How ``gaia run`` runs.

    Attributes:
        model: ``None`` (offline: demonstrations + workflows from memory), ``"provider:name"``
            (LangChain's ``init_chat_model``) or ``"module:attr"`` (a chat model or a factory).
        conditions: Which of ``memory`` / ``no-memory`` to run.
        step_limit: Most steps per task.
        allow_python: Opt in to the python tool.
        docs: The local document folder (default: ``docs/`` beside metadata.jsonl when present).
        server: A Chroma server URL; ``None`` uses the embedded directory ``DIR/chroma``.
        resume: Continue a previous run in the same folder.
        limit: Only the first N tasks.
        name: Team name prefix (namespaces ``("gaia", "<name>-memory")`` ...).
    """

    model: str | None = None
    conditions: tuple[str, ...] = CONDITIONS
    step_limit: int = 30
    allow_python: bool = False
    docs: Path | None = None
    server: str | None = None
    resume: bool = False
    limit: int | None = None
    name: str = "team"


@dataclass(frozen=True, slots=True)
class RunOutput:
    results: Path
    summary: Path
    report: Path


def load_model(spec: str) -> Any:
    """A LangChain chat model from ``"module:attr"`` or ``"provider:name"``.

    ``module:attr`` is tried first (the current directory is importable); when the part before
    ``:`` is not an importable module it is a provider for LangChain's ``init_chat_model``,
    which needs ``pip install langchain langchain-<provider>``.
    """
    from langchain_core.language_models import BaseChatModel

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidInputError(f"--model is 'provider:name' or 'module:attr', got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0]:
            raise InvalidInputError(f"cannot import {module_name!r}: {exc}") from None
        try:
            from langchain.chat_models import init_chat_model
        except ImportError:
            raise MissingExtraError(
                f"{spec!r} is not an importable module:attr, so it names a provider; provider:name needs "
                f"LangChain's init_chat_model: pip install langchain langchain-{module_name.replace('_', '-')}"
            ) from None
        return init_chat_model(spec)
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise InvalidInputError(f"{module_name!r} has no attribute {attr!r}")
    if not isinstance(target, BaseChatModel) and callable(target):
        target = target()
    if not isinstance(target, BaseChatModel):
        raise InvalidInputError(f"{spec!r} is {type(target).__name__}, not a LangChain chat model or a factory of one")
    return target


def _open_store(out_dir: Path, server: str | None, embedder: Embedder | None) -> MemoryStore:
    from ltm_agent.memory_stores import ChromaStore

    if server:
        return ChromaStore.server(server, embedder=embedder)
    return ChromaStore.persistent(out_dir / "chroma", embedder=embedder)


def _done(results: Path) -> set[tuple[str, str]]:
    if not results.is_file():
        return set()
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {(r["condition"], r["task_id"]) for r in rows}


def _run_id(out_dir: Path, resume: bool) -> str:
    meta = out_dir / "run.json"
    if resume and meta.is_file():
        return str(json.loads(meta.read_text(encoding="utf-8"))["run_id"])
    run_id = uuid.uuid4().hex[:12]
    meta.write_text(json.dumps({"run_id": run_id}), encoding="utf-8")
    return run_id


def run_gaia(
    tasks_path: str | Path,
    out_dir: str | Path,
    options: RunOptions = RunOptions(),
    *,
    models: Any = None,
    store: MemoryStore | None = None,
    embedder: Embedder | None = None,
    web: WebSearch | None = None,
    progress: Callable[[str, GaiaTask, Mapping[str, Any]], None] | None = None,
) -> RunOutput:
    """Run the task set (both conditions), write results, summary and report; return their paths.

    Args:
        tasks_path: GAIA's metadata.jsonl (or its folder), or one of our streams.
        out_dir: Output folder.
        options: :class:`RunOptions`.
        models: A ready chat model (or mapping role -> model); overrides ``options.model``.
        store: A ready store; default the embedded directory or server of ``options``.
        embedder: The store's embedder when the runner opens it (default MiniLM).
        web: A web-search provider for the researcher (none offline).
        progress: Called after each task with ``(condition, task, result row)``.
    """
    unknown = set(options.conditions) - set(CONDITIONS)
    if unknown or not options.conditions:
        raise InvalidInputError(f"conditions are among {CONDITIONS}, got {options.conditions!r}")
    tasks = load_tasks(tasks_path)[: options.limit]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / "results.jsonl"
    if not options.resume and results.exists():
        results.unlink()
    done = _done(results) if options.resume else set()
    if models is None and options.model:
        models = load_model(options.model)
    folder = Path(tasks_path) if Path(tasks_path).is_dir() else Path(tasks_path).parent
    docs = options.docs or (folder / "docs" if (folder / "docs").is_dir() else None)
    toolbox = Toolbox(
        documents=DocumentSearch(docs) if docs else None, python=PythonSandbox(enabled=options.allow_python), web=web
    )
    gold = {t.task_id: t for t in tasks}

    def verdict(task_id: str, answer: str) -> bool | None:
        task = gold[task_id]
        return gaia_score(answer, task.final_answer) if task.has_gold else None

    run_id = _run_id(out_dir, options.resume)
    own_store = store is None
    store = store or _open_store(out_dir, options.server, embedder)
    try:
        with results.open("a", encoding="utf-8") as handle:
            for condition in options.conditions:
                team = Team(store, f"{options.name}-{condition}", toolbox, models=models,
                            memory=condition == "memory", step_limit=options.step_limit, verdict=verdict,
                            run_id=f"{run_id}-{condition}")
                for position, task in enumerate(tasks):
                    if (condition, task.task_id) in done:
                        continue
                    row = _row(condition, position, task, team)
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                    handle.flush()
                    if progress is not None:
                        progress(condition, task, row)
    finally:
        if own_store:
            store.close()
    notes = toolbox.notes()
    if models is None:
        notes.append(f"solver '{DEMONSTRATOR}': a scripted demonstrator (stand-in for a user's strong model) solves "
                     "the first task of each non-held-out family; every other solve is the team's")
    summary, report = write_report(out_dir, results, notes=notes, model=options.model or ("given" if models else None))
    return RunOutput(results, summary, report)


def _row(condition: str, position: int, task: GaiaTask, team: Team) -> dict[str, Any]:
    result = team.run(task)
    return {
        "condition": condition,
        "task_id": task.task_id,
        "level": task.level,
        "family": task.family,
        "block": task.block or position // 10 + 1,
        "held_out": task.held_out,
        "answer": result.answer,
        "gold": task.final_answer if task.has_gold else None,
        "score": None if result.verdict is None else int(bool(result.verdict)),
        "solver": result.solver,
        "steps": result.steps,
        "tokens": result.tokens,
        "memories_read": result.memories_read,
        "memories_written": result.memories_written,
        "wall_s": round(result.wall_s, 3),
        "workflow_id": result.workflow_id,
        "notes": list(result.notes),
    }
