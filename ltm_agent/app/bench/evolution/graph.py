"""The agent under test: a LangGraph graph built from the evolution nodes.

``observe -> recall -> playbook -> policy -> act -> record -> (observe | consolidate -> END)``

One graph run is one episode. The policy is the offline
:class:`~ltm_agent.app.bench.evolution.policy.MemoryGuidedPolicy`, or any
LangChain chat model (it is shown the task, the observation, the recalled
experience, the playbook and the valid actions, and must answer one of them).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Callable, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from ltm_agent.app.bench.evolution.env import Observation, TwxEnv
from ltm_agent.app.bench.evolution.policy import MemoryGuidedPolicy
from ltm_agent.llm import ModelStep, prompt_messages, quote_data
from ltm_agent.plugins.langgraph.evolution import ConsolidateNode, PlaybookNode, RecallExperienceNode, RecordOutcomeNode

__all__ = ["EpisodeState", "build_agent_graph", "chat_policy"]


class EpisodeState(TypedDict, total=False):
    obs: Observation
    task_id: str
    situation: str
    state_key: str
    candidates: list[str]
    experience: list[Any]
    experience_text: str
    estimates: dict[str, Any]
    recalled_ids: list[str]
    playbook: str
    playbook_version: int
    priors: dict[str, float]
    action: str
    reward: float
    changed: bool
    done: bool
    won: bool
    trajectory: list[Any]
    recorded: int
    consolidation: Any
    latencies: Annotated[list[float], operator.add]


Policy = Callable[[EpisodeState], str]


def chat_policy(model: BaseChatModel) -> Policy:
    """A chat model as the policy: it must answer with one valid action (else the first is taken)."""
    step = ModelStep(model)

    def choose(state: EpisodeState) -> str:
        obs = state["obs"]
        system = "You play a text game. Answer with exactly one of the valid actions, nothing else."
        user = "\n".join(
            [
                quote_data("task", obs.task),
                quote_data("observation", obs.text),
                quote_data("experience", state.get("experience_text") or "none"),
                quote_data("playbook", state.get("playbook") or "none"),
                quote_data("valid_actions", "\n".join(obs.valid_actions)),
            ]
        )
        answer = step.invoke_text("evolution.policy", prompt_messages(system, user)).strip().strip(".").lower()
        by_lower = {a.lower(): a for a in obs.valid_actions}
        return by_lower.get(answer, obs.valid_actions[0])

    return choose


def build_agent_graph(
    env: TwxEnv,
    recall: RecallExperienceNode | None,
    playbook: PlaybookNode | None,
    record: RecordOutcomeNode | None,
    consolidate: ConsolidateNode | None,
    policy: MemoryGuidedPolicy | Policy,
) -> Any:
    """Compile the episode graph (``None`` nodes pass through: the no-memory agent is the same graph)."""
    import time

    def observe(state: EpisodeState) -> EpisodeState:
        obs = state["obs"]
        return {
            "situation": obs.situation,
            "state_key": obs.look + obs.inventory,
            "candidates": list(obs.valid_actions),
            "done": obs.done,
        }

    def recall_node(state: EpisodeState, config: RunnableConfig) -> EpisodeState:
        if recall is None:
            return {"estimates": {}, "experience": [], "experience_text": ""}
        start = time.perf_counter()
        out = recall(dict(state), config)
        return {**out, "latencies": [time.perf_counter() - start]}

    def playbook_node(state: EpisodeState, config: RunnableConfig) -> EpisodeState:
        return playbook(dict(state), config) if playbook is not None else {"priors": {}, "playbook": ""}

    def policy_node(state: EpisodeState) -> EpisodeState:
        if isinstance(policy, MemoryGuidedPolicy):
            action = policy.choose(state["state_key"], state["candidates"], state.get("estimates") or {}, state.get("priors") or {})
        else:
            action = policy(state)
        return {"action": action}

    def act(state: EpisodeState) -> EpisodeState:
        before = state["state_key"]
        obs = env.step(state["action"])
        return {"obs": obs, "reward": obs.reward, "changed": obs.look + obs.inventory != before, "done": obs.done, "won": obs.won}

    def record_node(state: EpisodeState, config: RunnableConfig) -> EpisodeState:
        return record(dict(state), config) if record is not None else {}

    def consolidate_node(state: EpisodeState, config: RunnableConfig) -> EpisodeState:
        return consolidate(dict(state), config) if consolidate is not None else {}

    graph = StateGraph(EpisodeState)
    for name, fn in [
        ("observe", observe),
        ("recall", recall_node),
        ("playbook", playbook_node),
        ("policy", policy_node),
        ("act", act),
        ("record", record_node),
        ("consolidate", consolidate_node),
    ]:
        graph.add_node(name, fn)
    graph.add_edge(START, "observe")
    graph.add_edge("observe", "recall")
    graph.add_edge("recall", "playbook")
    graph.add_edge("playbook", "policy")
    graph.add_edge("policy", "act")
    graph.add_edge("act", "record")
    graph.add_conditional_edges("record", lambda s: "consolidate" if s.get("done") else "observe")
    graph.add_edge("consolidate", END)
    return graph.compile()
