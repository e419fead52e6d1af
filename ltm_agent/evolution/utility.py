"""Utility feedback and the documented relevance + utility + recency ("heat") mix.

A memory that was used in a successful task gains utility, one that misled
loses it (OMNE, ExpeL). :func:`feedback` writes that outcome into the usage
statistics every record carries (:class:`~ltm_agent.records.Usage`: utility,
access count, last access) and is idempotent per (task, memory): the ids of
the tasks that already gave feedback are kept on the memory itself, so a
retried task changes nothing.

Heat follows MemoryOS: visits, interaction length and recency with a 24 h
time constant. Ranking mixes three terms (all documented in
:class:`UsageMix`)::

    score = relevance + utility_weight * tanh(utility) + heat_weight * heat

``heat = log1p(visits) / log1p(visits_scale) * exp(-age_hours / 24)``
(``age`` since the last access, or since the write for a memory never used),
clipped to [0, 1]. With both weights at 0 (the default everywhere) ranking is
pure relevance.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping, Sequence

from ltm_agent.dates import to_timestamp, utcnow
from ltm_agent.errors import InvalidInputError, InvalidTypeError, describe
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import Scalar, StoredItem, Usage
from ltm_agent.store import MemoryStore

__all__ = ["HEAT_TIME_CONSTANT_H", "FeedbackReport", "UsageMix", "feedback", "heat", "usage_of", "with_metadata"]

HEAT_TIME_CONSTANT_H = 24.0
"""MemoryOS recency time constant (hours)."""

_TASKS_KEY = "feedback_tasks"
_MAX_TASKS = 4000  # ids kept per memory for idempotency (8 hex chars each)


def usage_of(meta: Mapping[str, Scalar]) -> Usage:
    """The usage statistics stored in an item's metadata (zeros when never used)."""
    return Usage.from_metadata(meta)


def heat(item: StoredItem, *, now: datetime | None = None, visits_scale: float = 50.0) -> float:
    """MemoryOS-style heat in [0, 1]: visits times recency (24 h time constant).

    Example:
        >>> from ltm_agent.records import StoredItem
        >>> heat(StoredItem(("u",), "m", "x", {"access_count": 0}))
        0.0
    """
    usage = usage_of(item.metadata)
    now = now or utcnow()
    last = usage.last_accessed_at or item.updated_at or item.created_at
    age_h = max(0.0, (to_timestamp(now) - to_timestamp(last)) / 3600.0) if last is not None else 0.0
    visits = math.log1p(usage.access_count) / math.log1p(visits_scale)
    return float(min(1.0, visits) * math.exp(-age_h / HEAT_TIME_CONSTANT_H))


@dataclass(frozen=True, slots=True)
class UsageMix:
    """Weights of the relevance + utility + heat ranking (both 0 = relevance only).

    Attributes:
        utility_weight: Weight of ``tanh(utility)`` added to the relevance score.
        heat_weight: Weight of :func:`heat` added to the relevance score.
    """

    utility_weight: float = 0.0
    heat_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in ("utility_weight", "heat_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise InvalidTypeError(f"UsageMix.{name} must be a finite number, got {describe(value)}")

    @property
    def active(self) -> bool:
        """Whether usage changes the ranking at all."""
        return self.utility_weight != 0.0 or self.heat_weight != 0.0

    def score(self, relevance: float, item: StoredItem, *, now: datetime | None = None) -> float:
        """Mixed score of one item (relevance unchanged when the mix is inactive)."""
        if not self.active:
            return relevance
        usage = usage_of(item.metadata)
        out = relevance + self.utility_weight * math.tanh(usage.utility)
        if self.heat_weight:
            out += self.heat_weight * heat(item, now=now)
        return out


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """What one :func:`feedback` call changed."""

    updated: tuple[str, ...]
    already_applied: tuple[str, ...]
    missing: tuple[str, ...]


def _task_tag(task_id: str) -> str:
    return hashlib.blake2b(task_id.encode("utf-8"), digest_size=4).hexdigest()


def feedback(
    store: MemoryStore,
    namespace: Namespace,
    memory_ids: Sequence[str],
    outcome: float,
    *,
    task_id: str,
    learning_rate: float = 1.0,
    now: datetime | None = None,
    vector_of: Callable[[StoredItem], Sequence[float] | None] | None = None,
) -> FeedbackReport:
    """Credit (``outcome > 0``) or blame (``< 0``) the memories a task used.

    Each memory's ``utility`` moves by ``learning_rate * outcome``, its
    ``access_count`` grows by one and ``last_accessed`` becomes ``now``. A
    (task, memory) pair counts once: calling again with the same ``task_id``
    leaves the memory unchanged. Only ``namespace`` is read or written.

    Args:
        store: The store holding the memories.
        namespace: The tenant namespace.
        memory_ids: Ids of the memories the task used.
        outcome: In [-1, 1]; e.g. +1 solved, -1 failed, or a normalised reward.
        task_id: The task (episode, question) the outcome belongs to.
        learning_rate: Step size of the utility update.
        now: The time of access (default: now).
        vector_of: Gives an item's index vector so the rewrite does not embed its
            key again (e.g. an embedding cache); ``None`` lets the store embed.

    Raises:
        InvalidInputError: ``outcome`` outside [-1, 1] or an empty ``task_id``.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.records import StoredItem
        >>> store = InMemoryStore()
        >>> store.put([StoredItem(("u",), "m1", "use the blue key")])
        >>> feedback(store, ("u",), ["m1"], 1.0, task_id="t1").updated
        ('m1',)
        >>> feedback(store, ("u",), ["m1"], 1.0, task_id="t1").already_applied
        ('m1',)
    """
    namespace = validate_namespace(tuple(namespace))
    if not isinstance(outcome, (int, float)) or isinstance(outcome, bool) or not -1.0 <= outcome <= 1.0:
        raise InvalidInputError(f"outcome must be a number in [-1, 1], got {describe(outcome)}; normalise the reward")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidInputError(f"task_id must be a non-empty str, got {describe(task_id)}; name the task or episode")
    ids = list(dict.fromkeys(memory_ids))
    now = now or utcnow()
    tag = _task_tag(task_id)
    found = store.get(namespace, ids)
    updated: list[StoredItem] = []
    done: list[str] = []
    missing: list[str] = []
    for memory_id, item in zip(ids, found):
        if item is None:
            missing.append(memory_id)
            continue
        tasks = json.loads(str(item.metadata.get(_TASKS_KEY, "[]")))
        if tag in tasks:
            done.append(memory_id)
            continue
        usage = usage_of(item.metadata)
        meta = dict(item.metadata)
        new_usage = Usage(
            access_count=usage.access_count + 1,
            last_accessed_at=now,
            utility=usage.utility + learning_rate * float(outcome),
        )
        meta.update(new_usage.to_metadata())
        meta[_TASKS_KEY] = json.dumps((tasks + [tag])[-_MAX_TASKS:])
        updated.append(with_metadata(item, meta, vector=vector_of(item) if vector_of else None))
    if updated:
        store.put(updated)
    return FeedbackReport(tuple(i.id for i in updated), tuple(done), tuple(missing))


def with_metadata(
    item: StoredItem,
    meta: Mapping[str, Scalar],
    *,
    text: str | None = None,
    vector: Sequence[float] | None = None,
) -> StoredItem:
    """A copy of ``item`` with new metadata (and text); ``vector`` (or the item's own) is kept for indexing."""
    return StoredItem(
        item.namespace,
        item.id,
        text if text is not None else item.text,
        dict(meta),
        item.key,
        item.created_at,
        item.updated_at,
        vector if vector is not None else item.vector,
    )
