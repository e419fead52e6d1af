"""The ``ltm-agent`` command line: ingest, search, timeline, stats, forget, inspect, export, import, demo, bench.

Every command opens an embedded Chroma store (``--store DIR``) or a Chroma
server (``--server http://127.0.0.1:8000``) and reads or writes exactly the
namespace it is given. The shared rules (one-line errors with exit code 2,
reads never create a store, ``--json`` for data) live in
:mod:`ltm_agent.app.cli_common`; the reference page docs/cli.md is generated
from this app (``make cli-docs``).

Adding a command: decorate a function with ``@app.command()`` (or
``@bench_app.command("name")`` for a benchmark); raise an
:class:`~ltm_agent.errors.LTMError` for bad input, the root group prints it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ltm_agent.app import cli_tools
from ltm_agent.app.cli_common import (
    DEFAULT_STORE,
    JsonOpt,
    LimitOpt,
    NamespaceOpt,
    OneLineErrorsGroup,
    ServerOpt,
    StoreOpt,
    console,
    emit_json,
    fail,
    open_store,
    out,
    parse_cli_date,
    parse_cli_namespace,
    require_namespace,
    require_new_folder_or_folder,
    run,
)
from ltm_agent.errors import DataFormatError, InvalidInputError, TextTooLargeError
from ltm_agent.store import StoreLimits

app = typer.Typer(
    cls=OneLineErrorsGroup,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Long-term memory for agents, on Chroma. Reference: docs/cli.md.",
)
bench_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Benchmarks (see docs/benchmarks.md).")
app.add_typer(bench_app, name="bench")
from ltm_agent.app.gaia.cli import gaia_app  # noqa: E402 - the gaia commands live in their package

app.add_typer(gaia_app, name="gaia")

_fail = fail  # older command bodies call _fail(exc); the root group reports errors either way
UNITS = ("turn", "context", "round", "window")
FORMATS = ("jsonl", "locomo", "longmemeval")
DATASETS = ("locomo", "longmemeval")
MAX_QUERY_CHARS = StoreLimits().max_text_chars


_PYTHON_ADVICE = "split it (ltm_agent.tokens.chunk_text) or raise StoreLimits.max_text_chars"


def _for_a_file(message: str) -> str:
    """The store's size advice names Python calls; a CLI user edits the file instead."""
    return message.replace(_PYTHON_ADVICE, "split that turn into several turns in the file")


def _bench_inputs(dataset: str, out_dir: Path) -> None:
    if dataset not in DATASETS:
        raise InvalidInputError(f"--dataset {dataset!r} is not a benchmark data set; choose from {', '.join(DATASETS)}")
    require_new_folder_or_folder(out_dir, "--out")


def _units(text: str) -> list[str]:
    names = [u.strip() for u in text.split(",") if u.strip()]
    unknown = [u for u in names if u not in UNITS]
    if unknown or not names:
        raise InvalidInputError(
            f"--units {text!r}: unknown unit(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(UNITS)}, comma-separated, e.g. turn,context"
        )
    return names


def _progress():  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


@app.command()
def ingest(
    path: Path = typer.Argument(..., help="Conversation file (formats: docs/formats.md).", show_default=False),
    format: str = typer.Option(
        "jsonl", "--format", "-f", help="jsonl (ltm-agent's own format, docs/formats.md) | locomo | longmemeval."
    ),
    store: Optional[Path] = StoreOpt,
    server: Optional[str] = ServerOpt,
    namespace: str = NamespaceOpt,
    units: str = typer.Option("turn,context", "--units", "-u", help="Units to write: turn (always), context, round, window."),
    as_json: bool = JsonOpt,
) -> None:
    """Ingest conversations as episodes (creates the store if needed). Several conversations in one
    file go to NAMESPACE/<conversation id>."""
    from ltm_agent.loaders import load_conversations
    from ltm_agent.namespaces import format_namespace
    from ltm_agent.timeline import EpisodicTimeline

    if format not in FORMATS:
        raise InvalidInputError(f"--format {format!r} is not a format; choose from {', '.join(FORMATS)}")
    base = parse_cli_namespace(namespace)
    kinds = _units(units)
    try:
        conversations = load_conversations(path, format)  # type: ignore[arg-type]
    except DataFormatError as exc:
        raise DataFormatError(f"{_for_a_file(str(exc))}; the formats are described in docs/formats.md") from None
    total = sum(c.turn_count for c in conversations)
    started = time.perf_counter()
    targets = [base if len(conversations) == 1 else (*base, c.id) for c in conversations]
    with open_store(store, server, create=True) as handle, _progress() as bar:
        task = bar.add_task(f"ingesting {path.name}", total=total)
        for conversation, ns in zip(conversations, targets):
            timeline = EpisodicTimeline(handle, ns, units=kinds)  # type: ignore[arg-type]
            try:
                timeline.ingest(conversation, on_items=lambda n: bar.advance(task, n))
            except TextTooLargeError as exc:
                raise TextTooLargeError(f"{path}: conversation {conversation.id!r}: {_for_a_file(str(exc))}") from None
    elapsed = time.perf_counter() - started
    where = server or str(store or DEFAULT_STORE)
    if as_json:
        emit_json([{"conversations": len(conversations), "turns": total, "seconds": round(elapsed, 2),
                    "store": where, "namespaces": [format_namespace(ns) for ns in targets]}])
        return
    console.print(
        f"ingested {len(conversations)} conversation(s), {total} turns in {elapsed:.1f}s "
        f"({total / max(elapsed, 1e-9):.0f} turns/s) into {where}", highlight=False,
    )
    for ns in targets[:10]:
        console.print(f"  namespace: {format_namespace(ns)}", highlight=False)
    if len(targets) > 10:
        console.print(f"  ... and {len(targets) - 10} more")


@app.command()
def search(
    query: str = typer.Argument(..., help="Question or text to search for.", show_default=False),
    store: Optional[Path] = StoreOpt,
    server: Optional[str] = ServerOpt,
    namespace: str = NamespaceOpt,
    limit: int = LimitOpt,
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Only episodes on or before this date."),
    reference_date: Optional[str] = typer.Option(
        None, "--reference-date", help="'Now' for relative dates in the query [default: the current time]."
    ),
    budget_tokens: Optional[int] = typer.Option(
        None, "--budget-tokens", "-b", min=1, max=1_000_000, help="Pack results into this many tokens (cl100k)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Hybrid, time-aware search in one namespace (why each result ranks: ltm-agent inspect --query)."""
    from ltm_agent.dates import utcnow
    from ltm_agent.retrieval import HybridRetriever

    ns = parse_cli_namespace(namespace)
    if len(query) > MAX_QUERY_CHARS:
        raise TextTooLargeError(
            f"the query has {len(query):,} characters, over the limit of {MAX_QUERY_CHARS:,}; ask a shorter question"
        )
    when = parse_cli_date(as_of, "--as-of")
    ref = parse_cli_date(reference_date, "--reference-date") or utcnow()
    with open_store(store, server, create=False) as handle:
        require_namespace(handle, ns)
        started = time.perf_counter()
        items = HybridRetriever(handle).retrieve(ns, query, reference_time=ref, budget_tokens=budget_tokens, k=limit, as_of=when)
        elapsed = (time.perf_counter() - started) * 1000
    if as_json:
        emit_json([item.to_dict() for item in items])
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
    from_: Optional[str] = typer.Option(None, "--from", help="Start date (inclusive)."),
    to: Optional[str] = typer.Option(None, "--to", help="End date (inclusive)."),
    as_json: bool = JsonOpt,
) -> None:
    """Print the namespace's turns in time order (optionally between two dates)."""
    from ltm_agent.timeline import EpisodicTimeline

    ns = parse_cli_namespace(namespace)
    start, end = parse_cli_date(from_, "--from"), parse_cli_date(to, "--to")
    if start is not None and end is not None and start > end:
        raise InvalidInputError(f"--from {from_} is after --to {to}; give the earlier date to --from")
    with open_store(store, server, create=False) as handle:
        require_namespace(handle, ns)
        line = EpisodicTimeline(handle, ns)
        if start or end:
            from ltm_agent.dates import parse_date

            episodes = line.between(start or parse_date("1970-01-01"), end or parse_date("9999-01-01"))
        else:
            episodes = line.episodes()
    if as_json:
        emit_json([{"id": e.id, "session_id": e.session_id, "session_index": e.session_index,
                    "time": e.event_time.isoformat(), "sources": list(e.sources), "text": e.text} for e in episodes])
        return
    session = None
    for episode in episodes:
        if episode.session_id != session:
            session = episode.session_id
            out.print(f"[bold]session {episode.session_index + 1} ({session}) - {episode.event_time:%Y-%m-%d %H:%M}[/]",
                      highlight=False)
        out.print(f"  {','.join(episode.sources):>10}  {episode.text}", highlight=False, markup=False)


@app.command()
def stats(store: Optional[Path] = StoreOpt, server: Optional[str] = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Namespaces in the store and their item counts."""
    from ltm_agent.namespaces import format_namespace

    with open_store(store, server, create=False) as handle:
        rows = [(format_namespace(ns), handle.count(ns)) for ns in handle.list_namespaces(limit=100_000)]
    if as_json:
        emit_json([{"namespace": name, "items": count} for name, count in rows])
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
    namespace: str = typer.Option(..., "--namespace", "-n", help="Tenant namespace to erase.", show_default=False),
    as_json: bool = JsonOpt,
) -> None:
    """Remove every record of a tenant: the namespace and every namespace under it (counts per namespace)."""
    from ltm_agent.namespaces import format_namespace

    ns = parse_cli_namespace(namespace)
    with open_store(store, server, create=False) as handle:
        removed = handle.forget(ns)
        if not removed:
            require_namespace(handle, ns)  # nothing there: an error that lists what exists
    if as_json:
        emit_json([{"namespace": format_namespace(n), "removed": count} for n, count in removed.items()])
        return
    for n, count in removed.items():
        console.print(f"removed {count} record(s) from namespace {format_namespace(n)}", highlight=False)
    total = sum(removed.values())
    console.print(f"removed {total} record(s) in {len(removed)} namespace(s) under {format_namespace(ns)}", highlight=False)


@app.command()
def demo(
    store: Path = typer.Option(Path(".ltm-demo"), "--store", "-s", help="Where the demo persists memory (embedded Chroma)."),
    scorer: str = typer.Option(
        "auto",
        "--scorer",
        help="Entropy-buffer scorer: auto (the local model for session 1 if installed and fast enough here, "
        "else the statistical fallback) | local | statistical.",
    ),
) -> None:
    """The main job, offline: a LangGraph agent with our memory nodes talks through the sample
    conversation, then answers questions across sessions from memory (about half a minute on 2 cores, once set up)."""
    from ltm_agent.app.demo import run_demo

    run_demo(store, console=out, scorer=scorer)


@bench_app.command("retrieval")
def bench_retrieval(
    dataset: str = typer.Option(..., "--dataset", help="locomo | longmemeval", show_default=False),
    data: Path = typer.Option(..., "--data", help="Data file.", show_default=False),
    out_dir: Path = typer.Option(..., "--out", help="Output folder (resumed if it has results).", show_default=False),
    systems: Optional[str] = typer.Option(None, "--systems", help="Comma-separated system names."),
    limit: Optional[int] = typer.Option(None, "--limit", "-k", min=1, help="Only the first N questions."),
    stride: int = typer.Option(1, "--stride", min=1, help="Only every K-th question (before --limit)."),
    path: str = typer.Option(
        "bulk", "--path", help="How ltm is fed: bulk (ingest) | live (add_turn per turn) | langgraph (our write/read "
        "nodes in a compiled graph) | llamaindex (Memory with our block); product paths run as ltm@<path>.",
    ),
) -> None:
    """Retrieval benchmark: results.jsonl, summary.json, report.md and a plot in --out."""
    from ltm_agent.app.bench.retrieval_bench import run_retrieval_bench
    from ltm_agent.app.bench.systems import DEFAULT_SYSTEMS

    _bench_inputs(dataset, out_dir)
    names = tuple(s.strip() for s in systems.split(",")) if systems else DEFAULT_SYSTEMS
    result = run_retrieval_bench(dataset, data, out_dir, systems=names, limit=limit, stride=stride, path=path)
    out.print(result.report.read_text(encoding="utf-8"), markup=False, highlight=False)
    console.print(f"wrote {result.results}, {result.summary}, {result.report}", highlight=False)


@bench_app.command("qa")
def bench_qa(
    dataset: str = typer.Option(..., "--dataset", help="locomo | longmemeval", show_default=False),
    data: Path = typer.Option(..., "--data", help="Data file.", show_default=False),
    out_dir: Path = typer.Option(
        ..., "--out", help="Output folder (resumed if it has results of the same reader).", show_default=False
    ),
    systems: Optional[str] = typer.Option(None, "--systems", help="Comma-separated system names."),
    limit: Optional[int] = typer.Option(None, "--limit", "-k", min=1, help="Only the first N questions."),
    reader: str = typer.Option(
        "extractive",
        "--reader",
        help="extractive (deterministic sentence picker, named 'extractive-fallback'; not an LLM, never abstains) | "
        "local (SmolLM2-135M on CPU: weak and slow, one call per system and question, ~3k-token prompts at the "
        "default budget, a minute or more per call on 2 busy cores: use --limit) | "
        "module:attr (a LangChain chat model, or a factory returning one).",
    ),
    budget_tokens: int = typer.Option(
        1024, "--budget-tokens", "-b", min=1, help="Context tokens (cl100k) given to the reader."
    ),
    judge: Optional[str] = typer.Option(
        None, "--judge", help="LongMemEval only: module:attr chat model used as the paper's LLM judge."
    ),
) -> None:
    """QA benchmark: every system's retrieval answered by one reader; results, summary, report and plot in --out."""
    from ltm_agent.app.bench.qa_bench import run_qa_bench
    from ltm_agent.app.bench.systems import DEFAULT_SYSTEMS

    _bench_inputs(dataset, out_dir)
    names = tuple(s.strip() for s in systems.split(",")) if systems else DEFAULT_SYSTEMS
    result = run_qa_bench(
        dataset, data, out_dir, systems=names, limit=limit, reader=reader, budget_tokens=budget_tokens, judge=judge
    )
    out.print(result.report.read_text(encoding="utf-8"), markup=False, highlight=False)
    console.print(f"wrote {result.results}, {result.summary}, {result.report}", highlight=False)


@bench_app.command("docs")
def bench_docs(
    runs: list[Path] = typer.Option(..., "--run", help="A bench output folder (repeat for several).", show_default=False),
    out_file: Path = typer.Option(Path("docs/benchmarks.md"), "--out", help="The page to write."),
    note: str = typer.Option("", "--note", help="How the runs were made (commit, --stride, cache), quoted on the page."),
) -> None:
    """Regenerate docs/benchmarks.md from bench output folders (tables and plots as they were written)."""
    from ltm_agent.app.bench.docs_page import write_benchmarks_page

    written = write_benchmarks_page(runs, out_file, note=note)
    console.print(f"wrote {written}", highlight=False)


app.command("inspect")(cli_tools.inspect_command)
app.command("export")(cli_tools.export_command)
app.command("import")(cli_tools.import_command)

from ltm_agent.app.bench.evolution.commands import register as _register_evolution  # noqa: E402 - bodies live there

_register_evolution(app, bench_app)  # bench evolution / evolution-feedback / evolution-docs, consolidate

from ltm_agent.app.bench.paths_page import register as _register_paths  # noqa: E402 - body lives there

_register_paths(bench_app)  # bench paths-docs
from ltm_agent.app.bench.perf_commands import register as _register_perf  # noqa: E402 - bodies live there

_register_perf(app, bench_app)  # bench perf, reliability
from ltm_agent.app.bench.fusion_training import register as _register_fusion  # noqa: E402 - body lives there

_register_fusion(app, bench_app)  # bench train-fusion


def main() -> None:
    """Entry point of the ``ltm-agent`` script: one error line and exit code 2 on any failure."""
    raise SystemExit(run(typer.main.get_command(app)))


if __name__ == "__main__":  # pragma: no cover
    main()
