"""``ltm-agent forget`` erases a tenant and everything under it, and says how much per namespace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from ltm_agent.app.cli import app
from ltm_agent.app.cli_common import run
from ltm_agent.memory_stores.chroma import ChromaStore
from ltm_agent.records import StoredItem

COMMAND = typer.main.get_command(app)
V = (1.0,) + (0.0,) * 383  # a MiniLM-sized vector: the CLI's default store, no model load


def item(namespace: tuple[str, ...], item_id: str, text: str) -> StoredItem:
    return StoredItem(namespace, item_id, text, vector=V)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    with ChromaStore.persistent(path) as store:
        store.put([item(("user-42", "c1"), "a", "one"), item(("user-42", "c1"), "b", "two")])
        store.put([item(("user-42", "c2"), "c", "three"), item(("keep",), "d", "four")])
    return path


def test_forget_a_tenant_removes_its_conversations(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(COMMAND, ["forget", "--store", str(store_dir), "-n", "user-42"])
    err = capsys.readouterr().err
    assert code == 0
    assert "removed 2 record(s) from namespace user-42/c1" in err and "user-42/c2" in err
    assert "removed 3 record(s) in 2 namespace(s) under user-42" in err
    with ChromaStore.persistent(store_dir) as store:
        assert store.list_namespaces() == [("keep",)]


def test_forget_json_and_nothing_to_forget(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(COMMAND, ["forget", "--store", str(store_dir), "-n", "user-42/c2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert rows == [{"namespace": "user-42/c2", "removed": 1}]
    assert run(COMMAND, ["forget", "--store", str(store_dir), "-n", "nobody"]) == 2
    assert "keep" in capsys.readouterr().err  # the error lists what exists
