"""The evolution nodes in a real LangGraph graph, the opt-in usage mix of retrieval, and ``ltm-agent consolidate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from typer.testing import CliRunner

from ltm_agent.app.cli import app
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.evolution import ExperienceMemory, Step, feedback
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.plugins.langgraph.evolution import (
    ConsolidateNode,
    PlaybookNode,
    RecallExperienceNode,
    RecordOutcomeNode,
    evolution_tools,
)
from ltm_agent.records import StoredItem
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig

CONFIG = {"configurable": {"user_id": "u1"}, "recursion_limit": 100}
NS = ("memories", "u1")


class State(TypedDict, total=False):
    situation: str
    candidates: list[str]
    estimates: dict[str, Any]
    experience: list[Any]
    experience_text: str
    recalled_ids: list[str]
    playbook: str
    playbook_version: int
    priors: dict[str, float]
    action: str
    reward: float
    changed: bool
    done: bool
    won: bool
    task_id: str
    trajectory: list[Any]
    recorded: int
    consolidation: Any
    t: int


def _graph(store: InMemoryStore) -> Any:
    """A two-step episode: in a dark room pick the action memory likes best (else the first), then record."""
    rewards = {"turn on lamp": 1.0, "sing": -0.5}

    def policy(state: State) -> State:
        est = state["estimates"]
        best = max(state["candidates"], key=lambda a: (est[a].value if est[a].support else 0.0, a == "sing"))
        return {"action": best, "reward": rewards[best], "t": state.get("t", 0) + 1,
                "done": state.get("t", 0) + 1 >= 2, "won": best == "turn on lamp"}

    graph = StateGraph(State)
    graph.add_node("recall", RecallExperienceNode(store, k=4))
    graph.add_node("playbook", PlaybookNode(store))
    graph.add_node("policy", policy)
    graph.add_node("record", RecordOutcomeNode(store))
    graph.add_node("consolidate", ConsolidateNode(store, every=1))
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "playbook")
    graph.add_edge("playbook", "policy")
    graph.add_edge("policy", "record")
    graph.add_conditional_edges("record", lambda s: "consolidate" if s.get("done") else "recall")
    graph.add_edge("consolidate", END)
    return graph.compile()


def test_nodes_learn_across_episodes_in_a_langgraph_graph() -> None:
    store = InMemoryStore(HashingEmbedder(64))
    graph = _graph(store)
    start = {"situation": "a dark room with a lamp", "candidates": ["sing", "turn on lamp"]}
    first = graph.invoke({**start, "task_id": "e1"}, CONFIG)
    assert first["action"] == "sing" and first["recorded"] == 2  # nothing known: the fallback
    assert first["consolidation"].cases_after == 1
    second = graph.invoke({**start, "task_id": "e2", "playbook_version": 1}, CONFIG)
    assert second["action"] == "turn on lamp"  # the failed action's outcome was remembered
    assert "sing" in second["playbook"] or second["playbook"] == ""
    assert store.count(NS) == 1 and store.count(("memories", "u2")) == 0


def test_tools_record_and_recall_experience() -> None:
    memory = ExperienceMemory(InMemoryStore(HashingEmbedder(64)), NS)
    recall, record = evolution_tools(memory)
    record.invoke({"situation": "locked gate", "action": "use brass key", "reward": 1.0, "solved": True})
    assert "use brass key" in recall.invoke({"situation": "locked gate"})


def test_retrieval_usage_mix_is_opt_in() -> None:
    store = InMemoryStore(HashingEmbedder(64))
    items = [StoredItem(NS, f"t{i}", f"we talked about the garden party {i}", {"kind": "turn"}) for i in range(3)]
    store.put(items)
    default = [i.id for i in HybridRetriever(store).rank(NS, "garden party")]
    assert [i.id for i in HybridRetriever(store, RetrievalConfig(utility_weight=1.0)).rank(NS, "garden party")] == default
    feedback(store, NS, [default[-1]], 1.0, task_id="q1")
    assert [i.id for i in HybridRetriever(store).rank(NS, "garden party")] == default  # off by default
    mixed = [i.id for i in HybridRetriever(store, RetrievalConfig(utility_weight=1.0)).rank(NS, "garden party")]
    assert mixed[0] == default[-1]


def test_consolidate_command(tmp_path: Path) -> None:
    from ltm_agent.memory_stores.chroma import ChromaStore

    path = tmp_path / "store"
    with ChromaStore.persistent(path) as store:
        memory = ExperienceMemory(store, NS)
        memory.record_episode([Step("a dark cellar", "turn on lamp", 1.0)], success=True)
        memory.record_episode([Step("a dark cellar!", "turn on lamp", 1.0)], success=True)
    result = CliRunner().invoke(app, ["consolidate", "--store", str(path), "--namespace", "memories/u1", "--merge-threshold", "0.9"])
    assert result.exit_code == 0, result.output
    assert "2 cases -> 1" in result.output and "0 LLM calls" in result.output


def test_a_chat_model_can_be_the_policy() -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    from ltm_agent.app.bench.evolution.env import Observation
    from ltm_agent.app.bench.evolution.graph import chat_policy

    obs = Observation("A hall.", "You are in the hall.", "Inventory:", "Leave.", ("open door", "wait"), 0.0, 0.0, False, False)
    choose = chat_policy(GenericFakeChatModel(messages=iter(["Open door.", "dance"])))
    assert choose({"obs": obs, "experience_text": "", "playbook": ""}) == "open door"
    assert choose({"obs": obs}) == "open door"  # not a valid action: the first valid one
