"""Live writes: one turn at a time, the same items as bulk ingest, at a cost independent of history.

:func:`write_turn` is what :meth:`EpisodicTimeline.add_turn` runs. Per write it
reads one session record (O(1), by id), embeds the turn once, claims the next
position, and writes the units the new turn changes (:func:`~ltm_agent.units.advance_units`),
indexed under sums of stored turn vectors. It never lists the session or the namespace.

**Positions.** Each session has a record (kind ``"session"``, id from
:func:`session_record_id`) holding its index in the timeline and its next
position, written in the same batch as each turn. Turn ids never depend on a
count (a caller's id, or a random one), so two writers can never overwrite each
other's turn. Writers of one session in one process (one
:attr:`~ltm_agent.store.MemoryStore.write_domain`) take turns on an in-process
lock; on a store no other process writes (embedded, in memory) that is all
they need, and a turn is written with its units in one batch.

Writers in different processes (a :attr:`~ltm_agent.store.MemoryStore.shared`
store behind a Chroma server) claim a position optimistically: write the turn
at position *p*, marked pending, then read which turns hold *p*; only a writer
that sees its own turn alone keeps the position, so two writers can both keep
*p* only if each missed the other's turn, which the order of their
write-then-read sequences rules out on a store where a read sees every
acknowledged write. A writer that sees others withdraws its turn and tries
again after a random pause (the oldest claim re-reads for a while first, so no
writer starves). The winner writes its units and clears the pending mark in one
batch. Nobody claims *p + 1* before *p* is settled, and the winner of *p + 1*
reads the settled turns before it once more, so it builds its units (turn *p*'s
completed context key among them) from the turns the store holds there and
interleaved writers store the context keys bulk ingest would.
A claim left pending longer than :data:`STALE_CLAIM_SECONDS` belongs to a
writer that died before its write was acknowledged: the next writer withdraws it.

**Session numbering.** A new session takes the next index after the highest
recorded one (listing session records only, once per new session). Two
processes opening new sessions of one namespace at the same instant may give
them the same index; order questions still separate them by date.

Core functions: :func:`write_turn`, :func:`session_record`, :func:`session_record_id`,
:func:`session_indexes`.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time as _time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Sequence

import numpy as np

from ltm_agent.conversations import Turn
from ltm_agent.dates import from_timestamp, to_timestamp
from ltm_agent.errors import StoreError
from ltm_agent.namespaces import Namespace
from ltm_agent.records import Episode, RecordKind, StoredItem
from ltm_agent.store import DeleteOp, MemoryStore, PutOp
from ltm_agent.units import (
    PlacedTurn,
    advance_units,
    compose_vectors,
    episode_id,
    fit_units,
    render_turn,
    tail_span,
)

__all__ = ["SESSION_KIND", "STALE_CLAIM_SECONDS", "session_indexes", "session_record", "session_record_id", "write_turn"]

SESSION_KIND = "session"
"""``kind`` metadata of session records (never a retrievable unit)."""
_CLAIM_ATTEMPTS = 200
_SETTLE_SECONDS = 2.0
STALE_CLAIM_SECONDS = 15.0
"""A position claim pending this long belongs to a writer that died: the next writer withdraws it."""
_WAIT_SECONDS = 60.0
_PENDING = "claim_pending"  # when the writer first tried (its priority), on a turn not yet settled
_CLAIMED_AT = "claim_at"  # when this claim was written (its liveness)
_CACHED_SESSIONS = 1024


def session_record_id(namespace: Namespace, session_id: str) -> str:
    """Id of a session's record in its namespace."""
    return "session-" + hashlib.sha256("\x1f".join((*namespace, "session", session_id)).encode()).hexdigest()[:24]


def session_record(
    store: MemoryStore, namespace: Namespace, session_id: str, index: int, next_position: int, date: datetime
) -> StoredItem:
    """The record of one session: its index in the timeline, its next position and its date."""
    meta = {
        "kind": SESSION_KIND,
        "session_id": session_id,
        "session_index": index,
        "next_position": next_position,
        "event_ts": to_timestamp(date),
    }
    vector = None
    if store.embedder is not None:  # a fixed unit vector: a record is never embedded, never retrieved
        vector = (1.0,) + (0.0,) * (store.embedder.dimension - 1)
    return StoredItem(namespace, session_record_id(namespace, session_id), f"session {session_id}", meta, vector=vector)


def session_indexes(store: MemoryStore, namespace: Namespace, session_ids: Sequence[str]) -> tuple[dict[str, int], int]:
    """Recorded indexes of ``session_ids`` (when they exist) and the next free index.

    Stores written before session records existed are read from their turns.
    """
    records = store.list(namespace, filter={"kind": SESSION_KIND})
    known = {str(r.metadata["session_id"]): int(r.metadata["session_index"]) for r in records}
    if records:
        return {s: known[s] for s in session_ids if s in known}, max(known.values()) + 1
    found: dict[str, int] = {}
    top = -1
    for item in store.list(namespace, filter={"kind": str(RecordKind.TURN)}):
        sid, index = str(item.metadata["session_id"]), int(item.metadata["session_index"])
        top = max(top, index)
        if sid in session_ids:
            found[sid] = index
    return found, top + 1


@dataclass
class _Tail:
    """What this process knows of one session: enough to write its next turn without reading it."""

    index: int
    date: datetime
    next_position: int
    turns: list[tuple[Episode, np.ndarray | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_TAILS: weakref.WeakKeyDictionary[MemoryStore, OrderedDict[tuple[Namespace, str], _Tail]] = weakref.WeakKeyDictionary()
_TAILS_LOCK = threading.Lock()


def _cached(store: MemoryStore, key: tuple[Namespace, str]) -> _Tail | None:
    with _TAILS_LOCK:
        sessions = _TAILS.setdefault(store.write_domain, OrderedDict())
        tail = sessions.get(key)
        if tail is not None:
            sessions.move_to_end(key)
        return tail


def _session_lock(store: MemoryStore, key: tuple[Namespace, str]) -> threading.Lock:
    """The lock of one session in this process (created with an empty placeholder tail)."""
    with _TAILS_LOCK:
        sessions = _TAILS.setdefault(store.write_domain, OrderedDict())
        tail = sessions.get(key)
        if tail is None:
            tail = sessions[key] = _Tail(-1, datetime.min, -1)
            while len(sessions) > _CACHED_SESSIONS:
                sessions.popitem(last=False)
        return tail.lock


def _raw_text(episode: Episode) -> str:
    return episode.text.removeprefix(f"{episode.speaker or episode.role}: ")


def _placed(episode: Episode) -> PlacedTurn:
    turn = Turn(id=episode.sources[0], role=episode.role, speaker=episode.speaker, text=_raw_text(episode))
    return PlacedTurn(episode.position, turn, episode.event_time)


def _load_tail(
    store: MemoryStore, namespace: Namespace, session_id: str, record: StoredItem | None
) -> _Tail:
    """Read a session's record and last settled turns (with their stored vectors) from the store.

    While the last position is only claimed (pending), wait for its claimant
    to settle it: nobody claims the next position before, so the units of the
    next turn are built from settled neighbours only. A claim pending longer
    than :data:`STALE_CLAIM_SECONDS` (or any, on an unshared store) is a dead
    writer's and is withdrawn.
    """
    if record is None:
        return _Tail(-1, datetime.min, 0)
    meta = record.metadata
    index, date = int(meta["session_index"]), from_timestamp(meta["event_ts"])
    recorded = int(meta["next_position"])
    where = {"kind": str(RecordKind.TURN), "session_id": session_id}
    # The record may lag or lead by a few claims of other writers: look a little behind it.
    window = {**where, "position": {"$gte": max(0, recorded - tail_span() - 16)}}
    deadline = _time.monotonic() + _WAIT_SECONDS
    while True:
        found = _turns_with_vectors(store, namespace, window)
        if not found and recorded > 0:
            found = _turns_with_vectors(store, namespace, where)
        by_position: dict[int, list[tuple[Episode, np.ndarray | None, float | None]]] = {}
        for entry in found:
            by_position.setdefault(entry[0].position, []).append(entry)
        top = max(by_position, default=-1)
        holders = by_position.get(top, [])
        if top < 0 or any(pending is None for _, _, pending in holders):
            break  # the last position is settled (a loser's claim there is being withdrawn)
        dead = [e.id for e, _, at in holders if not store.shared or _time.time() - at > STALE_CLAIM_SECONDS]
        if dead:
            store.delete(namespace, dead)
            continue
        if _time.monotonic() > deadline:
            raise StoreError(
                f"position {top} of session {session_id!r} in {namespace!r} stayed claimed but unwritten for "
                f"{_WAIT_SECONDS:.0f} s (another writer is stuck); retry the write"
            )
        _time.sleep(random.uniform(0.002, 0.02))
    settled = []
    for _, holders in sorted(by_position.items()):
        done = [(e, v) for e, v, pending in holders if pending is None]
        if len(done) == 1:  # claims that lost there are being withdrawn
            settled.append(done[0])
    return _Tail(index, date, top + 1, settled[-tail_span() :])


def _turns_with_vectors(
    store: MemoryStore, namespace: Namespace, where: dict
) -> list[tuple[Episode, np.ndarray | None, float | None]]:
    """Turns matching ``where`` with their stored vectors and, when pending, when they were claimed; by position.

    An exact listing (not a search, which a store may answer approximately under a filter).
    """
    with_vectors = store.embedder is not None
    items = store.list(namespace, filter=where, with_vectors=with_vectors)
    turns = [
        (Episode.from_item(i), np.asarray(i.vector, dtype=np.float32) if with_vectors else None, _claimed_at(i))
        for i in items
        if _whole(i)
    ]
    return sorted(turns, key=lambda entry: entry[0].position)


def _pending(item: StoredItem) -> float | None:
    """When the writer of a pending turn first tried (``None`` for a settled turn)."""
    value = item.metadata.get(_PENDING)
    return None if value is None else float(value)


def _claimed_at(item: StoredItem) -> float | None:
    """When a pending turn's claim was written (``None`` for a settled turn)."""
    if item.metadata.get(_PENDING) is None:
        return None
    return float(item.metadata.get(_CLAIMED_AT, item.metadata[_PENDING]))


def _whole(item: StoredItem) -> bool:
    # A turn another writer is withdrawing can be read half-deleted (metadata gone): it does not count.
    return all(k in item.metadata for k in ("created_ts", "session_index", "position", "event_ts"))


def _holders(store: MemoryStore, namespace: Namespace, session_id: str, position: int) -> list[tuple[float, str]]:
    """Who holds a position: (claim start time, id), oldest claim first; a settled turn sorts first."""
    where = {"kind": str(RecordKind.TURN), "session_id": session_id, "position": position}
    return sorted((float(item.metadata.get(_PENDING, -1.0)), item.id) for item in store.list(namespace, filter=where))


def _won(store: MemoryStore, namespace: Namespace, session_id: str, position: int, own: str) -> bool:
    """Whether ``own`` alone holds ``position``; the oldest of several claimants waits a little first.

    Only a writer that sees its own turn alone keeps a position, so two writers
    never both keep one. When several collide, the younger claims withdraw at
    once and the oldest re-reads (up to four seconds, in case a claimant died
    before withdrawing) until it is alone, so a writer that keeps losing becomes
    the oldest and wins (no starvation).
    """
    deadline, wait = _time.monotonic() + _SETTLE_SECONDS * 2, 0.0
    while True:
        _time.sleep(wait)
        holders = _holders(store, namespace, session_id, position)
        if [i for _, i in holders] == [own]:
            return True
        # A settled turn sorts first: then someone won, and everyone else withdraws at once.
        if not holders or holders[0][1] != own or _time.monotonic() > deadline:
            return False
        wait = min(0.2, max(0.002, wait * 2))  # younger claims withdraw as soon as they read ours


def write_turn(
    store: MemoryStore,
    namespace: Namespace,
    units: Sequence[RecordKind],
    *,
    text: str,
    role: str,
    speaker: str,
    session_id: str,
    turn_id: str,
    when: datetime,
    now: datetime,
) -> Episode:
    """Write one turn at the end of its session and the units it changes (see the module docs).

    A turn id already stored in this namespace is not written again: its episode comes back.
    """
    key = (namespace, session_id)
    eid = episode_id(namespace, RecordKind.TURN, [turn_id])
    with _session_lock(store, key):
        record, existing = store.get(namespace, [session_record_id(namespace, session_id), eid])
        if existing is not None and _pending(existing) is None:
            return Episode.from_item(existing)  # a pending one is a dead claim of this turn: write it again
        turn = Turn(id=turn_id, role=role, speaker=speaker, text=text)
        probe = StoredItem(namespace, eid, render_turn(turn))
        vector = store.vectors_for([probe])[0] if store.embedder is not None else None
        probe = replace(probe, vector=None if vector is None else tuple(vector.tolist()))
        tail = _cached(store, key)
        recorded = -1 if record is None else int(record.metadata["next_position"])
        if tail is None or tail.next_position != recorded or tail.index < 0:
            # First write here, or the store changed under us (another process, a forget).
            tail = _load_tail(store, namespace, session_id, record)
        if tail.index < 0:  # a new session (or one written before session records): number it
            found, free = session_indexes(store, namespace, [session_id])
            tail.index, tail.date = found.get(session_id, free), when
        if store.shared:
            episode, tail = _claim(store, namespace, session_id, units, tail, turn, when, now, probe, vector)
        else:  # every writer of this store is in this process and holds this lock: no claim needed
            episode = _episode(namespace, session_id, tail, turn, probe, when, now)
            record = session_record(store, namespace, session_id, tail.index, episode.position + 1, tail.date)
            _write_units(store, namespace, units, tail, episode, vector, now, extra=[PutOp(record)])
        with _TAILS_LOCK:
            sessions = _TAILS.setdefault(store.write_domain, OrderedDict())
            if key in sessions:
                tail.lock = sessions[key].lock  # the lock this write holds stays the session's lock
            sessions[key] = tail
        return episode


def _claim(
    store: MemoryStore,
    namespace: Namespace,
    session_id: str,
    units: Sequence[RecordKind],
    tail: _Tail,
    turn: Turn,
    when: datetime,
    now: datetime,
    probe: StoredItem,
    vector: np.ndarray | None,
) -> tuple[Episode, _Tail]:
    """Claim the next position for the turn (see the module docs) and write its units."""
    started = _time.time()  # the claim's age decides who waits when claims collide
    for attempt in range(_CLAIM_ATTEMPTS):
        episode = _episode(namespace, session_id, tail, turn, probe, when, now)
        position = episode.position
        record = session_record(store, namespace, session_id, tail.index, position + 1, tail.date)
        claimed = episode.to_item()
        marks = {_PENDING: started, _CLAIMED_AT: _time.time()}
        claimed = replace(claimed, metadata={**claimed.metadata, **marks}, vector=probe.vector)
        store.put([claimed, record])
        if _won(store, namespace, session_id, position, episode.id):
            # Build the units from the turns the store holds before ours, not from what this
            # writer saw before it won: those are settled now, and one read makes sure of it.
            tail = replace(tail, turns=_settled_before(store, namespace, session_id, position, tail.turns))
            _write_units(store, namespace, units, tail, episode, vector, now)
            return episode, tail
        # Another writer holds this position too: withdraw, wait a random while, look again.
        store.delete(namespace, [episode.id])
        _time.sleep(random.uniform(0.0, min(0.05, 0.002 * (attempt + 1))))
        fresh = store.get(namespace, [record.id])[0]
        reloaded = _load_tail(store, namespace, session_id, fresh)
        tail = replace(reloaded, index=tail.index, date=tail.date, lock=tail.lock)
    raise StoreError(
        f"could not claim a position in session {session_id!r} of {namespace!r} after {_CLAIM_ATTEMPTS} "
        f"attempts: too many writers of one session at once; retry the write"
    )


def _settled_before(
    store: MemoryStore,
    namespace: Namespace,
    session_id: str,
    position: int,
    seen: list[tuple[Episode, np.ndarray | None]],
) -> list[tuple[Episode, np.ndarray | None]]:
    """The settled turns at the :func:`tail_span` positions before ``position`` (waiting briefly for any unsettled).

    Nobody claims a position before the one below is settled, so this normally
    reads them at once; if one stays unsettled past the wait, the turns seen
    before the claim are kept (the units are then built as well as they can be).
    """
    lo = max(0, position - tail_span())
    if lo == position:
        return []
    where = {"kind": str(RecordKind.TURN), "session_id": session_id, "position": {"$gte": lo, "$lt": position}}
    deadline = _time.monotonic() + _SETTLE_SECONDS
    while True:
        done: dict[int, list[tuple[Episode, np.ndarray | None]]] = {}
        for e, v, at in _turns_with_vectors(store, namespace, where):
            if at is None:
                done.setdefault(e.position, []).append((e, v))
        if all(len(done.get(p, ())) == 1 for p in range(lo, position)):
            return [done[p][0] for p in range(lo, position)]
        if _time.monotonic() > deadline:
            return [t for t in seen if t[0].position < position]
        _time.sleep(random.uniform(0.005, 0.02))


def _episode(
    namespace: Namespace, session_id: str, tail: _Tail, turn: Turn, probe: StoredItem, when: datetime, now: datetime
) -> Episode:
    """The turn's episode at the tail's next position."""
    return Episode(
        id=probe.id, namespace=namespace, text=probe.text, created_at=now, sources=(turn.id,),
        unit=RecordKind.TURN, role=turn.role, speaker=turn.speaker, session_id=session_id,
        session_index=tail.index, position=tail.next_position, event_time=when,
    )


def _write_units(
    store: MemoryStore,
    namespace: Namespace,
    units: Sequence[RecordKind],
    tail: _Tail,
    episode: Episode,
    vector: np.ndarray | None,
    now: datetime,
    extra: Sequence[PutOp] = (),
) -> None:
    """Write the units ``episode`` changes (with ``extra`` ops, in one batch) and move the tail past it."""
    before = [(e, v) for e, v in tail.turns if e.position < episode.position][-tail_span() :]
    puts, deletes = advance_units(
        namespace, episode.session_id, episode.session_index, [_placed(e) for e, _ in before], _placed(episode),
        units, ingested_at=now,
    )
    puts = fit_units(puts, store.limits.max_text_chars)
    items = [p.to_item() for p in puts]
    if puts and store.embedder is not None:
        turns = [*before, (episode, vector)]
        turn_items = [replace(e.to_item(), vector=None if v is None else tuple(v.tolist())) for e, v in turns]
        composed = compose_vectors(store, [*(e for e, _ in turns), *puts], [*turn_items, *items])
        items = composed[len(turns) :]
    # The turn is settled in the same batch as its units: a writer of the next turn
    # waits for it, so its units are written after these (see _load_tail).
    settled = replace(episode.to_item(), vector=None if vector is None else tuple(vector.tolist()))
    ops: list = [PutOp(settled), *(PutOp(item) for item in items), *extra]
    if deletes:
        ops.append(DeleteOp(namespace, tuple(deletes)))
    store.batch(ops)
    tail.turns = [*before, (episode, vector)][-tail_span() :]
    tail.next_position = episode.position + 1
