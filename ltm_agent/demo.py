"""``ltm-agent demo``: the main job, offline, on the sample conversation the project ships.

Ingests a multi-session conversation (ours: preferences, a fact that changes,
relative dates, a detail mentioned once) into an embedded Chroma store, then
asks questions across sessions and shows what memory retrieves, with dates and
source turns, and where it persisted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

__all__ = ["DEMO_QUESTIONS", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoQuestion:
    text: str
    asked_on: str


DEMO_QUESTIONS = (
    DemoQuestion("Where does Maya live now?", "2024-04-20T12:00:00+00:00"),
    DemoQuestion("What is the name of Maya's cat?", "2024-04-20T12:00:00+00:00"),
    DemoQuestion("When is Maya's sister's birthday?", "2024-04-20T12:00:00+00:00"),
    DemoQuestion("What food does Maya avoid?", "2024-04-20T12:00:00+00:00"),
    DemoQuestion("What did Maya tell me last week?", "2024-04-20T12:00:00+00:00"),
)


def run_demo(store_dir: Path, *, console: Console | None = None, budget_tokens: int = 120) -> None:
    """Ingest the sample conversation into ``store_dir`` and answer the demo questions."""
    from ltm_agent.dates import parse_date
    from ltm_agent.loaders import load_sample_conversation
    from ltm_agent.memory_stores.chroma import ChromaStore
    from ltm_agent.retrieval import HybridRetriever
    from ltm_agent.timeline import EpisodicTimeline

    console = console or Console()
    conversation = load_sample_conversation()
    namespace = ("demo-user", "assistant")
    console.rule("[bold]ltm-agent demo")
    console.print(f"store: embedded Chroma at [bold]{store_dir.resolve()}[/] (offline embedder: all-MiniLM-L6-v2 int8)")
    with ChromaStore.persistent(store_dir) as store:
        store.delete(namespace)  # the demo starts from a clean tenant each run
        timeline = EpisodicTimeline(store, namespace)
        started = time.perf_counter()
        report = timeline.ingest(conversation)
        console.print(
            f"ingested {report.turns} turns in {report.sessions} sessions in {time.perf_counter() - started:.1f}s "
            f"into namespace {'/'.join(namespace)}"
        )
        for info in timeline.sessions():
            console.print(f"  session {info.index + 1}: {info.date:%Y-%m-%d}  ({info.turn_count} turns)")
        retriever = HybridRetriever(store)
        for question in DEMO_QUESTIONS:
            asked: datetime = parse_date(question.asked_on)
            started = time.perf_counter()
            items = retriever.retrieve(namespace, question.text, reference_time=asked, budget_tokens=budget_tokens, k=3)
            elapsed = (time.perf_counter() - started) * 1000
            window = retriever.time_window(question.text, asked)
            table = Table(title=f"Q: {question.text}  (asked {asked:%Y-%m-%d}, {elapsed:.0f} ms)", title_justify="left")
            table.add_column("date")
            table.add_column("sources")
            table.add_column("memory")
            for item in items:
                table.add_row(item.time.date().isoformat() if item.time else "-", ",".join(item.sources), item.text)
            console.print(table)
            if window is not None:
                console.print(
                    f"  time window from '{window.expression}': {window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d}"
                )
    console.print(f"memory persisted under {store_dir.resolve()}; inspect it with: ltm-agent timeline --store {store_dir} -n demo-user/assistant")
