"""Query-focused excerpts of long memories: the sentences that match, and a pointer to the rest.

A long assistant turn (a recipe, a list of ten suggestions) can cost a few
hundred tokens, while the question needs one of its sentences. With an
excerpt budget set (``RetrievalConfig.excerpt_tokens``), a memory longer than
that is rendered as the run of consecutive sentences that best matches the
question's words, within the budget, marked as an excerpt with the length of
the whole turn; the item keeps its id and sources, so a reader (or a paging
tool) can fetch the whole turn by id. Matching is lexical (lowercased words
without stop words, cut to a 5-letter prefix, each weighed by how few of
the memory's sentences hold it): cheap enough for the read
path, and deterministic.

The benchmark does not credit an excerpt for an evidence turn whose answer it
cut (:func:`is_excerpt` finds excerpts in rendered text; the harness checks
whether the gold answer, found in the whole turn, is still in the excerpt).
:func:`excerpt` keeps the sentence with the most query words, which is where
the answer is when the question names what it asks about.

Core functions: :func:`excerpt`, :func:`is_excerpt`.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from ltm_agent.tokens import count_tokens

__all__ = ["EXCERPT_MARK", "excerpt", "is_excerpt"]

EXCERPT_MARK = "[excerpt of a {tokens}-token memory]"
"""Appended to an excerpt: the reader knows it sees part of a memory and how much is left out."""

_MARK = re.compile(r"\[excerpt of a \d+-token memory\]$")
_SENTENCE = re.compile(r"(?<=[.!?:])\s+|\n+")
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]+")
_STOP = frozenset(
    "the and for are but not you your yours with this that these those from have has had was were what when where "
    "which who whom why how can could would should will shall may might must did does doing done our ours out into "
    "about over under again then than them they their there here some any all each more most other such only own "
    "same too very just also its it's i'm i've you're me my mine we us him her his hers she he of to in on at by "
    "an or as is be been being do if so no yes".split()
)


def _terms(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


def _matched(sentence: str, wanted: set[str]) -> set[str]:
    """``wanted & _terms(sentence)``, without tokenizing a sentence that holds none of them.

    The read path excerpts every long candidate (hundreds of sentences per question); a
    query term is a lowercase ASCII prefix, so a sentence whose lowercase text does not
    contain it cannot hold it.
    """
    low = sentence.lower()
    if not any(term in low for term in wanted):
        return set()
    return wanted & {w[:5] for w in _WORD.findall(low) if w not in _STOP and len(w) > 2}


def is_excerpt(text: str) -> bool:
    """Whether a rendered memory is an excerpt (ends with :data:`EXCERPT_MARK`).

    Example:
        >>> is_excerpt("assistant: … Try tram 28. [excerpt of a 193-token memory]"), is_excerpt("Try tram 28.")
        (True, False)
    """
    return _MARK.search(text) is not None


def excerpt(text: str, query: str, max_tokens: int) -> str | None:
    """The run of sentences of ``text`` that best matches ``query`` within ``max_tokens``, or ``None``.

    ``None`` when ``text`` already fits or no sentence shares a word with the
    query (then the whole memory is the honest rendering). A ``"speaker: "``
    prefix is kept; cut ends are marked with ``…``.

    Example:
        >>> text = "assistant: Here are ideas. " + "Filler sentence about nothing. " * 30 + "Try the Lisbon tram 28."
        >>> excerpt(text, "Which tram did you suggest in Lisbon?", 40)
        'assistant: … Filler sentence about nothing. Filler sentence about nothing. Try the Lisbon tram 28. [excerpt of a 193-token memory]'
    """
    total = count_tokens(text)
    if total <= max_tokens:
        return None
    wanted = _terms(query)
    if not wanted or not any(term in text.lower() for term in wanted):
        return None  # no sentence can share a word with the query
    prefix, sep, body = text.partition(": ")
    if not sep or " " in prefix or len(prefix) > 40:
        prefix, body = "", text
    sentences = [s for s in _SENTENCE.split(body) if s.strip()]
    if len(sentences) < 2:
        return None
    # A query word found in few of the memory's sentences says more than one found in all of
    # them (the topic word of a long answer): weigh each by its rarity inside the memory.
    terms = [_matched(s, wanted) for s in sentences]
    seen = Counter(t for found in terms for t in found)
    scores = [sum(math.log(1.0 + len(sentences) / seen[t]) for t in found) for found in terms]
    best = max(range(len(sentences)), key=lambda i: (scores[i], -i))
    if scores[best] == 0:
        return None
    mark = EXCERPT_MARK.format(tokens=total)
    room = max_tokens - count_tokens(f"{prefix}: … … {mark}" if prefix else f"… … {mark}")
    costs: dict[int, int] = {}  # tokens of the sentences looked at: the run and its neighbours, not all

    def cost(i: int) -> int:
        if i not in costs:
            costs[i] = count_tokens(sentences[i]) + 1
        return costs[i]

    lo = hi = best
    used = cost(best)
    # Grow towards the better-matching neighbour first (then the following one: answers follow their cue).
    while True:
        options = [i for i in (hi + 1, lo - 1) if 0 <= i < len(sentences) and used + cost(i) <= room]
        if not options:
            break
        pick = max(options, key=lambda i: (scores[i], i > hi))
        used += cost(pick)
        lo, hi = min(lo, pick), max(hi, pick)
    if used > room and lo == hi:  # one sentence longer than the budget: cut it at a word
        words = sentences[best].split()
        while words and count_tokens(" ".join(words)) + 1 > room:
            words = words[: max(1, len(words) * 3 // 4)] if len(words) > 1 else []
        if not words:
            return None
        sentences[best] = " ".join(words) + " …"
    run = " ".join(sentences[lo : hi + 1])
    head = "… " if lo > 0 else ""
    tail = " …" if hi < len(sentences) - 1 and not run.endswith("…") else ""
    return f"{prefix}{': ' if prefix else ''}{head}{run}{tail} {mark}"
