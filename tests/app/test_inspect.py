"""The memory inspector: the CLI view, the JSON and the static HTML report (rendered headless)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ltm_agent.app.cli import app
from ltm_agent.app.cli_common import run
from ltm_agent.app.inspect import build_report, render_html
from ltm_agent.dates import parse_date
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import NotFoundError
from ltm_agent.facts import FactMemory
from ltm_agent.facts.patterns import PatternFactExtractor
from ltm_agent.loaders import load_sample_conversation
from ltm_agent.memory_stores import ChromaStore, InMemoryStore
from ltm_agent.retrieval import HybridRetriever
from ltm_agent.timeline import EpisodicTimeline

NS = ("maya",)
QUESTION = "What is the cat called?"
ASKED = parse_date("2024-04-20T09:00:00+00:00")


def fill(store) -> None:  # type: ignore[no-untyped-def]
    conversation = load_sample_conversation()
    EpisodicTimeline(store, NS).ingest(conversation)
    facts = FactMemory(store, NS, extractor=PatternFactExtractor())
    for session in conversation.ordered_sessions():
        facts.ingest_session(session)


@pytest.fixture(scope="module")
def store() -> InMemoryStore:
    memory = InMemoryStore(embedder=HashingEmbedder(64))
    fill(memory)
    return memory


def test_report_shows_timeline_facts_and_validity(store: InMemoryStore) -> None:
    report = build_report(store, NS)
    assert [s.index for s in report.sessions] == [1, 2, 3, 4, 5]
    assert sum(len(s.turns) for s in report.sessions) == 40
    lisbon = next(f for f in report.facts if "Lisbon" in f.text)
    berlin = next(f for f in report.facts if "Berlin" in f.text)
    assert not lisbon.current and lisbon.valid_until != "-" and lisbon.superseded != "-"
    assert berlin.current and berlin.valid_from == lisbon.valid_until
    assert report.kinds["turn"] == 40 and report.query is None


def test_explanations_follow_the_retriever_and_name_every_signal(store: InMemoryStore) -> None:
    report = build_report(store, NS, query=QUESTION, reference_time=ASKED, k=5)
    ranked = HybridRetriever(store).ranked_items(NS, QUESTION, reference_time=ASKED, depth=5)
    assert [e.score for e in report.explanations] == [round(score, 6) for _, score in ranked]
    top = report.explanations[0]
    assert any("Miso" in e.text for e in report.explanations)
    assert any(name.startswith("keyword via") for name in top.signals)
    assert any(name.startswith("dense via") for name in top.signals)



def test_rrf_shares_reproduce_the_retriever_without_feedback(store: InMemoryStore) -> None:
    from ltm_agent.retrieval import RetrievalConfig

    plain = RetrievalConfig(feedback_docs=0, speaker_boost=0.0, time_expansion=False)
    report = build_report(store, NS, query="Where does Maya live and work?", reference_time=ASKED, k=8, config=plain)
    assert len(report.explanations) == 8
    for e in report.explanations:  # the inspector's own per-signal ranks add up to the retriever's fused score
        assert e.feedback < 1e-6 and abs(e.rrf_share + e.session - e.score) < 1e-6, e
    assert any(e.session > 0 for e in report.explanations)  # the default fuses a ranking of sessions
    alone = build_report(store, NS, query="Where does Maya live and work?", reference_time=ASKED, k=8,
                         config=plain.but(session_weight=0.0))
    assert all(e.session == 0.0 and abs(e.rrf_share - e.score) < 1e-6 for e in alone.explanations)


def test_time_window_is_reported(store: InMemoryStore) -> None:
    report = build_report(store, NS, query="What did we talk about last week?", reference_time=ASKED, k=20)
    assert report.time_window and "last week" in report.time_window
    inside = [e for e in report.explanations if e.in_window]
    assert inside and all(e.time.startswith("2024-04-1") for e in inside)
    assert report.explanations[: len(inside)] == inside  # the window moves them to the front


def test_unknown_namespace_is_an_error_listing_what_exists(store: InMemoryStore) -> None:
    with pytest.raises(NotFoundError, match="namespaces in this store: maya"):
        build_report(store, ("mya",))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "img", "link"):
            self.external.append(tag)
        self.external += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_escaped(store: InMemoryStore) -> None:
    report = build_report(store, NS, query="<script>alert(1)</script> cat?", reference_time=ASKED, k=3)
    page = render_html(report)
    parser = _Text()
    parser.feed(page)
    assert parser.external == []  # no scripts, no fetched files: one file opens anywhere
    text = " ".join(parser.text)
    assert "<script>alert(1)</script> cat?" in text  # shown as text, not run
    assert "Maya lives in Lisbon." in text and "invalidated" in text and "Session 5" in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_html_renders_headless_in_a_browser(store: InMemoryStore, tmp_path: Path) -> None:
    page = tmp_path / "memory.html"
    page.write_text(render_html(build_report(store, NS, query=QUESTION, reference_time=ASKED, k=3)), encoding="utf-8")
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "What a query retrieves, and why" in dom and "Miso" in dom and "invalidated" in dom
    shot = tmp_path / "memory.png"
    subprocess.run([*browser, "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_cli_view_json_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    path = tmp_path / "store"
    with ChromaStore.persistent(path) as chroma:
        fill(chroma)
    command = typer.main.get_command(app)
    html = tmp_path / "report.html"
    code = run(command, ["inspect", "-s", str(path), "-n", "maya", "-q", QUESTION, "-k", "3",
                         "--reference-date", "2024-04-20", "--html", str(html), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert len(data["explanations"]) == 3 and data["facts"] and html.is_file()
    assert re.search(r"wrote .*report\.html", captured.err)
    code = run(command, ["inspect", "-s", str(path), "-n", "maya"])
    captured = capsys.readouterr()
    assert code == 0 and "invalidated" in captured.out and "session 5 (s5)" in captured.out


def test_as_of_marks_the_facts_that_held_then(store: InMemoryStore) -> None:
    before_move = build_report(store, NS, as_of=parse_date("2024-03-10T00:00:00+00:00"))
    held = {f.text: f.held_as_of for f in before_move.facts}
    assert held["Maya lives in Lisbon."] is True and held["Maya lives in Berlin."] is False
    assert before_move.as_of == "2024-03-10 00:00" and "held 2024-03-10 00:00" in render_html(before_move)
    assert all(f.held_as_of is None for f in build_report(store, NS).facts)
