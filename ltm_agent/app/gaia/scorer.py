"""GAIA's answer scorer, written from the benchmark's published rules.

GAIA scores one answer against one gold answer by quasi exact match, with three rules chosen by
the *gold* answer's shape:

1. **Number rule** - the gold parses as a Python ``float``: remove every ``$``, ``%`` and ``,``
   from the answer, parse it as a float (an answer that does not parse scores 0) and compare the
   two floats exactly. ``$5``, ``5.0``, ``1e3`` (for 1000) and ``42.`` pass their numbers; ``5 km``
   fails ``5``.
2. **List rule** - otherwise, the gold contains ``,`` or ``;``: split both on ``[,;]``; the lists
   must have the same length and order; each element is compared by the number rule when its gold
   element parses as a float, else both are lowercased with all whitespace removed (punctuation
   kept). So ``a; b`` passes ``a, b`` and ``b, a`` fails it. Because the rule looks at the gold
   string only, gold ``1,000`` is a two-element list and the answer ``1000`` fails it.
3. **String rule** - otherwise: lowercase, remove all whitespace and ASCII punctuation, compare
   exactly. Articles are *not* stripped: ``The Beatles`` fails ``Beatles``.

The float parse is Python's own, as in the rules: ``nan``/``inf`` golds take the number rule
(and a ``nan`` gold can never be matched), underscores between digits parse.

Core functions: :func:`gaia_score`, :func:`score_rule`, :func:`normalize_number`,
:func:`normalize_text`.
"""

from __future__ import annotations

import math
import re
import string
from typing import Literal

__all__ = ["ScoreRule", "gaia_score", "normalize_number", "normalize_text", "parses_as_float", "score_rule"]

ScoreRule = Literal["number", "list", "string"]

_NUMBER_NOISE = str.maketrans("", "", "$%,")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_WHITESPACE = re.compile(r"\s")
_LIST_SPLIT = re.compile(r"[,;]")


def parses_as_float(text: str) -> bool:
    """True when Python's ``float`` accepts ``text`` (how the rules decide a gold is a number)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def normalize_number(answer: str) -> float:
    """The answer as a float after removing ``$ % ,``; ``inf`` when it does not parse (never equal to a gold).

    Example:
        >>> normalize_number("$1,250"), normalize_number("5 km")
        (1250.0, inf)
    """
    try:
        return float(answer.translate(_NUMBER_NOISE))
    except ValueError:
        return math.inf


def normalize_text(text: str, *, remove_punctuation: bool = True) -> str:
    """Remove all whitespace (and, by default, ASCII punctuation), then lowercase.

    Example:
        >>> normalize_text("The  Beatles!"), normalize_text("St. Ives", remove_punctuation=False)
        ('thebeatles', 'st.ives')
    """
    text = _WHITESPACE.sub("", text)
    if remove_punctuation:
        text = text.translate(_PUNCTUATION)
    return text.lower()


def score_rule(gold: str) -> ScoreRule:
    """Which rule the gold answer selects.

    Example:
        >>> score_rule("17"), score_rule("1,000"), score_rule("Paris")
        ('number', 'list', 'string')
    """
    if parses_as_float(gold):
        return "number"
    if "," in gold or ";" in gold:
        return "list"
    return "string"


def _number_matches(answer: str, gold: str) -> bool:
    return normalize_number(answer) == float(gold)


def gaia_score(answer: str | None, gold: str) -> bool:
    """Whether ``answer`` matches ``gold`` under GAIA's rules (see the module docstring).

    Args:
        answer: The model's final answer; ``None`` (no answer) is scored as the text ``"None"``,
            as the rules do.
        gold: The task's ``Final answer``.

    Example:
        >>> gaia_score("$5", "5"), gaia_score("1000", "1,000"), gaia_score("a; b", "a, b")
        (True, False, True)
    """
    answer = "None" if answer is None else str(answer)
    gold = str(gold)
    rule = score_rule(gold)
    if rule == "number":
        return _number_matches(answer, gold)
    if rule == "list":
        gold_items = _LIST_SPLIT.split(gold)
        answer_items = _LIST_SPLIT.split(answer)
        if len(gold_items) != len(answer_items):
            return False
        for got, want in zip(answer_items, gold_items):
            if parses_as_float(want):
                if not _number_matches(got, want):
                    return False
            elif normalize_text(got, remove_punctuation=False) != normalize_text(want, remove_punctuation=False):
                return False
        return True
    return normalize_text(answer) == normalize_text(gold)
