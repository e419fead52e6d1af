"""The offline policy: generic, deterministic, memory-guided.

It sees only what the game shows (observation, task text, valid actions,
score) and what memory returns (:class:`~ltm_agent.evolution.ActionEstimate`
per candidate, playbook priors). It prefers actions whose similar past
experiences paid off, avoids those that failed, and explores otherwise:

``score(a) = (support * value + c0 * prior) / (support + c0)
            + explore * c0 / (support + c0) - repeat * tried_this_episode(a) + noise``

No game-specific rule: the same code runs on every TextWorldExpress game.
``noise`` is a seeded tie-breaker, so a run is reproducible.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

from ltm_agent.evolution.experience import ActionEstimate

__all__ = ["MemoryGuidedPolicy", "PolicyConfig"]


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Knobs of the offline policy (tuned on the train/dev folds only).

    Attributes:
        pseudo_count: ``c0``, how much evidence it takes to trust memory over the prior.
        explore: Bonus of an action memory knows nothing about.
        repeat: Penalty per earlier use of the same action in this episode.
        repeat_here: Extra penalty per earlier use of the same action in the same situation.
        noise: Scale of the seeded random tie-breaker.
        prior_weight: Weight of the playbook's verb-level priors for actions memory
            knows nothing about. 0 by default: a verb's mean credit misleads exploration
            (most "put ..." tries are wrong, so the verb averages negative although one
            put is right). A train-fold run with priors on stayed at the no-memory level;
            it also differed in two other settings, so this is not an isolated ablation.
            The rules still reach a chat model's prompt.
    """

    pseudo_count: float = 0.5
    explore: float = 0.05
    repeat: float = 0.15
    repeat_here: float = 0.5
    noise: float = 0.01
    prior_weight: float = 0.0


class MemoryGuidedPolicy:
    """Chooses one valid action from memory's estimates (see the module docstring).

    Example:
        >>> from ltm_agent.evolution import ActionEstimate
        >>> policy = MemoryGuidedPolicy(seed=0)
        >>> good = {"open door": ActionEstimate("open door", 1.0, 5.0, 1.0)}
        >>> policy.choose("hall", ["open door", "wait"], good, {})
        'open door'
    """

    def __init__(self, config: PolicyConfig = PolicyConfig(), *, seed: int = 0) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self.tried: Counter[str] = Counter()
        self.tried_here: Counter[tuple[str, str]] = Counter()

    def new_episode(self) -> None:
        self.tried.clear()
        self.tried_here.clear()

    def scores(
        self,
        situation: str,
        actions: Sequence[str],
        estimates: Mapping[str, ActionEstimate],
        priors: Mapping[str, float],
    ) -> dict[str, float]:
        c = self.config
        out: dict[str, float] = {}
        for action in actions:
            est = estimates.get(action)
            support = est.support if est is not None else 0.0
            value = est.value if est is not None else 0.0
            trust = support / (support + c.pseudo_count)
            score = trust * value + (1.0 - trust) * (c.prior_weight * priors.get(action, 0.0) + c.explore)
            score -= c.repeat * self.tried[action] + c.repeat_here * self.tried_here[(situation, action)]
            out[action] = score + c.noise * self.rng.random()
        return out

    def choose(
        self,
        situation: str,
        actions: Sequence[str],
        estimates: Mapping[str, ActionEstimate],
        priors: Mapping[str, float],
    ) -> str:
        scores = self.scores(situation, actions, estimates, priors)
        action = max(sorted(scores), key=lambda a: scores[a])
        self.tried[action] += 1
        self.tried_here[(situation, action)] += 1
        return action
