"""The update rules of bi-temporal facts: ids, the update record, placing a new fact.

Contradiction and duplicate handling is decided **by rule**, not by a model
step: candidates are only ever compared with versions of the *same subject*.

* Same normalised text as the version true at the candidate's ``valid_at`` ->
  duplicate: provenance is appended, nothing new is stored.
* Different text on a single-valued subject (:data:`SINGLE_VALUED_SUBJECTS`)
  -> the newer fact supersedes: the old version gets ``invalid_at`` = the new
  ``valid_at`` and ``expired_at`` = now; it is never deleted.
* Multi-valued subjects only merge duplicates; they never retire each other.

Core types: :class:`FactUpdate`, :class:`UpdatePlan`, :func:`fact_id`,
:data:`SINGLE_VALUED_SUBJECTS`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from ltm_agent.dates import to_timestamp
from ltm_agent.facts.extraction import normalize_fact_text, normalize_subject
from ltm_agent.namespaces import Namespace
from ltm_agent.records import Fact

__all__ = ["SINGLE_VALUED_SUBJECTS", "FactUpdate", "UpdatePlan", "fact_id", "version_order"]

SINGLE_VALUED_SUBJECTS: tuple[str, ...] = (
    "user.location",
    "user.diet",
    "user.job",
    "user.employer",
    "user.name",
    "user.age",
    "user.relationship_status",
    "*.birthday",
    "user.preference.*",
)
"""Subject patterns (``fnmatch``) that hold one value at a time: a new value supersedes the old.

Every other subject is multi-valued (pets, allergies): facts merge as
duplicates but never retire each other. Unknown subjects default to
multi-valued, so an extractor's odd subject can never invalidate a fact.
"""


def fact_id(namespace: Namespace, subject: str, text: str, valid_at: datetime) -> str:
    """Stable id of one fact version: same namespace, subject, text and start -> same id.

    ``valid_at`` is part of it so a value that comes back ("moved back to
    Lisbon") is a new version, while re-running an update finds the same id.
    """
    parts = (*namespace, normalize_subject(subject), normalize_fact_text(text), f"{to_timestamp(valid_at):.3f}")
    return "fact-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class FactUpdate:
    """A proposed or applied change to the fact set.

    Attributes:
        candidates: Facts proposed by extraction (ids and ``valid_at`` resolved).
        added: New fact versions written (an out-of-order older fact may be
            added already invalidated).
        merged: Existing facts whose provenance grew (or whose start moved earlier),
            in their new state.
        invalidated: Existing facts that a newer value superseded, in their new state.
        keys_updated: Ids of episodes whose fact-augmented key changed.
        method: How candidates were made: ``"llm"``, ``"pattern-fallback"``,
            ``"llm+pattern-fallback"``, ``"manual"`` (:meth:`FactMemory.add`) or
            ``"off"`` (no extractor configured).
        notes: Fallback reasons, rejected candidates, unreadable dates.
        applied: ``True`` once written by :meth:`FactMemory.apply`.
    """

    candidates: tuple[Fact, ...]
    added: tuple[Fact, ...] = ()
    merged: tuple[Fact, ...] = ()
    invalidated: tuple[Fact, ...] = ()
    keys_updated: tuple[str, ...] = ()
    method: str = "manual"
    notes: tuple[str, ...] = ()
    applied: bool = False

    @property
    def changed(self) -> bool:
        """True when applying wrote anything."""
        return bool(self.added or self.merged or self.invalidated or self.keys_updated)


def version_order(fact: Fact) -> tuple[datetime, datetime, str]:
    """Sort key of a subject's versions: start, then when learned, then id."""
    return (fact.valid_at, fact.created_at, fact.id)


class UpdatePlan:
    """The fact versions one update writes, keyed by id (a fact touched twice is written once).

    :class:`~ltm_agent.facts.FactMemory` reads each subject's versions once,
    calls :meth:`place` for every candidate in the order they were said, and
    writes :meth:`written` in one put batch.

    Attributes:
        now: System time of this update (``expired_at`` of what it invalidates).
        added: New versions.
        merged: Existing versions whose provenance grew or whose start moved earlier.
        invalidated: Existing versions that a newer value ended.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.added: dict[str, Fact] = {}
        self.merged: dict[str, Fact] = {}
        self.invalidated: dict[str, Fact] = {}
        self._grew: dict[str, Fact] = {}

    def place(self, candidate: Fact, versions: list[Fact], *, single_valued: bool) -> None:
        """Place one candidate on its subject's timeline; ``versions`` is kept up to date.

        Rules, in order: the same id (a re-run) or the same normalised text as the
        version true at ``valid_at`` -> merge provenance; the same text as the next
        version -> merge and move its start earlier; otherwise a new version, which on
        a single-valued subject ends the version true at ``valid_at`` (``invalid_at``
        = the new ``valid_at``) and itself ends where the next version begins.
        """
        v = candidate.valid_at
        text = normalize_fact_text(candidate.text)
        by_id = {f.id: f for f in versions}
        if candidate.id in by_id:  # a re-run of the same assertion
            self._merge(by_id[candidate.id], candidate, versions)
            return
        holders = [f for f in versions if f.valid_at <= v and (f.invalid_at is None or v < f.invalid_at)]
        same = [f for f in holders if normalize_fact_text(f.text) == text]
        if same:  # a duplicate of a version true at that time
            self._merge(same[-1], candidate, versions)
            return
        later = [f for f in versions if f.valid_at > v]
        successor = min(later, key=version_order) if later else None
        if successor is not None and normalize_fact_text(successor.text) == text:
            # Said before we knew: the value we hold was already true from v.
            self._merge(successor, candidate, versions, start=v)
        elif not single_valued:
            self._add(candidate, versions)
            return
        else:
            if successor is not None:  # an out-of-order older value ends where the next begins
                candidate = candidate.model_copy(update={"invalid_at": successor.valid_at, "expired_at": self.now})
            self._add(candidate, versions)
        if single_valued:
            for holder in holders:  # the value true at v ends at v
                self._invalidate(holder, v, versions)

    def written(self) -> list[Fact]:
        """Every version to write, in its final state."""
        latest: dict[str, Fact] = {}
        for table in (self.added, self.merged, self.invalidated):
            latest.update(table)
        return list(latest.values())

    def with_new_sources(self) -> list[Fact]:
        """Versions added or given new provenance (their source episodes need key updates)."""
        return list(self._grew.values())

    # -- internals --------------------------------------------------------

    def _track(self, versions: list[Fact], fact: Fact) -> None:
        for i, old in enumerate(versions):
            if old.id == fact.id:
                versions[i] = fact
                break
        else:
            versions.append(fact)
        for table in (self.added, self.merged, self.invalidated, self._grew):
            if fact.id in table:
                table[fact.id] = fact

    def _add(self, fact: Fact, versions: list[Fact]) -> None:
        self.added[fact.id] = fact
        self._grew[fact.id] = fact
        self._track(versions, fact)

    def _merge(self, existing: Fact, candidate: Fact, versions: list[Fact], start: datetime | None = None) -> None:
        sources = tuple(dict.fromkeys((*existing.sources, *candidate.sources)))
        changes: dict[str, object] = {}
        if sources != existing.sources:
            changes["sources"] = sources
        if start is not None and start < existing.valid_at:
            changes["valid_at"] = start
        if not changes:
            return
        merged = existing.model_copy(update=changes)
        self.merged[merged.id] = merged
        self._grew[merged.id] = merged
        self._track(versions, merged)

    def _invalidate(self, existing: Fact, at: datetime, versions: list[Fact]) -> None:
        if existing.invalid_at is not None and existing.invalid_at <= at:
            return  # already ended by then
        ended = existing.model_copy(update={"invalid_at": at, "expired_at": self.now})
        self.invalidated[ended.id] = ended
        self._track(versions, ended)
