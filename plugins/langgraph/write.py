"""The write node: record new turns as episodes, with buffer and facts.

:class:`MemoryWriteNode` records the messages added since its last run as
episodes on the tenant's timeline (session = ``thread_id``), keeps a SirLLM
entropy-decay buffer per thread in graph state (:class:`BufferSettings`), and
extracts bi-temporal facts (:class:`~ltm_agent.facts.FactMemory`) when given
an extractor: inline (the update lands in ``memory_facts``) or, with
``facts_mode="background"``, off the hot path in a worker thread, so a turn is
acknowledged as soon as it is stored (:meth:`MemoryWriteNode.drain` waits for
the pending extractions). The namespace comes from each run's config.

Core types: :class:`MemoryWriteNode`, :class:`BufferSettings`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

from ltm_agent.buffer import EntropyDecayBuffer, StatisticalScorer, TokenScorer
from ltm_agent.dates import utcnow
from ltm_agent.errors import InvalidInputError, describe
from ltm_agent.namespaces import Namespace
from ltm_agent.plugins.langgraph._base import DEFAULT_NAMESPACE, MemoryNode
from ltm_agent.plugins.langgraph.state import (
    NamespaceSpec,
    is_memory_message,
    message_role,
    message_text,
    messages_after,
    reference_time,
    resolve_namespace,
    resolve_session,
    resolve_store,
    state_messages,
)
from ltm_agent.records import Episode, RecordKind
from ltm_agent.store import MemoryStore
from ltm_agent.timeline import EpisodicTimeline, episode_id

if TYPE_CHECKING:
    from ltm_agent.facts import FactMemory, FactUpdate
    from ltm_agent.facts.extraction import FactExtractor

__all__ = ["BufferSettings", "MemoryWriteNode"]

# One worker for every node: background fact updates of a namespace apply in the order written.
_FACT_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltm-facts")


@dataclass(frozen=True, slots=True)
class BufferSettings:
    """How :class:`MemoryWriteNode` keeps an entropy-decay buffer in graph state.

    Each thread gets its own buffer, created from these settings and saved as
    ``memory_buffer`` (``EntropyDecayBuffer.state()``); nothing is shared
    between threads or tenants.

    Attributes:
        budget_tokens: Most tokens the buffer renders.
        decay: Per-turn decay of stored scores, in ``(0, 1]``.
        sink_units: First units always kept.
        unit: ``"token"`` or ``"phrase"``.
        scorer: Makes the scorer of a new buffer; default the statistical
            scorer (deterministic, no model). A saved statistical scorer is
            restored with its counts.
    """

    budget_tokens: int = 256
    decay: float = 0.9
    sink_units: int = 4
    unit: Literal["token", "phrase"] = "token"
    scorer: Callable[[], TokenScorer] | None = None

    def restore(self, saved: dict[str, Any] | None) -> EntropyDecayBuffer:
        if saved:
            # A configured scorer keeps scoring later turns; without one, a saved
            # statistical scorer comes back with its counts.
            return EntropyDecayBuffer.from_state(saved, scorer=self.scorer() if self.scorer is not None else None)
        scorer = self.scorer() if self.scorer is not None else StatisticalScorer()
        return EntropyDecayBuffer(self.budget_tokens, self.decay, self.sink_units, self.unit, scorer)


class MemoryWriteNode(MemoryNode):
    """Record the messages added since the last write as episodes of the tenant's timeline.

    A message is recorded once: its episode id derives from the message id, so
    a retried or replayed step never duplicates it. ``memory_cursor`` in state
    remembers the last message seen.

    Args:
        store: The ltm-agent store to write; ``None`` uses the store under the
            graph's ``LTMStore``.
        namespace: Namespace template filled from the run config.
        session_key: Config key of the session id (default LangGraph's ``thread_id``).
        roles: Message roles recorded (``user``, ``assistant``, ``tool``).
        buffer: Keep an entropy-decay buffer in ``memory_buffer`` (``None``: off).
        facts: Extract facts from the recorded turns: a fact extractor
            (``PatternFactExtractor()``, ``ModelFactExtractor(model)``), used
            with a :class:`~ltm_agent.facts.FactMemory` of the run's namespace,
            or a function ``(store, namespace) -> FactMemory`` for other
            settings. What changed goes to ``memory_facts``.
        facts_mode: ``"inline"`` (default) extracts during the write and puts
            what changed in ``memory_facts``; ``"background"`` queues the
            extraction on a worker thread (the write returns once the turns are
            stored; ``memory_facts`` is not set), for extractors that call a model.
        name: Node name.
        clock: Time of the recorded turns when the config has no ``reference_time``.

    Example:
        >>> from langchain_core.messages import AIMessage, HumanMessage
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> store = InMemoryStore(HashingEmbedder())
        >>> node = MemoryWriteNode(store)
        >>> state = {"messages": [HumanMessage("I adopted a cat", id="m1"), AIMessage("Congrats!", id="m2")]}
        >>> node.invoke(state, {"configurable": {"user_id": "ana", "thread_id": "t1"}})["memory_cursor"]
        'm2'
        >>> [e.text for e in EpisodicTimeline(store, ("memories", "ana")).episodes()]
        ['user: I adopted a cat', 'assistant: Congrats!']
    """

    def __init__(
        self,
        store: MemoryStore | None = None,
        *,
        namespace: NamespaceSpec = DEFAULT_NAMESPACE,
        session_key: str = "thread_id",
        roles: Sequence[str] = ("user", "assistant"),
        buffer: BufferSettings | None = None,
        facts: FactExtractor | Callable[[MemoryStore, Namespace], FactMemory] | None = None,
        facts_mode: Literal["inline", "background"] = "inline",
        name: str = "memory_write",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if facts_mode not in ("inline", "background"):
            raise InvalidInputError(f"facts_mode must be 'inline' or 'background', got {describe(facts_mode)}")
        unknown = set(roles) - {"user", "assistant", "tool"}
        if unknown:
            raise InvalidInputError(f"roles must be among 'user', 'assistant', 'tool', got {sorted(unknown)}")
        if facts is not None and not _is_extractor(facts) and not callable(facts):
            raise InvalidInputError(
                f"facts must be a fact extractor (e.g. PatternFactExtractor()) or a function "
                f"(store, namespace) -> FactMemory, got {describe(facts)}"
            )
        self.store = store
        self.namespace = namespace
        self.session_key = session_key
        self.roles = tuple(roles)
        self.buffer = buffer
        self.facts = facts
        self.facts_mode = facts_mode
        self.name = name
        self.clock = clock
        self._pending: list[Future[FactUpdate]] = []
        self._pending_lock = threading.Lock()

    def _run(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        who = self.name or "MemoryWriteNode"
        messages = state_messages(state, who)
        tail = messages_after(messages, state.get("memory_cursor"))
        offset = len(messages) - len(tail)
        fresh = [
            (offset + j, m)
            for j, m in enumerate(tail)
            if not is_memory_message(m) and message_role(m) in self.roles and message_text(m).strip()
        ]
        update: dict[str, Any] = {"memory_cursor": messages[-1].id if messages else state.get("memory_cursor")}
        if not fresh:
            return update
        store = resolve_store(self.store, who=who)
        namespace = resolve_namespace(self.namespace, config, who=who)
        session = resolve_session(self.session_key, config, who=who)
        when = reference_time(config, self.clock)
        turn_ids = [m.id or f"{session}#m{i}" for i, m in fresh]
        known = store.get(namespace, [episode_id(namespace, RecordKind.TURN, [t]) for t in turn_ids])
        timeline = EpisodicTimeline(store, namespace, clock=self.clock)
        written: list[tuple[Episode, BaseMessage]] = []
        for (_, message), turn_id, existing in zip(fresh, turn_ids, known):
            if existing is None:
                episode = timeline.add_turn(
                    message_text(message),
                    role=str(message_role(message)),
                    speaker=message.name or "",
                    session_id=session,
                    time=when,
                    turn_id=turn_id,
                )
                written.append((episode, message))
        if self.buffer is not None:
            buffer = self.buffer.restore(state.get("memory_buffer"))
            for _, message in written:
                buffer.update(message_text(message), str(message_role(message)))
            update["memory_buffer"] = buffer.state()
        if self.facts is not None and written:
            memory, episodes = self._fact_memory(store, namespace), [e for e, _ in written]
            if self.facts_mode == "background":
                with self._pending_lock:
                    self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
                    self._pending.append(_FACT_WORKER.submit(memory.ingest_session, episodes))
            else:
                update["memory_facts"] = _fact_rows(memory.ingest_session(episodes))
        return update

    def drain(self, timeout: float | None = None) -> list[FactUpdate]:
        """Wait for this node's queued background fact updates and return their results.

        Updates that finished without error before later ones were queued are
        dropped from the queue, so the list holds the latest ones. Raises the
        first error a background update raised (the turns it came from stay stored).
        """
        with self._pending_lock:
            pending, self._pending = self._pending, []
        return [future.result(timeout=timeout) for future in pending]

    def _fact_memory(self, store: MemoryStore, namespace: Namespace) -> FactMemory:
        from ltm_agent.facts import FactMemory

        # One FactMemory per run, for the run's namespace: never shared between tenants.
        facts: Any = self.facts
        if _is_extractor(facts):
            return FactMemory(store, namespace, extractor=facts, clock=self.clock)
        memory = facts(store, namespace)
        if not isinstance(memory, FactMemory) or memory.namespace != namespace:
            raise InvalidInputError(
                f"the facts factory must return a FactMemory for namespace {namespace!r}, got {describe(memory)}"
            )
        return memory


def _is_extractor(value: object) -> bool:
    # Imported here: the fact modules are only needed when facts are configured.
    from ltm_agent.facts.extraction import FactExtractor

    return isinstance(value, FactExtractor)


def _fact_rows(update: FactUpdate) -> list[dict[str, Any]]:
    """What a fact update changed, JSON-ready: one row per added, merged or invalidated fact."""
    rows = []
    for status, facts in (("added", update.added), ("merged", update.merged), ("invalidated", update.invalidated)):
        for fact in facts:
            rows.append(
                {
                    "id": fact.id,
                    "status": status,
                    "subject": fact.subject,
                    "text": fact.text,
                    "valid_at": fact.valid_at.isoformat(),
                    "invalid_at": fact.invalid_at.isoformat() if fact.invalid_at else None,
                    "sources": list(fact.sources),
                    "method": update.method,
                }
            )
    return rows
