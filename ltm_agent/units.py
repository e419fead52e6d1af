"""Retrievable units built from turns: the one definition bulk ingest and live writes share.

A session's turns become raw turn episodes plus the units a timeline is
configured with (rounds, windows, context keys). :func:`build_units` builds
them for a whole session (bulk ingest); :func:`advance_units` builds what
changes when one more turn arrives (live writes), from the same code, so
both paths store the same items. :func:`compose_vectors` indexes every unit
under the normalised sum of its turns' stored vectors, so the embedder runs
once per turn whatever the units.

Core functions: :func:`build_units`, :func:`advance_units`, :func:`compose_vectors`,
:func:`episode_id`, :func:`render_turn`.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple, Sequence

import numpy as np

from ltm_agent.conversations import Session, Turn
from ltm_agent.namespaces import Namespace
from ltm_agent.records import Episode, RecordKind, StoredItem
from ltm_agent.store import MemoryStore
from ltm_agent.text import clip

__all__ = [
    "CONTEXT_CHARS",
    "CONTEXT_MAX_TURN_CHARS",
    "CONTEXT_WINDOW",
    "PlacedTurn",
    "advance_units",
    "build_units",
    "carries_own_context",
    "compose_vectors",
    "episode_id",
    "fit_units",
    "render_turn",
]

CONTEXT_WINDOW = 1
"""Neighbouring turns on each side that a context key (and a window) covers."""
CONTEXT_CHARS = 400
"""Characters of each neighbouring turn that go into a context key."""
CONTEXT_MAX_TURN_CHARS = 400
"""Only turns up to this long get a context key: short replies need their neighbours,
long turns carry their own context (and would cost a second full-length embedding)."""


def episode_id(namespace: Namespace, unit: RecordKind, source_ids: Sequence[str]) -> str:
    """Stable id of an episode: the same turns give the same id (idempotent re-ingest)."""
    digest = hashlib.sha256("\x1f".join((*namespace, str(unit), *source_ids)).encode()).hexdigest()[:24]
    return f"{unit}-{digest}"


def carries_own_context(item: StoredItem) -> bool:
    """Whether a stored turn is too long to get a context key (see :data:`CONTEXT_MAX_TURN_CHARS`).

    Read from the stored turn (its text is :func:`render_turn`'s ``"<speaker or role>: <text>"``):
    the retriever lets such a turn stand for itself in the context rankings, where it has no key.
    """
    meta = item.metadata
    prefix = f"{meta.get('speaker') or meta.get('role') or ''}: "
    said = item.text[len(prefix) :] if item.text.startswith(prefix) else item.text
    return meta.get("kind") == str(RecordKind.TURN) and len(said) > CONTEXT_MAX_TURN_CHARS


def render_turn(turn: Turn) -> str:
    """How a turn reads in memory: ``"<speaker or role>: <text>"``."""
    return f"{turn.speaker or turn.role}: {turn.text}"


class PlacedTurn(NamedTuple):
    """A turn at its position in its session, with the time it was said."""

    position: int
    turn: Turn
    time: datetime


def _units(
    namespace: Namespace,
    session_id: str,
    session_index: int,
    placed: Sequence[PlacedTurn],
    units: Sequence[RecordKind],
    ingested_at: datetime,
    window: int,
) -> list[Episode]:
    """Turn episodes and configured units over consecutive placed turns (list order = session order)."""

    def make(unit: RecordKind, members: Sequence[PlacedTurn], key: str | None = None) -> Episode:
        first = members[0]
        return Episode(
            id=episode_id(namespace, unit, [m.turn.id for m in members]),
            namespace=namespace,
            text="\n".join(render_turn(m.turn) for m in members),
            key=key,
            created_at=ingested_at,
            sources=tuple(m.turn.id for m in members),
            unit=unit,
            role=first.turn.role,
            speaker=first.turn.speaker,
            session_id=session_id,
            session_index=session_index,
            position=first.position,
            event_time=first.time,
        )

    episodes = [make(RecordKind.TURN, [p]) for p in placed]
    if RecordKind.ROUND in units:
        # A round: a turn and the reply that follows it (LongMemEval's value unit).
        for i in range(0, len(placed) - 1):
            if placed[i].turn.role != placed[i + 1].turn.role:
                episodes.append(make(RecordKind.ROUND, placed[i : i + 2]))
    if RecordKind.CONTEXT in units:
        # The turn as value, its neighbours in the key: a reply like "Yes, last week!"
        # becomes findable by what it answers.
        for i in range(len(placed)):
            lo, hi = max(0, i - window), min(len(placed), i + window + 1)
            if hi - lo > 1 and len(placed[i].turn.text) <= CONTEXT_MAX_TURN_CHARS:
                # The turn itself first: embedders read only the start of a long key.
                neighbours = [
                    clip(render_turn(p.turn), CONTEXT_CHARS, mark="", at_word=True)
                    for j, p in enumerate(placed[lo:hi], lo)
                    if j != i
                ]
                key = "\n".join([render_turn(placed[i].turn), *neighbours])
                episodes.append(make(RecordKind.CONTEXT, [placed[i]], key=key))
    if RecordKind.WINDOW in units:
        for i in range(len(placed)):
            lo, hi = max(0, i - window), min(len(placed), i + window + 1)
            if hi - lo > 1:
                episodes.append(make(RecordKind.WINDOW, placed[lo:hi]))
    return episodes


def build_units(
    namespace: Namespace,
    session: Session,
    session_index: int,
    units: Sequence[RecordKind],
    *,
    ingested_at: datetime,
    window: int = CONTEXT_WINDOW,
) -> tuple[list[Episode], int]:
    """Episodes for one session: every raw turn, plus rounds/windows/context keys when configured.

    Returns the episodes and the number of empty turns skipped.
    """
    turns = [t for t in session.turns if t.text.strip()]
    placed = [PlacedTurn(i, t, session.date) for i, t in enumerate(turns)]
    episodes = _units(namespace, session.id, session_index, placed, units, ingested_at, window)
    return episodes, len(session.turns) - len(turns)


def tail_span(window: int = CONTEXT_WINDOW) -> int:
    """How many earlier turns :func:`advance_units` needs to see (``2 * window + 1``)."""
    return 2 * window + 1


def advance_units(
    namespace: Namespace,
    session_id: str,
    session_index: int,
    tail: Sequence[PlacedTurn],
    new: PlacedTurn,
    units: Sequence[RecordKind],
    *,
    ingested_at: datetime,
    window: int = CONTEXT_WINDOW,
) -> tuple[list[Episode], list[str]]:
    """What one more turn changes: the units to write and the unit ids to delete (turns excluded).

    ``tail`` holds the session's last :func:`tail_span` turns before ``new`` (fewer
    at the start of a session). Units are built over the tail with and without
    the new turn, exactly as :func:`build_units` builds them; a unit whose
    neighbourhood reaches past the tail's start comes out the same both times,
    so only the units the new turn touches differ (turn *i−1*'s context key is
    completed, turn *i*'s partial one written, a window that grew replaces its
    shorter self). After the last turn of a session the stored units equal
    :func:`build_units`' for the whole session.
    """
    before = _units(namespace, session_id, session_index, tail, units, ingested_at, window)
    after = _units(namespace, session_id, session_index, [*tail, new], units, ingested_at, window)
    old = {e.id: e for e in before if e.unit is not RecordKind.TURN}
    fresh = {e.id: e for e in after if e.unit is not RecordKind.TURN}

    def same(a: Episode, b: Episode) -> bool:
        return (a.text, a.key, a.sources, a.position, a.event_time) == (b.text, b.key, b.sources, b.position, b.event_time)

    puts = [e for i, e in fresh.items() if i not in old or not same(e, old[i])]
    deletes = [i for i in old if i not in fresh]
    return puts, deletes


def fit_units(episodes: Sequence[Episode], max_chars: int) -> list[Episode]:
    """Units within a store's text limit: a long index key is cut, a unit whose text is too long is left out.

    Raw turns are checked before anything is written; a unit built from
    several of them can exceed the limit they each respect.
    """
    fitted = []
    for episode in episodes:
        if episode.unit is not RecordKind.TURN and len(episode.text) > max_chars:
            continue
        if episode.key is not None and len(episode.key) > max_chars:
            episode = episode.model_copy(update={"key": clip(episode.key, max_chars, mark="", at_word=False)})
        fitted.append(episode)
    return fitted


def compose_vectors(store: MemoryStore, episodes: Sequence[Episode], items: Sequence[StoredItem]) -> list[StoredItem]:
    """Embed raw turns once; index every other unit under the normalised sum of its turns' vectors.

    A context item is searched densely by the sum of its turn's and its
    neighbours' vectors (BM25 reads its key text), a round or window by the sum
    of the turns it covers. So the embedder runs once per turn whatever the
    units: a round does not embed its two turns again. ``episodes`` must hold
    every turn of each session they cover (a turn item that already carries its
    stored vector is not embedded again).
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
