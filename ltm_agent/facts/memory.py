"""Bi-temporal user facts: extraction, updates, "as of" views, fact-augmented keys.

:class:`FactMemory` keeps the facts of one namespace in a store as
:class:`~ltm_agent.records.Fact` records (Zep/Graphiti-style: ``valid_at`` /
``invalid_at`` in world time, ``created_at`` / ``expired_at`` in system time).

* **Extract**: an extractor (:class:`~ltm_agent.facts.extraction.ModelFactExtractor`,
  or the deterministic :class:`~ltm_agent.facts.patterns.PatternFactExtractor`
  fallback) reads a session; relative dates resolve against the episode's time.
* **Update** (by rule, no model call): a candidate is compared only with facts
  of the *same subject* (a store filter on ``subject``). Same normalised text
  -> duplicate, its provenance is appended. A different text on a
  single-valued subject (``user.location``) -> the newer fact supersedes the
  older: ``invalid_at`` = the new ``valid_at``, ``expired_at`` = now; nothing is
  deleted. Multi-valued subjects (``user.pet``) only merge duplicates.
* **Atomic and idempotent**: the new facts, the invalidations and the key
  updates go to the store in one put batch; fact ids are stable, so
  re-running an update adds nothing.
* **Fact-augmented keys** (LongMemEval K=V+fact): the rounds and turns a fact
  came from are re-put with ``key = text + "\\n" + facts``; id, text and
  ``created_at`` stay.

Core type: :class:`FactMemory`. The update rules live in :mod:`ltm_agent.facts.updates`.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from ltm_agent.conversations import Session
from ltm_agent.dates import require_aware, resolve_date_expression, utcnow
from ltm_agent.errors import InvalidInputError, InvalidTypeError, describe
from ltm_agent.facts.extraction import (
    ExtractedFact,
    Extraction,
    FactExtractor,
    SourceTurn,
    normalize_subject,
)
from ltm_agent.facts.updates import SINGLE_VALUED_SUBJECTS, FactUpdate, UpdatePlan, fact_id, version_order
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import Episode, Fact, RecordKind, StoredItem
from ltm_agent.store import MemoryStore
from ltm_agent.timeline import EpisodicTimeline, episode_id

__all__ = ["FactMemory"]

logger = logging.getLogger(__name__)


class FactMemory:
    """The bi-temporal facts of one namespace.

    Args:
        store: Where facts (and the namespace's episodes) live.
        namespace: The tenant namespace; every read and write is scoped to it.
        extractor: Makes candidate facts from sessions; ``None`` turns extraction
            off (retrieval still works on raw rounds; :meth:`add` still works).
        clock: System-time source for ``created_at`` / ``expired_at`` (tests pin it).
        single_valued: Subject patterns that hold one value at a time.
        augment_units: Episode units whose keys get the facts extracted from them.

    Example:
        >>> from datetime import datetime, UTC
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> facts = FactMemory(InMemoryStore(), ("u1",))
        >>> _ = facts.add("Maya lives in Lisbon.", "user.location", datetime(2024, 3, 2, tzinfo=UTC), ["s1:5"])
        >>> update = facts.add("Maya lives in Berlin.", "user.location", datetime(2024, 3, 16, tzinfo=UTC), ["s3:1"])
        >>> [f.text for f in update.invalidated], [f.text for f in facts.current()]
        (['Maya lives in Lisbon.'], ['Maya lives in Berlin.'])
        >>> [f.text for f in facts.as_of(datetime(2024, 3, 10, tzinfo=UTC))]
        ['Maya lives in Lisbon.']
    """

    def __init__(
        self,
        store: MemoryStore,
        namespace: Namespace,
        *,
        extractor: FactExtractor | None = None,
        clock: Callable[[], datetime] = utcnow,
        single_valued: Sequence[str] = SINGLE_VALUED_SUBJECTS,
        augment_units: Sequence[RecordKind | str] = (RecordKind.ROUND, RecordKind.TURN),
    ) -> None:
        if extractor is not None and not isinstance(extractor, FactExtractor):
            raise InvalidTypeError(
                f"extractor must have a name and an extract(turns) method, got {describe(extractor)}; "
                f"use ModelFactExtractor(model) or PatternFactExtractor()"
            )
        self.store = store
        self.namespace = validate_namespace(namespace)
        self.extractor = extractor
        self.clock = clock
        self.single_valued = tuple(single_valued)
        self.augment_units = tuple(RecordKind(u) for u in augment_units)
        self._timeline = EpisodicTimeline(store, self.namespace, clock=clock)
        self._lock = threading.Lock()  # plan + write of one update at a time (in this process)

    # -- reading ----------------------------------------------------------

    def current(self) -> list[Fact]:
        """Facts memory holds as true now; never an invalidated one. In ``valid_at`` order."""
        return self._timeline.facts()

    def as_of(self, when: datetime) -> list[Fact]:
        """Facts that were valid in the world at ``when`` (bi-temporal "as of" view)."""
        return self._timeline.facts_as_of(when)

    def history(self, subject: str) -> list[Fact]:
        """Every version of one subject, invalidated ones included, in ``valid_at`` order."""
        where = {"kind": str(RecordKind.FACT), "subject": normalize_subject(subject)}
        return sorted((Fact.from_item(i) for i in self.store.list(self.namespace, filter=where)), key=version_order)

    def is_single_valued(self, subject: str) -> bool:
        """True when ``subject`` holds one value at a time (see :data:`SINGLE_VALUED_SUBJECTS`)."""
        return any(fnmatch.fnmatchcase(subject, pattern) for pattern in self.single_valued)

    # -- extraction -------------------------------------------------------

    def extract_session(self, source: Session | Sequence[Episode], session_time: datetime | None = None) -> FactUpdate:
        """Extract candidate facts from a session; writes nothing (see :meth:`apply`).

        Args:
            source: A :class:`~ltm_agent.conversations.Session`, or episodes of this
                namespace (turns; rounds and windows are read through their turns).
            session_time: The episode time relative dates resolve against; defaults
                to each turn's own time (the session date).

        Returns:
            An unapplied :class:`FactUpdate` holding the candidates.

        Raises:
            ModelError: The model extractor failed and was configured with ``on_error="raise"``.
        """
        if self.extractor is None:
            note = "fact extraction is off (no extractor); pass ModelFactExtractor(model) or PatternFactExtractor()"
            return FactUpdate((), method="off", notes=(note,))
        turns = self._source_turns(source, session_time)
        extraction = self.extractor.extract(turns) if turns else Extraction((), self.extractor.name)
        times = {t.id: t.time for t in turns}
        notes = list(extraction.notes)
        candidates = [self._candidate(f, times, notes) for f in extraction.facts]
        return FactUpdate(tuple(candidates), method=extraction.method, notes=tuple(notes))

    def ingest_session(self, source: Session | Sequence[Episode], session_time: datetime | None = None) -> FactUpdate:
        """:meth:`extract_session` then :meth:`apply`: the one-call path."""
        return self.apply(self.extract_session(source, session_time))

    def add(self, fact_text: str, subject: str, valid_at: datetime, sources: Sequence[str] = ()) -> FactUpdate:
        """Add one fact by hand (same update rules as extracted facts); applied at once."""
        if not isinstance(fact_text, str) or not fact_text.strip():
            raise InvalidInputError(f"fact_text must be a non-empty str, got {describe(fact_text)}")
        require_aware(valid_at, "valid_at")
        candidate = self._fact(normalize_subject(subject), " ".join(fact_text.split()), valid_at, tuple(sources))
        return self.apply(FactUpdate((candidate,), method="manual"))

    # -- applying ---------------------------------------------------------

    def apply(self, update: FactUpdate) -> FactUpdate:
        """Resolve the candidates against the stored facts and write the result atomically.

        New facts, invalidations, merged provenance and key updates go to the
        store in **one** put batch: either all land or none. Re-applying the
        same update changes nothing.

        Returns:
            The update with ``added``, ``merged``, ``invalidated``, ``keys_updated``
            filled and ``applied=True``.
        """
        for candidate in update.candidates:
            if candidate.namespace != self.namespace:
                raise InvalidInputError(
                    f"candidate {candidate.id} belongs to namespace {candidate.namespace!r}, "
                    f"not {self.namespace!r}; apply it with the FactMemory of its namespace"
                )
        with self._lock:
            now = self.clock()
            plan = UpdatePlan(now)
            histories: dict[str, list[Fact]] = {}
            for candidate in update.candidates:
                if candidate.subject not in histories:
                    histories[candidate.subject] = self.history(candidate.subject)
                single = self.is_single_valued(candidate.subject)
                plan.place(candidate, histories[candidate.subject], single_valued=single)
            keys = self._key_updates(plan.with_new_sources())
            items = [f.to_item() for f in plan.written()] + keys
            if items:
                self.store.put(items)  # one batch: atomic
        return replace(
            update,
            added=tuple(plan.added.values()),
            merged=tuple(f for i, f in plan.merged.items() if i not in plan.added and i not in plan.invalidated),
            invalidated=tuple(plan.invalidated.values()),
            keys_updated=tuple(item.id for item in keys),
            applied=True,
        )

    # -- fact-augmented keys ---------------------------------------------

    def augment_keys(self, facts: Iterable[Fact] | None = None) -> list[str]:
        """Re-put the episodes the facts came from with ``key = text + "\\n" + facts``.

        Only needed when episodes were ingested after their facts; :meth:`apply`
        does it in the same batch as the facts. Idempotent.

        Args:
            facts: Facts whose source episodes to update; all facts of the namespace
                (invalidated ones too: they are still what was said) when ``None``.

        Returns:
            Ids of the episodes whose key changed.
        """
        chosen = list(facts) if facts is not None else self._timeline.facts(include_invalidated=True)
        items = self._key_updates(chosen)
        if items:
            self.store.put(items)
        return [item.id for item in items]

    def _key_updates(self, facts: Sequence[Fact]) -> list[StoredItem]:
        if not facts or not self.augment_units:
            return []
        lines_by_turn: dict[str, list[str]] = {}
        for fact in facts:
            for source in fact.sources:
                lines_by_turn.setdefault(source, []).append(fact.text)
        turn_episode_ids = [episode_id(self.namespace, RecordKind.TURN, [t]) for t in lines_by_turn]
        turn_items = self.store.get(self.namespace, turn_episode_ids)
        sessions = {str(item.metadata.get("session_id")) for item in turn_items if item is not None}
        units = [str(u) for u in self.augment_units]
        updated: list[StoredItem] = []
        for session in sorted(sessions):
            where = {"session_id": session, "kind": {"$in": units}}
            for item in self.store.list(self.namespace, filter=where):
                sources = json.loads(str(item.metadata.get("sources", "[]")))
                new_lines = [line for s in sources for line in lines_by_turn.get(s, [])]
                key = _augmented_key(item, new_lines)
                if key == item.index_text:
                    continue
                if len(key) > self.store.limits.max_text_chars:
                    logger.warning("facts: key of %s would exceed the store's text limit; left as it was", item.id)
                    continue
                updated.append(replace(item, key=key))
        return updated

    # -- helpers ----------------------------------------------------------

    def _source_turns(self, source: Session | Sequence[Episode], session_time: datetime | None) -> list[SourceTurn]:
        if session_time is not None:
            require_aware(session_time, "session_time")
        if isinstance(source, Session):
            return [
                SourceTurn(t.id, t.role, t.speaker, t.text, session_time or source.date)
                for t in source.turns
                if t.text.strip()
            ]
        if isinstance(source, (str, bytes)) or not isinstance(source, Sequence):
            raise InvalidTypeError(f"extract_session takes a Session or a list of Episodes, got {describe(source)}")
        turns: dict[str, SourceTurn] = {}
        for episode in source:
            if not isinstance(episode, Episode):
                raise InvalidTypeError(f"extract_session takes Episodes, got {describe(episode)}")
            for turn in self._turn_episodes(episode):
                prefix = f"{turn.speaker or turn.role}: "
                text = turn.text[len(prefix) :] if turn.text.startswith(prefix) else turn.text
                when = session_time or turn.event_time
                turns.setdefault(turn.sources[0], SourceTurn(turn.sources[0], turn.role, turn.speaker, text, when))
        return list(turns.values())

    def _turn_episodes(self, episode: Episode) -> list[Episode]:
        if episode.unit is RecordKind.TURN:
            return [episode]
        ids = [episode_id(self.namespace, RecordKind.TURN, [s]) for s in episode.sources]
        found = self.store.get(self.namespace, ids)
        missing = [s for s, item in zip(episode.sources, found, strict=True) if item is None]
        if missing:
            raise InvalidInputError(
                f"{episode.unit} {episode.id} covers turns {missing} that are not stored in {self.namespace!r}; "
                f"ingest the conversation with EpisodicTimeline first or pass a Session"
            )
        return [Episode.from_item(item) for item in found if item is not None]

    def _candidate(self, extracted: ExtractedFact, times: dict[str, datetime], notes: list[str]) -> Fact:
        said = [times[s] for s in extracted.sources if s in times]
        reference = max(said) if said else self.clock()
        valid_at = reference
        if extracted.valid_from_expression:
            resolved = resolve_date_expression(extracted.valid_from_expression, reference)
            if resolved is None:
                notes.append(
                    f"could not read the date {extracted.valid_from_expression!r} of {extracted.text!r}; "
                    f"used the episode time {reference.isoformat()}"
                )
            else:
                valid_at = resolved
        return self._fact(extracted.subject, extracted.text, valid_at, extracted.sources)

    def _fact(self, subject: str, text: str, valid_at: datetime, sources: tuple[str, ...]) -> Fact:
        return Fact(
            id=fact_id(self.namespace, subject, text, valid_at),
            namespace=self.namespace,
            text=text,
            created_at=self.clock(),
            sources=tuple(dict.fromkeys(sources)),
            subject=subject,
            valid_at=valid_at,
        )


def _augmented_key(item: StoredItem, lines: Sequence[str]) -> str:
    """``text + "\\n" + facts``; lines already in the key are not added again (idempotent)."""
    base = item.key if item.key is not None else item.text
    present = set(base.split("\n"))
    new = [line for line in dict.fromkeys(lines) if line and line not in present]
    return base + "\n" + "\n".join(new) if new else base
