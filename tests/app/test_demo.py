"""``ltm-agent demo`` end to end: the LangGraph agent, facts, paging, grounded answers, persistence.

Runs the real demo once (offline MiniLM, embedded Chroma) with the statistical
buffer scorer, so it takes seconds, not the local model's minutes. The store
starts with a stale demo record and another tenant's record, to check that a
run clears the demo namespaces and nothing else.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from ltm_agent.app.demo import run_demo
from ltm_agent.memory_stores.chroma import ChromaStore
from ltm_agent.timeline import EpisodicTimeline

STALE = ("ltm-demo", "maya")
OTHER = ("someone-else",)


def _run(store_dir: Path) -> str:
    console = Console(record=True, width=200, file=io.StringIO(), color_system=None)
    run_demo(store_dir, console=console, scorer="statistical")
    return console.export_text()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo run into a store that already holds a stale demo record and another tenant's record."""
    store_dir = tmp_path_factory.mktemp("demo") / "store"
    with ChromaStore.persistent(store_dir) as store:
        EpisodicTimeline(store, STALE).add_turn("I live in Paris.", speaker="Maya", session_id="old-run")
        EpisodicTimeline(store, OTHER).add_turn("I live in Oslo.", speaker="Bo", session_id="b1")
    return store_dir, _run(store_dir)


def _answer(output: str, question: str) -> str:
    """The ``A:`` line printed after ``question``."""
    after = output.split(f"Q: {question}", 1)[1]
    return re.search(r"^\s*A: (.*)$", after, re.MULTILINE).group(1)  # type: ignore[union-attr]


def test_the_agent_runs_every_session_through_the_graph(demo: tuple[Path, str]) -> None:
    _, output = demo
    assert "START -> memory_read -> paging -> agent -> memory_write -> END" in output
    assert "no chat model configured: deterministic fallbacks" in output
    assert "replays the sample's scripted assistant turns" in output
    for session in ("1 (s1)", "2 (s2)", "3 (s3)", "4 (s4)", "5 (s5)"):
        assert session in output
    assert "statistical-unigram-fallback" in output


def test_berlin_is_current_and_lisbon_invalidated_with_dates(demo: tuple[Path, str]) -> None:
    _, output = demo
    assert "Berlin" in _answer(output, "Where does Maya live now?")
    assert re.search(r"invalidated: Maya lives in Lisbon\. \(said in s1:5\) valid 2024-03-02 \.\. 2024-03-16", output)
    assert re.search(r"as of 2024-03-15 \(before the move\):.*Maya lives in Lisbon\.", output)
    assert "Lisbon" in _answer(output, "Where did Maya live before she moved?")


def test_grounded_answers_cite_dated_source_turns(demo: tuple[Path, str]) -> None:
    _, output = demo
    assert "Miso" in _answer(output, "What is her cat called and when did she adopt it?")
    assert "14 March" in _answer(output, "When is her sister's birthday?")
    assert "vegetarian" in _answer(output, "Does Maya eat meat or fish?")
    assert re.search(r"2024-04-01 .*s4:1 .*last Tuesday I adopted a cat named Miso", output)


def test_unknown_question_abstains(demo: tuple[Path, str]) -> None:
    _, output = demo
    assert _answer(output, "What is Maya's favourite band?") == "abstained: Not mentioned in memory."


def test_paging_flushes_and_buffer_is_shown(demo: tuple[Path, str]) -> None:
    _, output = demo
    assert re.search(r"at s\d:\d\s+memory-pressure warning", output)
    assert re.search(r"flush, [1-9]\d* messages evicted", output)
    assert "kept text of thread s1" in output


def test_store_path_is_printed_and_persisted(demo: tuple[Path, str]) -> None:
    store_dir, output = demo
    assert f"memory persisted in embedded Chroma under {store_dir.resolve()}" in output
    assert (store_dir / "chroma.sqlite3").is_file()


def test_a_run_starts_from_a_clean_demo_namespace(demo: tuple[Path, str]) -> None:
    store_dir, output = demo
    removed = re.search(r"demo namespaces cleared first: (\d+) records removed", output)
    assert removed is not None and int(removed.group(1)) >= 1
    with ChromaStore.persistent(store_dir) as store:
        texts = [e.text for e in EpisodicTimeline(store, STALE).episodes()]
        assert texts and not any("Paris" in t for t in texts)  # the stale record from an earlier run is gone
        assert [e.text for e in EpisodicTimeline(store, OTHER).episodes()] == ["Bo: I live in Oslo."]


def test_cli_rejects_an_unknown_scorer(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ltm_agent.app.cli import app

    result = CliRunner().invoke(app, ["demo", "--store", str(tmp_path / "s"), "--scorer", "gpt"])
    assert result.exit_code == 2
    assert "scorer must be 'auto', 'local' or 'statistical', got 'gpt'" in " ".join(result.output.split())


def test_without_the_local_model_the_demo_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from ltm_agent.app import demo_graph
    from ltm_agent.loaders import load_sample_conversation

    monkeypatch.setattr(demo_graph, "local_model_available", lambda: False)
    plan = demo_graph.plan_scorer("auto", load_sample_conversation().ordered_sessions()[0])
    assert plan.local_sessions == 0
    assert "make setup-local" in plan.note and "about 10 minutes" in plan.note


def test_a_bad_store_or_scorer_fails_before_the_model_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ltm_agent.app import demo_graph
    from ltm_agent.errors import CorruptStoreError, InvalidInputError

    def probe(*_: object, **__: object) -> None:
        raise AssertionError("the model probe ran before the store was checked")

    monkeypatch.setattr(demo_graph, "plan_scorer", probe)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(CorruptStoreError):
        run_demo(a_file, scorer="auto")
    with pytest.raises(InvalidInputError, match="scorer must be"):
        run_demo(tmp_path / "never-created", scorer="gpt")
    assert not (tmp_path / "never-created").exists()


def test_the_printed_inspect_command_works_on_the_demo_store(
    demo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import shlex

    import typer

    from ltm_agent.app.cli import app
    from ltm_agent.app.cli_common import run

    store_dir, output = demo
    line = next(line for line in output.splitlines() if "ltm-agent inspect" in line)
    argv = shlex.split(line.split("ltm-agent", 1)[1].split("   (")[0])
    argv = [a for a in argv if a not in ("--html", "memory.html")] + ["--json"]
    capsys.readouterr()
    assert run(typer.main.get_command(app), argv) == 0
    report = json.loads(capsys.readouterr().out)
    lisbon = next(f for f in report["facts"] if "Lisbon" in f["text"])
    assert not lisbon["current"] and report["explanations"]
