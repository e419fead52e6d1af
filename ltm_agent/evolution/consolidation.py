"""Consolidation ("sleep-time"): merge near-duplicates, archive cold memories, re-derive insights.

Runs between interactions (a LangGraph node, a background task) or on demand
(``ltm-agent consolidate``), never on the answer path, and with the default
(statistics) reflector makes zero LLM calls.

* **Merge**: cases whose situations have cosine >= ``merge_threshold`` are
  merged into the most visited one; their action statistics add up, the
  survivor lists the merged ids (``merged_from``), and the merged cases move to
  the archive namespace with ``merged_into`` set (provenance, restorable).
* **Archive**: a case whose heat plus utility is below ``archive_floor`` and
  that was visited at most ``archive_max_visits`` times moves to
  ``namespace + ("archive",)``: archived, never destroyed; :func:`restore`
  brings it back.
* **Insights**: the reflector reads every live case and its deltas are applied
  to the playbook (which merges and prunes on its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

import numpy as np

from ltm_agent.dates import utcnow
from ltm_agent.evolution.experience import Experience, ExperienceMemory
from ltm_agent.evolution.playbook import Playbook
from ltm_agent.evolution.reflectors import Reflector, StatisticsReflector
from ltm_agent.evolution.utility import heat, usage_of
from ltm_agent.namespaces import Namespace

__all__ = ["ConsolidationReport", "archive_namespace", "consolidate", "restore"]


@dataclass(frozen=True, slots=True)
class ConsolidationReport:
    """What one consolidation pass did."""

    cases_before: int
    merged: int
    archived: int
    deltas: int
    cases_after: int


def archive_namespace(namespace: Namespace) -> Namespace:
    """Where archived experience cases go."""
    return tuple(namespace) + ("archive",)


def _merge_groups(cases: Sequence[Experience], vectors: np.ndarray, threshold: float) -> list[list[int]]:
    order = sorted(range(len(cases)), key=lambda i: (-cases[i].visits, cases[i].id))
    taken = np.zeros(len(cases), dtype=bool)
    groups: list[list[int]] = []
    sims = vectors @ vectors.T if len(cases) else np.zeros((0, 0))
    for i in order:
        if taken[i]:
            continue
        members = [j for j in order if not taken[j] and (j == i or sims[i, j] >= threshold)]
        taken[members] = True
        groups.append(members)
    return groups


def consolidate(
    memory: ExperienceMemory,
    *,
    playbook: Playbook | None = None,
    reflector: Reflector | None = None,
    merge_threshold: float = 0.97,
    archive_floor: float = -2.0,
    archive_max_visits: int = 1,
    now: datetime | None = None,
) -> ConsolidationReport:
    """One sleep-time pass over a namespace's experience (see the module docstring).

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.evolution import ExperienceMemory, Step
        >>> memory = ExperienceMemory(InMemoryStore(), ("agent-1",))
        >>> _ = memory.record_episode([Step("a dark room", "turn on lamp", 1.0)], success=True)
        >>> _ = memory.record_episode([Step("a dark room!", "turn on lamp", 1.0)], success=True)
        >>> consolidate(memory, merge_threshold=0.9).cases_after
        1
    """
    now = now or utcnow()
    store, ns = memory.store, memory.namespace
    items = store.list(ns)
    cases = [Experience.from_item(i) for i in items]
    before = len(cases)
    merged = archived = 0
    if cases and store.embedder is not None:
        vectors = memory.embed([c.situation for c in cases])
        keep_items = []
        for group in _merge_groups(cases, vectors, merge_threshold):
            head = cases[group[0]]
            if len(group) > 1:
                for j in group[1:]:
                    for action, stats in cases[j].actions.items():
                        head.actions.setdefault(action, type(stats)()).merge(stats)
                head.merged_from = tuple(dict.fromkeys(head.merged_from + tuple(cases[j].id for j in group[1:])))
                gone = [cases[j].to_item(archive_namespace(ns), vectors[j]) for j in group[1:]]
                gone = [g.__class__(g.namespace, g.id, g.text, {**g.metadata, "merged_into": head.id}, g.key, vector=g.vector) for g in gone]
                store.put(gone)
                store.delete(ns, [cases[j].id for j in group[1:]])
                store.put([head.to_item(ns, vectors[group[0]])])
                merged += len(group) - 1
            keep_items.append((head, items[group[0]], vectors[group[0]]))
        cold = [
            (case, vec)
            for case, item, vec in keep_items
            if case.visits <= archive_max_visits and heat(item, now=now) + usage_of(item.metadata).utility < archive_floor
        ]
        if cold:
            store.put([c.to_item(archive_namespace(ns), v) for c, v in cold])
            store.delete(ns, [c.id for c, _ in cold])
            archived = len(cold)
    deltas = 0
    if playbook is not None:
        proposals = (reflector or StatisticsReflector()).propose(memory.cases(), playbook.bullets())
        playbook.apply(proposals)
        deltas = len(proposals)
    return ConsolidationReport(before, merged, archived, deltas, store.count(ns))


def restore(memory: ExperienceMemory, case_ids: Sequence[str]) -> int:
    """Move archived cases back into the live namespace; returns how many came back."""
    archive = archive_namespace(memory.namespace)
    items = [i for i in memory.store.get(archive, list(case_ids)) if i is not None]
    if not items:
        return 0
    cases = [Experience.from_item(i) for i in items]
    for case in cases:
        case.meta.pop("merged_into", None)
    vectors = memory.embed([c.situation for c in cases]) if memory.store.embedder is not None else None
    memory.store.put([c.to_item(memory.namespace, vectors[i] if vectors is not None else None) for i, c in enumerate(cases)])
    memory.store.delete(archive, [c.id for c in cases])
    return len(cases)
