"""Evidence for ALR²: proposed quotes, the grounding check, the extractive fallback.

Stage 1 of retrieve-then-reason proposes quotes (:class:`QuotedEvidence`);
:func:`ground_quotes` checks each against the retrieved memories and sorts
them into accepted :class:`Citation` s and :class:`RejectedQuote` s. Without a
chat model, :class:`ExtractiveSelector` proposes verbatim sentences by lexical
overlap instead.

Core types: :class:`QuotedEvidence`, :class:`Citation`, :class:`RejectedQuote`,
:class:`GroundingResult`, :class:`ExtractiveSelector`; functions
:func:`ground_quotes`, :func:`normalize_for_match`.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from rapidfuzz import fuzz

from ltm_agent.errors import InvalidInputError
from ltm_agent.records import MemoryItem

__all__ = [
    "Citation",
    "ExtractiveSelector",
    "GroundingResult",
    "QuotedEvidence",
    "RejectedQuote",
    "ground_quotes",
    "normalize_for_match",
]

# ---------------------------------------------------------------------------
# Values


class QuotedEvidence(BaseModel):
    """One quote proposed in stage 1 (model output, or the extractive selector's pick)."""

    memory_id: str
    quote: str


@dataclass(frozen=True, slots=True)
class Citation:
    """An accepted quote: it matches stored memory.

    Attributes:
        memory_id: The memory the quote was found in (corrected if the model cited another).
        quote: The quote as proposed.
        time: Event time of that memory, when it has one.
        fuzzy: True when accepted by fuzzy match rather than exact substring.
        score: Match score, 100 for exact.
        proposed_id: The id the proposer gave (differs from ``memory_id`` when corrected).
    """

    memory_id: str
    quote: str
    time: datetime | None
    fuzzy: bool
    score: float
    proposed_id: str


@dataclass(frozen=True, slots=True)
class RejectedQuote:
    """A proposed quote that matches no retrieved memory (a hallucinated "fact")."""

    memory_id: str
    quote: str
    best_score: float
    reason: str


@dataclass(frozen=True, slots=True)
class GroundingResult:
    """The outcome of checking proposed quotes against retrieved memory."""

    accepted: tuple[Citation, ...]
    rejected: tuple[RejectedQuote, ...]
    proposed_count: int

    @property
    def hallucination_rate(self) -> float:
        """``rejected / proposed`` (0 when nothing was proposed)."""
        return len(self.rejected) / self.proposed_count if self.proposed_count else 0.0


# ---------------------------------------------------------------------------
# Grounding check


def normalize_for_match(text: str) -> str:
    """NFKC, casefold, collapse whitespace: the form quotes and memories are compared in.

    Example:
        >>> normalize_for_match("  Ｔｅａ\\n\\tTIME ")
        'tea time'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _match(quote: str, text: str) -> float:
    """100 for an exact substring, else a fuzzy score that cannot reward extra invented text."""
    if quote in text:
        return 100.0
    # partial_ratio aligns the shorter string inside the longer one; a quote longer
    # than the memory would score 100 for merely containing it, so compare whole strings.
    return fuzz.partial_ratio(quote, text) if len(quote) <= len(text) else fuzz.ratio(quote, text)


def ground_quotes(
    proposals: Sequence[QuotedEvidence], items: Sequence[MemoryItem], *, fuzzy_threshold: float = 90.0
) -> GroundingResult:
    """Accept the proposals that match retrieved memory; reject and count the rest.

    A quote is accepted when, after :func:`normalize_for_match`, it is a
    substring of the cited memory (or of any retrieved memory, recording the
    right id), or scores at least ``fuzzy_threshold`` with
    ``rapidfuzz.fuzz.partial_ratio`` (accepted with ``fuzzy=True``).
    Quotes are also tried with XML entities unescaped, since memories are
    shown to the model escaped.
    """
    texts = {item.id: normalize_for_match(item.text) for item in items}
    times = {item.id: item.time for item in items}
    accepted: list[Citation] = []
    rejected: list[RejectedQuote] = []
    seen: set[tuple[str, str]] = set()
    for proposal in proposals:
        forms = {normalize_for_match(proposal.quote), normalize_for_match(_unescape(proposal.quote))}
        forms.discard("")
        if not forms:
            rejected.append(RejectedQuote(proposal.memory_id, proposal.quote, 0.0, "empty quote"))
            continue
        # The cited memory first, then the others in retrieval order.
        order = sorted(texts, key=lambda mid: mid != proposal.memory_id)
        best_id, best = "", 0.0
        for memory_id in order:
            score = max(_match(form, texts[memory_id]) for form in forms)
            if score > best:
                best_id, best = memory_id, score
            if best == 100.0:
                break
        if best < fuzzy_threshold:
            reason = "no retrieved memory contains this text"
            rejected.append(RejectedQuote(proposal.memory_id, proposal.quote, best, reason))
            continue
        key = (best_id, min(forms))
        if key not in seen:
            seen.add(key)
            accepted.append(Citation(best_id, proposal.quote, times[best_id], best < 100.0, best, proposal.memory_id))
    return GroundingResult(tuple(accepted), tuple(rejected), len(proposals))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# ---------------------------------------------------------------------------
# Extractive fallback

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    "a about above after again all am an and any are as at be been before being below between both but by "  # noqa: SIM905
    "can could did do does doing down during each few for from further had has have having he her here hers "
    "herself him himself his how i if in into is it its itself just me more most my myself no nor not now of "
    "off on once only or other our ours out over own same she should so some such than that the their theirs "
    "them then there these they this those through to too under until up very was we were what when where "
    "which while who whom why will with would you your yours yourself ever tell know remember mentioned".split()
)


class ExtractiveSelector:
    """The deterministic stage-1 fallback used when no chat model is available.

    Not a language model: it splits retrieved memories into sentences and
    scores each by stemmed, stopword-free term overlap with the question,
    weighted BM25-style (idf over the candidate sentences, length-normalised
    term frequency). Sentences sharing fewer than ``min_overlap`` of the
    question's terms are never selected.

    Args:
        min_overlap: Minimum fraction of the question's content terms a sentence must share.
        max_sentences: How many sentences to propose.

    Example:
        >>> from ltm_agent.records import MemoryItem
        >>> item = MemoryItem("m1", "turn", "I love tea. My dog is called Rex.", 1.0, None, 9, (), ("u",))
        >>> [q.quote for q in ExtractiveSelector().select("What is my dog called?", [item])]
        ['My dog is called Rex.']
    """

    k1 = 1.2
    b = 0.75

    def __init__(self, *, min_overlap: float = 0.2, max_sentences: int = 3) -> None:
        if not 0.0 < min_overlap <= 1.0 or max_sentences < 1:
            raise InvalidInputError(
                f"ExtractiveSelector needs 0 < min_overlap <= 1 and max_sentences >= 1, "
                f"got min_overlap={min_overlap!r}, max_sentences={max_sentences!r}"
            )
        self.min_overlap = min_overlap
        self.max_sentences = max_sentences
        self._per_thread = threading.local()  # PyStemmer objects are not thread-safe

    def terms(self, text: str) -> list[str]:
        """Stemmed content terms of ``text`` (casefolded, stopwords dropped)."""
        stem_words: Callable[[list[str]], list[str]] | None = getattr(self._per_thread, "stem_words", None)
        if stem_words is None:
            import Stemmer  # PyStemmer, a core dependency

            stem_words = self._per_thread.stem_words = Stemmer.Stemmer("english").stemWords
        words = [w for w in _WORD.findall(text.casefold()) if w not in _STOPWORDS]
        return list(stem_words(words))

    def select(self, question: str, items: Sequence[MemoryItem]) -> list[QuotedEvidence]:
        """The best-overlapping sentences, verbatim, best first."""
        query = set(self.terms(question))
        if not query:
            return []
        sentences = [
            (rank, item.id, sentence.strip())
            for rank, item in enumerate(items)
            for sentence in _SENTENCE_END.split(item.text)
            if sentence.strip()
        ]
        bags = [Counter(self.terms(text)) for _, _, text in sentences]
        if not bags:
            return []
        n = len(bags)
        avg_len = max(1.0, sum(sum(bag.values()) for bag in bags) / n)
        df = Counter(term for bag in bags for term in bag.keys() & query)
        scored: list[tuple[float, int, int, QuotedEvidence]] = []
        for position, ((rank, memory_id, text), bag) in enumerate(zip(sentences, bags)):
            shared = bag.keys() & query
            if not shared or len(shared) / len(query) < self.min_overlap:
                continue
            norm = self.k1 * (1 - self.b + self.b * sum(bag.values()) / avg_len)
            score = sum(
                math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) * bag[t] * (self.k1 + 1) / (bag[t] + norm)
                for t in shared
            )
            scored.append((-score, rank, position, QuotedEvidence(memory_id=memory_id, quote=text)))
        scored.sort(key=lambda row: row[:3])
        return [row[3] for row in scored[: self.max_sentences]]
