"""Chat-model runs through the runner: the step limit, tokens per role in results.jsonl, no demonstrator."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from ltm_agent.app.gaia.report import read_results
from ltm_agent.app.gaia.runner import RunOptions, run_gaia
from ltm_agent.app.gaia.stream import write_stream
from ltm_agent.app.gaia.tasks import GaiaTask
from ltm_agent.app.gaia.team import Team
from ltm_agent.app.gaia.tools import Toolbox
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import InMemoryStore


def _call(name: str, **args: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call-{name}"}])


def test_step_limit_stops_a_planner_that_never_finishes() -> None:
    endless = GenericFakeChatModel(messages=itertools.cycle([_call("transfer_to_coder", instruction="again")]))
    coder = GenericFakeChatModel(messages=itertools.cycle([AIMessage("nothing to do")]))
    answerer = GenericFakeChatModel(messages=itertools.cycle([AIMessage("FINAL ANSWER: 7")]))
    models = {"planner": endless, "coder": coder, "researcher": coder, "file_reader": coder, "answerer": answerer}
    team = Team(InMemoryStore(HashingEmbedder(64)), "t", Toolbox(), models=models, step_limit=6,
                verdict=lambda tid, answer: answer == "7")
    result = team.run(GaiaTask("q", "What is 3 + 4?", 1, "7"))
    assert result.answer == "7" and result.verdict is True
    assert 6 <= result.steps <= 8 and any("step limit 6" in n for n in result.notes)


def test_runner_with_models_writes_tokens_per_role_and_uses_no_demonstrator(tmp_path: Path) -> None:
    write_stream(tmp_path / "s", per_family=1, families=("date_diff",), held_out=())
    row = json.loads((tmp_path / "s" / "metadata.jsonl").read_text())
    assert row["demonstration"]  # the stream has one; a model run must not use it
    start, end = row["demonstration"][0]["args"]["start"], row["demonstration"][0]["args"]["end"]
    models = {
        "planner": GenericFakeChatModel(messages=iter([_call("transfer_to_coder", instruction="count the days"),
                                                       _call("transfer_to_answerer")])),
        "coder": GenericFakeChatModel(messages=iter([_call("date_diff", start=start, end=end), AIMessage("done")])),
        "answerer": GenericFakeChatModel(messages=iter([AIMessage(f"FINAL ANSWER: {row['Final answer']}")])),
        "researcher": GenericFakeChatModel(messages=iter([])),
        "file_reader": GenericFakeChatModel(messages=iter([])),
    }
    out = run_gaia(tmp_path / "s", tmp_path / "run", RunOptions(conditions=("memory",)), models=models,
                   store=InMemoryStore(HashingEmbedder(64)))
    (result,) = read_results(out.results)
    assert result["score"] == 1 and result["solver"] == "model"
    assert set(result["tokens"]) == {"planner", "coder", "answerer"}
    assert all(t["prompt"] > 0 and t["completion"] > 0 for t in result["tokens"].values())
    summary = json.loads(out.summary.read_text())
    assert not any("demonstrator" in note for note in summary["notes"])
    assert summary["conditions"]["memory"]["tokens"]["coder"]["calls"] == 2
