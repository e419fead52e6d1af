"""Self-evolution: memory that learns from outcomes (framework-free core).

* :class:`ExperienceMemory` — a case bank: situations, the actions tried there
  and their outcome statistics (counts per (situation, action), never one
  overwritten answer); similarity or exact recall; per-action estimates.
* :func:`feedback` / :class:`UsageMix` / :func:`heat` — utility feedback
  (idempotent per (task, memory)) and the relevance + utility + recency mix.
* :class:`Playbook` with :class:`Delta` ops — insights with helpful/harmful
  counters; :class:`StatisticsReflector` (offline, deterministic) and
  :class:`LLMReflector` propose the deltas.
* :class:`ProceduralMemory` — versioned instructions, ``revert(version)``.
* :func:`consolidate` / :func:`restore` — sleep-time merge, archive, re-derive.

Everything lives in the tenant's namespace of any
:class:`~ltm_agent.store.MemoryStore`; the write path makes no LLM call.
"""

from __future__ import annotations

from typing import Sequence

from ltm_agent.evolution.consolidation import ConsolidationReport, archive_namespace, consolidate, restore
from ltm_agent.evolution.experience import (
    ActionEstimate,
    ActionStats,
    Experience,
    ExperienceHit,
    ExperienceMemory,
    RecallMode,
    Step,
    discounted_credit,
    situation_id,
)
from ltm_agent.evolution.playbook import Bullet, Delta, DeltaOp, Playbook
from ltm_agent.evolution.procedural import ProceduralMemory, ProcedureVersion
from ltm_agent.evolution.reflectors import LLMReflector, Reflector, StatisticsReflector, verb_of
from ltm_agent.evolution.utility import HEAT_TIME_CONSTANT_H, FeedbackReport, UsageMix, feedback, heat

__all__ = [
    "HEAT_TIME_CONSTANT_H",
    "ActionEstimate",
    "ActionStats",
    "Bullet",
    "ConsolidationReport",
    "Delta",
    "DeltaOp",
    "Experience",
    "ExperienceHit",
    "ExperienceMemory",
    "FeedbackReport",
    "LLMReflector",
    "Playbook",
    "ProceduralMemory",
    "ProcedureVersion",
    "RecallMode",
    "Reflector",
    "StatisticsReflector",
    "Step",
    "UsageMix",
    "archive_namespace",
    "consolidate",
    "discounted_credit",
    "feedback",
    "heat",
    "playbook_priors",
    "restore",
    "situation_id",
    "verb_of",
]


def playbook_priors(bullets: Sequence[Bullet], actions: Sequence[str]) -> dict[str, float]:
    """Prior value per action from statistics rules (``pattern == "verb:<verb>"``) the playbook trusts.

    Example:
        >>> b = Bullet("ins-1", "take pays off", 3, 0, "verb:take", 0.2, "statistics")
        >>> playbook_priors([b], ["take key", "look"])
        {'take key': 0.2}
    """
    by_verb = {b.pattern[5:]: b.value for b in bullets if b.pattern.startswith("verb:") and b.helpful > b.harmful}
    return {a: by_verb[verb_of(a)] for a in actions if verb_of(a) in by_verb}
