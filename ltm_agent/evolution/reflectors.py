"""Reflectors turn experience into playbook deltas.

* :class:`StatisticsReflector` — the **offline deterministic reflector**
  (no model): it groups every recorded action by its verb (first word) and,
  once a verb has enough visits, ADDs a rule stating its measured mean credit,
  then UPVOTEs it while new evidence agrees and DOWNVOTEs it when the sign
  flips (EDIT keeps the numbers current). Rules come from repeated outcome
  statistics, nothing else.
* :class:`LLMReflector` — with a chat model configured, the model reads the
  playbook and the best and worst recorded cases and proposes deltas
  (validated JSON through :class:`~ltm_agent.llm.ModelStep`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Protocol, Sequence

from pydantic import BaseModel, Field

from ltm_agent.evolution.experience import ActionStats, Experience
from ltm_agent.evolution.playbook import Bullet, Delta, DeltaOp

if TYPE_CHECKING:
    from ltm_agent.llm import ModelStep

__all__ = ["LLMReflector", "Reflector", "StatisticsReflector", "verb_of"]


def verb_of(action: str) -> str:
    """The pattern an action belongs to: its first word, lower-cased."""
    words = action.split()
    return words[0].lower() if words else ""


class Reflector(Protocol):
    """Anything that proposes playbook deltas from cases and the current bullets."""

    def propose(self, cases: Sequence[Experience], bullets: Sequence[Bullet]) -> list[Delta]: ...


class StatisticsReflector:
    """Offline deterministic reflector: verb-level outcome statistics become rules.

    Args:
        min_visits: Visits a verb needs before a rule is written about it.
        margin: Mean credit within ``±margin`` of 0 is not a rule.

    Example:
        >>> from ltm_agent.evolution.experience import ActionStats, Experience
        >>> case = Experience("c1", "a room", {"take key": ActionStats(6, 3, 3.0, 3.0)})
        >>> [d.op.value for d in StatisticsReflector(min_visits=5).propose([case], [])]
        ['ADD']
    """

    def __init__(self, *, min_visits: int = 5, margin: float = 0.02) -> None:
        self.min_visits = min_visits
        self.margin = margin

    def propose(self, cases: Sequence[Experience], bullets: Sequence[Bullet]) -> list[Delta]:
        totals: dict[str, ActionStats] = defaultdict(ActionStats)
        for case in cases:
            for action, stats in case.actions.items():
                totals[verb_of(action)].merge(stats)
        by_pattern = {b.pattern: b for b in bullets if b.pattern}
        deltas: list[Delta] = []
        for verb in sorted(totals):
            stats = totals[verb]
            if not verb or stats.visits < self.min_visits or abs(stats.mean_credit) <= self.margin:
                continue
            pattern = f"verb:{verb}"
            good = stats.mean_credit > 0
            text = (
                f"Actions starting with '{verb}' {'paid off' if good else 'did not pay off'}: mean credit "
                f"{stats.mean_credit:+.3f} over {stats.visits} tries ({stats.successes} in solved episodes)."
            )
            old = by_pattern.get(pattern)
            if old is None:
                deltas.append(Delta(op=DeltaOp.ADD, text=text, pattern=pattern, value=stats.mean_credit, source="statistics"))
                continue
            agrees = (old.value > 0) == good
            deltas.append(Delta(op=DeltaOp.UPVOTE if agrees else DeltaOp.DOWNVOTE, bullet_id=old.id, source="statistics"))
            deltas.append(Delta(op=DeltaOp.EDIT, bullet_id=old.id, text=text, value=stats.mean_credit, source="statistics"))
        return deltas


class _Proposal(BaseModel):
    deltas: list[Delta] = Field(default_factory=list, max_length=8)


_SYSTEM = (
    "You maintain an agent's playbook of short rules learned from experience. Propose at most 8 small "
    "changes as JSON {\"deltas\": [...]}, each with op ADD (text), UPVOTE/DOWNVOTE (bullet_id), EDIT "
    "(bullet_id, text) or REMOVE (bullet_id). Never rewrite the whole playbook. Rules must be general, "
    "short and supported by the statistics shown."
)


class LLMReflector:
    """A chat model proposes deltas (one :class:`ModelStep` call per reflection).

    Args:
        step: A :class:`~ltm_agent.llm.ModelStep` over any LangChain chat model.
        cases_shown: How many best and worst cases the model reads.
    """

    def __init__(self, step: ModelStep, *, cases_shown: int = 6) -> None:
        self.step = step
        self.cases_shown = cases_shown

    def propose(self, cases: Sequence[Experience], bullets: Sequence[Bullet]) -> list[Delta]:
        from ltm_agent.llm import prompt_messages, quote_data

        ranked = sorted(cases, key=lambda c: -max((s.mean_credit for s in c.actions.values()), default=0.0))
        shown = ranked[: self.cases_shown] + ranked[-self.cases_shown :] if len(ranked) > 2 * self.cases_shown else ranked
        book = "\n".join(f"[{b.id}] {b.text} (helpful {b.helpful}, harmful {b.harmful})" for b in bullets) or "(empty)"
        user = quote_data("playbook", book) + "\n" + quote_data("cases", "\n\n".join(c.render() for c in shown))
        proposal = self.step.invoke_json("evolution.reflect", prompt_messages(_SYSTEM, user), _Proposal)
        return [d.model_copy(update={"source": "llm"}) for d in proposal.deltas]
