"""What a fact extractor sees and returns, and the subject/text normalisation every fact goes through.

An extractor reads the turns of one session (or of some rounds) and returns
candidate facts: one short, simple sentence each, with a normalised
``subject`` key (``"user.location"``) and, when the user said *when* it became
true, the date expression as said ("last weekend"). Resolving that expression
against the episode's time, deduplication and contradiction handling are the
job of :class:`ltm_agent.facts.FactMemory`, not of the extractor.

Two extractors ship: :class:`~ltm_agent.facts.model_extractor.ModelFactExtractor`
(a chat model) and :class:`~ltm_agent.facts.patterns.PatternFactExtractor` (the
deterministic **pattern fallback**, ``name="pattern-fallback"``, never presented
as LLM extraction). This module imports no model layer.

Core types: :class:`SourceTurn`, :class:`ExtractedFact`, :class:`Extraction`,
:class:`FactExtractor`; helpers :func:`normalize_subject`, :func:`normalize_fact_text`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ltm_agent.errors import InvalidInputError, describe

__all__ = [
    "ExtractedFact",
    "Extraction",
    "FactExtractor",
    "SourceTurn",
    "ascii_fold",
    "normalize_fact_text",
    "normalize_subject",
]


@dataclass(frozen=True, slots=True)
class SourceTurn:
    """One turn as an extractor sees it.

    Attributes:
        id: The source turn id (provenance, e.g. ``"s3:1"``).
        role: ``"user"`` or ``"assistant"``.
        speaker: Speaker name when known (used to name the user in facts).
        text: What was said, without a speaker prefix.
        time: The episode's time; relative dates in this turn resolve against it.
    """

    id: str
    role: str
    speaker: str
    text: str
    time: datetime


@dataclass(frozen=True, slots=True)
class ExtractedFact:
    """A candidate fact, before dates are resolved and the store is consulted.

    Attributes:
        subject: Normalised subject key (see :func:`normalize_subject`).
        text: One simple sentence naming the person ("Maya lives in Berlin.").
        sources: Ids of the turns it came from.
        valid_from_expression: When it became true, as said ("last weekend"), or ``None``.
        extractor: Name of the extractor that produced it (``"llm"``, ``"pattern-fallback"``).
    """

    subject: str
    text: str
    sources: tuple[str, ...]
    valid_from_expression: str | None = None
    extractor: str = ""


@dataclass(frozen=True, slots=True)
class Extraction:
    """What one extractor run returned.

    Attributes:
        facts: The candidate facts, in the order they were said.
        method: ``"llm"``, ``"pattern-fallback"`` or ``"llm+pattern-fallback"`` when
            some chunks fell back after a model error.
        notes: Why something fell back or was rejected, one line each.
    """

    facts: tuple[ExtractedFact, ...]
    method: str
    notes: tuple[str, ...] = ()


@runtime_checkable
class FactExtractor(Protocol):
    """Anything that turns turns into candidate facts."""

    name: str
    """Shown in :attr:`Extraction.method` and in outputs (honest labelling)."""

    def extract(self, turns: Sequence[SourceTurn]) -> Extraction:
        """Candidate facts stated in ``turns`` (user facts only)."""
        ...


# ---------------------------------------------------------------------------
# Normalisation


def ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def normalize_subject(subject: str) -> str:
    """The canonical subject key: ASCII, lower-case, dotted, ``[a-z0-9_.]`` only.

    Contradiction candidates are looked up by this key, so two spellings of one
    subject must meet here.

    Raises:
        InvalidInputError: Nothing usable is left (empty or only punctuation).

    Example:
        >>> normalize_subject(" User.Sister Inês.Birthday ")
        'user.sister_ines.birthday'
    """
    if not isinstance(subject, str):
        raise InvalidInputError(f"a fact subject must be str, got {describe(subject)}")
    key = re.sub(r"[^a-z0-9.]+", "_", ascii_fold(subject).lower())
    key = re.sub(r"_*\.+_*", ".", key).strip("._")
    if not key or len(key) > 120:
        raise InvalidInputError(
            f"fact subject {subject!r} normalises to {key!r}; use a dotted key of 1-120 characters "
            f"such as 'user.location'"
        )
    return key


def normalize_fact_text(text: str) -> str:
    """The text two facts must share to count as duplicates.

    NFKC, casefold, punctuation dropped, whitespace collapsed.

    Example:
        >>> normalize_fact_text("Maya lives in  Berlin.") == normalize_fact_text("maya lives in berlin")
        True
    """
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    return " ".join(re.sub(r"[^\w\s]", "", folded).split())
