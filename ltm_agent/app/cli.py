"""The ``ltm-agent`` command line: ingest, search, timeline, stats, forget, bench, demo.

Every command opens an embedded Chroma store (``--store DIR``) or a Chroma
server (``--server http://127.0.0.1:8000``) and reads or writes exactly the
namespace it is given.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ltm_agent.errors import LTMError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Long-term memory for agents, on Chroma.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (see docs/benchmarks.md).")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)
out = Console()

StoreOpt = typer.Option(None, "--store", help="Embedded Chroma directory (default .ltm when no --server).")
ServerOpt = typer.Option(None, "--server", help="Chroma server URL, e.g. http://127.0.0.1:8000.")
NamespaceOpt = typer.Option("default", "--namespace", "-n", help="Tenant namespace, labels joined by '/'.")


@contextmanager
def open_store(store: Optional[Path], server: Optional[str]) -> Iterator["object"]:
    """Open the store the options name (embedded directory or server)."""
    from ltm_agent.memory_stores.chroma import ChromaStore

    if store is not None and server is not None:
        raise typer.BadParameter("give --store or --server, not both")
    handle = ChromaStore.server(server) if server else ChromaStore.persistent(store or Path(".ltm"))
    try:
        yield handle
    finally:
        handle.close()


def _fail(exc: LTMError) -> None:
    console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}")
    raise typer.Exit(code=2)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


@app.command()
def ingest(
    path: Path = typer.Argument(..., help="Conversation file."),
    format: str = typer.Option("jsonl", "--format", "-f", help="locomo | longmemeval | jsonl"),
    store: Optional[Path] = StoreOpt,
    server: Optional[str] = ServerOpt,
    namespace: str = NamespaceOpt,
    units: str = typer.Option("turn,context", help="Units to write: turn (always), context, round, window."),
) -> None:
    """Ingest conversations as episodes. Several conversations go to NAMESPACE/<conversation id>."""
    from ltm_agent.loaders import load_conversations
    from ltm_agent.namespaces import parse_namespace
    from ltm_agent.timeline import EpisodicTimeline

    try:
        base = parse_namespace(namespace)
        conversations = load_conversations(path, format)  # type: ignore[arg-type]
        total = sum(c.turn_count for c in conversations)
        started = time.perf_counter()
        with open_store(store, server) as handle, _progress() as bar:
            task = bar.add_task(f"ingesting {path.name}", total=total)
            for conversation in conversations:
                ns = base if len(conversations) == 1 else (*base, conversation.id)
                timeline = EpisodicTimeline(handle, ns, units=units.split(","))  # type: ignore[arg-type]
                timeline.ingest(conversation, on_items=lambda n: bar.advance(task, n))
        elapsed = time.perf_counter() - started
    except LTMError as exc:
        _fail(exc)
        return
    where = server or str(store or Path(".ltm"))
    console.print(
        f"ingested {len(conversations)} conversation(s), {total} turns in {elapsed:.1f}s "
        f"({total / max(elapsed, 1e-9):.0f} turns/s) into {where}"
    )
    for conversation in conversations[:10]:
        ns = base if len(conversations) == 1 else (*base, conversation.id)
        console.print(f"  namespace: {'/'.join(ns)}")
    if len(conversations) > 10:
        console.print(f"  ... and {len(conversations) - 10} more")


@app.command()
def search(
    query: str = typer.Argument(..., help="Question or text to search for."),
    store: Optional[Path] = StoreOpt,
    server: Optional[str] = ServerOpt,
    namespace: str = NamespaceOpt,
    k: int = typer.Option(10, "--k", help="Most items returned."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Only episodes on or before this date."),
    reference_date: Optional[str] = typer.Option(None, "--reference-date", help="'Now' for relative dates."),
    budget_tokens: Optional[int] = typer.Option(None, "--budget-tokens", help="Pack results into this many tokens."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Hybrid, time-aware search in one namespace."""
    from ltm_agent.dates import parse_date, utcnow
    from ltm_agent.namespaces import parse_namespace
    from ltm_agent.retrieval import HybridRetriever

    try:
        ns = parse_namespace(namespace)
        when = parse_date(as_of) if as_of else None
        ref = parse_date(reference_date) if reference_date else utcnow()
        with open_store(store, server) as handle:
            started = time.perf_counter()
            items = HybridRetriever(handle).retrieve(
                ns, query, reference_time=ref, budget_tokens=budget_tokens, k=k, as_of=when
            )
            elapsed = (time.perf_counter() - started) * 1000
    except LTMError as exc:
        _fail(exc)
        return
    if as_json:
        for item in items:
            typer.echo(json.dumps(item.to_dict(), ensure_ascii=False))
        return
    table = Table(title=f"{len(items)} result(s) in {elapsed:.0f} ms", show_lines=False)
    for column in ("#", "score", "time", "tokens", "sources", "text"):
        table.add_column(column, overflow="fold")
    for rank, item in enumerate(items, 1):
        table.add_row(
            str(rank), f"{item.score:.4f}", item.time.date().isoformat() if item.time else "-",
            str(item.tokens), ",".join(item.sources), item.text,
        )
    out.print(table)


@app.command()
def timeline(
    store: Optional[Path] = StoreOpt,
    server: Optional[str] = ServerOpt,
    namespace: str = NamespaceOpt,
    from_: Optional[str] = typer.Option(None, "--from", help="Start date."),
    to: Optional[str] = typer.Option(None, "--to", help="End date."),
) -> None:
    """Print the namespace's turns in time order (optionally between two dates)."""
    from ltm_agent.dates import parse_date
    from ltm_agent.namespaces import parse_namespace
    from ltm_agent.timeline import EpisodicTimeline

    try:
        ns = parse_namespace(namespace)
        with open_store(store, server) as handle:
            line = EpisodicTimeline(handle, ns)
            if from_ or to:
                start = parse_date(from_) if from_ else parse_date("1970-01-01T00:00:00+00:00")
                end = parse_date(to) if to else parse_date("9999-01-01T00:00:00+00:00")
                episodes = line.between(start, end)
            else:
                episodes = line.episodes()
    except LTMError as exc:
        _fail(exc)
        return
    session = None
    for episode in episodes:
        if episode.session_id != session:
            session = episode.session_id
            out.print(f"[bold]session {episode.session_index + 1} ({session}) - {episode.event_time:%Y-%m-%d %H:%M}[/]")
        out.print(f"  {','.join(episode.sources):>10}  {episode.text}", highlight=False)


@app.command()
def stats(store: Optional[Path] = StoreOpt, server: Optional[str] = ServerOpt) -> None:
    """Namespaces in the store and their item counts."""
    try:
        with open_store(store, server) as handle:
            namespaces = handle.list_namespaces(limit=100_000)  # type: ignore[attr-defined]
            rows = [("/".join(ns), handle.count(ns)) for ns in namespaces]  # type: ignore[attr-defined]
    except LTMError as exc:
        _fail(exc)
        return
    table = Table(title=f"{len(rows)} namespace(s)")
    table.add_column("namespace")
    table.add_column("items", justify="right")
    for name, count in rows:
        table.add_row(name, str(count))
    out.print(table)


@app.command()
def forget(
    store: Optional[Path] = StoreOpt,
    server: Optional[str] = ServerOpt,
    namespace: str = typer.Option(..., "--namespace", "-n", help="Tenant namespace to erase."),
) -> None:
    """Remove every record of one tenant namespace."""
    from ltm_agent.namespaces import parse_namespace

    try:
        ns = parse_namespace(namespace)
        with open_store(store, server) as handle:
            removed = handle.delete(ns)  # type: ignore[attr-defined]
    except LTMError as exc:
        _fail(exc)
        return
    console.print(f"removed {removed} record(s) from namespace {'/'.join(ns)}")


@app.command()
def demo(
    store: Path = typer.Option(Path(".ltm-demo"), "--store", help="Where the demo persists memory (embedded Chroma)."),
    scorer: str = typer.Option(
        "auto",
        "--scorer",
        help="Entropy-buffer scorer: auto (the local model for session 1 if installed and fast enough here, "
        "else the statistical fallback) | local | statistical.",
    ),
) -> None:
    """The main job, offline: a LangGraph agent with our memory nodes talks through the sample
    conversation, then answers questions across sessions from memory (runs in under a minute)."""
    from ltm_agent.app.demo import run_demo

    try:
        run_demo(store, console=out, scorer=scorer)
    except LTMError as exc:
        _fail(exc)


@bench_app.command("retrieval")
def bench_retrieval(
    dataset: str = typer.Option(..., "--dataset", help="locomo | longmemeval"),
    data: Path = typer.Option(..., "--data", help="Data file."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder (resumed if it has results)."),
    systems: Optional[str] = typer.Option(None, "--systems", help="Comma-separated system names."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions."),
    stride: int = typer.Option(1, "--stride", min=1, help="Only every K-th question (before --limit)."),
) -> None:
    """Retrieval benchmark: results.jsonl, summary.json, report.md and a plot in --out."""
    from ltm_agent.app.bench.retrieval_bench import run_retrieval_bench
    from ltm_agent.app.bench.systems import DEFAULT_SYSTEMS

    try:
        names = tuple(s.strip() for s in systems.split(",")) if systems else DEFAULT_SYSTEMS
        run = run_retrieval_bench(dataset, data, out_dir, systems=names, limit=limit, stride=stride)
    except LTMError as exc:
        _fail(exc)
        return
    out.print(run.report.read_text(encoding="utf-8"))
    console.print(f"wrote {run.results}, {run.summary}, {run.report}")


@bench_app.command("qa")
def bench_qa(
    dataset: str = typer.Option(..., "--dataset", help="locomo | longmemeval"),
    data: Path = typer.Option(..., "--data", help="Data file."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder (resumed if it has results of the same reader)."),
    systems: Optional[str] = typer.Option(None, "--systems", help="Comma-separated system names."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions."),
    reader: str = typer.Option(
        "extractive",
        "--reader",
        help="extractive (deterministic sentence picker, named 'extractive-fallback'; not an LLM) | "
        "local (SmolLM2-135M on CPU: weak and slow, one call per system and question, ~3k-token prompts at the "
        "default budget, a minute or more per call on 2 busy cores: use --limit) | "
        "module:attr (a LangChain chat model, or a factory returning one).",
    ),
    budget_tokens: int = typer.Option(1024, "--budget-tokens", help="Context tokens (cl100k) given to the reader."),
    judge: Optional[str] = typer.Option(
        None, "--judge", help="LongMemEval only: module:attr chat model used as the paper's LLM judge."
    ),
) -> None:
    """QA benchmark: every system's retrieval answered by one reader; results, summary, report and plot in --out."""
    from ltm_agent.app.bench.qa_bench import run_qa_bench
    from ltm_agent.app.bench.systems import DEFAULT_SYSTEMS

    try:
        names = tuple(s.strip() for s in systems.split(",")) if systems else DEFAULT_SYSTEMS
        run = run_qa_bench(
            dataset, data, out_dir, systems=names, limit=limit, reader=reader, budget_tokens=budget_tokens, judge=judge
        )
    except LTMError as exc:
        _fail(exc)
        return
    out.print(run.report.read_text(encoding="utf-8"))
    console.print(f"wrote {run.results}, {run.summary}, {run.report}")


@bench_app.command("docs")
def bench_docs(
    runs: list[Path] = typer.Option(..., "--run", help="A bench output folder (repeat for several)."),
    out_file: Path = typer.Option(Path("docs/benchmarks.md"), "--out", help="The page to write."),
) -> None:
    """Regenerate docs/benchmarks.md from bench output folders (tables and plots as they were written)."""
    from ltm_agent.app.bench.docs_page import write_benchmarks_page

    written = write_benchmarks_page(runs, out_file)
    console.print(f"wrote {written}")


def main() -> None:
    """Entry point of the ``ltm-agent`` script."""
    try:
        app()
    except LTMError as exc:  # pragma: no cover - commands catch their own
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
