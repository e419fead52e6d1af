"""The ltm-agent command line on an embedded store and on a Chroma server."""

from __future__ import annotations

import json
from pathlib import Path

import chromadb
import pytest
from typer.testing import CliRunner

from ltm_agent.app.cli import app
from ltm_agent.data import sample_conversation_path
from ltm_agent.embeddings import MiniLMEmbedder
from ltm_agent.memory_stores.chroma import ChromaStore

runner = CliRunner()
SAMPLE = str(sample_conversation_path())


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "store"
    result = runner.invoke(app, ["ingest", SAMPLE, "--format", "jsonl", "--store", str(path), "--namespace", "maya"])
    assert result.exit_code == 0, result.output
    assert "40 turns" in result.output
    return path


def test_search_returns_items_with_sources_and_times(store_dir: Path) -> None:
    result = runner.invoke(
        app, ["search", "What is the cat called?", "--store", str(store_dir), "-n", "maya", "--k", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(rows) == 3 and all(r["sources"] and r["time"] for r in rows)
    assert any("Miso" in r["text"] for r in rows)


def test_search_budget_and_as_of(store_dir: Path) -> None:
    result = runner.invoke(
        app, ["search", "Where does Maya live?", "--store", str(store_dir), "-n", "maya", "--json",
              "--budget-tokens", "60", "--as-of", "2024-03-10T00:00:00+00:00", "--k", "50"],
    )
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert sum(r["tokens"] for r in rows) <= 60
    assert all(r["time"] < "2024-03-10" for r in rows)


def test_timeline_and_stats(store_dir: Path) -> None:
    result = runner.invoke(app, ["timeline", "--store", str(store_dir), "-n", "maya", "--from", "2024-03-08", "--to", "2024-03-10"])
    assert result.exit_code == 0 and "session 2" in result.stdout and "session 1 " not in result.stdout
    stats = runner.invoke(app, ["stats", "--store", str(store_dir)])
    assert stats.exit_code == 0 and "maya" in stats.stdout


def test_bad_input_gives_clear_errors(store_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"\xff\xfe not utf-8 {")
    result = runner.invoke(app, ["ingest", str(broken), "--format", "jsonl", "--store", str(store_dir)])
    assert result.exit_code == 2 and "DataFormatError" in result.output
    result = runner.invoke(app, ["search", "x", "--store", str(store_dir), "-n", "bad label"])
    assert result.exit_code == 2 and "InvalidNamespaceError" in result.output
    result = runner.invoke(app, ["search", "x", "--store", str(store_dir), "-n", "maya", "--as-of", "not a date"])
    assert result.exit_code == 2 and "InvalidDateError" in result.output


def test_forget_removes_every_record_of_the_tenant(tmp_path: Path) -> None:
    path = tmp_path / "store"
    for ns in ("keep", "drop"):
        assert runner.invoke(app, ["ingest", SAMPLE, "--store", str(path), "-n", ns]).exit_code == 0
    with ChromaStore.persistent(path, embedder=MiniLMEmbedder()) as store:
        held = store.count(("drop",))
        assert held == store.count(("keep",)) >= 40  # every turn, plus its context-keyed twin
    result = runner.invoke(app, ["forget", "--store", str(path), "-n", "drop"])
    assert result.exit_code == 0 and f"removed {held} record(s)" in result.output
    # Read the Chroma directory itself, without ltm-agent's store layer.
    client = chromadb.PersistentClient(path=str(path))
    contents = {c.name: c.get(include=["documents", "metadatas"]) for c in client.list_collections()}
    assert not any(name.startswith("ltm-drop-") for name in contents)
    assert sum(len(v["ids"]) for name, v in contents.items() if name.startswith("ltm-keep-")) == held
    for data in contents.values():
        assert '["drop"]' not in json.dumps(data["documents"]) + json.dumps(data["metadatas"])
    with ChromaStore.persistent(path, embedder=MiniLMEmbedder()) as store:
        assert store.count(("drop",)) == 0 and store.count(("keep",)) == held
        assert ("drop",) not in store.list_namespaces()


def test_server_mode(chroma_server: str) -> None:
    ns = "server-tenant"
    assert runner.invoke(app, ["ingest", SAMPLE, "--server", chroma_server, "-n", ns]).exit_code == 0
    result = runner.invoke(app, ["search", "sister birthday", "--server", chroma_server, "-n", ns, "--json", "--k", "2"])
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert any("14 March" in r["text"] for r in rows)
    assert runner.invoke(app, ["forget", "--server", chroma_server, "-n", ns]).exit_code == 0
