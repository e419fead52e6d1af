"""Input conversations: sessions of turns with dates, as parsed from files.

These are the typed form every loader (:mod:`ltm_agent.loaders`) produces and
:meth:`ltm_agent.timeline.EpisodicTimeline.ingest` consumes. They carry the
ids the data set uses (LoCoMo ``dia_id``, LongMemEval ``session#index``) so
provenance survives ingestion.

Core types: :class:`Turn`, :class:`Session`, :class:`Conversation`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ltm_agent.dates import require_aware

__all__ = ["Conversation", "Session", "Turn"]


class Turn(BaseModel):
    """One utterance.

    Attributes:
        id: Stable turn id (e.g. LoCoMo ``D3:5``); unique inside its conversation.
        role: ``"user"`` or ``"assistant"`` (LoCoMo: the first speaker is the user).
        speaker: Speaker name, if known.
        text: What was said (image captions already folded in by loaders).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    role: str = "user"
    speaker: str = ""
    text: str


class Session(BaseModel):
    """One session: a dated list of turns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    date: datetime
    turns: tuple[Turn, ...]

    @field_validator("date")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return require_aware(value, "session date")


class Conversation(BaseModel):
    """A whole multi-session conversation.

    ``sessions`` may arrive in any order; ingestion orders them by date
    (stable for equal dates), which is the order "the n-th session" uses.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    sessions: tuple[Session, ...]

    def ordered_sessions(self) -> list[Session]:
        """Sessions sorted by date, ties kept in file order."""
        return sorted(self.sessions, key=lambda s: s.date)

    @property
    def turn_count(self) -> int:
        return sum(len(s.turns) for s in self.sessions)
