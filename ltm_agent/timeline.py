"""The episodic timeline: every interaction as time-stamped episodes.

:class:`EpisodicTimeline` writes conversations into a store as episodes (raw
turns, always addressable, plus the configured retrievable units) and answers
order and time questions from stored positions and times, never from a model's
guess (SORT): ``between``, ``before``/``after``, ``nth_session``, ``order``,
and "as of" views of bi-temporal facts.

Core types: :class:`EpisodicTimeline`, :class:`SessionInfo`, :class:`IngestReport`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable, Sequence

import numpy as np

from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.dates import require_aware, to_timestamp, utcnow
from ltm_agent.errors import InvalidInputError, NotFoundError, describe
from ltm_agent.filters import Filter
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import Episode, Fact, RecordKind, StoredItem
from ltm_agent.store import MemoryStore, validate_text
from ltm_agent.text import clip

__all__ = ["EpisodicTimeline", "IngestReport", "SessionInfo", "build_units", "compose_vectors", "episode_id"]

UNIT_KINDS = (RecordKind.TURN, RecordKind.ROUND, RecordKind.WINDOW, RecordKind.CONTEXT)


def episode_id(namespace: Namespace, unit: RecordKind, source_ids: Sequence[str]) -> str:
    """Stable id of an episode: the same turns give the same id (idempotent re-ingest)."""
    digest = hashlib.sha256("\x1f".join((*namespace, str(unit), *source_ids)).encode()).hexdigest()[:24]
    return f"{unit}-{digest}"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One session of the timeline, in time order."""

    session_id: str
    index: int
    date: datetime
    turn_count: int


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one ingest wrote."""

    conversations: int
    sessions: int
    turns: int
    items: int
    skipped_empty: int


CONTEXT_WINDOW = 1
"""Neighbouring turns on each side that a context key covers."""
CONTEXT_CHARS = 400
"""Characters of each neighbouring turn that go into a context key."""
CONTEXT_MAX_TURN_CHARS = 400
"""Only turns up to this long get a context key: short replies need their neighbours,
long turns carry their own context (and would cost a second full-length embedding)."""


def _render_turn(turn: Turn) -> str:
    return f"{turn.speaker}: {turn.text}" if turn.speaker else f"{turn.role}: {turn.text}"


def build_units(
    namespace: Namespace,
    session: Session,
    session_index: int,
    units: Sequence[RecordKind],
    *,
    ingested_at: datetime,
    window: int = CONTEXT_WINDOW,
) -> tuple[list[Episode], int]:
    """Episodes for one session: every raw turn, plus rounds/windows when configured.

    Returns the episodes and the number of empty turns skipped.
    """
    turns = [t for t in session.turns if t.text.strip()]
    skipped = len(session.turns) - len(turns)

    def make(unit: RecordKind, members: Sequence[tuple[int, Turn]], key: str | None = None) -> Episode:
        first_pos, first = members[0]
        return Episode(
            id=episode_id(namespace, unit, [t.id for _, t in members]),
            namespace=namespace,
            text="\n".join(_render_turn(t) for _, t in members),
            key=key,
            created_at=ingested_at,
            sources=tuple(t.id for _, t in members),
            unit=unit,
            role=first.role,
            speaker=first.speaker,
            session_id=session.id,
            session_index=session_index,
            position=first_pos,
            event_time=session.date,
        )

    indexed = list(enumerate(turns))
    episodes = [make(RecordKind.TURN, [pair]) for pair in indexed]
    if RecordKind.ROUND in units:
        # A round: a turn and the reply that follows it (LongMemEval's value unit).
        for i in range(0, len(indexed) - 1):
            if indexed[i][1].role != indexed[i + 1][1].role:
                episodes.append(make(RecordKind.ROUND, indexed[i : i + 2]))
    if RecordKind.CONTEXT in units:
        # The turn as value, its neighbours in the key: a reply like "Yes, last week!"
        # becomes findable by what it answers.
        for i in range(len(indexed)):
            lo, hi = max(0, i - window), min(len(indexed), i + window + 1)
            if hi - lo > 1 and len(indexed[i][1].text) <= CONTEXT_MAX_TURN_CHARS:
                # The turn itself first: embedders read only the start of a long key.
                neighbours = [clip(_render_turn(t), CONTEXT_CHARS, mark="", at_word=True) for j, (_, t) in enumerate(indexed[lo:hi], lo) if j != i]
                key = "\n".join([_render_turn(indexed[i][1]), *neighbours])
                episodes.append(make(RecordKind.CONTEXT, [indexed[i]], key=key))
    if RecordKind.WINDOW in units:
        for i in range(len(indexed)):
            lo, hi = max(0, i - window), min(len(indexed), i + window + 1)
            if hi - lo > 1:
                episodes.append(make(RecordKind.WINDOW, indexed[lo:hi]))
    return episodes, skipped


def compose_vectors(store: MemoryStore, episodes: Sequence[Episode], items: Sequence[StoredItem]) -> list[StoredItem]:
    """Embed raw turns once; index every other unit under the normalised sum of its turns' vectors.

    A context item is searched densely by the sum of its turn's and its
    neighbours' vectors (BM25 reads its key text), a round or window by the sum
    of the turns it covers. So the embedder runs once per turn whatever the
    units: a round does not embed its two turns again. ``episodes`` must hold
    every turn of each session they cover.
    """
    turn_rows = [i for i, e in enumerate(episodes) if e.unit is RecordKind.TURN]
    vectors = store.vectors_for([items[i] for i in turn_rows])
    by_place = {(episodes[i].session_id, episodes[i].position): vectors[row] for row, i in enumerate(turn_rows)}
    out = list(items)
    for row, i in enumerate(turn_rows):
        out[i] = replace(items[i], vector=tuple(vectors[row].tolist()))
    for i, episode in enumerate(episodes):
        if episode.unit is RecordKind.TURN:
            continue
        if episode.unit is RecordKind.CONTEXT:
            span = range(episode.position - CONTEXT_WINDOW, episode.position + CONTEXT_WINDOW + 1)
        else:  # rounds and windows cover len(sources) consecutive turns from their position
            span = range(episode.position, episode.position + len(episode.sources))
        near = [by_place[(episode.session_id, p)] for p in span if (episode.session_id, p) in by_place]
        if not near:
            continue  # the store embeds it
        summed = np.sum(near, axis=0)
        out[i] = replace(items[i], vector=tuple((summed / max(float(np.linalg.norm(summed)), 1e-12)).tolist()))
    return out


class EpisodicTimeline:
    """Episodes of one namespace in time order.

    Args:
        store: Where episodes live.
        namespace: The tenant namespace (every read and write is scoped to it).
        units: Retrievable units written besides raw turns (``TURN`` always). The
            default adds ``CONTEXT``: each turn indexed again under a key holding its
            neighbouring turns (measured in docs/benchmarks.md).
        clock: Ingestion-time source (tests pin it).

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.loaders import load_conversations
        >>> from ltm_agent.data import sample_conversation_path
        >>> timeline = EpisodicTimeline(InMemoryStore(), ("demo",))
        >>> report = timeline.ingest(load_conversations(sample_conversation_path(), "jsonl")[0])
        >>> timeline.nth_session(1)[0].session_index
        0
    """

    def __init__(
        self,
        store: MemoryStore,
        namespace: Namespace,
        *,
        units: Sequence[RecordKind | str] = (RecordKind.TURN, RecordKind.CONTEXT),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.namespace = validate_namespace(namespace)
        self.units = tuple(RecordKind(u) for u in units)
        for unit in self.units:
            if unit not in UNIT_KINDS:
                raise InvalidInputError(f"unit {unit!r} is not one of {[str(u) for u in UNIT_KINDS]}")
        self.clock = clock

    # -- writing ----------------------------------------------------------

    def ingest(
        self,
        conversation: Conversation,
        *,
        on_items: Callable[[int], None] | None = None,
        batch_size: int = 256,
    ) -> IngestReport:
        """Write a conversation's sessions as episodes (idempotent: stable ids).

        Args:
            conversation: Sessions of turns with dates.
            on_items: Called with the number of turns written after each batch
                (progress bars hook in here).
            batch_size: Items per store batch.
        """
        now = self.clock()
        ordered = conversation.ordered_sessions()
        # Validate everything before the first write, so bad input changes nothing.
        for session in ordered:
            for turn in session.turns:
                if turn.text.strip():
                    validate_text(turn.text, limits=self.store.limits, what=f"turn {turn.id}")
        offset = self._session_offset()
        pending: list[Episode] = []
        items = skipped = turns = 0
        for index, session in enumerate(ordered, start=offset):
            episodes, empty = build_units(self.namespace, session, index, self.units, ingested_at=now)
            skipped += empty
            pending.extend(episodes)
            session_turns = len(session.turns) - empty
            turns += session_turns
            if len(pending) >= batch_size:
                items += self._flush(pending, on_items)
                pending = []
        items += self._flush(pending, on_items)
        self.store.warm(self.namespace)  # index now, not on the first search
        return IngestReport(1, len(ordered), turns, items, skipped)

    def _flush(self, episodes: list[Episode], on_items: Callable[[int], None] | None) -> int:
        if not episodes:
            return 0
        items = [e.to_item() for e in episodes]
        if self.store.embedder is not None and any(e.unit is not RecordKind.TURN for e in episodes):
            items = compose_vectors(self.store, episodes, items)
        self.store.put(items)
        if on_items is not None:
            on_items(sum(1 for e in episodes if e.unit is RecordKind.TURN))
        return len(episodes)

    def _session_offset(self) -> int:
        existing = self.sessions()
        return existing[-1].index + 1 if existing else 0

    def add_turn(
        self,
        text: str,
        *,
        role: str = "user",
        speaker: str = "",
        session_id: str,
        time: datetime | None = None,
        turn_id: str | None = None,
    ) -> Episode:
        """Record one live message as a turn episode at the end of its session."""
        validate_text(text, limits=self.store.limits)
        when = require_aware(time, "time") if time is not None else self.clock()
        existing = self.episodes(filter={"session_id": session_id})
        if existing:
            index = existing[0].session_index
        else:  # a new session: only then read the other sessions, to number it after them
            sessions = self.sessions()
            index = sessions[-1].index + 1 if sessions else 0
        position = len(existing)
        tid = turn_id or f"{session_id}#{position}"
        episode = Episode(
            id=episode_id(self.namespace, RecordKind.TURN, [tid]),
            namespace=self.namespace,
            text=f"{speaker or role}: {text}",
            created_at=self.clock(),
            sources=(tid,),
            unit=RecordKind.TURN,
            role=role,
            speaker=speaker,
            session_id=session_id,
            session_index=index,
            position=position,
            event_time=when,
        )
        self.store.put([episode.to_item()])
        return episode

    # -- reading ----------------------------------------------------------

    def episodes(self, *, filter: Filter | None = None, unit: RecordKind = RecordKind.TURN) -> list[Episode]:
        """Episodes of one unit kind in time order (session date, session index, position)."""
        where = {"kind": str(unit), **(dict(filter) if filter else {})}
        found = [Episode.from_item(item) for item in self.store.list(self.namespace, filter=where)]
        return sorted(found, key=lambda e: (e.event_time, e.session_index, e.position))

    def get(self, episode_id: str) -> Episode:
        """One episode by id (raises :class:`NotFoundError` naming the namespace)."""
        item = self.store.get(self.namespace, [episode_id])[0]
        if item is None:
            raise NotFoundError(f"no episode {episode_id!r} in namespace {self.namespace!r}")
        return Episode.from_item(item)

    def find_turn(self, turn_id: str) -> Episode:
        """The raw-turn episode whose source id is ``turn_id`` (e.g. ``"D3:5"``)."""
        return self.get(episode_id(self.namespace, RecordKind.TURN, [turn_id]))

    def sessions(self) -> list[SessionInfo]:
        """Sessions in time order with their turn counts."""
        infos: dict[str, list] = {}
        for episode in self.episodes():
            entry = infos.setdefault(episode.session_id, [episode.session_index, episode.event_time, 0])
            entry[2] += 1
        ordered = sorted(infos.items(), key=lambda kv: (kv[1][1], kv[1][0]))
        return [SessionInfo(sid, idx, date, count) for sid, (idx, date, count) in ordered]

    def between(self, start: datetime, end: datetime) -> list[Episode]:
        """Turns with ``start <= event_time <= end``, in time order."""
        lo, hi = to_timestamp(start), to_timestamp(end)
        if lo > hi:
            raise InvalidInputError(f"between() needs start <= end, got {start.isoformat()} > {end.isoformat()}")
        return self.episodes(filter={"event_ts": {"$gte": lo, "$lte": hi}})

    def _position(self, episode_id: str) -> tuple[list[Episode], int]:
        turns = self.episodes()
        for i, episode in enumerate(turns):
            if episode.id == episode_id:
                return turns, i
        raise NotFoundError(f"no turn episode {episode_id!r} in namespace {self.namespace!r}")

    def before(self, episode_id: str, n: int | None = None) -> list[Episode]:
        """Turns that came before ``episode_id`` (the ``n`` closest when given), in time order."""
        turns, i = self._position(episode_id)
        return turns[max(0, i - n) : i] if n is not None else turns[:i]

    def after(self, episode_id: str, n: int | None = None) -> list[Episode]:
        """Turns that came after ``episode_id`` (the ``n`` closest when given), in time order."""
        turns, i = self._position(episode_id)
        return turns[i + 1 : i + 1 + n] if n is not None else turns[i + 1 :]

    def nth_session(self, n: int) -> list[Episode]:
        """Turns of the n-th session, counting from 1 in time order ("the third conversation")."""
        sessions = self.sessions()
        if not isinstance(n, int) or not 1 <= n <= len(sessions):
            raise NotFoundError(f"session number {describe(n)} does not exist; this timeline has {len(sessions)} sessions")
        return self.episodes(filter={"session_id": sessions[n - 1].session_id})

    def order(self, first_id: str, second_id: str) -> int:
        """-1 when ``first_id`` came before ``second_id``, 1 when after, 0 when the same turn."""
        turns = self.episodes()
        rank = {e.id: i for i, e in enumerate(turns)}
        for eid in (first_id, second_id):
            if eid not in rank:
                raise NotFoundError(f"no turn episode {eid!r} in namespace {self.namespace!r}")
        a, b = rank[first_id], rank[second_id]
        return (a > b) - (a < b)

    def facts(self, *, include_invalidated: bool = False) -> list[Fact]:
        """Facts of this namespace; by default only current ones (never invalidated ones)."""
        where: dict = {"kind": str(RecordKind.FACT)}
        if not include_invalidated:
            where["current"] = True
        found = [Fact.from_item(item) for item in self.store.list(self.namespace, filter=where)]
        return sorted(found, key=lambda f: (f.valid_at, f.id))

    def facts_as_of(self, when: datetime) -> list[Fact]:
        """Facts that were valid in the world at ``when`` (bi-temporal "as of" view)."""
        require_aware(when, "when")
        candidates = self.store.list(
            self.namespace, filter={"kind": str(RecordKind.FACT), "valid_ts": {"$lte": to_timestamp(when)}}
        )
        facts = (Fact.from_item(item) for item in candidates)
        return sorted((f for f in facts if f.is_valid_at(when)), key=lambda f: (f.valid_at, f.id))
