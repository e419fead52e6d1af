"""``ltm-agent gaia stream | score`` and ``--model`` loading (the run itself is tested in test_team/test_example)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer

from ltm_agent.app.cli import app
from ltm_agent.app.cli_common import run
from ltm_agent.app.gaia.runner import load_model
from ltm_agent.app.gaia.tasks import load_tasks
from ltm_agent.errors import InvalidInputError, MissingExtraError

COMMAND = typer.main.get_command(app)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(COMMAND, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_stream_then_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "gaia", "stream", "--out", str(tmp_path / "s"), "--per-family", "1",
                       "--held-out", "")
    assert code == 0, err
    tasks = load_tasks(tmp_path / "s")
    assert len(tasks) == 10 and all(t.demonstration for t in tasks)
    rows = [{"condition": "memory", "task_id": t.task_id, "answer": a, "score": s, "steps": 3, "level": t.level,
             "block": 1, "family": t.family, "solver": "team"}
            for t, a, s in ((tasks[0], tasks[0].final_answer, 1), (tasks[1], "surely wrong", 1))]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, out, err = cli(capsys, "gaia", "score", "--results", str(tmp_path / "results.jsonl"),
                         "--tasks", str(tmp_path / "s"))
    assert code == 0, err
    scored = json.loads((tmp_path / "score.json").read_text())
    assert scored["conditions"]["memory"]["solved"] == 1 and scored["disagreements"] == [tasks[1].task_id]


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "gaia", "run", "--tasks", str(tmp_path), "--out", str(tmp_path / "o"))
    assert code == 2 and "gated" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "gaia", "stream", "--out", str(tmp_path), "--held-out", "nope")
    assert code == 2 and "unknown families" in err


def test_load_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mymodels.py").write_text(
        "from langchain_core.language_models.fake_chat_models import FakeListChatModel\n"
        "def planner():\n    return FakeListChatModel(responses=['FINAL ANSWER: 1'])\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_model("mymodels:planner").invoke("hi").content == "FINAL ANSWER: 1"
    with pytest.raises(InvalidInputError, match="no attribute"):
        load_model("mymodels:absent")
    monkeypatch.setitem(sys.modules, "langchain", None)
    with pytest.raises(MissingExtraError, match="pip install langchain langchain-someprovider"):
        load_model("someprovider:some-model")
