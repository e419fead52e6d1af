"""Live writes: one turn at a time, the same items as bulk ingest, at a cost independent of history.

:func:`write_turn` is what :meth:`EpisodicTimeline.add_turn` runs. Per write it
reads one session record (O(1), by id), embeds the turn once, claims the next
position, and writes the units the new turn changes (:func:`~ltm_agent.units.advance_units`),
indexed under sums of stored turn vectors. It never lists the session or the namespace.

**Positions.** Each session has a record (kind ``"session"``, id from
:func:`session_record_id`) holding its index in the timeline and its next
position, written in the same batch as each turn. Turn ids never depend on a
count (a caller's id, or a random one), so two writers can never overwrite each
other's turn. Two writers of one session in one process take turns on an
in-process lock. Writers in different processes (one Chroma server) claim a
position optimistically: write the turn at position *p*, marked pending, then
read which turns hold *p*; only a writer that sees its own turn alone keeps
the position, so two writers can both keep *p* only if each missed the other's
turn, which the order of their write-then-read sequences rules out on a store
where a read sees every acknowledged write (Chroma, the reference store). A
writer that sees others withdraws its turn and tries again after a random
pause (the oldest claim re-reads for a while first, so no writer starves). The winner
writes its units and clears the pending mark in one batch; a writer of the
next turn builds its units only from settled neighbours (it waits for pending
ones, up to two seconds), so interleaved writers store the context keys bulk
ingest would.

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

__all__ = ["SESSION_KIND", "session_indexes", "session_record", "session_record_id", "write_turn"]

SESSION_KIND = "session"
"""``kind`` metadata of session records (never a retrievable unit)."""
_CLAIM_ATTEMPTS = 200
_SETTLE_SECONDS = 2.0
_PENDING = "claim_pending"
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
        sessions = _TAILS.setdefault(store, OrderedDict())
        tail = sessions.get(key)
        if tail is not None:
            sessions.move_to_end(key)
        return tail


def _session_lock(store: MemoryStore, key: tuple[Namespace, str]) -> threading.Lock:
    """The lock of one session in this process (created with an empty placeholder tail)."""
    with _TAILS_LOCK:
        sessions = _TAILS.setdefault(store, OrderedDict())
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
    store: MemoryStore, namespace: Namespace, session_id: str, record: StoredItem | None, probe: StoredItem
) -> _Tail:
    """Read a session's record and last settled turns (with their stored vectors) from the store.

    A turn another writer has claimed but not yet settled (or that several
    claim) is waited for, briefly: the units of the next turn are built from
    settled neighbours only.
    """
    if record is None:
        return _Tail(-1, datetime.min, 0)
    meta = record.metadata
    index, date = int(meta["session_index"]), from_timestamp(meta["event_ts"])
    recorded = int(meta["next_position"])
    where = {"kind": str(RecordKind.TURN), "session_id": session_id}
    # The record may lag or lead by a few claims of other writers: look a little behind it.
    window = {**where, "position": {"$gte": max(0, recorded - tail_span() - 16)}}
    deadline = _time.monotonic() + _SETTLE_SECONDS
    while True:
        found = _turns_with_vectors(store, namespace, window, probe)
        if not found and recorded > 0:
            found = _turns_with_vectors(store, namespace, where, probe)
        by_position: dict[int, list[tuple[Episode, np.ndarray | None, bool]]] = {}
        for entry in found:
            by_position.setdefault(entry[0].position, []).append(entry)
        next_position = max(by_position, default=-1) + 1
        recent = [by_position[p] for p in range(next_position - tail_span(), next_position) if p in by_position]
        if all(len(h) == 1 and not h[0][2] for h in recent) or _time.monotonic() > deadline:
            break
        _time.sleep(random.uniform(0.002, 0.01))
    settled = [(h[0][0], h[0][1]) for _, h in sorted(by_position.items()) if len(h) == 1 and not h[0][2]]
    return _Tail(index, date, next_position, settled[-tail_span() :])


def _turns_with_vectors(
    store: MemoryStore, namespace: Namespace, where: dict, probe: StoredItem, limit: int = 64
) -> list[tuple[Episode, np.ndarray | None, bool]]:
    """Turns matching ``where`` with their stored vectors and whether they are pending, by position."""
    if store.embedder is None:
        items = [(i, None) for i in store.list(namespace, filter=where)]
    else:
        while True:
            hits = store.search(
                namespace, probe.index_text, vector=probe.vector, filter=where, limit=limit, with_vectors=True
            )
            if len(hits) < limit:
                break
            limit *= 4
        items = [(h.item, np.asarray(h.item.vector, dtype=np.float32)) for h in hits]
    turns = [(Episode.from_item(i), v, bool(i.metadata.get(_PENDING))) for i, v in items if _whole(i)]
    return sorted(turns, key=lambda entry: entry[0].position)


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
        if existing is not None:
            return Episode.from_item(existing)
        turn = Turn(id=turn_id, role=role, speaker=speaker, text=text)
        probe = StoredItem(namespace, eid, render_turn(turn))
        vector = store.vectors_for([probe])[0] if store.embedder is not None else None
        probe = replace(probe, vector=None if vector is None else tuple(vector.tolist()))
        tail = _cached(store, key)
        recorded = -1 if record is None else int(record.metadata["next_position"])
        if tail is None or tail.next_position != recorded or tail.index < 0:
            # First write here, or the store changed under us (another process, a forget).
            tail = _load_tail(store, namespace, session_id, record, probe)
        if tail.index < 0:  # a new session (or one written before session records): number it
            found, free = session_indexes(store, namespace, [session_id])
            tail.index, tail.date = found.get(session_id, free), when
        episode, tail = _claim(store, namespace, session_id, units, tail, turn, when, now, probe, vector)
        with _TAILS_LOCK:
            sessions = _TAILS.setdefault(store, OrderedDict())
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
        position = tail.next_position
        episode = Episode(
            id=probe.id, namespace=namespace, text=probe.text, created_at=now, sources=(turn.id,),
            unit=RecordKind.TURN, role=turn.role, speaker=turn.speaker, session_id=session_id,
            session_index=tail.index, position=position, event_time=when,
        )
        record = session_record(store, namespace, session_id, tail.index, position + 1, tail.date)
        claimed = episode.to_item()
        claimed = replace(claimed, metadata={**claimed.metadata, _PENDING: started}, vector=probe.vector)
        store.put([claimed, record])
        if _won(store, namespace, session_id, position, episode.id):
            _write_units(store, namespace, units, tail, episode, vector, now)
            return episode, tail
        # Another writer holds this position too: withdraw, wait a random while, look again.
        store.delete(namespace, [episode.id])
        _time.sleep(random.uniform(0.0, min(0.05, 0.002 * (attempt + 1))))
        fresh = store.get(namespace, [record.id])[0]
        reloaded = _load_tail(store, namespace, session_id, fresh, probe)
        tail = replace(reloaded, index=tail.index, date=tail.date, lock=tail.lock)
    raise StoreError(
        f"could not claim a position in session {session_id!r} of {namespace!r} after {_CLAIM_ATTEMPTS} "
        f"attempts: too many writers of one session at once; retry the write"
    )


def _write_units(
    store: MemoryStore,
    namespace: Namespace,
    units: Sequence[RecordKind],
    tail: _Tail,
    episode: Episode,
    vector: np.ndarray | None,
    now: datetime,
) -> None:
    """Write the units ``episode`` changes and move the tail past it."""
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
    ops: list = [PutOp(settled), *(PutOp(item) for item in items)]
    if deletes:
        ops.append(DeleteOp(namespace, tuple(deletes)))
    store.batch(ops)
    tail.turns = [*before, (episode, vector)][-tail_span() :]
    tail.next_position = episode.position + 1
