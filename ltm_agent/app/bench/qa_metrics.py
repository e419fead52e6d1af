"""LoCoMo's official QA scoring: stemmed token F1 per category, plus exact match.

Follows the reference evaluation of Maharana et al. (ACL 2024):

* normalise: lowercase, drop commas and ASCII punctuation, drop the words
  a / an / the / and, collapse whitespace; tokens are Porter-stemmed;
* F1 is over token multisets;
* category 1 (multi-hop): gold and prediction are split on commas; each gold
  part takes its best F1 against any prediction part; the parts are averaged;
* categories 2 and 4: plain F1; category 3: F1 against the gold text before
  its first ``;``;
* category 5 (adversarial): 1 when the prediction says "not mentioned" or
  "no information available" (case-insensitive), else 0;
* exact match (as the reference defines it): the *sets* of normalised,
  unstemmed tokens are equal.

Core functions: :func:`locomo_f1`, :func:`token_f1`, :func:`exact_match`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING

from ltm_agent.errors import InvalidInputError, describe

if TYPE_CHECKING:
    from nltk.stem import PorterStemmer

__all__ = [
    "ABSTENTION_PHRASES",
    "exact_match",
    "is_abstention",
    "locomo_f1",
    "multi_answer_f1",
    "normalize_answer",
    "token_f1",
]

ABSTENTION_PHRASES = ("not mentioned", "no information available")
"""A category-5 prediction containing one of these scores 1."""

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_DROPPED_WORDS = re.compile(r"\b(a|an|the|and)\b")


@lru_cache(maxsize=1)
def _stemmer() -> PorterStemmer:
    from nltk.stem import PorterStemmer  # nltk imports slowly; only load it to score

    return PorterStemmer()


def normalize_answer(text: str) -> str:
    """Lowercase, strip punctuation and the words a/an/the/and, collapse spaces.

    Example:
        >>> normalize_answer("The Cat, and a Dog!")
        'cat dog'
    """
    text = text.replace(",", "").lower().translate(_PUNCTUATION)
    return " ".join(_DROPPED_WORDS.sub(" ", text).split())


def _stems(text: str) -> list[str]:
    stem = _stemmer().stem
    return [stem(word) for word in normalize_answer(text).split()]


def token_f1(prediction: str, gold: str) -> float:
    """F1 of the stemmed token multisets of ``prediction`` and ``gold``.

    Example:
        >>> round(token_f1("She went hiking in the Alps", "hiking in Alps"), 4)
        0.75
    """
    predicted, expected = _stems(_text(prediction)), _stems(_text(gold))
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def multi_answer_f1(prediction: str, gold: str) -> float:
    """Category-1 F1: mean over comma-split gold parts of the best F1 against any prediction part.

    Example:
        >>> multi_answer_f1("pottery, hiking", "hiking, painting")
        0.5
    """
    predictions = [part.strip() for part in _text(prediction).split(",")]
    golds = [part.strip() for part in _text(gold).split(",")]
    return sum(max(token_f1(p, g) for p in predictions) for g in golds) / len(golds)


def is_abstention(prediction: str) -> bool:
    """Whether a prediction declines to answer in LoCoMo's terms.

    Example:
        >>> is_abstention("That was Not Mentioned in our chats.")
        True
    """
    lowered = _text(prediction).lower()
    return any(phrase in lowered for phrase in ABSTENTION_PHRASES)


def locomo_f1(prediction: str, gold: str, category: int | str) -> float:
    """The official LoCoMo QA score of one prediction.

    Args:
        prediction: The reader's answer.
        gold: The gold answer (ignored for category 5).
        category: LoCoMo category 1-5 (int or string).

    Example:
        >>> locomo_f1("7 May 2023", "7 May 2023", 2)
        1.0
        >>> locomo_f1("No information available.", "", "5")
        1.0
        >>> locomo_f1("Sweden", "Sweden; she moved from there", 3)
        1.0
    """
    name = str(category).strip()
    if name == "5":
        return 1.0 if is_abstention(prediction) else 0.0
    if name == "1":
        return multi_answer_f1(prediction, gold)
    if name == "3":
        return token_f1(prediction, _text(gold).split(";")[0].strip())
    if name in {"2", "4"}:
        return token_f1(prediction, gold)
    raise InvalidInputError(
        f"LoCoMo category must be 1-5, got {describe(category)}; pass Question.category"
    )


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised (unstemmed) token sets are equal, as LoCoMo defines it.

    Example:
        >>> exact_match("the Eiffel Tower", "Eiffel tower")
        1.0
    """
    return 1.0 if set(normalize_answer(_text(prediction)).split()) == set(
        normalize_answer(_text(gold)).split()
    ) else 0.0


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # LoCoMo stores a few answers as bare years
    raise InvalidInputError(
        f"answers must be strings, got {describe(value)}; convert it with str()"
    )
