"""``ltm-agent bench retrieval``: run every system on a data set and write the contract's files.

Per conversation (a LoCoMo sample, or a LongMemEval question's haystack), each
system ingests it into a fresh namespace, answers that conversation's
questions, and forgets it. Lines go to ``results.jsonl`` as they are produced,
so a re-run resumes where a crash stopped (with embeddings from the cache).
A separate speed phase times ingest with an uncached embedder.

Core functions: :func:`run_retrieval_bench`, and :func:`run_bench_loop`, the loop
``ltm-agent bench qa`` shares.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ltm_agent.app.bench.cache import CachedEmbedder
from ltm_agent.app.bench.datasets import Question, load_questions
from ltm_agent.app.bench.systems import DEFAULT_SYSTEMS, BenchSystem, make_system, system_name
from ltm_agent.conversations import Conversation
from ltm_agent.embeddings import Embedder, default_embedder
from ltm_agent.errors import MissingExtraError
from ltm_agent.loaders import load_conversations
from ltm_agent.records import MemoryItem
from ltm_agent.retrieval.excerpts import is_excerpt

__all__ = [
    "UNAVAILABLE_FILE",
    "BenchRun",
    "cut_evidence",
    "RowMaker",
    "build_systems",
    "retrieval_row",
    "retrieved_payload",
    "run_bench_loop",
    "run_retrieval_bench",
]

MAX_BUDGET = 4096


@dataclass(frozen=True, slots=True)
class BenchRun:
    """Where a run wrote its files."""

    out_dir: Path
    results: Path
    summary: Path
    report: Path


def retrieved_payload(items: Sequence[MemoryItem], budget: int = MAX_BUDGET) -> list[dict]:
    """Ranked items as contract dicts, up to and including the first that overflows ``budget``."""
    payload, total = [], 0
    for item in items:
        payload.append(
            {"id": item.id, "text": item.text, "tokens": item.tokens, "sources": list(item.sources), "score": round(item.score, 6)}
        )
        total += item.tokens
        if total > budget:
            break
    return payload


def _done(results: Path) -> set[tuple[str, str]]:
    done: set[tuple[str, str]] = set()
    if results.exists():
        for line in results.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash; it is redone
            done.add((row["system"], row["question_id"]))
    return done


def _cut_last_line(results: Path) -> bool:
    """Whether the file is non-empty and does not end with a newline."""
    if not results.exists() or results.stat().st_size == 0:
        return False
    with results.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) != b"\n"


def _select(
    conversations: list[Conversation], questions: list[Question], limit: int | None, stride: int = 1
) -> list[tuple[Conversation, list[Question]]]:
    by_conv: dict[str, list[Question]] = {}
    for q in questions[::stride]:
        by_conv.setdefault(q.conversation_id, []).append(q)
    plan, taken = [], 0
    for conversation in conversations:
        qs = by_conv.get(conversation.id, [])
        if limit is not None:
            qs = qs[: max(0, limit - taken)]
        if qs:
            plan.append((conversation, qs))
            taken += len(qs)
        if limit is not None and taken >= limit:
            break
    return plan


def measure_speed(
    conversation: Conversation, embedder_factory, names: Iterable[str], max_turns: int = 800, repeats: int = 2
) -> dict[str, dict[str, float]]:
    """Ingest throughput of each system on one conversation with an uncached embedder.

    Also times the bare embedder on the same turn texts, so bookkeeping
    overhead over the embedder is visible. Each timing is the fastest of
    ``repeats`` runs (a shared machine only ever makes a run slower).
    """
    from ltm_agent.app.bench.systems import _turns

    sessions, count = [], 0
    for session in conversation.ordered_sessions():
        if count >= max_turns:
            break
        sessions.append(session)
        count += len(session.turns)
    sample = conversation.model_copy(update={"sessions": tuple(sessions)})
    texts = [text for _, text in _turns(sample)]
    speed: dict[str, dict[str, float]] = {}
    embedder = embedder_factory()
    embedder.embed(texts[:8])  # load the model outside the timings
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        embedder.embed(texts)
        best = min(best, time.perf_counter() - started)
    speed["embedder"] = {"turns": len(texts), "seconds": best, "turns_per_s": len(texts) / best}
    for name in names:
        best, turns = float("inf"), 0
        for attempt in range(repeats):
            system = make_system(name, embedder)
            try:
                started = time.perf_counter()
                turns = system.ingest(("speed", str(attempt)), sample)
                best = min(best, time.perf_counter() - started)
            finally:
                system.close()
        speed[name] = {"turns": turns, "seconds": best, "turns_per_s": turns / best}
    return speed


UNAVAILABLE_FILE = "unavailable.json"
"""Written by every run: ``{system: reason}`` for the systems that could not be built."""


def build_systems(
    systems: Sequence[str], embedder: Embedder, path: str = "bulk"
) -> tuple[dict[str, BenchSystem], dict[str, str]]:
    """Build each system (``ltm`` configurations fed through ``path``), keyed by the name it runs under.

    A system whose package is missing goes to the second dict with its reason.

    Only :class:`~ltm_agent.errors.MissingExtraError` counts as "unavailable";
    any other error (an unknown name, a bug) is raised, after closing what was built.
    """
    built: dict[str, BenchSystem] = {}
    unavailable: dict[str, str] = {}
    try:
        for name in systems:
            try:
                built[system_name(name, path)] = make_system(name, embedder, path)
            except MissingExtraError as exc:
                unavailable[system_name(name, path)] = str(exc)
    except BaseException:
        for system in built.values():
            system.close()
        raise
    return built, unavailable


RowMaker = Callable[[str, Conversation, Question, list[MemoryItem], float], dict]
"""Builds one ``results.jsonl`` line: ``(system, conversation, question, ranked items, latency ms) -> dict``."""


_NON_WORD = re.compile(r"[^0-9a-z]+")


def _normal(text: str) -> str:
    return f" {_NON_WORD.sub(' ', text.lower()).strip()} "


def cut_evidence(text: str, sources: Sequence[str], question: Question, turns: dict[str, str]) -> list[str]:
    """Evidence turns an excerpt stands for but whose answer it cut.

    An item rendered as an excerpt (:func:`~ltm_agent.retrieval.excerpts.is_excerpt`)
    still names its whole turn as its source. When the question's gold answer
    (3 or more characters, compared as lowercase words) is in the whole evidence
    turn but not in the excerpt, the excerpt does not carry that evidence: the
    metrics do not credit it (``cut_evidence`` in ``results.jsonl``). An answer the
    turn words differently cannot be checked, and the excerpt keeps its credit.

    Example:
        >>> from ltm_agent.app.bench.datasets import Question
        >>> q = Question(id="q", dataset="locomo", category="4", text="Which tram?", answer="tram 28",
        ...              evidence=("D1:1",), conversation_id="c")
        >>> cut_evidence("… Go early. [excerpt of a 90-token memory]", ["D1:1"], q, {"D1:1": "Take tram 28. Go early."})
        ['D1:1']
    """
    answer = _normal(str(question.answer))
    if not is_excerpt(text) or len(answer.strip()) < 3:
        return []
    kept = _normal(text)
    return [
        s for s in sources
        if s in question.evidence and answer in _normal(turns.get(s, "")) and answer not in kept
    ]


def retrieval_row(
    system: str,
    dataset: str,
    question: Question,
    items: Sequence[MemoryItem],
    latency_ms: float,
    conversation: Conversation | None = None,
) -> dict:
    """The contract's retrieval line for one (system, question).

    With ``conversation``, each excerpted item lists the evidence turns whose answer it cut
    (:func:`cut_evidence`), which the metrics then do not credit to it.
    """
    retrieved = retrieved_payload(items)
    if conversation is not None and any(is_excerpt(entry["text"]) for entry in retrieved):
        turns = {t.id: t.text for s in conversation.sessions for t in s.turns}
        for entry in retrieved:
            cut = cut_evidence(entry["text"], entry["sources"], question, turns)
            if cut:
                entry["cut_evidence"] = cut
    return {
        "system": system,
        "dataset": dataset,
        "question_id": question.id,
        "category": question.category,
        "retrieved": retrieved,
        "latency_ms": round(latency_ms, 3),
    }


def run_bench_loop(
    dataset: str,
    data: Path,
    out_dir: Path,
    *,
    systems: Sequence[str],
    make_row: RowMaker,
    limit: int | None = None,
    stride: int = 1,
    embedder: Embedder | None = None,
    progress: bool = True,
    desc: str = "retrieval",
    speed_systems: Sequence[str] = (),
    path: str = "bulk",
) -> list[Question]:
    """The per-conversation ingest / retrieve / forget loop both benches share.

    Per conversation, each system ingests it into a fresh namespace, retrieves
    for every question not already in ``results.jsonl`` (resume) and forgets it.
    ``make_row`` turns each retrieval into a line, appended and flushed at once.
    Also writes ``ingest.json``, ``unavailable.json`` (systems that could not be
    built, with the reason: see :func:`build_systems`; they are skipped) and
    ``speed.json`` when ``speed_systems`` is set.

    Args:
        dataset: ``"locomo"`` or ``"longmemeval"``.
        data: Path of the data file.
        out_dir: Output folder (created; an existing ``results.jsonl`` is resumed).
        systems: System names (see :data:`ltm_agent.app.bench.systems.SYSTEMS`).
        make_row: Builds the line of one retrieval (see :data:`RowMaker`).
        limit: Only the first ``limit`` questions.
        stride: Only every ``stride``-th question of the file (a sample spread over
            a file that is ordered by type), applied before ``limit``.
        embedder: Embedder for every system (default: the offline MiniLM), cached on disk.
        progress: Show a progress bar.
        desc: Progress-bar label.
        speed_systems: Systems timed in the uncached ingest-speed phase (none: no phase).
        path: How ``ltm`` configurations are fed (:data:`ltm_agent.app.bench.paths.PATHS`);
            product paths also write ``write_latency.json``.

    Returns:
        The planned questions (every question the run covers, done before or now).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / "results.jsonl"
    base = embedder or default_embedder()
    cached = CachedEmbedder(base, out_dir / "cache" / "embeddings.sqlite")
    conversations = load_conversations(data, dataset)  # type: ignore[arg-type]
    questions = load_questions(data, dataset, conversations=conversations)  # type: ignore[arg-type]
    plan = _select(conversations, questions, limit, stride)
    done = _done(results)

    built, unavailable = build_systems(systems, cached, path)
    (out_dir / UNAVAILABLE_FILE).write_text(json.dumps(unavailable, indent=2), encoding="utf-8")
    ingest_seconds = {name: 0.0 for name in built}
    ingest_turns = {name: 0 for name in built}
    total = sum(len(qs) for _, qs in plan) * len(built)
    bar = tqdm(total=total, desc=f"{dataset} {desc}", unit="q", disable=not progress)
    try:
        speed_file = out_dir / "speed.json"
        timed = [s for s in speed_systems if s in built]
        if timed and not speed_file.exists() and plan:
            speed = measure_speed(plan[0][0], lambda: base, timed)
            speed_file.write_text(json.dumps(speed, indent=2), encoding="utf-8")
        with results.open("a", encoding="utf-8") as sink:
            if _cut_last_line(results):
                sink.write("\n")  # end a line cut by a crash, so the next line starts clean
            for conversation, qs in plan:
                namespace = ("bench", conversation.id.replace("/", "_")[:100])
                for name, system in built.items():
                    todo = [q for q in qs if (name, q.id) not in done]
                    if not todo:
                        bar.update(len(qs))
                        continue
                    bar.update(len(qs) - len(todo))
                    started = time.perf_counter()
                    ingest_turns[name] += system.ingest(namespace, conversation)
                    ingest_seconds[name] += time.perf_counter() - started
                    try:
                        for question in todo:
                            started = time.perf_counter()
                            items = system.retrieve(namespace, question)
                            latency = (time.perf_counter() - started) * 1000
                            row = make_row(name, conversation, question, items, latency)
                            sink.write(json.dumps(row) + "\n")
                            sink.flush()
                            bar.update(1)
                    finally:
                        system.forget(namespace)
    finally:
        bar.close()
        _write_latencies(out_dir, built)
        for system in built.values():
            system.close()
        cached.close()
    ingest = {
        name: {"seconds": ingest_seconds[name], "turns": ingest_turns[name]} for name in built if ingest_turns[name]
    }
    (out_dir / "ingest.json").write_text(json.dumps(ingest, indent=2), encoding="utf-8")
    return [q for _, qs in plan for q in qs]


def _write_latencies(out_dir: Path, built: dict[str, BenchSystem]) -> None:
    """``write_latency.json``: p50/p95 of each product path's writes by history length (merged on resume)."""
    from ltm_agent.app.bench.paths import write_latency_summary

    measured = {name: s.write_latencies for name, s in built.items() if getattr(s, "write_latencies", None)}
    if not measured:
        return
    target = out_dir / "write_latency.json"
    raw = out_dir / "write_latency_raw.json"
    kept = json.loads(raw.read_text(encoding="utf-8")) if raw.exists() else {}
    for name, values in measured.items():
        kept[name] = [*kept.get(name, []), *([n, round(ms, 3)] for n, ms in values)]
    raw.write_text(json.dumps(kept), encoding="utf-8")
    summary: dict = {name: write_latency_summary([(int(n), float(ms)) for n, ms in values]) for name, values in kept.items()}
    for name, system in built.items():
        if getattr(system, "facts", False):
            summary[name]["facts_wait_seconds"] = round(system.facts_wait_seconds, 2)
    target.write_text(json.dumps(summary, indent=2), encoding="utf-8")


def run_retrieval_bench(
    dataset: str,
    data: Path,
    out_dir: Path,
    *,
    systems: Sequence[str] = DEFAULT_SYSTEMS,
    limit: int | None = None,
    stride: int = 1,
    embedder: Embedder | None = None,
    progress: bool = True,
    speed_systems: Sequence[str] = ("dense-turn", "ltm", "ltm-no-context"),
    path: str = "bulk",
) -> BenchRun:
    """Run the retrieval benchmark and write ``results.jsonl``, ``summary.json``, ``report.md`` and a plot.

    Args:
        dataset: ``"locomo"`` or ``"longmemeval"``.
        data: Path of the data file.
        out_dir: Output folder (created; an existing ``results.jsonl`` is resumed).
        systems: System names (see :data:`ltm_agent.app.bench.systems.SYSTEMS`).
        limit: Only the first ``limit`` questions.
        stride: Only every ``stride``-th question (applied before ``limit``).
        embedder: Embedder for every system (default: the offline MiniLM), cached on disk.
        progress: Show a progress bar.
        speed_systems: Systems timed in the uncached ingest-speed phase.
        path: How ``ltm`` configurations are fed: ``bulk`` (ingest), or a product
            path an agent uses (``live``, ``langgraph``, ``llamaindex``; see
            :mod:`ltm_agent.app.bench.paths`); they run as ``ltm@<path>``.
    """
    from ltm_agent.app.bench.report import write_reports

    def make_row(name: str, conversation: Conversation, question: Question, items: list[MemoryItem], latency: float) -> dict:
        return retrieval_row(name, dataset, question, items, latency, conversation)

    planned = run_bench_loop(
        dataset, data, out_dir, systems=systems, make_row=make_row, limit=limit, stride=stride,
        embedder=embedder, progress=progress, desc=f"retrieval ({path})", speed_systems=speed_systems, path=path,
    )
    summary, report = write_reports(dataset, out_dir, planned, [system_name(s, path) for s in systems])
    return BenchRun(out_dir, out_dir / "results.jsonl", summary, report)
