"""The episodic timeline: every interaction as time-stamped episodes.

:class:`EpisodicTimeline` writes conversations into a store as episodes (raw
turns, always addressable, plus the configured retrievable units) and answers
order and time questions from stored positions and times, never from a model's
guess (SORT): ``between``, ``before``/``after``, ``nth_session``, ``order``,
and "as of" views of bi-temporal facts.

Core types: :class:`EpisodicTimeline`, :class:`SessionInfo`, :class:`IngestReport`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from ltm_agent.conversations import Conversation
from ltm_agent.dates import require_aware, to_timestamp, utcnow
from ltm_agent.errors import InvalidInputError, InvalidTypeError, NotFoundError, describe
from ltm_agent.filters import Filter
from ltm_agent.live import session_indexes, session_record, write_turn
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import Episode, Fact, RecordKind
from ltm_agent.store import MemoryStore, require_unicode, validate_text
from ltm_agent.units import build_units, compose_vectors, episode_id, fit_units

__all__ = ["EpisodicTimeline", "IngestReport", "SessionInfo", "build_units", "compose_vectors", "episode_id"]

UNIT_KINDS = (RecordKind.TURN, RecordKind.ROUND, RecordKind.WINDOW, RecordKind.CONTEXT)


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
        known = [str(u) for u in UNIT_KINDS]
        unknown = [u for u in units if str(u) not in known]  # before RecordKind(), whose error is a bare ValueError
        if unknown:
            raise InvalidInputError(f"units {unknown!r} are not units; choose from {known}, e.g. ['turn', 'context']")
        self.units = tuple(RecordKind(u) for u in units)
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
        # A session stored before keeps its index (re-ingest does not renumber); new ones follow.
        known, free = session_indexes(self.store, self.namespace, [s.id for s in ordered])
        pending: list[Episode] = []
        records = []
        items = skipped = turns = 0
        for session in ordered:
            index = known.get(session.id)
            if index is None:
                index, free = free, free + 1
            episodes, empty = build_units(self.namespace, session, index, self.units, ingested_at=now)
            episodes = fit_units(episodes, self.store.limits.max_text_chars)
            skipped += empty
            pending.extend(episodes)
            session_turns = len(session.turns) - empty
            turns += session_turns
            records.append(session_record(self.store, self.namespace, session.id, index, session_turns, session.date))
            if len(pending) >= batch_size:
                items += self._flush(pending, on_items)
                pending = []
        items += self._flush(pending, on_items)
        self.store.put(records)  # after the turns: a live write that reads a record finds its turns
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
        """Record one live message at the end of its session, with the units it completes.

        Stores the same items :meth:`ingest` stores for the same conversation:
        the turn (embedded once), turn *i−1*'s completed context key and turn
        *i*'s partial one (indexed under sums of stored turn vectors), and any
        other configured unit. The cost does not grow with the session or the
        namespace, and concurrent writers of one session (threads, or processes
        sharing a Chroma server) never share a position or overwrite each other
        (see :mod:`ltm_agent.live`).

        Args:
            text: What was said.
            role: ``"user"``, ``"assistant"``, ...
            speaker: Speaker name, if known (rendered instead of the role).
            session_id: The session the turn belongs to (a label inside this timeline).
            time: When it was said (aware); default: the clock.
            turn_id: The turn's own id (e.g. a message id); a turn id already
                stored is not written again. Default: a random id.

        Example:
            >>> from ltm_agent.embeddings import HashingEmbedder
            >>> from ltm_agent.memory_stores import InMemoryStore
            >>> timeline = EpisodicTimeline(InMemoryStore(HashingEmbedder()), ("demo",))
            >>> [timeline.add_turn(t, session_id="s1").position for t in ("hi", "hello!")]
            [0, 1]
        """
        validate_text(text, limits=self.store.limits)
        when = require_aware(time, "time") if time is not None else self.clock()
        if turn_id is not None and (not isinstance(turn_id, str) or not turn_id):
            raise InvalidInputError(f"turn_id must be a non-empty str, got {describe(turn_id)}")
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError(f"session_id must be a non-empty str, got {describe(session_id)}")
        for name, value in (("role", role), ("speaker", speaker)):
            if not isinstance(value, str):
                raise InvalidTypeError(f"{name} must be a str, got {describe(value)}")
        for name, value in (("session_id", session_id), ("turn_id", turn_id), ("role", role), ("speaker", speaker)):
            if value is not None:
                require_unicode(value, name)
        if not role:
            raise InvalidInputError("role must be a non-empty str such as 'user' or 'assistant', got ''")
        return write_turn(
            self.store, self.namespace, self.units, text=text, role=role, speaker=speaker, session_id=session_id,
            turn_id=turn_id or f"{session_id}#{uuid.uuid4().hex[:16]}", when=when, now=self.clock(),
        )

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
