"""``ltm-agent bench qa``: retrieve with every system, answer with one shared reader, score the answers.

Runs the retrieval bench's loop (:func:`~ltm_agent.app.bench.retrieval_bench.run_bench_loop`:
per conversation, each system ingests, retrieves for each question, forgets),
and for each retrieval packs the ranked items into ``budget_tokens`` (stop at
the first item that does not fit), dates the items that carry no time from
their source turns, and asks the reader. Each ``results.jsonl`` line is the
retrieval line plus::

    {"answer": "...", "gold": "...", "score": 0.67, "f1": 0.67, "exact_match": 0.0, "token_recall": 1.0,
     "judge": null, "abstention": false, "abstained": false,
     "reader": "extractive-fallback", "budget_tokens": 1024,
     "context_items": 31, "context_tokens": 1010,
     "reader_tokens": {"prompt": 0, "completion": 0}, "reader_latency_ms": 1.2,
     "judge_tokens": null, "error": null}

Lines are written as they are produced, so a re-run with the same reader,
budget and judge resumes; a different one is refused (use a new ``--out``).

Core function: :func:`run_qa_bench`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ltm_agent.app.bench.datasets import Question
from ltm_agent.app.bench.judge import LongMemEvalJudge
from ltm_agent.app.bench.qa_report import score_line, write_qa_reports
from ltm_agent.app.bench.readers import Reader, load_chat_model, make_reader, pack_context, turn_times, with_turn_times
from ltm_agent.app.bench.retrieval_bench import BenchRun, retrieval_row, run_bench_loop
from ltm_agent.app.bench.systems import DEFAULT_SYSTEMS
from ltm_agent.conversations import Conversation
from ltm_agent.embeddings import Embedder
from ltm_agent.errors import InvalidInputError
from ltm_agent.records import MemoryItem

__all__ = ["DEFAULT_BUDGET_TOKENS", "make_judge", "run_qa_bench"]

DEFAULT_BUDGET_TOKENS = 1024
"""Context tokens given to the reader unless told otherwise."""


def make_judge(spec: str | LongMemEvalJudge | None) -> LongMemEvalJudge | None:
    """The judge for ``--judge``: ``None``, ``"local"``, ``"module:attr"`` or a ready judge."""
    if spec is None or isinstance(spec, LongMemEvalJudge):
        return spec
    return LongMemEvalJudge(load_chat_model(spec), name=spec)


def _check_resume(results: Path, config: dict) -> None:
    """Refuse to append to lines made with another reader, budget or judge."""
    if not results.exists():
        return
    for line in results.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        seen = {key: row.get(key) for key in config}
        if seen != config:
            raise InvalidInputError(
                f"{results} holds answers made with {seen}, this run uses {config}; "
                f"give another --out (or delete the folder) to start over"
            )


def run_qa_bench(
    dataset: str,
    data: Path,
    out_dir: Path,
    *,
    systems: Sequence[str] = DEFAULT_SYSTEMS,
    limit: int | None = None,
    reader: str | Reader = "extractive",
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    judge: str | LongMemEvalJudge | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
) -> BenchRun:
    """Run the QA benchmark and write ``results.jsonl``, ``summary.json``, ``report.md`` and a plot.

    Args:
        dataset: ``"locomo"`` or ``"longmemeval"``.
        data: Path of the data file.
        out_dir: Output folder (created; an existing ``results.jsonl`` is resumed).
        systems: System names (see :data:`ltm_agent.app.bench.systems.SYSTEMS`).
        limit: Only the first ``limit`` questions (the way to run a slow chat-model reader).
        reader: ``"extractive"`` (deterministic, ``"extractive-fallback"``), ``"local"``
            (SmolLM2-135M, slow on CPU), ``"module:attr"`` (a LangChain chat model or a
            factory of one) or a :class:`~ltm_agent.app.bench.readers.Reader`.
        budget_tokens: Context tokens (cl100k) packed for the reader, the same for every system.
        judge: LongMemEval only: ``"module:attr"``/``"local"`` chat model or a
            :class:`~ltm_agent.app.bench.judge.LongMemEvalJudge`; ``None`` scores by F1/exact match.
        embedder: Embedder for every system (default: the offline MiniLM), cached on disk.
        progress: Show a progress bar.

    Raises:
        InvalidInputError: A bad budget, a judge on LoCoMo, an unloadable reader or
            judge, or ``out_dir`` holding answers of another reader/budget/judge.
    """
    if budget_tokens < 1:
        raise InvalidInputError(f"budget_tokens must be >= 1, got {budget_tokens!r}")
    if judge is not None and dataset != "longmemeval":
        raise InvalidInputError("--judge applies to longmemeval only; LoCoMo is scored by its official F1")
    the_reader = make_reader(reader)
    the_judge = make_judge(judge)
    config = {
        "reader": the_reader.name,
        "budget_tokens": budget_tokens,
        "judge": the_judge.name if the_judge else None,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_resume(out_dir / "results.jsonl", config)
    (out_dir / "qa_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    dates: dict[str, dict] = {}

    def make_row(
        name: str, conversation: Conversation, question: Question, items: list[MemoryItem], latency: float
    ) -> dict:
        if conversation.id not in dates:
            dates.clear()  # one conversation at a time
            dates[conversation.id] = turn_times(conversation)
        context = with_turn_times(pack_context(items, budget_tokens), dates[conversation.id])
        reply = the_reader.answer(question, context)
        row = retrieval_row(name, dataset, question, items, latency, conversation)
        row.update(config)
        row.update(
            answer=reply.answer,
            gold=question.answer,
            abstention=question.abstention,
            abstained=reply.abstained,
            context_items=len(context),
            context_tokens=sum(item.tokens for item in context),
            reader_tokens={"prompt": reply.prompt_tokens, "completion": reply.completion_tokens},
            reader_latency_ms=round(reply.latency_ms, 3),
            judge=None,
            judge_tokens=None,
            error=reply.error,
        )
        if the_judge is not None:
            verdict = the_judge.verdict(question, reply.answer)
            row.update(
                judge=verdict.label,
                judge_reply=verdict.reply,
                judge_tokens=verdict.prompt_tokens + verdict.completion_tokens,
            )
            if verdict.error:
                row["error"] = "; ".join(e for e in (row["error"], f"judge: {verdict.error}") if e)
        row.update(score_line(row))
        return row

    planned = run_bench_loop(
        dataset, data, out_dir, systems=systems, make_row=make_row, limit=limit, embedder=embedder,
        progress=progress, desc=f"qa ({the_reader.name})",
    )
    summary, report = write_qa_reports(dataset, out_dir, planned, systems)
    return BenchRun(out_dir, out_dir / "results.jsonl", summary, report)
