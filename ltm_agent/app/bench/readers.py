"""Readers for ``ltm-agent bench qa``: a question plus retrieved memory in, a short answer out.

Every system in one run shares the same reader and the same context budget.
The context is each system's ranked items packed into the budget with the
metric's rule (keep items while the running token total stays within the
budget, stop at the first that does not fit), rendered as quoted data with
dates by :func:`ltm_agent.llm.render_memory_block`.

* :class:`ExtractiveReader` (``--reader extractive``, the default) is *not* a
  language model: it answers with the best-matching sentence of the context
  (:class:`~ltm_agent.reasoning.evidence.ExtractiveSelector`) and abstains with
  ``"Not mentioned in memory."`` when no sentence grounds. Outputs name it
  ``"extractive-fallback"``.
* :class:`ChatReader` wraps any LangChain chat model (``--reader module:attr``,
  or ``--reader local`` for the offline SmolLM2-135M). The local model is weak
  and slow: at the default 1,024-token budget a prompt is ~3k SmolLM tokens,
  and on a 2-core CPU each call takes on the order of a minute, so a full run
  (systems x questions calls) takes days — run it with ``--limit``.

Core types: :class:`Reader`, :class:`ReaderAnswer`, :class:`ExtractiveReader`,
:class:`ChatReader`; functions :func:`make_reader`, :func:`load_chat_model`,
:func:`pack_context`, :func:`with_turn_times`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from ltm_agent.app.bench.datasets import Question
from ltm_agent.app.bench.qa_metrics import is_abstention
from ltm_agent.conversations import Conversation
from ltm_agent.errors import InvalidInputError, ModelError
from ltm_agent.llm import ModelStep, UsageLedger, render_memory_block
from ltm_agent.reasoning import ABSTAIN_ANSWER
from ltm_agent.reasoning.evidence import ExtractiveSelector, normalize_for_match
from ltm_agent.records import MemoryItem
from ltm_agent.retrieval.packing import own_dates

__all__ = [
    "EXTRACTIVE_READER",
    "LOCAL_READER",
    "ChatReader",
    "ExtractiveReader",
    "Reader",
    "ReaderAnswer",
    "load_chat_model",
    "make_reader",
    "pack_context",
    "turn_times",
    "with_turn_times",
]

EXTRACTIVE_READER = "extractive-fallback"
"""The name outputs give the deterministic extractive reader."""
LOCAL_READER = "local:SmolLM2-135M-Instruct"
"""The name outputs give the offline local chat model."""

_SYSTEM = (
    "You answer a question about a long conversation, using only the memories retrieved from it. "
    "Reply with the answer alone: a short phrase of a few words, no explanation. Use the dates of "
    "the memories to turn relative times (yesterday, last year) into dates. If the memories do not "
    f"contain the answer, reply exactly: {ABSTAIN_ANSWER}"
)


@dataclass(frozen=True, slots=True)
class ReaderAnswer:
    """What a reader answered, and what it cost.

    Attributes:
        answer: The answer text (``"Not mentioned in memory."`` when abstaining;
            empty when the reader failed).
        abstained: True when the reader declined to answer.
        prompt_tokens: Model input tokens (0 for the extractive reader).
        completion_tokens: Model output tokens (0 for the extractive reader).
        latency_ms: Wall time of the answer.
        error: Why the reader failed (the answer is then empty), else ``None``.
    """

    answer: str
    abstained: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    error: str | None = None


class Reader(ABC):
    """Answers a benchmark question from packed context (one instance serves every system)."""

    name: str

    @abstractmethod
    def answer(self, question: Question, context: Sequence[MemoryItem]) -> ReaderAnswer:
        """Answer ``question`` from ``context`` (already packed into the budget, in rank order)."""


def pack_context(items: Sequence[MemoryItem], budget_tokens: int) -> list[MemoryItem]:
    """The ranked items that fit ``budget_tokens``, stopping at the first that does not (the metric's rule).

    Example:
        >>> a = MemoryItem("a", "turn", "x", 1.0, None, 600, (), ("n",))
        >>> b = MemoryItem("b", "turn", "y", 0.9, None, 500, (), ("n",))
        >>> c = MemoryItem("c", "turn", "z", 0.8, None, 10, (), ("n",))
        >>> [i.id for i in pack_context([a, b, c], 1024)]
        ['a']
    """
    kept, total = [], 0
    for item in items:
        if total + item.tokens > budget_tokens:
            break
        kept.append(item)
        total += item.tokens
    return kept


def turn_times(conversation: Conversation) -> dict[str, datetime]:
    """Turn id -> date of its session, for dating items a system returns without a time."""
    return {turn.id: session.date for session in conversation.sessions for turn in session.turns}


def with_turn_times(items: Sequence[MemoryItem], times: Mapping[str, datetime]) -> list[MemoryItem]:
    """Items with a missing ``time`` set to the earliest date of their source turns.

    Baselines (``dense-turn``, ``bm25-turn``) return raw turns without a time;
    dating them from the conversation lets every system's context carry dates.
    """
    dated = []
    for item in items:
        if item.time is None:
            known = [times[s] for s in item.sources if s in times]
            if known:
                item = dataclasses.replace(item, time=min(known))
        dated.append(item)
    return dated


class ExtractiveReader(Reader):
    """The deterministic extractive reader (``"extractive-fallback"``): not a language model.

    Answers with the context sentence that best matches the question by
    stemmed term overlap (:class:`~ltm_agent.reasoning.evidence.ExtractiveSelector`),
    verbatim (each memory read with its day's date, :func:`~ltm_agent.retrieval.packing.own_dates`);
    abstains with ``"Not mentioned in memory."`` when no sentence
    shares enough of the question's terms.

    Args:
        selector: The sentence picker (default thresholds of the ALR² fallback).

    Example:
        >>> q = Question(id="c/q0", dataset="locomo", category="4", text="What is the dog called?",
        ...              answer="Rex", conversation_id="c")
        >>> item = MemoryItem("m1", "turn", "I love tea. My dog is called Rex.", 1.0, None, 9, (), ("c",))
        >>> ExtractiveReader().answer(q, [item]).answer
        'My dog is called Rex.'
        >>> ExtractiveReader().answer(q, []).answer
        'Not mentioned in memory.'
    """

    name = EXTRACTIVE_READER

    def __init__(self, selector: ExtractiveSelector | None = None) -> None:
        self.selector = selector or ExtractiveSelector(max_sentences=1)

    def answer(self, question: Question, context: Sequence[MemoryItem]) -> ReaderAnswer:
        started = time.perf_counter()
        # Each memory with its day's date (own_dates): a reader of the block gets it from the day's group.
        picks = self.selector.select(question.text, own_dates(context)) if context else []
        latency = (time.perf_counter() - started) * 1000
        if not picks:
            return ReaderAnswer(ABSTAIN_ANSWER, True, latency_ms=latency)
        return ReaderAnswer(picks[0].quote, False, latency_ms=latency)


class ChatReader(Reader):
    """Any LangChain chat model as the reader: one call per (system, question).

    The prompt is the context as quoted ``<memory>`` data with dates, the
    question date and the question; the model is told to answer in a few words
    or reply exactly ``"Not mentioned in memory."``. Failures (timeouts,
    refusals, empty replies) give an empty answer and an ``error``; the run goes on.

    Args:
        model: The chat model.
        name: The name outputs give this reader.
        timeout_s: Seconds one call may take.
    """

    def __init__(self, model: BaseChatModel, *, name: str, timeout_s: float | None = 300.0) -> None:
        self.model = model
        self.name = name
        self.timeout_s = timeout_s

    def messages(self, question: Question, context: Sequence[MemoryItem]) -> list[SystemMessage | HumanMessage]:
        """The prompt for one question."""
        when = f"Question date: {question.question_time.isoformat()}\n" if question.question_time else ""
        body = f"{render_memory_block(context)}\n\n{when}Question: {question.text}\nAnswer:"
        return [SystemMessage(_SYSTEM), HumanMessage(body)]

    def answer(self, question: Question, context: Sequence[MemoryItem]) -> ReaderAnswer:
        ledger = UsageLedger()
        step = ModelStep(self.model, ledger=ledger, timeout_s=self.timeout_s)
        started = time.perf_counter()
        error: str | None = None
        try:
            text = step.invoke_text("bench.qa.answer", self.messages(question, context))
        except ModelError as exc:
            text, error = "", f"{type(exc).__name__}: {exc}"
        latency = (time.perf_counter() - started) * 1000
        prompt = sum(c.prompt_tokens for c in ledger.calls)
        completion = sum(c.completion_tokens for c in ledger.calls)
        abstained = bool(text) and (
            is_abstention(text)
            or normalize_for_match(text).rstrip(".") == normalize_for_match(ABSTAIN_ANSWER).rstrip(".")
        )
        return ReaderAnswer(text, abstained, prompt, completion, latency, error)


def load_chat_model(spec: str) -> BaseChatModel:
    """A chat model from ``"local"`` or ``"module:attr"`` (an instance, or a factory called with no arguments).

    The current directory is importable, so ``--reader mymodels:reader`` finds
    ``./mymodels.py``.

    Raises:
        InvalidInputError: The spec is malformed, cannot be imported, or is not a chat model.
        MissingExtraError: ``"local"`` without the ``[local]`` extra.
    """
    if spec == "local":
        from ltm_agent.buffer.local_model import local_model_path
        from ltm_agent.llm import ChatLocalModel

        local_model_path()  # raises MissingExtraError with the install hint
        return ChatLocalModel(max_tokens=48, n_ctx=4096)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidInputError(f"a chat model is 'local' or 'module:attr', got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"cannot load {spec!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(target, BaseChatModel) and callable(target):
        target = target()
    if not isinstance(target, BaseChatModel):
        raise InvalidInputError(
            f"{spec!r} is {type(target).__name__}, not a LangChain BaseChatModel (or a factory returning one)"
        )
    return target


def make_reader(spec: str | Reader = "extractive") -> Reader:
    """The reader for ``--reader``: ``"extractive"``, ``"local"``, ``"module:attr"``, or a :class:`Reader`.

    Example:
        >>> make_reader("extractive").name
        'extractive-fallback'
    """
    if isinstance(spec, Reader):
        return spec
    if spec in ("extractive", EXTRACTIVE_READER):
        return ExtractiveReader()
    if spec == "local":
        return ChatReader(load_chat_model("local"), name=LOCAL_READER)
    return ChatReader(load_chat_model(spec), name=spec)
