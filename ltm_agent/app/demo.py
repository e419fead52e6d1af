"""``ltm-agent demo``: the main job, offline: a LangGraph agent with long-term memory on Chroma.

A LangGraph agent built from our nodes (memory read -> MemGPT paging ->
agent -> memory write; see :mod:`ltm_agent.app.demo_graph`) talks through the
five-session sample conversation the project ships, one thread per session,
each at its session's date. Then the demo asks questions across sessions and
shows, for each, the grounded memories (ALR² retrieve-then-reason) with dates
and source turns; the facts that changed (bi-temporal, with an "as of" view);
the paging events; what the entropy-decay buffer kept; and where it all
persisted (embedded Chroma).

No chat model is configured: the agent replays the sample's assistant turns,
and every model-shaped step uses its deterministic fallback. The output says
so, and says whether the local model scored the buffer.

Core function: :func:`run_demo`; questions: :data:`DEMO_QUESTIONS`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from ltm_agent.app.demo_graph import DemoGraph, ScorerPlan
    from ltm_agent.conversations import Session
    from ltm_agent.facts import FactMemory
    from ltm_agent.reasoning import GroundedAnswer
    from ltm_agent.records import MemoryItem

__all__ = ["DEMO_QUESTIONS", "DEMO_USER", "DemoQuestion", "run_demo"]

DEMO_USER = "maya"
"""``user_id`` of the demo runs; memory lives under ``ltm-demo/maya``."""
ASKED_ON = "2024-04-20T12:00:00+02:00"
"""When the questions are asked: a week after the last session."""
MIN_OVERLAP = 0.6
"""The extractive reader quotes a sentence only if it shares 60% of the question's content words.

Every turn of Maya's is stored as ``Maya: ...``, so at the selector's default
(20%) the name alone would qualify a sentence and nothing would ever abstain.
"""


@dataclass(frozen=True, slots=True)
class DemoQuestion:
    """A question the demo asks memory after the conversation.

    Attributes:
        text: The question.
        about: What it checks, for the output.
        view: ``"now"``: current facts and all turns; ``"before-move"``: the
            bi-temporal view just before the current location became valid.
    """

    text: str
    about: str
    view: Literal["now", "before-move"] = "now"


DEMO_QUESTIONS = (
    DemoQuestion("Where does Maya live now?", "a fact that changed: Lisbon in session 1, Berlin in session 3"),
    DemoQuestion(
        "What is her cat called and when did she adopt it?",
        "a relative date: 'last Tuesday', said on 1 April (the facts table has it resolved)",
    ),
    DemoQuestion("When is her sister's birthday?", "a detail mentioned once, session 2"),
    DemoQuestion("Does Maya eat meat or fish?", "a food preference, session 1"),
    DemoQuestion("Where did Maya live before she moved?", "the invalidated fact, still on record", "before-move"),
    DemoQuestion("What is Maya's favourite band?", "never mentioned: must abstain"),
)


def run_demo(
    store_dir: Path,
    *,
    console: Console | None = None,
    scorer: str = "auto",
    window_tokens: int = 360,
    buffer_tokens: int = 96,
) -> None:
    """Run the sample conversation through the agent into ``store_dir`` and answer the demo questions.

    The demo namespaces (``ltm-demo/...``) are cleared first, so every run
    starts from the same state; other namespaces in the store are left alone.

    Args:
        store_dir: Embedded Chroma directory (created if missing).
        console: Where to print (tests pass a recording ``rich`` console).
        scorer: Entropy-buffer scorer: ``"auto"`` (the local model for the first
            session when installed and fast enough here, else the statistical
            fallback), ``"local"`` or ``"statistical"``.
        window_tokens: The paging node's window: small, so warnings and flushes happen.
        buffer_tokens: The entropy-decay buffer's budget.

    Example:
        >>> run_demo(Path(".ltm-demo"), scorer="statistical")  # doctest: +SKIP
    """
    from ltm_agent.app.demo_graph import MEMORY_NAMESPACE, PAGING_NAMESPACE, DemoGraph, check_scorer_mode, plan_scorer
    from ltm_agent.dates import parse_date
    from ltm_agent.facts import FactMemory, MemoryView
    from ltm_agent.loaders import load_sample_conversation
    from ltm_agent.memory_stores.chroma import ChromaStore
    from ltm_agent.reasoning import RetrieveThenReason
    from ltm_agent.reasoning.evidence import ExtractiveSelector

    check_scorer_mode(scorer)
    console = console or Console()
    started = time.perf_counter()
    store_dir = Path(store_dir).resolve()
    memory_ns = tuple(label.format(user_id=DEMO_USER) for label in MEMORY_NAMESPACE)
    paging_ns = tuple(label.format(user_id=DEMO_USER) for label in PAGING_NAMESPACE)
    conversation = load_sample_conversation()
    sessions = conversation.ordered_sessions()
    local = sessions[-1].date.tzinfo  # dates print in the user's latest local time
    asked = parse_date(ASKED_ON)

    console.rule("[bold]ltm-agent demo: a LangGraph agent with long-term memory, offline")
    with ChromaStore.persistent(store_dir) as store:  # opened first: a bad --store fails before the model probe
        plan = plan_scorer(scorer, sessions[0])
        cleared = sum(store.delete(ns) for ns in store.list_namespaces(("ltm-demo",)))
        _print_setup(console, store_dir, cleared, window_tokens, plan)
        demo = DemoGraph(store, conversation, window_tokens=window_tokens, buffer_tokens=buffer_tokens, scorers=plan)

        console.rule("1. Five sessions through the graph")
        rows, events, states = _converse(demo, sessions)
        _print_sessions(console, rows)
        _print_paging(console, events, window_tokens)

        console.rule("2. Facts: extracted by the write node, invalidated when they change")
        facts = FactMemory(store, memory_ns)
        moved = _location_change(facts)
        _print_facts(console, facts, moved, local)

        console.rule("3. Questions across sessions: ALR² retrieve-then-reason")
        selector = ExtractiveSelector(min_overlap=MIN_OVERLAP)
        console.print(
            f"reader: [bold]extractive-fallback[/] (no chat model configured: it quotes the stored sentence that "
            f"shares the most question words, at least {MIN_OVERLAP:.0%} of them; not an LLM), over the user's "
            f"facts + the top turns from HybridRetriever (dense MiniLM + BM25, time-aware); asked on "
            f"{asked:%Y-%m-%d}",
            highlight=False,
        )
        answers = []
        for question in DEMO_QUESTIONS:
            as_of = None if question.view == "now" else moved - timedelta(days=1)
            view = MemoryView(store, facts, as_of=as_of, local=local)
            reader = RetrieveThenReason(view, None, budget_tokens=400, k=6, selector=selector)
            result = reader.answer(memory_ns, question.text, reference_time=as_of or asked)
            answers.append(result)
            _print_answer(console, question, result, view.last, as_of, local)

        console.rule("4. Entropy-decay buffer (SirLLM), one per thread, in graph state")
        _print_buffers(console, states, demo.scorer_factory.names, buffer_tokens)

        console.rule("5. Where it persisted")
        counts = {ns: store.count(ns) for ns in (memory_ns, paging_ns)}
    _print_persistence(console, store_dir, counts)
    abstained = sum(a.abstained for a in answers)
    console.print(
        f"demo finished in {time.perf_counter() - started:.1f} s: {len(answers) - abstained} answers grounded in "
        f"memory, {abstained} abstained; chat-model calls: 0",
        highlight=False,
    )


def _converse(
    demo: DemoGraph, sessions: Sequence[Session]
) -> tuple[list[tuple[Any, ...]], list[tuple[str, Mapping[str, Any]]], dict[str, Mapping[str, Any]]]:
    """Feed each session's user turns through the graph (thread = session, time = session date).

    Returns one summary row per session, the paging warnings and flushes, and
    each thread's final state.
    """
    rows: list[tuple[Any, ...]] = []
    events: list[tuple[str, Mapping[str, Any]]] = []
    states: dict[str, Mapping[str, Any]] = {}
    for number, session in enumerate(sessions, 1):
        started, first_input = time.perf_counter(), len(demo.agent.inputs)
        recalled = warnings = flushes = 0
        for turn in session.turns:
            if turn.role != "user":
                continue  # the scripted agent node says the assistant turns
            state = demo.turn(DEMO_USER, session.id, session.date, turn.id, turn.speaker, turn.text)
            recalled += len(state.get("memory_citations") or [])
            for event in state.get("paging_events") or []:
                if event.get("warning") or event.get("flushed"):
                    events.append((turn.id, event))
                    warnings += bool(event.get("warning"))
                    flushes += bool(event.get("flushed"))
            states[session.id] = state
        largest = max(demo.agent.inputs[first_input:], default=0)
        rows.append((number, session, recalled, warnings, flushes, largest, time.perf_counter() - started))
    return rows, events, states


def _location_change(facts: FactMemory) -> datetime:
    """When the current location became valid (the move), from the fact history."""
    history = facts.history("user.location")
    current = [f for f in history if f.is_current]
    return current[-1].valid_at if current else history[-1].valid_at


def _day(when: datetime | None, local: tzinfo | None) -> str:
    return when.astimezone(local).strftime("%Y-%m-%d") if when is not None else "-"


# ---------------------------------------------------------------------------
# Output


def _print_setup(console: Console, store_dir: Path, cleared: int, window: int, plan: ScorerPlan) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("store", f"embedded Chroma at {store_dir} (demo namespaces cleared first: {cleared} records removed)")
    grid.add_row("embedder", "all-MiniLM-L6-v2 int8, offline (the default)")
    grid.add_row(
        "graph",
        "StateGraph(MemoryState): START -> memory_read -> paging -> agent -> memory_write -> END, with an "
        "InMemorySaver checkpointer; thread_id = session id, reference_time = session date",
    )
    grid.add_row(
        "LLM path",
        "no chat model configured: deterministic fallbacks. The agent node replays the sample's scripted "
        "assistant turns (it does not generate them); facts: pattern-fallback extractor; ALR² reader: "
        "extractive-fallback; paging summaries: extractive. "
        + (
            "The local model is used only for token scoring in the entropy buffer."
            if plan.local_sessions
            else "No local model is used."
        ),
    )
    grid.add_row("buffer scorer", escape(plan.note))  # the note holds [local], not markup
    grid.add_row("paging window", f"{window} tokens, small on purpose so that warnings and flushes happen")
    console.print(grid, highlight=False)


def _print_sessions(console: Console, rows: Sequence[tuple[Any, ...]]) -> None:
    table = Table(title="one thread per session; every user turn runs the whole graph", title_justify="left")
    for column in ("session", "date", "turns", "read", "warn/flush", "input", "time"):
        table.add_column(column, no_wrap=True)
    for number, session, recalled, warnings, flushes, largest, seconds in rows:
        table.add_row(
            f"{number} ({session.id})",
            f"{session.date:%Y-%m-%d}",
            str(sum(1 for t in session.turns if t.role == "user")),
            str(recalled),
            f"{warnings}/{flushes}",
            str(largest),
            f"{seconds:.1f} s",
        )
    console.print(table)
    console.print(
        "  turns: user turns fed in; read: memories the read node cited into state; warn/flush: paging events; "
        "input: largest model input in tokens (paged context + memory context: what a chat model would get)",
        highlight=False,
    )


def _print_paging(console: Console, events: Sequence[tuple[str, Mapping[str, Any]]], window: int) -> None:
    console.print(
        f"[bold]paging events[/] (window {window} tokens, warning at 70%, flush past 100%; evicted messages stay in "
        "recall storage and are folded into the running summary; tokens: before -> peak -> after):",
        highlight=False,
    )
    if not events:
        console.print("  none")
    for turn_id, event in events:
        what = []
        if event.get("warning"):
            what.append("memory-pressure warning")
        if event.get("flushed"):
            what.append(f"flush, {len(event.get('evicted_ids') or [])} messages evicted")
        tokens = f"{event['tokens_before']} -> {event['tokens_peak']} -> {event['tokens_after']}"
        console.print(f"  at {turn_id:<5} {' + '.join(what):<32} tokens {tokens}", highlight=False)


def _print_facts(console: Console, facts: FactMemory, moved: datetime, local: tzinfo | None) -> None:
    table = Table(
        title=f"every fact on record (dates in the user's local time, UTC{_offset(local)})", title_justify="left"
    )
    table.add_column("fact")
    for column in ("valid from", "invalid from", "said in", "status"):
        table.add_column(column, no_wrap=True)
    everything = facts.current() + [f for f in facts.history("user.location") if not f.is_current]
    for fact in sorted(everything, key=lambda f: (f.valid_at, f.id)):
        table.add_row(
            fact.text,
            _day(fact.valid_at, local),
            _day(fact.invalid_at, local),
            ", ".join(fact.sources),
            "current" if fact.is_current else "[red]invalidated[/]",
        )
    console.print(table)
    history = facts.history("user.location")
    for old, new in zip(history, history[1:]):
        console.print(
            f"  [bold]invalidated[/]: {old.text} (said in {', '.join(old.sources)}) valid {_day(old.valid_at, local)} "
            f".. {_day(old.invalid_at, local)}, superseded by {new.text} (said in {', '.join(new.sources)}, valid "
            f"from {_day(new.valid_at, local)})",
            highlight=False,
        )
    before = moved - timedelta(days=1)
    console.print(
        f"  [bold]as of {_day(before, local)}[/] (before the move): " + " ".join(f.text for f in facts.as_of(before)),
        highlight=False,
    )
    console.print("  [bold]now[/]: " + " ".join(f.text for f in facts.current()), highlight=False)


def _offset(local: tzinfo | None) -> str:
    offset = local.utcoffset(None) if local is not None else None
    if not offset:
        return ""
    hours, rest = divmod(int(offset.total_seconds()), 3600)
    return f"{hours:+03d}:{rest // 60:02d}"


def _print_answer(
    console: Console,
    question: DemoQuestion,
    result: GroundedAnswer,
    items: Mapping[str, MemoryItem],
    as_of: datetime | None,
    local: tzinfo | None,
) -> None:
    view = "current facts + turns" if as_of is None else f"the facts and turns as of {_day(as_of, local)}"
    console.print(f"[bold]Q: {question.text}[/]")
    console.print(f"   [dim]checks {question.about}; memory view: {view}[/]", highlight=False)
    table = Table()
    table.add_column("date", no_wrap=True)
    table.add_column("memory", no_wrap=True)
    table.add_column("grounded evidence (verbatim from memory)")
    table.add_column("cited", no_wrap=True)
    cited = {c.memory_id for c in result.citations}
    for citation in result.evidence:
        item = items.get(citation.memory_id)
        source = f"{item.kind} {', '.join(item.sources)}" if item is not None else citation.memory_id
        table.add_row(_day(citation.time, local), source, citation.quote, "yes" if citation.memory_id in cited else "")
    if not result.evidence:
        table.add_row("-", "-", "no stored sentence shares enough of the question's words", "")
    console.print(table)
    if result.abstained:
        console.print(f"  A: [bold yellow]abstained[/]: {result.answer}", highlight=False)
    else:
        console.print(f"  A: [bold green]{result.answer}[/]", highlight=False)


def _print_buffers(
    console: Console, states: Mapping[str, Mapping[str, Any]], scorers: Sequence[str], budget: int
) -> None:
    from ltm_agent.buffer import EntropyDecayBuffer

    table = Table(title=f"budget {budget} tokens, phrase units, decay 0.9, 4 sink units", title_justify="left")
    table.add_column("thread", no_wrap=True)
    table.add_column("scorer", overflow="fold")
    table.add_column("units kept / seen", no_wrap=True)
    table.add_column("tokens", no_wrap=True)
    buffers = {}
    for (session_id, state), name in zip(states.items(), scorers):
        buffer = EntropyDecayBuffer.from_state(dict(state["memory_buffer"]))
        buffers[session_id] = (buffer, name)
        stats = buffer.stats
        table.add_row(session_id, name, f"{stats.units_kept} / {stats.units_seen}", str(stats.rendered_tokens))
    console.print(table)
    for session_id in dict.fromkeys((next(iter(buffers)), next(reversed(buffers)))):
        buffer, name = buffers[session_id]
        console.print(f"[bold]kept text of thread {session_id}[/] ({name}):")
        console.print(buffer.render(), highlight=False)


def _print_persistence(console: Console, store_dir: Path, counts: Mapping[tuple[str, ...], int]) -> None:
    for ns, count in counts.items():
        console.print(f"  namespace {'/'.join(ns)}: {count} records", highlight=False)
    size = sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file())
    console.print(
        f"memory persisted in embedded Chroma under [bold]{store_dir}[/] ({size / 1e6:.1f} MB on disk)",
        highlight=False,
    )
    console.print(f"  its turns:   ltm-agent timeline --store {store_dir} -n ltm-demo/{DEMO_USER}", highlight=False)
    console.print(
        f"  inspect it:  ltm-agent inspect --store {store_dir} -n ltm-demo/{DEMO_USER} "
        f"-q 'Where does Maya live now?' --html memory.html   (facts with validity, why each memory ranks)",
        highlight=False, markup=False, soft_wrap=True,  # one line: a command to copy
    )
    console.print("  run it again: the demo namespaces are cleared first, so every run starts clean", highlight=False)
