"""Typed records: what memory holds and what retrieval returns.

Two layers:

* **Store items** (:class:`StoredItem`, :class:`ScoredItem`) are what a
  :class:`~ltm_agent.store.MemoryStore` keeps: an id, a namespace, the text that
  is rendered, an optional index key (the text that is embedded and keyword
  indexed, e.g. a round plus the facts extracted from it) and flat scalar
  metadata. Stores know nothing else.
* **Memory records** (:class:`Episode`, :class:`Fact`, :class:`Note`) are the
  typed view the core works with. Each converts to and from a store item with
  ``to_item()`` / ``from_item()``; structured fields are serialised into flat
  metadata here and nowhere else.

:class:`MemoryItem` is one retrieval result: text, score, time, token count
and the ids of the source turns it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Mapping, Self, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ltm_agent.dates import from_timestamp, require_aware, to_timestamp, utcnow
from ltm_agent.namespaces import Namespace, validate_namespace

__all__ = [
    "Episode",
    "Fact",
    "MemoryItem",
    "Note",
    "RecordKind",
    "Scalar",
    "ScoredItem",
    "StoredItem",
    "Usage",
]

Scalar = str | int | float | bool
"""The only metadata values a store accepts (Chroma's rule)."""


# ---------------------------------------------------------------------------
# Store layer


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One item in a store.

    Attributes:
        namespace: The tenant namespace the item belongs to.
        id: Stable id, unique inside the namespace.
        text: What gets rendered into a prompt.
        metadata: Flat scalar metadata; keys starting with ``_`` are reserved.
        key: The text to embed and keyword-index; ``None`` means ``text``.
        created_at: When the item was first stored (set by the store).
        updated_at: When the item was last written (set by the store).
        vector: A vector in the store embedder's space to index the item under,
            instead of embedding ``index_text`` (e.g. one composed from other
            items' vectors); ``None`` lets the store embed. On write it is used
            for indexing; a dense search with ``with_vectors=True`` returns each
            item with its index vector here (a float32 array).
    """

    namespace: Namespace
    id: str
    text: str
    metadata: Mapping[str, Scalar] = field(default_factory=dict)
    key: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    vector: Sequence[float] | None = field(default=None, repr=False, compare=False)

    @property
    def index_text(self) -> str:
        """The text that is embedded and keyword indexed."""
        return self.key if self.key is not None else self.text


@dataclass(frozen=True, slots=True)
class ScoredItem:
    """A store item with the score of one search (higher is better)."""

    item: StoredItem
    score: float


# ---------------------------------------------------------------------------
# Memory records


class RecordKind(StrEnum):
    """What a memory record is; stored in the ``kind`` metadata field."""

    TURN = "turn"
    """One raw dialogue turn (always stored, always addressable)."""
    ROUND = "round"
    """A user turn with the reply that follows it."""
    WINDOW = "window"
    """A turn with its neighbouring turns (all rendered)."""
    CONTEXT = "context"
    """A raw turn indexed under its neighbouring turns (BM25 over their text, dense over the sum
    of their vectors); renders as the turn."""
    FACT = "fact"
    SUMMARY = "summary"
    NOTE = "note"
    INSIGHT = "insight"
    PROCEDURE = "procedure"


class Usage(BaseModel):
    """Usage statistics that ranking, consolidation and forgetting read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    access_count: int = 0
    last_accessed_at: datetime | None = None
    utility: float = 0.0

    def to_metadata(self) -> dict[str, Scalar]:
        meta: dict[str, Scalar] = {
            "access_count": self.access_count,
            "utility": float(self.utility),
        }
        if self.last_accessed_at is not None:
            meta["last_accessed_ts"] = to_timestamp(self.last_accessed_at)
        return meta

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> Usage:
        last = meta.get("last_accessed_ts")
        return cls(
            access_count=int(meta.get("access_count", 0)),
            last_accessed_at=from_timestamp(last) if last is not None else None,
            utility=float(meta.get("utility", 0.0)),
        )


class _Record(BaseModel):
    """Fields every memory record has; subclasses add their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=256)
    namespace: Namespace
    text: str
    created_at: datetime = Field(default_factory=utcnow)
    """System time: when memory learned this."""
    sources: tuple[str, ...] = ()
    """Ids of the source turns this record came from (provenance)."""
    usage: Usage = Usage()

    @field_validator("namespace", mode="before")
    @classmethod
    def _check_namespace(cls, value: object) -> Namespace:
        return validate_namespace(value)

    def _base_metadata(self) -> dict[str, Scalar]:
        meta: dict[str, Scalar] = {
            "kind": str(self.kind),  # type: ignore[attr-defined]
            "created_ts": to_timestamp(self.created_at),
            "sources": json.dumps(list(self.sources)),
        }
        meta.update(self.usage.to_metadata())
        return meta

    @staticmethod
    def _base_fields(item: StoredItem) -> dict[str, Any]:
        meta = item.metadata
        return {
            "id": item.id,
            "namespace": item.namespace,
            "text": item.text,
            "created_at": from_timestamp(meta["created_ts"]),
            "sources": tuple(json.loads(str(meta.get("sources", "[]")))),
            "usage": Usage.from_metadata(meta),
        }


class Episode(_Record):
    """A piece of dialogue with its place in time: a turn, a round or a window.

    Raw turns (``unit=RecordKind.TURN``) are always stored so every turn stays
    addressable; rounds and windows are retrievable units built from them and
    list the turns they cover in ``sources``.
    """

    unit: RecordKind = RecordKind.TURN
    role: str = "user"
    speaker: str = ""
    session_id: str
    session_index: int = Field(ge=0)
    """0-based order of the session in the conversation (by session date)."""
    position: int = Field(ge=0)
    """0-based position of the (first) turn inside its session."""
    event_time: datetime
    """When it was said."""
    key: str | None = None
    """Index text when it differs from ``text`` (fact-augmented keys)."""

    @property
    def kind(self) -> RecordKind:
        return self.unit

    @field_validator("event_time", "created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return require_aware(value, "time")

    def to_item(self) -> StoredItem:
        meta = self._base_metadata()
        meta.update(
            kind=str(self.unit),
            role=self.role,
            speaker=self.speaker,
            session_id=self.session_id,
            session_index=self.session_index,
            position=self.position,
            event_ts=to_timestamp(self.event_time),
        )
        return StoredItem(self.namespace, self.id, self.text, meta, key=self.key)

    @classmethod
    def from_item(cls, item: StoredItem) -> Self:
        meta = item.metadata
        return cls(
            **cls._base_fields(item),
            unit=RecordKind(str(meta["kind"])),
            role=str(meta.get("role", "")),
            speaker=str(meta.get("speaker", "")),
            session_id=str(meta["session_id"]),
            session_index=int(meta["session_index"]),
            position=int(meta["position"]),
            event_time=from_timestamp(meta["event_ts"]),
            key=item.key,
        )


class Fact(_Record):
    """A bi-temporal fact (Zep/Graphiti).

    World time: ``valid_at`` (became true) and ``invalid_at`` (stopped being
    true). System time: ``created_at`` (memory learned it) and ``expired_at``
    (memory learned it was superseded). Invalidated facts are kept, never
    deleted, so "as of" questions stay answerable.
    """

    subject: str = ""
    valid_at: datetime
    invalid_at: datetime | None = None
    expired_at: datetime | None = None

    @field_validator("valid_at", "invalid_at", "expired_at", "created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else require_aware(value, "time")

    @property
    def kind(self) -> RecordKind:
        return RecordKind.FACT

    def is_valid_at(self, when: datetime) -> bool:
        """True when the fact held in the world at ``when``."""
        require_aware(when, "when")
        return self.valid_at <= when and (self.invalid_at is None or when < self.invalid_at)

    @property
    def is_current(self) -> bool:
        """True when memory has not learned that the fact was superseded."""
        return self.invalid_at is None and self.expired_at is None

    def to_item(self) -> StoredItem:
        meta = self._base_metadata()
        meta.update(subject=self.subject, valid_ts=to_timestamp(self.valid_at), current=self.is_current)
        if self.invalid_at is not None:
            meta["invalid_ts"] = to_timestamp(self.invalid_at)
        if self.expired_at is not None:
            meta["expired_ts"] = to_timestamp(self.expired_at)
        return StoredItem(self.namespace, self.id, self.text, meta)

    @classmethod
    def from_item(cls, item: StoredItem) -> Self:
        meta = item.metadata
        invalid, expired = meta.get("invalid_ts"), meta.get("expired_ts")
        return cls(
            **cls._base_fields(item),
            subject=str(meta.get("subject", "")),
            valid_at=from_timestamp(meta["valid_ts"]),
            invalid_at=from_timestamp(invalid) if invalid is not None else None,
            expired_at=from_timestamp(expired) if expired is not None else None,
        )


class Note(_Record):
    """Free text the agent or a mechanism wrote: a summary, note, insight or procedure."""

    note_kind: RecordKind = RecordKind.NOTE
    tags: tuple[str, ...] = ()

    @property
    def kind(self) -> RecordKind:
        return self.note_kind

    def to_item(self) -> StoredItem:
        meta = self._base_metadata()
        meta.update(kind=str(self.note_kind), tags=json.dumps(list(self.tags)))
        return StoredItem(self.namespace, self.id, self.text, meta)

    @classmethod
    def from_item(cls, item: StoredItem) -> Self:
        meta = item.metadata
        return cls(
            **cls._base_fields(item),
            note_kind=RecordKind(str(meta["kind"])),
            tags=tuple(json.loads(str(meta.get("tags", "[]")))),
        )


# ---------------------------------------------------------------------------
# Retrieval results


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One retrieved memory, ready to render into a prompt.

    Attributes:
        id: The store id of the item.
        kind: What it is (turn, round, fact, ...).
        text: The text as rendered into the prompt.
        score: Fused relevance score (higher is better; only comparable within one call).
        time: Event time of the memory, when it has one.
        tokens: cl100k_base tokens of ``text``.
        sources: Ids of the source turns it came from.
        namespace: The namespace it was read from.
    """

    id: str
    kind: str
    text: str
    score: float
    time: datetime | None
    tokens: int
    sources: tuple[str, ...]
    namespace: Namespace

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "score": self.score,
            "time": self.time.isoformat() if self.time else None,
            "tokens": self.tokens,
            "sources": list(self.sources),
            "namespace": list(self.namespace),
        }
