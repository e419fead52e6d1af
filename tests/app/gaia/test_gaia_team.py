"""The whole team graph through a real ``chroma run`` server: offline stream, scripted chat models,
memory on vs off, no leakage to held-out families, and two teams in separate processes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from ltm_agent.app.gaia.memory import TeamMemory
from ltm_agent.app.gaia.report import read_results, rescore
from ltm_agent.app.gaia.runner import RunOptions, run_gaia
from ltm_agent.app.gaia.scorer import gaia_score
from ltm_agent.app.gaia.stream import write_stream
from ltm_agent.app.gaia.tasks import load_tasks
from ltm_agent.app.gaia.team import Team
from ltm_agent.app.gaia.tools import Toolbox
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.evolution.workflows import TraceStep
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.store import MemoryStore

FAMILIES = ("csv_lookup", "multi_hop", "number_traps", "pdf_invoice", "count_word")


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stream")
    # Five families (one held out) x two blocks keep this file fast; the CLI runs all ten.
    write_stream(folder, seed=3, per_family=2, held_out=("count_word",), families=FAMILIES)
    return folder


def test_offline_stream_memory_on_vs_off(stream: Path, tmp_path: Path,
                                         server_store: Callable[..., MemoryStore]) -> None:
    store = server_store()
    out = run_gaia(stream, tmp_path, RunOptions(), store=store)
    rows = read_results(out.results)
    assert len(rows) == 20 and {r["condition"] for r in rows} == {"memory", "no-memory"}
    for row in rows:
        assert {"answer", "score", "level", "steps", "tokens", "memories_read", "memories_written", "wall_s"} <= set(row)
    memory = [r for r in rows if r["condition"] == "memory"]
    control = [r for r in rows if r["condition"] == "no-memory"]
    # Block 1: the scripted demonstrator solves the first task of each demonstrated family, in both conditions.
    for rows_ in (memory, control):
        assert {r["family"] for r in rows_ if r["block"] == 1 and r["score"]} == {
            r["family"] for r in rows_ if r["block"] == 1 and not r["held_out"]}
        assert all(r["solver"] == "demonstrator" for r in rows_ if r["block"] == 1 and not r["held_out"])
    # Block 2: other files and numbers; with memory the team solves them from recalled workflows, with no script.
    later = [r for r in memory if r["block"] == 2 and not r["held_out"]]
    assert later and all(r["score"] == 1 and r["solver"] == "workflow" for r in later)
    assert all(r["score"] == 0 and r["memories_read"] == 0 for r in control if r["block"] == 2)
    # No leakage: held-out families had no demonstration; memory is read for them but nothing applies.
    held = [r for r in memory if r["held_out"]]
    assert held and all(r["score"] == 0 and r["answer"] == "" and r["solver"] == "none" for r in held)
    assert all(r["memories_read"] > 0 for r in held if r["block"] == 2)
    summary = json.loads(out.summary.read_text())
    assert summary["conditions"]["memory"]["by_block"]["2"]["solved"] == len(later)
    assert summary["conditions"]["no-memory"]["by_block"]["2"]["solved"] == 0
    assert any("web_search: absent" in n for n in summary["notes"])
    assert rescore(out.results, stream)["disagreements"] == []
    # The curator wrote the shared namespaces of the memory team only; the control team has just its run timeline.
    shared = {n[2] for n in store.list_namespaces(("gaia", "team-memory"), limit=1000)}
    assert {"facts", "role", "run"} <= shared  # + "cases" and "playbook" from the self-evolution modules
    assert {n[2] for n in store.list_namespaces(("gaia", "team-no-memory"), limit=1000)} == {"run"}
    playbook = pytest.importorskip("ltm_agent.evolution.playbook", reason="the self-evolution playbook is absent")
    assert {"cases", "playbook"} <= shared
    bullets = playbook.Playbook(store, ("gaia", "team-memory")).bullets()
    assert len(bullets) == len(later) and all(b.helpful == 2 for b in bullets)  # added in block 1, upvoted in 2


def test_resume_skips_done_tasks_and_keeps_memory(stream: Path, tmp_path: Path,
                                                  server_store: Callable[..., MemoryStore]) -> None:
    store = server_store()
    run_gaia(stream, tmp_path, RunOptions(conditions=("memory",), limit=5), store=store)
    run_gaia(stream, tmp_path, RunOptions(conditions=("memory",), resume=True, limit=8), store=store)
    rows = read_results(tmp_path / "results.jsonl")
    assert len(rows) == 8 and len({r["task_id"] for r in rows}) == 8
    resumed = [r for r in rows[5:] if not r["held_out"]]
    assert resumed and all(r["solver"] == "workflow" and r["score"] == 1 for r in resumed)  # learnt before the restart


class _Prompts(BaseCallbackHandler):
    """Records what a chat model was sent (LangChain's own callback hook)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(self, serialized: object, messages: list, **kwargs: object) -> None:  # type: ignore[override]
        self.seen.append("\n".join(str(m.content) for m in messages[0]))


def _scripted(*messages: AIMessage) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(messages))


def _call(name: str, **args: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call-{name}"}])


def test_chat_models_in_every_role(stream: Path, server_store: Callable[..., MemoryStore]) -> None:
    tasks = [t for t in load_tasks(stream) if t.family == "csv_lookup"]
    first, second = tasks
    row = {"item": first.question.split(" of ")[1].split("?")[0], "column": first.question.split("the ")[2].split()[0]}
    prompts = _Prompts()
    models = {
        "planner": _scripted(_call("transfer_to_file_reader", instruction="look it up"), _call("transfer_to_answerer"),
                             _call("transfer_to_file_reader", instruction="look it up"), _call("transfer_to_answerer")),
        "file_reader": _scripted(
            _call("table_lookup", path=first.file_name, match_column="item", match_value=row["item"],
                  return_column=row["column"]),
            AIMessage("found it"),
            _call("table_lookup", path="nope.csv", match_column="item", match_value="x", return_column="price"),
            AIMessage("the file is missing"),
        ),
        "answerer": GenericFakeChatModel(
            messages=iter([AIMessage(f"The value is {first.final_answer}.\nFINAL ANSWER: {first.final_answer}"),
                           AIMessage("FINAL ANSWER: unknown")]),
            callbacks=[prompts],
        ),
        "researcher": _scripted(), "coder": _scripted(),
    }
    store = server_store()
    gold = {t.task_id: t.final_answer for t in tasks}
    team = Team(store, "modelled", Toolbox(), models=models, verdict=lambda tid, a: gaia_score(a, gold[tid]))
    result = team.run(first)
    assert (result.answer, result.verdict, result.solver) == (first.final_answer, True, "model")
    assert set(result.tokens) == {"planner", "file_reader", "answerer"} and result.tokens["planner"]["calls"] == 2
    planner_workflows = team.memory.workflows["planner"]
    assert planner_workflows.count() == 1 and team.memory.workflows["file_reader"].count() == 1
    assert team.memory.workflows["coder"].count() == 0  # each role's namespace holds only its own steps
    learnt = planner_workflows.recall(second.question, given={"file": second.file_name})[0]
    assert learnt.bindings is not None and learnt.bindings["file"] == second.file_name
    # The same task again: the planner reads the workflow; the scripted model ignores it, its only tool call
    # fails, so the answerer gets ALR² evidence (grounded quotes) from the facts the curator stored after task 1.
    again = team.run(first)
    assert again.verdict is False and again.memories_read > 0 and again.solver == "model"
    assert "<evidence" not in prompts.seen[0] and "<evidence" in prompts.seen[1]
    assert f"returned {first.final_answer}" in prompts.seen[1]
    assert [n for n in store.list_namespaces(("gaia",)) if n[1] != "modelled"] == []


_TEAM_PROCESS = """
import json, sys
from ltm_agent.app.gaia.runner import RunOptions, run_gaia
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
url, database, name, stream, out, limit = sys.argv[1:]
store = ChromaStore.server(url, database=database, embedder=HashingEmbedder(64))
run_gaia(stream, out, RunOptions(conditions=("memory",), name=name, limit=int(limit)), store=store)
"""


def test_two_teams_in_separate_processes_share_nothing(stream: Path, tmp_path: Path, chroma_server: str,
                                                       server_database: str,
                                                       server_store: Callable[..., MemoryStore]) -> None:
    # Team "teacher" sees the whole stream (demonstrations included); team "learner" only block 2, where no
    # task carries a demonstration. Both write to one server database at the same time.
    learner_stream = tmp_path / "learner"
    learner_stream.mkdir()
    lines = (stream / "metadata.jsonl").read_text().splitlines()
    (learner_stream / "metadata.jsonl").write_text("\n".join(lines[5:]) + "\n")
    for path in stream.iterdir():
        if path.is_file() and path.name != "metadata.jsonl":
            (learner_stream / path.name).symlink_to(path)
    (learner_stream / "docs").symlink_to(stream / "docs")
    procs = [
        subprocess.Popen([sys.executable, "-c", _TEAM_PROCESS, chroma_server, server_database, name, str(folder),
                          str(tmp_path / name), "7"], stderr=subprocess.PIPE, text=True)
        for name, folder in (("teacher", stream), ("learner", learner_stream))
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    teacher = read_results(tmp_path / "teacher" / "results.jsonl")
    learner = read_results(tmp_path / "learner" / "results.jsonl")
    assert sum(r["score"] for r in teacher if r["block"] == 2) == sum(not r["held_out"] for r in teacher if r["block"] == 2) > 0
    assert sum(r["score"] for r in learner) == 0  # nothing of the teacher's memory reached the learner
    from ltm_agent.embeddings import HashingEmbedder
    from ltm_agent.memory_stores import ChromaStore

    with ChromaStore.server(chroma_server, database=server_database, embedder=HashingEmbedder(64)) as store:
        teams = {n[1] for n in store.list_namespaces(("gaia",), limit=1000)}
        assert teams == {"team-memory".replace("team", t) for t in ("teacher", "learner")}
        assert store.count(("gaia", "learner-memory", "role", "planner", "workflows")) == 0


def test_curator_downvotes_a_workflow_that_misled_and_memory_off_writes_nothing() -> None:
    pytest.importorskip("ltm_agent.evolution.playbook", reason="the self-evolution playbook is absent")
    store = InMemoryStore(HashingEmbedder(64))
    memory = TeamMemory(store, "t", ("planner", "coder"))
    trace = [TraceStep("coder", "date_diff", {"start": "2024-01-01", "end": "2024-02-01"}, "31")]
    learnt = memory.curate(task_id="a", question="Days from 2024-01-01 to 2024-02-01?", file_name="", trace=trace,
                           success=True, used_workflow=None, source="demonstrator")
    assert learnt.workflow_id and memory.workflows["coder"].count() == 1
    memory.curate(task_id="b", question="Days from 2024-03-01 to 2024-02-01?", file_name="", trace=trace,
                  success=False, used_workflow=learnt.workflow_id, source="team")
    assert memory.playbook_votes([learnt.workflow_id]) == {learnt.workflow_id: 0}  # 1 helpful, 1 harmful
    off = TeamMemory(store, "off", ("planner", "coder"), enabled=False)
    assert off.curate(task_id="c", question="q", file_name="", trace=trace, success=True, used_workflow=None,
                      source="team").written == []
    assert store.list_namespaces(("gaia", "off")) == [] and off.recall_workflows("planner", "Days from", {}) == []
