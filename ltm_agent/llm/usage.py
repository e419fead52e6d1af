"""Token accounting for model calls: what each named step cost.

Every :class:`~ltm_agent.llm.ModelStep` call is recorded as a :class:`ModelCall`
in a :class:`UsageLedger`; :meth:`UsageLedger.summary` totals them per step as
:class:`StepUsage`. Counts come from the model's ``usage_metadata`` when it
sends one, else from tiktoken's cl100k_base, flagged ``estimated=True``.

Core types: :class:`ModelCall`, :class:`StepUsage`, :class:`UsageLedger`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

__all__ = ["ModelCall", "Outcome", "StepUsage", "UsageLedger"]

Outcome = Literal["ok", "invalid", "refused", "timeout", "error"]
"""How a call ended: ``ok``, ``invalid`` (unusable output), ``refused``, ``timeout``, ``error``."""


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One model call as the ledger saw it.

    Attributes:
        step: The named step that made the call.
        prompt_tokens: Input tokens (provider count, or a cl100k estimate).
        completion_tokens: Output tokens (provider count, or a cl100k estimate).
        latency_ms: Wall time of the call.
        estimated: True when the model sent no ``usage_metadata`` and the
            counts come from tiktoken's cl100k_base instead.
        attempt: 1 for the first call, 2 for the repair retry.
        outcome: ``ok``, ``invalid`` (unparseable), ``refused``, ``timeout`` or ``error``.
    """

    step: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    estimated: bool
    attempt: int = 1
    outcome: Outcome = "ok"


@dataclass(frozen=True, slots=True)
class StepUsage:
    """Totals for one step over every call recorded in a ledger."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_total: float = 0.0
    estimated_calls: int = 0
    """Calls whose counts are cl100k estimates, not provider counts."""
    failed_calls: int = 0
    """Calls whose outcome was not ``ok`` (invalid output, refusal, timeout, error)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, call: ModelCall) -> StepUsage:
        """These totals with ``call`` added."""
        return StepUsage(
            calls=self.calls + 1,
            prompt_tokens=self.prompt_tokens + call.prompt_tokens,
            completion_tokens=self.completion_tokens + call.completion_tokens,
            latency_ms_total=self.latency_ms_total + call.latency_ms,
            estimated_calls=self.estimated_calls + int(call.estimated),
            failed_calls=self.failed_calls + int(call.outcome != "ok"),
        )


class UsageLedger:
    """A thread-safe record of model calls, summarised per step.

    A ledger may forward every record to a ``parent`` ledger, so one answer can
    keep its own totals while an application-wide ledger sees everything.

    Example:
        >>> ledger = UsageLedger()
        >>> ledger.record(ModelCall("demo", 10, 2, 5.0, estimated=True))
        >>> ledger.summary()["demo"].total_tokens
        12
    """

    def __init__(self, *, parent: UsageLedger | None = None) -> None:
        self._calls: list[ModelCall] = []
        self._lock = threading.Lock()
        self._parent = parent

    def record(self, call: ModelCall) -> None:
        """Add one call (and forward it to the parent ledger)."""
        with self._lock:
            self._calls.append(call)
        if self._parent is not None:
            self._parent.record(call)

    @property
    def calls(self) -> tuple[ModelCall, ...]:
        """Every recorded call, oldest first."""
        with self._lock:
            return tuple(self._calls)

    def summary(self) -> dict[str, StepUsage]:
        """Totals per step name, in the order steps first appeared."""
        totals: dict[str, StepUsage] = {}
        for call in self.calls:
            totals[call.step] = totals.get(call.step, StepUsage()).add(call)
        return totals
