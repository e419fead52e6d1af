"""LangGraph nodes and tools for self-evolution: recall experience, read the playbook, record outcomes, consolidate.

A learning agent graph is ``observe -> recall -> policy -> act -> record``:

* :class:`RecallExperienceNode` — recalls the cases most similar to
  ``state["situation"]`` and estimates a value per ``state["candidates"]``
  action (``experience``, ``estimates``, ``recalled_ids``).
* :class:`PlaybookNode` — reads the playbook into the prompt
  (``playbook`` text) and into per-action ``priors`` from statistics rules.
* :class:`RecordOutcomeNode` — appends the step to ``trajectory``; when
  ``state["done"]`` it writes the episode (credit passed back from later
  rewards) and gives utility feedback to every case recalled in it (solved
  minus the recent success rate, so feedback measures doing better than usual).
* :class:`ConsolidateNode` — sleep-time consolidation between interactions,
  every ``every`` episodes (zero LLM calls with the default reflector).
* :func:`evolution_tools` — ``recall_experience`` / ``record_outcome`` tools for a ReAct agent.

Namespaces come from each run's config (``("memories", "{user_id}")`` by default).
"""


from typing import Any, Callable

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool

from ltm_agent.evolution import (
    ExperienceMemory,
    Playbook,
    Reflector,
    Step,
    consolidate,
    playbook_priors,
)
from ltm_agent.namespaces import Namespace
from ltm_agent.plugins.langgraph._base import DEFAULT_NAMESPACE
from ltm_agent.plugins.langgraph.state import NamespaceSpec, resolve_namespace
from ltm_agent.store import MemoryStore

__all__ = ["ConsolidateNode", "PlaybookNode", "RecallExperienceNode", "RecordOutcomeNode", "evolution_tools"]

MemoryFactory = Callable[[MemoryStore, Namespace], ExperienceMemory]


class _EvolutionNode:
    """Resolves the run's namespace and keeps one :class:`ExperienceMemory` per namespace (its embedding cache)."""

    def __init__(self, store: MemoryStore, namespace: NamespaceSpec, factory: MemoryFactory | None) -> None:
        self.store = store
        self.namespace = namespace
        self.factory = factory or (lambda s, ns: ExperienceMemory(s, ns))
        self._memories: dict[Namespace, ExperienceMemory] = {}

    def memory(self, config: RunnableConfig | None) -> ExperienceMemory:
        ns = resolve_namespace(self.namespace, config, who=type(self).__name__)
        if ns not in self._memories:
            self._memories[ns] = self.factory(self.store, ns)
        return self._memories[ns]


class RecallExperienceNode(_EvolutionNode):
    """Recall similar cases and estimate each candidate action.

    Args:
        store: The store holding experience.
        namespace: Namespace template (filled from the run config).
        k: Cases recalled per step.
        factory: Builds the :class:`ExperienceMemory` of a namespace (mode, mix, temperatures).
        recall: Replaces similarity recall (e.g. a random-recall control); gets ``(memory, situation, k)``.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> node = RecallExperienceNode(InMemoryStore(), namespace=("agents", "{user_id}"))
        >>> out = node({"situation": "a dark room", "candidates": ["turn on lamp"]},
        ...            {"configurable": {"user_id": "u1"}})
        >>> out["estimates"]["turn on lamp"].support
        0.0
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        namespace: NamespaceSpec = DEFAULT_NAMESPACE,
        k: int = 8,
        factory: MemoryFactory | None = None,
        recall: Callable[[ExperienceMemory, str, int], list[Any]] | None = None,
    ) -> None:
        super().__init__(store, namespace, factory)
        self.k = k
        self.recall = recall

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        memory = self.memory(config)
        situation = str(state["situation"])
        candidates = list(state.get("candidates") or [])
        if memory.mode == "similar":
            memory.embed([situation, *candidates])  # one embedder call for whatever is new this step
        hits = self.recall(memory, situation, self.k) if self.recall else memory.recall(situation, self.k)
        recalled = list(dict.fromkeys([*(state.get("recalled_ids") or []), *(h.experience.id for h in hits)]))
        return {
            "experience": hits,
            "experience_text": "\n\n".join(h.experience.render() for h in hits),
            "estimates": memory.estimate(hits, candidates),
            "recalled_ids": recalled,
        }


class PlaybookNode:
    """Read the playbook into ``playbook`` (prompt text) and ``priors`` (per candidate action)."""

    def __init__(self, store: MemoryStore, *, namespace: NamespaceSpec = DEFAULT_NAMESPACE) -> None:
        self.store = store
        self.namespace = namespace
        self._cache: dict[Namespace, tuple[int, Any]] = {}

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        ns = resolve_namespace(self.namespace, config, who="PlaybookNode")
        version = int(state.get("playbook_version", 0))
        cached = self._cache.get(ns)
        if cached is None or cached[0] != version:  # the playbook only changes at consolidation
            book = Playbook(self.store, ns)
            cached = (version, (book.bullets(), book.render()))
            self._cache[ns] = cached
        bullets, text = cached[1]
        return {"playbook": text, "priors": playbook_priors(bullets, list(state.get("candidates") or []))}


class RecordOutcomeNode(_EvolutionNode):
    """Append the step; at the end of an episode write it and give utility feedback."""

    def __init__(
        self,
        store: MemoryStore,
        *,
        namespace: NamespaceSpec = DEFAULT_NAMESPACE,
        factory: MemoryFactory | None = None,
        feedback: bool = True,
        baseline_rate: float = 0.05,
    ) -> None:
        super().__init__(store, namespace, factory)
        self.feedback = feedback
        self.baseline_rate = baseline_rate
        self._baseline: dict[Namespace, float] = {}

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        step = Step(str(state["situation"]), str(state["action"]), float(state.get("reward", 0.0)), bool(state.get("changed", True)))
        trajectory = [*(state.get("trajectory") or []), step]
        if not state.get("done"):
            return {"trajectory": trajectory}
        memory = self.memory(config)
        task_id = str(state.get("task_id", "task"))
        won = bool(state.get("won"))
        memory.record_episode(trajectory, success=won, task_id=task_id)
        if self.feedback:
            # Outcome relative to the recent success rate: a memory is credited for doing better than
            # usual, not blamed for every early failure (an advantage, as in policy-gradient baselines).
            baseline = self._baseline.get(memory.namespace, 0.0)
            memory.feedback(list(state.get("recalled_ids") or []), float(won) - baseline, task_id=task_id)
            self._baseline[memory.namespace] = baseline + self.baseline_rate * (float(won) - baseline)
        return {"trajectory": trajectory, "recorded": len(trajectory)}


class ConsolidateNode(_EvolutionNode):
    """Sleep-time consolidation, every ``every`` calls (between interactions, off the answer path)."""

    def __init__(
        self,
        store: MemoryStore,
        *,
        namespace: NamespaceSpec = DEFAULT_NAMESPACE,
        factory: MemoryFactory | None = None,
        every: int = 50,
        reflector: Reflector | None = None,
    ) -> None:
        super().__init__(store, namespace, factory)
        self.every = every
        self.reflector = reflector
        self.calls = 0

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        self.calls += 1
        if self.every <= 0 or self.calls % self.every:
            return {}
        memory = self.memory(config)
        report = consolidate(memory, playbook=Playbook(self.store, memory.namespace), reflector=self.reflector)
        return {"consolidation": report, "playbook_version": int(state.get("playbook_version", 0)) + 1}


def evolution_tools(memory: ExperienceMemory) -> list[BaseTool]:
    """``recall_experience`` and ``record_outcome`` tools over one namespace's experience."""

    @tool
    def recall_experience(situation: str, k: int = 4) -> str:
        """Recall past situations like this one, with the actions tried there and how they paid off."""
        return "\n\n".join(h.experience.render() for h in memory.recall(situation, k)) or "No similar experience yet."

    @tool
    def record_outcome(situation: str, action: str, reward: float, solved: bool = False) -> str:
        """Record what an action earned in a situation, so later recalls can use it."""
        case = memory.record(situation, action, reward, success=solved)
        return f"recorded in {case}"

    return [recall_experience, record_outcome]
