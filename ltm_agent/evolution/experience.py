"""Experience memory: a case bank of situations, the actions tried there and what they earned.

Every interaction is recorded in the tenant's namespace as one **case** per
distinct situation (the situation text is the case's index key), holding the
outcome statistics of *every* action tried there: visits, episodes solved
after it, summed immediate reward and summed credit. Outcomes aggregate per
(situation, action) as counts; nothing is ever overwritten with one "right
answer", so several actions can each be right in their own contexts.

Credit is passed back from later rewards to the steps that led there
(discounted return, ``gamma``), so an action that only *enables* a later
reward (opening a container, walking to a room) is credited too.

:meth:`ExperienceMemory.recall` returns the ``k`` most similar cases (dense
similarity in the store embedder's space, mixed with utility/heat by a
:class:`~ltm_agent.evolution.utility.UsageMix`), or only the identical
situation in ``"exact"`` mode (the ablation: exact keys cannot transfer to
unseen objects). :meth:`ExperienceMemory.estimate` turns recalled cases into a
value per candidate action, matching actions by embedding similarity too, so
"put the pear in the fridge" can borrow from "put the apple in the fridge".
Embeddings of repeated texts are cached, so a write embeds nothing new and
recall costs one search.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from ltm_agent.errors import InvalidInputError, UnsupportedOperationError, describe
from ltm_agent.evolution.utility import UsageMix, feedback
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import Scalar, StoredItem
from ltm_agent.store import MemoryStore
from ltm_agent.text import preview

__all__ = [
    "ActionEstimate",
    "ActionStats",
    "Experience",
    "ExperienceHit",
    "ExperienceMemory",
    "RecallMode",
    "Step",
    "action_similarity",
    "discounted_credit",
    "situation_id",
]

RecallMode = Literal["similar", "exact"]
EXPERIENCE_KIND = "experience"


@dataclass(slots=True)
class ActionStats:
    """Outcome counts of one action in one situation."""

    visits: int = 0
    successes: int = 0
    reward_sum: float = 0.0
    credit_sum: float = 0.0

    @property
    def mean_credit(self) -> float:
        return self.credit_sum / self.visits if self.visits else 0.0

    def merge(self, other: ActionStats) -> None:
        self.visits += other.visits
        self.successes += other.successes
        self.reward_sum += other.reward_sum
        self.credit_sum += other.credit_sum

    def to_list(self) -> list[float]:
        return [self.visits, self.successes, round(self.reward_sum, 6), round(self.credit_sum, 6)]

    @classmethod
    def from_list(cls, row: Sequence[float]) -> ActionStats:
        return cls(int(row[0]), int(row[1]), float(row[2]), float(row[3]))


@dataclass(frozen=True, slots=True)
class Step:
    """One interaction step: where the agent was, what it did, the reward it got."""

    situation: str
    action: str
    reward: float = 0.0
    changed: bool = True
    """Whether the step changed what the agent observes; a step that changed
    nothing (looking, listing the inventory) did not lead to later rewards and
    gets only its own reward as credit."""


@dataclass(slots=True)
class Experience:
    """One case: a situation with the statistics of every action tried in it."""

    id: str
    situation: str
    actions: dict[str, ActionStats] = field(default_factory=dict)
    merged_from: tuple[str, ...] = ()
    meta: dict[str, Scalar] = field(default_factory=dict)

    @property
    def visits(self) -> int:
        return sum(s.visits for s in self.actions.values())

    def render(self, limit: int = 8) -> str:
        """The case as prompt text: the situation and its best-known actions."""
        ranked = sorted(self.actions.items(), key=lambda kv: (-kv[1].mean_credit, kv[0]))[:limit]
        tried = "; ".join(f"{a} ({s.visits}x, credit {s.mean_credit:+.2f}, solved {s.successes})" for a, s in ranked)
        return f"Situation: {preview(self.situation, 600)}\nTried here: {tried or 'nothing yet'}"

    def to_item(self, namespace: Namespace, vector: Sequence[float] | None = None) -> StoredItem:
        meta = dict(self.meta)
        meta.update(
            kind=EXPERIENCE_KIND,
            actions=json.dumps({a: s.to_list() for a, s in sorted(self.actions.items())}, ensure_ascii=False),
            visits=self.visits,
            merged_from=json.dumps(list(self.merged_from)),
        )
        return StoredItem(namespace, self.id, self.render(), meta, self.situation, vector=vector)

    @classmethod
    def from_item(cls, item: StoredItem) -> Experience:
        raw = json.loads(str(item.metadata.get("actions", "{}")))
        meta = {k: v for k, v in item.metadata.items() if k not in {"actions", "visits", "merged_from", "kind"}}
        return cls(
            item.id,
            item.index_text,
            {a: ActionStats.from_list(row) for a, row in raw.items()},
            tuple(json.loads(str(item.metadata.get("merged_from", "[]")))),
            meta,
        )


@dataclass(frozen=True, slots=True)
class ExperienceHit:
    """A recalled case with its relevance (cosine) and mixed ranking score."""

    experience: Experience
    relevance: float
    score: float


@dataclass(frozen=True, slots=True)
class ActionEstimate:
    """What memory says about one candidate action.

    ``value`` is the weighted mean credit of matching past actions and
    ``support`` their summed weight times visits (0 = memory knows nothing).
    """

    action: str
    value: float
    support: float
    success_rate: float


def situation_id(situation: str) -> str:
    """Stable id of a situation's case (the same text always maps to the same case)."""
    return "exp-" + hashlib.blake2b(situation.encode("utf-8"), digest_size=10).hexdigest()


def _tokens(text: str) -> frozenset[str]:
    return frozenset(text.lower().split())


def action_similarity(actions: Sequence[str], names: Sequence[str], a_vecs: np.ndarray, n_vecs: np.ndarray) -> np.ndarray:
    """How alike two actions are: mean of embedding cosine and word overlap (Jaccard), same verb only.

    A sentence encoder ranks "put the wet skirt in the drier" closer to "take the
    wet skirt" than to "put the wet shirt in the drier": it reads the object, not
    what is done with it. So actions only match when their first word (the verb)
    is the same, and word overlap, which sees the shared target, counts half.

    Example:
        >>> import numpy as np
        >>> v = np.eye(3, dtype=np.float32)
        >>> action_similarity(["open door"], ["open door", "close door"], v[:1], v[:2]).round(2).tolist()
        [[1.0, 0.0]]
    """
    cos = (a_vecs @ n_vecs.T).astype(np.float64)
    a_tok = [_tokens(a) for a in actions]
    n_tok = [_tokens(n) for n in names]
    a_verb = [a.split()[0].lower() if a.split() else "" for a in actions]
    n_verb = [n.split()[0].lower() if n.split() else "" for n in names]
    out = np.zeros_like(cos)
    for i, (tokens, verb) in enumerate(zip(a_tok, a_verb)):
        for j, (other, other_verb) in enumerate(zip(n_tok, n_verb)):
            if verb == other_verb:
                out[i, j] = 0.5 * cos[i, j] + 0.5 * len(tokens & other) / max(1, len(tokens | other))
    return out


def discounted_credit(
    rewards: Sequence[float], gamma: float, changed: Sequence[bool] | None = None, *, step_cost: float = 0.0
) -> list[float]:
    """Credit per step: its reward plus the discounted rewards that followed it.

    A step that did not lead anywhere keeps only its own reward and passes the
    credit behind it through to the steps before it, undiscounted and without
    its own reward: a step marked
    unchanged (``changed[i]`` false: looking, listing the inventory) and a step
    that lost reward (what came after it only made up for it).

    Example:
        >>> discounted_credit([0.0, 0.0, 1.0], 0.5)
        [0.25, 0.5, 1.0]
        >>> discounted_credit([0.0, 0.0, 1.0], 0.5, [True, False, True])
        [0.5, 0.0, 1.0]
        >>> discounted_credit([0.5, -0.5, 0.5], 0.5)
        [0.75, -0.5, 0.5]

    ``step_cost`` is subtracted from every step's credit (time is not free), after
    deciding whether the step lost reward.
    """
    out = [0.0] * len(rewards)
    running = 0.0  # credit available to the step before this one
    for i in range(len(rewards) - 1, -1, -1):
        reward = float(rewards[i])
        if (changed is None or changed[i]) and reward >= 0.0:
            out[i] = reward - step_cost + gamma * running
            running = out[i]
        else:
            out[i] = reward - step_cost  # the credit behind it skips it, neither discounted nor offset
    return out


class ExperienceMemory:
    """A namespace-scoped case bank over any :class:`~ltm_agent.store.MemoryStore`.

    Args:
        store: The store (needs an embedder for ``"similar"`` recall).
        namespace: The tenant namespace the cases live in.
        mode: ``"similar"`` (embedding similarity) or ``"exact"`` (same text only).
        usage_mix: How utility and heat join relevance when ranking cases.
        gamma: Discount of the credit passed back from later rewards.
        step_cost: Subtracted from each step's credit (so wasted steps look bad).
        situation_temperature: Softness of the case weights ``exp((score - 1) / t)``.
        action_temperature: Sharpness of action matching (see :meth:`estimate`).
        min_action_similarity: Past actions less similar than this do not count
            (similarity: :func:`action_similarity`).
        writes: ``False`` freezes the memory (recall only; writes are dropped).

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> memory = ExperienceMemory(InMemoryStore(), ("agent-1",))
        >>> _ = memory.record_episode([Step("a dark room, a lamp", "turn on lamp", 1.0)], success=True, task_id="e1")
        >>> hits = memory.recall("a dark room with a lamp", k=1)
        >>> memory.estimate(hits, ["turn on lamp"])["turn on lamp"].value
        1.0
    """

    def __init__(
        self,
        store: MemoryStore,
        namespace: Namespace,
        *,
        mode: RecallMode = "similar",
        usage_mix: UsageMix = UsageMix(),
        gamma: float = 0.6,
        step_cost: float = 0.0,
        situation_temperature: float = 0.2,
        action_temperature: float = 0.03,
        min_action_similarity: float = 0.5,
        writes: bool = True,
        cache_size: int = 50_000,
    ) -> None:
        if mode not in ("similar", "exact"):
            raise InvalidInputError(f"mode must be 'similar' or 'exact', got {describe(mode)}")
        if mode == "similar" and store.embedder is None:
            raise UnsupportedOperationError(f"{type(store).__name__} has no embedder; use mode='exact' or add one")
        if not 0.0 <= gamma <= 1.0:
            raise InvalidInputError(f"gamma must be in [0, 1], got {describe(gamma)}")
        self.store = store
        self.namespace = validate_namespace(tuple(namespace))
        self.mode: RecallMode = mode
        self.usage_mix = usage_mix
        self.gamma = gamma
        self.step_cost = step_cost
        self.situation_temperature = situation_temperature
        self.action_temperature = action_temperature
        self.min_action_similarity = min_action_similarity
        self.writes = writes
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    # -- embeddings (cached: situations and actions repeat a lot) ----------

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` in the store's space, embedding only texts not seen before."""
        if self.store.embedder is None:
            raise UnsupportedOperationError("exact mode has no embedder; vectors are unavailable")
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self.store.embedder.embed(missing)):
                self._cache[text] = np.asarray(vector, dtype=np.float32)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        dim = self.store.embedder.dimension
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, dim), np.float32)

    def _vector_of(self, item: StoredItem) -> np.ndarray | None:
        return self.embed([item.index_text])[0] if self.store.embedder is not None else None

    # -- write path (zero LLM calls) -------------------------------------

    def record(self, situation: str, action: str, reward: float, *, success: bool = False) -> str:
        """Record one step with its own reward as credit; returns the case id."""
        return self.record_episode([Step(situation, action, reward)], success=success, credit=[reward])[0]

    def record_episode(
        self,
        steps: Sequence[Step],
        *,
        success: bool,
        task_id: str | None = None,
        credit: Sequence[float] | None = None,
    ) -> list[str]:
        """Record a whole episode; each step gets the discounted credit of what followed.

        Returns the case id of every step (in order). A frozen memory records nothing.
        """
        if credit is None:
            credit = discounted_credit([s.reward for s in steps], self.gamma, [s.changed for s in steps], step_cost=self.step_cost)
        if len(credit) != len(steps):
            raise InvalidInputError(f"{len(credit)} credits for {len(steps)} steps; give one credit per step")
        ids = [situation_id(s.situation) for s in steps]
        if not self.writes or not steps:
            return ids
        unique = list(dict.fromkeys(ids))
        found = dict(zip(unique, self.store.get(self.namespace, unique)))
        cases: dict[str, Experience] = {}
        for case_id, step, value in zip(ids, steps, credit):
            if case_id not in cases:
                item = found[case_id]
                cases[case_id] = Experience.from_item(item) if item is not None else Experience(case_id, step.situation)
                if task_id is not None:
                    cases[case_id].meta["last_task"] = task_id
            stats = cases[case_id].actions.setdefault(step.action, ActionStats())
            stats.merge(ActionStats(1, int(success), float(step.reward), float(value)))
        vectors = self.embed([c.situation for c in cases.values()]) if self.store.embedder is not None else None
        self.store.put(
            [
                c.to_item(self.namespace, vectors[i] if vectors is not None else None)
                for i, c in enumerate(cases.values())
            ]
        )
        return ids

    # -- read path ---------------------------------------------------------

    def recall(self, situation: str, k: int = 8) -> list[ExperienceHit]:
        """The ``k`` cases most similar to ``situation`` with their outcome statistics."""
        if k <= 0:
            return []
        if self.mode == "exact":
            item = self.store.get(self.namespace, [situation_id(situation)])[0]
            return [] if item is None else [ExperienceHit(Experience.from_item(item), 1.0, 1.0)]
        vector = self.embed([situation])[0]
        wanted = k * 2 if self.usage_mix.active else k
        found = self.store.search(self.namespace, situation, vector=vector, limit=wanted)
        hits = [ExperienceHit(Experience.from_item(h.item), h.score, self.usage_mix.score(h.score, h.item)) for h in found]
        hits.sort(key=lambda h: (-h.score, h.experience.id))
        return hits[:k]

    def random_cases(self, k: int, rng: np.random.Generator) -> list[ExperienceHit]:
        """``k`` cases drawn uniformly at random (the random-recall control)."""
        items = self.store.list(self.namespace)
        if not items or k <= 0:
            return []
        picks = rng.choice(len(items), size=min(k, len(items)), replace=False)
        return [ExperienceHit(Experience.from_item(items[int(i)]), 1.0, 1.0) for i in sorted(picks)]

    def estimate(self, hits: Sequence[ExperienceHit], actions: Sequence[str]) -> dict[str, ActionEstimate]:
        """A value per candidate action from the recalled cases (actions matched by similarity).

        Weights, per past action ``b`` of a recalled case for candidate ``a``:

        * case weight ``exp((score - best_score) / situation_temperature)`` (the closest case counts 1);
        * match quality ``q = clip((sim(a, b) - m) / (1 - m), 0, 1) ** 2`` with
          ``m = min_action_similarity`` (an identical action 1, a loose match little);
        * sharpness ``exp((sim(a, b) - best_sim(a)) / action_temperature)``, so the closest
          past actions dominate the value.

        ``value`` is the weighted mean credit per visit; ``support`` is the summed
        ``case weight * q * visits`` (how much memory really knows about ``a``).
        """
        out = {a: ActionEstimate(a, 0.0, 0.0, 0.0) for a in actions}
        if not hits or not actions:
            return out
        best = max(h.score for h in hits)
        index: dict[str, int] = {}
        sums: list[list[float]] = []  # per distinct past action: weighted visits, credit, successes
        for hit in hits:
            weight = math.exp((hit.score - best) / self.situation_temperature)
            for name, stats in hit.experience.actions.items():
                row = index.setdefault(name, len(index))
                if row == len(sums):
                    sums.append([0.0, 0.0, 0.0])
                acc = sums[row]
                acc[0] += weight * stats.visits
                acc[1] += weight * stats.credit_sum
                acc[2] += weight * stats.successes
        if not index:
            return out
        names = list(index)
        totals = np.asarray(sums, dtype=np.float64)
        if self.mode == "exact":
            quality = np.array([[1.0 if a == b else 0.0 for b in names] for a in actions])
            sharp = quality
        else:
            sims = action_similarity(list(actions), names, self.embed(list(actions)), self.embed(names))
            m = self.min_action_similarity
            quality = np.clip((sims - m) / (1.0 - m), 0.0, 1.0) ** 2
            top = np.max(np.where(quality > 0, sims, -np.inf), axis=1, keepdims=True)
            sharp = np.where(quality > 0, np.exp((sims - np.where(np.isfinite(top), top, 0.0)) / self.action_temperature), 0.0)
        support = (quality * sharp / np.maximum(sharp.max(axis=1, keepdims=True), 1e-12)) @ totals[:, 0]
        weighted = (sharp * quality) @ totals
        for i, action in enumerate(actions):
            if weighted[i, 0] > 0:
                out[action] = ActionEstimate(
                    action,
                    float(weighted[i, 1] / weighted[i, 0]),
                    float(support[i]),
                    float(weighted[i, 2] / weighted[i, 0]),
                )
        return out

    def feedback(self, case_ids: Sequence[str], outcome: float, *, task_id: str) -> None:
        """Utility feedback on recalled cases (see :func:`~ltm_agent.evolution.utility.feedback`)."""
        if self.writes and case_ids:
            feedback(self.store, self.namespace, case_ids, outcome, task_id=task_id, vector_of=self._vector_of)

    def cases(self) -> list[Experience]:
        """Every case in the namespace."""
        return [Experience.from_item(i) for i in self.store.list(self.namespace)]

    def count(self) -> int:
        return self.store.count(self.namespace)
