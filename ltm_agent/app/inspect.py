"""The memory inspector: what one tenant's memory holds, and why a query retrieves what it does.

:func:`build_report` reads (never writes) a namespace: its sessions and turns in
time order, its facts with their validity (bi-temporal: when a fact held in the
world, when memory learned it was superseded), the record kinds it holds, and,
given a query, the retriever's ranking with each signal that produced it:

- **fused score and rank**: what :class:`~ltm_agent.retrieval.HybridRetriever`
  returns (authoritative; the inspector calls the retriever itself);
- **dense** and **keyword** ranks per unit kind (a turn is found through its own
  text and through its context key), with the cosine similarity and the BM25
  score, from the same store searches the retriever makes first;
- **RRF share**: ``weight / (rrf_k + rank)`` summed over those rankings;
  **session**: what the ranking of sessions added (the same for every memory of
  a session; measured by ranking again without it); **feedback** is the rest of
  the fused score (the second, pseudo-relevance feedback pass), before the
  speaker boost;
- **time window**: whether the memory's event time is inside the window resolved
  from the query ("last Tuesday"), which moves it to the front;
- **speaker**: whether the query names the memory's speaker (score x ``1 + speaker_boost``).

The report prints in the terminal (:func:`print_report`) and renders as one
self-contained HTML file (:func:`write_html`, template ``inspect_template.html``).

Core types: :class:`InspectReport`, :func:`build_report`.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from string import Template
from typing import Any

from rich.console import Console
from rich.table import Table

from ltm_agent.dates import utcnow
from ltm_agent.errors import NotFoundError
from ltm_agent.namespaces import Namespace, format_namespace, validate_namespace
from ltm_agent.records import RecordKind, StoredItem
from ltm_agent.store import MemoryStore

__all__ = ["Explanation", "FactRow", "InspectReport", "SessionRow", "build_report", "print_report", "write_html"]

TEMPLATE = Path(__file__).with_name("inspect_template.html")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


@dataclass(frozen=True)
class SessionRow:
    """One session: its id, place, date and turns (``(sources, speaker, text)``)."""

    id: str
    index: int
    date: str
    turns: list[tuple[str, str, str]]


@dataclass(frozen=True)
class FactRow:
    """One fact with its validity: ``valid_from``/``valid_until`` in the world, ``superseded`` in memory."""

    text: str
    subject: str
    valid_from: str
    valid_until: str
    superseded: str
    current: bool
    sources: str
    held_as_of: bool | None = None
    """Whether the fact held in the world at the report's ``as_of`` date (``None`` without one)."""


@dataclass(frozen=True)
class Explanation:
    """Why one memory ranks where it does (see the module docstring for each signal)."""

    rank: int
    score: float
    time: str
    kind: str
    sources: str
    text: str
    signals: dict[str, str]
    rrf_share: float
    feedback: float
    in_window: bool | None
    speaker_named: bool
    session: float = 0.0


@dataclass
class InspectReport:
    """Everything the inspector shows about one namespace."""

    namespace: str
    generated_at: str
    kinds: dict[str, int]
    sessions: list[SessionRow]
    facts: list[FactRow]
    query: str | None = None
    as_of: str | None = None
    reference_time: str | None = None
    time_window: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    explanations: list[Explanation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _day(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M") if when is not None else "-"


def _value(item: StoredItem) -> str:
    """What the retriever fuses on: turns and their context keys count as one memory (their source turn)."""
    if item.metadata.get("kind") in (str(RecordKind.TURN), str(RecordKind.CONTEXT)) and item.metadata.get("sources"):
        return f"turn:{item.metadata['sources']}"
    return f"id:{item.id}"


def _timeline(store: MemoryStore, namespace: Namespace, as_of: datetime | None) -> tuple[list[SessionRow], list[FactRow]]:
    from ltm_agent.timeline import EpisodicTimeline

    line = EpisodicTimeline(store, namespace)
    by_session: dict[str, SessionRow] = {}
    for episode in line.episodes():
        row = by_session.setdefault(
            episode.session_id, SessionRow(episode.session_id, episode.session_index + 1, _day(episode.event_time), [])
        )
        row.turns.append((",".join(episode.sources), episode.speaker or episode.role, episode.text))
    facts = [
        FactRow(f.text, f.subject, _day(f.valid_at), _day(f.invalid_at), _day(f.expired_at), f.invalid_at is None
                and f.expired_at is None, ",".join(f.sources), None if as_of is None else f.is_valid_at(as_of))
        for f in line.facts(include_invalidated=True)
    ]
    return sorted(by_session.values(), key=lambda s: s.index), facts


def _explain(store: MemoryStore, namespace: Namespace, query: str, reference_time: datetime | None, k: int,
             report: InspectReport, config: Any = None) -> None:
    from ltm_agent.retrieval import HybridRetriever

    retriever = HybridRetriever(store, config)
    config = retriever.config.for_query(query)  # the settings this question gets (query-type rules included)
    ranked = retriever.ranked_items(namespace, query, reference_time=reference_time, depth=k)
    window = retriever.time_window(query, reference_time)
    report.time_window = f"{window.expression!r}: {_day(window.start)} .. {_day(window.end)}" if window else None
    report.settings = {"units": list(config.units), "rrf_k": config.rrf_k, "dense_weight": config.dense_weight,
                       "keyword_weight": config.keyword_weight, "feedback_docs": config.feedback_docs,
                       "speaker_boost": config.speaker_boost, "session_weight": config.session_weight,
                       "candidates": config.candidates}
    # The first-pass rankings the retriever fuses: one per search mode and unit kind.
    signals: dict[str, dict[str, str]] = {}
    shares: dict[str, float] = {}
    modes = [("dense", config.dense_weight)] + ([("keyword", config.keyword_weight)] if config.hybrid else [])
    for mode, weight in modes:
        units = list(config.dense_units or config.units) if mode == "dense" else list(config.keyword_units or config.units)
        hits = store.search(namespace, query, mode=mode, filter={"kind": {"$in": units}},  # type: ignore[arg-type]
                            limit=config.candidates * len(units))
        for unit in units:
            seen: dict[str, float] = {}
            for hit in hits:
                if hit.item.metadata.get("kind") == unit and not (mode == "dense" and hit.score <= 0):
                    seen.setdefault(_value(hit.item), hit.score)
            rank, previous = 0, None
            for position, (value, score) in enumerate(list(seen.items())[: config.candidates], start=1):
                rank = rank if score == previous else position  # tied scores share a rank, as in the fusion
                previous = score
                label = "cosine" if mode == "dense" else "BM25"
                signals.setdefault(value, {})[f"{mode} via {unit}"] = f"#{rank} ({label} {score:.3f})"
                shares[value] = shares.get(value, 0.0) + weight / (config.rrf_k + rank)
    # The session ranking is fused last (after the speaker boost): its part is the score's change
    # when the same query is ranked without it.
    session_part: dict[str, float] = {}
    if config.session_weight:
        alone = HybridRetriever(store, config.but(session_weight=0.0)).ranked_items(
            namespace, query, reference_time=reference_time
        )
        before = {_value(item): score for item, score in alone}
        session_part = {_value(i): s - before[_value(i)] for i, s in ranked if _value(i) in before}
    words = {w.lower() for w in _WORD.findall(query)}
    for rank, (item, score) in enumerate(ranked, start=1):
        value = _value(item)
        speaker = str(item.metadata.get("speaker", "")).lower()
        named = bool(config.speaker_boost) and bool(speaker) and speaker in words
        session = session_part.get(value, 0.0)
        base = (score - session) / (1.0 + config.speaker_boost) if named else score - session
        event = item.metadata.get("event_ts")
        when = datetime.fromtimestamp(float(event), tz=reference_time.tzinfo if reference_time else None) \
            if isinstance(event, (int, float)) else None
        report.explanations.append(Explanation(
            rank=rank, score=round(score, 6), time=_day(when), kind=str(item.metadata.get("kind", "")),
            sources=", ".join(json.loads(str(item.metadata.get("sources", "[]")))), text=item.text,
            signals=signals.get(value, {}), rrf_share=round(shares.get(value, 0.0), 6),
            feedback=round(max(base - shares.get(value, 0.0), 0.0), 6),
            in_window=None if window is None else window.contains(when), speaker_named=named,
            session=round(session, 6),
        ))


def build_report(
    store: MemoryStore,
    namespace: Namespace,
    *,
    query: str | None = None,
    reference_time: datetime | None = None,
    k: int = 10,
    config: Any = None,
    as_of: datetime | None = None,
) -> InspectReport:
    """Read one namespace (and explain ``query`` when given) into an :class:`InspectReport`.

    Args:
        store: The store to read.
        namespace: The tenant namespace.
        query: A question to explain (omit for the timeline and facts only).
        reference_time: When the question is asked (resolves "last week"); default now.
        k: How many retrieved memories to explain.
        config: The :class:`~ltm_agent.retrieval.RetrievalConfig` to explain (default: the library's).
        as_of: Also mark which facts held in the world at this time (the bi-temporal "as of" view).

    Raises:
        NotFoundError: The namespace holds nothing (the message lists the namespaces that exist).

    Example:
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.loaders import load_sample_conversation
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.timeline import EpisodicTimeline
        >>> store = InMemoryStore(embedder=HashingEmbedder())
        >>> _ = EpisodicTimeline(store, ("maya",)).ingest(load_sample_conversation())
        >>> report = build_report(store, ("maya",), query="What is the cat called?", k=3)
        >>> len(report.sessions), len(report.explanations)
        (5, 3)
    """
    namespace = validate_namespace(tuple(namespace))
    items = store.list(namespace)
    if not items:
        existing = ", ".join(format_namespace(ns) for ns in store.list_namespaces(limit=20)) or "none"
        raise NotFoundError(
            f"namespace {format_namespace(namespace)!r} holds no memories; namespaces in this store: {existing}"
        )
    kinds: dict[str, int] = {}
    for item in items:
        kind = str(item.metadata.get("kind", "other"))
        kinds[kind] = kinds.get(kind, 0) + 1
    sessions, facts = _timeline(store, namespace, as_of)
    report = InspectReport(format_namespace(namespace), utcnow().strftime("%Y-%m-%d %H:%M UTC"), kinds, sessions, facts,
                           as_of=_day(as_of) if as_of is not None else None)
    if query is not None:
        reference_time = reference_time or utcnow()
        report.query, report.reference_time = query, _day(reference_time)
        _explain(store, namespace, query, reference_time, k, report, config)
    return report


def print_report(report: InspectReport, console: Console) -> None:
    """The report as terminal tables."""
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.kinds.items()))
    console.print(f"[bold]namespace {report.namespace}[/]: {kinds}", highlight=False)
    for session in report.sessions:
        console.print(f"  session {session.index} ({session.id}) {session.date}: {len(session.turns)} turns",
                      highlight=False)
    table = Table(title=f"{len(report.facts)} fact(s) with their validity", title_justify="left")
    table.add_column("fact", overflow="fold", ratio=1)
    extra = [f"held {report.as_of}"] if report.as_of else []
    for column in ("valid from", "valid until", "superseded", "status", *extra, "sources"):
        table.add_column(column, no_wrap=True)
    for fact in report.facts:
        held = ["yes" if fact.held_as_of else "no"] if report.as_of else []
        table.add_row(fact.text, fact.valid_from, fact.valid_until, fact.superseded,
                      "current" if fact.current else "invalidated", *held, fact.sources)
    console.print(table)
    if report.query is None:
        console.print("  (add --query '...' to see what a question retrieves and why)")
        return
    console.print(f"[bold]query[/] {report.query!r} asked {report.reference_time}; time window: "
                  f"{report.time_window or 'none named'}", highlight=False)
    table = Table(title="what it retrieves and why", title_justify="left", show_lines=True)
    for column in ("#", "score", "time", "sources", "signals", "text"):
        table.add_column(column, overflow="fold")
    for e in report.explanations:
        table.add_row(str(e.rank), f"{e.score:.4f}", e.time, e.sources, "\n".join(_signal_lines(e)), e.text)
    console.print(table)


def _signal_lines(e: Explanation) -> list[str]:
    lines = [f"{name} {value}" for name, value in e.signals.items()] or ["not in the first-pass rankings"]
    lines.append(f"RRF {e.rrf_share:.4f} + feedback {e.feedback:.4f} + session {e.session:.4f}")
    if e.in_window is not None:
        lines.append("in the time window" if e.in_window else "outside the time window")
    if e.speaker_named:
        lines.append("speaker named in the query")
    return lines


def _rows(cells: list[list[str]]) -> str:
    return "\n".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in cells)


def render_html(report: InspectReport) -> str:
    """The report as one self-contained HTML page (inline CSS, no scripts, nothing fetched)."""
    e = html.escape
    sessions = "\n".join(
        f'<section class="session"><h3>Session {s.index} <span class="muted">{e(s.id)} · {e(s.date)}</span></h3>'
        f'<ol class="turns">' + "".join(
            f'<li><span class="src">{e(src)}</span> {e(text)}</li>' for src, _, text in s.turns  # text names the speaker
        ) + "</ol></section>"
        for s in report.sessions
    ) or "<p class=muted>No turns.</p>"
    held = [f"held {report.as_of}"] if report.as_of else []
    fact_header = "".join(f"<th>{e(h)}</th>" for h in
                          ("fact", "valid from", "valid until", "superseded", "status", *held, "sources"))
    facts = _rows([[e(f.text), e(f.valid_from), e(f.valid_until), e(f.superseded),
                    '<span class="ok">current</span>' if f.current else '<span class="old">invalidated</span>',
                    *((["yes" if f.held_as_of else "no"]) if report.as_of else []), e(f.sources)]
                   for f in report.facts]) or '<tr><td colspan="7" class="muted">No facts.</td></tr>'
    if report.query is None:
        query = '<p class="muted">Run <code>ltm-agent inspect --query "..." --html FILE</code> to add this section.</p>'
    else:
        rows = _rows([[str(x.rank), f"{x.score:.4f}", e(x.time), e(x.sources),
                       "<br>".join(e(line) for line in _signal_lines(x)), e(x.text)] for x in report.explanations])
        query = (f'<p>Query <q>{e(report.query)}</q>, asked {e(report.reference_time or "")}; time window: '
                 f'{e(report.time_window or "none named")}.</p><p class="muted">Retriever settings: '
                 f'{e(", ".join(f"{key} = {value}" for key, value in report.settings.items()))}</p>'
                 f'<table class="why"><thead><tr><th>#</th><th>score</th><th>time</th><th>sources</th><th>signals</th>'
                 f'<th>text</th></tr></thead><tbody>{rows}</tbody></table>')
    kinds = ", ".join(f"{n} {e(kind)}" for kind, n in sorted(report.kinds.items()))
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        namespace=e(report.namespace), generated=e(report.generated_at), kinds=kinds,
        session_count=len(report.sessions), sessions=sessions, fact_count=len(report.facts), facts=facts, query=query,
        fact_header=fact_header,
    )


def write_html(report: InspectReport, path: Path) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8) and return it."""
    path.write_text(render_html(report), encoding="utf-8")
    return path
