"""The pattern fallback: deterministic fact extraction without a model.

:class:`PatternFactExtractor` is an honest, limited fallback, named
``"pattern-fallback"`` everywhere it shows up. It is **not** LLM extraction: it
recognises a fixed set of first-person statements in user turns and misses
everything else (paraphrases, negations, third-person facts, most places
written in lower case). It exists so memory can show facts changing over
time offline and in tests.

Recognised statements (one sentence at a time; questions and sentences with
"if"/"would"/"maybe" before the statement are skipped):

* "I live in X", "I'm based in X" -> ``user.location``: "Maya lives in X."
* "I moved / relocated (from Y) to X" -> ``user.location``: "Maya lives in X.",
  valid from the date said in the sentence ("last weekend").
* "I'm vegetarian / vegan / pescatarian", "I went vegan" -> ``user.diet``: "Maya is vegan."
* "I'm allergic to X" -> ``user.allergy`` (multi-valued): "Maya is allergic to X."
* "my sister Inês's birthday is on 14 March" -> ``user.sister.ines.birthday``:
  "Maya's sister Inês's birthday is on 14 March." ("my birthday is ..." -> ``user.birthday``).
* "I adopted / got / have a cat named X" -> ``user.pet`` (multi-valued):
  "Maya has a cat named X." (adopted/got: valid from the date said).
* "I work as X" -> ``user.job``; "I work at / for X", "I started a new job at X" ->
  ``user.employer``: "Maya works at X."
* "I like / love / enjoy / hate X", "I'm (not) a fan of X" -> ``user.preference.<x>``:
  "Maya loves X." (a later "I hate X" supersedes it; other things are other subjects).
* "my name is X" -> ``user.name``.

The person is the turn's speaker name ("Maya"), else "The user". Places must
be capitalised ("Berlin", "New York"). Dates are read with ``dateparser`` (birthdays are rendered "14 March"; a
"yesterday" resolves against the episode's time), never with date regexes.

Core type: :class:`PatternFactExtractor`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ltm_agent.dates import find_date_expressions, resolve_date_expression, utcnow
from ltm_agent.facts.extraction import (
    ExtractedFact,
    Extraction,
    SourceTurn,
    normalize_subject,
)

__all__ = ["PatternFactExtractor"]

_PLACE = r"[A-Z][\w'’-]*(?:[ -][A-Z][\w'’-]*)*"
_AM = r"(?:'m|’m| am)"
_HAVE = r"(?:'ve|’ve| have)"
_SOON = r"(?: just| recently| finally| now| also| already)?"
_PHRASE = r"[^.,;:!?()]+"
_RELATIONS = (
    r"(?:(?:grand|step|little|big|older|younger|twin|best) )?(?:mother|mom|mum|father|dad|sister|brother|wife|"
    r"husband|partner|girlfriend|boyfriend|son|daughter|friend|boss|aunt|uncle|cousin|grandmother|grandfather|"
    r"grandma|grandpa|niece|nephew|fiancée|fiancee|fiance|colleague|roommate|neighbour|neighbor)"
)
_PETS = (
    r"(?:cat|kitten|dog|puppy|rabbit|bunny|hamster|parrot|budgie|bird|fish|turtle|tortoise|horse|guinea pig|"
    r"ferret|snake|lizard|gecko)"
)
_DIETS = r"(?:vegetarian|vegan|pescatarian|pescetarian|flexitarian)"
# A clause ends where another one starts: the object of "I love X" stops before these.
_CLAUSE_END = re.compile(
    r"\s+(?:and|but|so|because|since|when|while|although|though|or)\s+(?:I|i|my|it|we|she|he|they)\b"
    r"|\s+(?:because|since|when|while|although)\b"
)
# Words before a statement that make it hypothetical ("If I moved to Paris ...").
_HEDGE = re.compile(
    r"\b(?:if|whether|would|could|might|maybe|perhaps|unless|wish|hope|want|plan|planning|thinking)\b",
    re.IGNORECASE,
)
_PRONOUN_OBJECT = re.compile(
    r"^(?:it|that|this|these|those|them|you|him|her|us|me|to be|the idea|when|how|what)\b", re.IGNORECASE
)
_LEADING_ARTICLE = re.compile(r"^(?:a|an|the|to|my|some)\s+", re.IGNORECASE)

_THIRD_PERSON = {
    "like": "likes",
    "love": "loves",
    "enjoy": "enjoys",
    "adore": "adores",
    "hate": "hates",
    "dislike": "dislikes",
    "detest": "detests",
    "can't stand": "can't stand",
    "can’t stand": "can't stand",
    "cannot stand": "can't stand",
}


@dataclass(frozen=True, slots=True)
class _Found:
    subject: str
    text: str
    dated: bool = False
    """True for events ("I moved"): a date said in the sentence is when the fact became true."""


def _clause(text: str, max_words: int = 8) -> str | None:
    """The object phrase up to the next clause, or ``None`` when it is not a short noun phrase."""
    phrase = _CLAUSE_END.split(text, maxsplit=1)[0].strip(" \"'’")
    # "a job at Nimbus Labs last Monday": the date says when, it is not part of the object.
    for expression in find_date_expressions(phrase, utcnow()):
        cut = phrase.find(expression)
        if cut > 0:
            phrase = phrase[:cut].rstrip(" ,")
            break
    if not phrase or _PRONOUN_OBJECT.match(phrase) or len(phrase.split()) > max_words:
        return None
    return phrase


def _slug(phrase: str) -> str:
    return normalize_subject(_LEADING_ARTICLE.sub("", phrase.strip()))[:40].strip("._") or "thing"


class PatternFactExtractor:
    """The deterministic pattern fallback (``name="pattern-fallback"``), not an LLM.

    Reads user turns only, one sentence at a time, and turns a fixed set of
    first-person statements into facts with subjects (see the module
    docstring). Use it offline, in tests, or as the ``fallback`` of
    :class:`~ltm_agent.facts.extraction.ModelFactExtractor`.

    Example:
        >>> from datetime import datetime, UTC
        >>> turn = SourceTurn("s3:1", "user", "Maya", "I moved from Lisbon to Berlin last weekend!",
        ...                   datetime(2024, 3, 20, tzinfo=UTC))
        >>> [(f.subject, f.text, f.valid_from_expression) for f in PatternFactExtractor().extract([turn]).facts]
        [('user.location', 'Maya lives in Berlin.', 'last weekend')]
    """

    name = "pattern-fallback"

    def extract(self, turns: Sequence[SourceTurn]) -> Extraction:
        """Facts stated in the user turns of ``turns``, in the order said."""
        facts: list[ExtractedFact] = []
        for turn in turns:
            if turn.role != "user" or not turn.text.strip():
                continue
            person = turn.speaker.strip() or "The user"
            for sentence in re.split(r"(?<=[.!?])\s+|\n+", turn.text):
                sentence = sentence.strip()
                if not sentence or sentence.endswith("?"):
                    continue
                for start, found in self._match(sentence, person, turn):
                    if _HEDGE.search(sentence[:start]):
                        continue
                    expression = None
                    if found.dated:
                        expressions = find_date_expressions(sentence, turn.time)
                        expression = expressions[0] if expressions else None
                    facts.append(ExtractedFact(found.subject, found.text, (turn.id,), expression, self.name))
        return Extraction(tuple(_unique(facts)), self.name)

    def _match(self, sentence: str, person: str, turn: SourceTurn) -> list[tuple[int, _Found]]:
        hits: list[tuple[int, _Found]] = []
        for pattern, build in _RULES:
            for m in pattern.finditer(sentence):
                found = build(m, person, turn)
                if found is not None:
                    hits.append((m.start(), found))
        return sorted(hits, key=lambda hit: hit[0])


def _unique(facts: list[ExtractedFact]) -> list[ExtractedFact]:
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    kept = []
    for fact in facts:
        key = (fact.subject, fact.text, fact.sources)
        if key not in seen:
            seen.add(key)
            kept.append(fact)
    return kept


def _possessive(person: str) -> str:
    return f"{person}'s"


# ---------------------------------------------------------------------------
# Rules: (pattern, builder). Builders return None to skip a match.


def _lives(m: re.Match[str], person: str, _: SourceTurn) -> _Found:
    return _Found("user.location", f"{person} lives in {m.group('place')}.")


def _moved(m: re.Match[str], person: str, _: SourceTurn) -> _Found:
    return _Found("user.location", f"{person} lives in {m.group('place')}.", dated=True)


def _diet(m: re.Match[str], person: str, _: SourceTurn) -> _Found:
    event = any(word in m.group(0) for word in ("went", "gone", "became", "become"))
    return _Found("user.diet", f"{person} is {m.group('diet').lower()}.", dated=event)


def _allergy(m: re.Match[str], person: str, _: SourceTurn) -> _Found | None:
    what = _clause(m.group("what"))
    return _Found("user.allergy", f"{person} is allergic to {what}.") if what else None


def _birthday(m: re.Match[str], person: str, turn: SourceTurn) -> _Found | None:
    when = _birthday_date(m.group("date"), turn)
    if when is None:
        return None
    relation = (m.groupdict().get("rel") or "").lower()
    name = m.groupdict().get("name")
    if not relation:
        return _Found("user.birthday", f"{_possessive(person)} birthday is on {when}.")
    subject = f"user.{relation}.{name}.birthday" if name else f"user.{relation}.birthday"
    whose = f"{_possessive(person)} {relation} {_possessive(name)}" if name else f"{_possessive(person)} {relation}'s"
    return _Found(normalize_subject(subject), f"{whose} birthday is on {when}.")


def _birthday_date(phrase: str, turn: SourceTurn) -> str | None:
    """ "14 March", however it was said ("March 14th", "tomorrow"), via dateparser."""
    for expression in find_date_expressions(phrase, turn.time):
        resolved = resolve_date_expression(expression, turn.time)
        if resolved is not None:
            return f"{resolved.day} {resolved:%B}"
    return None


def _pet(m: re.Match[str], person: str, _: SourceTurn) -> _Found:
    pet = m.group("pet").lower()
    article = "an" if pet[0] in "aeiou" else "a"
    named = f" named {m.group('pname')}" if m.group("pname") else ""
    return _Found("user.pet", f"{person} has {article} {pet}{named}.", dated=m.group("verb") != "have")


def _job(m: re.Match[str], person: str, _: SourceTurn) -> _Found | None:
    job = _clause(re.split(r"\s+(?:at|for|in)\s+", m.group("job"), maxsplit=1)[0])
    return _Found("user.job", f"{person} works as {job}.") if job else None


def _employer(m: re.Match[str], person: str, _: SourceTurn) -> _Found | None:
    org = _clause(m.group("org"))
    return _Found("user.employer", f"{person} works at {org}.", dated="job" in m.group(0)) if org else None


def _preference(m: re.Match[str], person: str, _: SourceTurn) -> _Found | None:
    thing = _clause(m.group("obj"), max_words=6)
    if thing is None:
        return None
    verb = _THIRD_PERSON[m.group("verb").lower()]
    return _Found(f"user.preference.{_slug(thing)}", f"{person} {verb} {thing}.")


def _fan(m: re.Match[str], person: str, _: SourceTurn) -> _Found | None:
    thing = _clause(m.group("obj"), max_words=6)
    if thing is None:
        return None
    verb = "dislikes" if m.group("neg") else "likes"
    return _Found(f"user.preference.{_slug(thing)}", f"{person} {verb} {thing}.")


def _name(m: re.Match[str], person: str, _: SourceTurn) -> _Found:
    return _Found("user.name", f"The user's name is {m.group('name')}.")


_Builder = Callable[[re.Match[str], str, SourceTurn], "_Found | None"]
_I_HAVE_SOON = rf"\bI(?:{_HAVE})?{_SOON}"
_NAMED = r"(?: (?:named|called) (?P<pname>[A-Z][\w'’-]*))?"
_LIKE_VERBS = r"like|love|enjoy|adore|hate|dislike|detest|can't stand|can’t stand|cannot stand"

_RULES: tuple[tuple[re.Pattern[str], _Builder], ...] = (
    (re.compile(rf"\bI(?: currently| now| still)? live in (?P<place>{_PLACE})"), _lives),
    (re.compile(rf"\bI{_AM}(?: currently| now)? (?:living|based) in (?P<place>{_PLACE})"), _lives),
    (re.compile(rf"{_I_HAVE_SOON} (?:moved|relocated)(?: from {_PLACE})?(?: back)? to (?P<place>{_PLACE})"), _moved),
    (
        re.compile(rf"\bI{_AM}(?: now| still| strictly| fully| also)?(?: an?)? (?P<diet>{_DIETS})\b", re.IGNORECASE),
        _diet,
    ),
    (re.compile(rf"{_I_HAVE_SOON} (?:went|gone|became|become) (?P<diet>{_DIETS})\b", re.IGNORECASE), _diet),
    (re.compile(rf"\bI{_AM}(?: very| severely| mildly| also)? allergic to (?P<what>{_PHRASE})"), _allergy),
    (
        re.compile(
            rf"\b[Mm]y (?P<rel>{_RELATIONS})(?: (?P<name>[A-Z][\w-]*))?(?:'s|’s)"
            rf" birthday is (?:on )?(?P<date>{_PHRASE})"
        ),
        _birthday,
    ),
    (re.compile(rf"\b[Mm]y birthday is (?:on )?(?P<date>{_PHRASE})"), _birthday),
    (
        re.compile(
            rf"{_I_HAVE_SOON} (?P<verb>adopted|got|rescued|have) (?:a|an|another)(?: new)?"
            rf"(?: (?:little|young|old|sweet|[a-z]+-year-old))? (?P<pet>{_PETS})\b{_NAMED}"
        ),
        _pet,
    ),
    (re.compile(rf"\bI(?:{_AM} working| work){_SOON} as (?P<job>{_PHRASE})"), _job),
    (re.compile(rf"\bI(?:{_AM} working| work) (?:at|for) (?P<org>{_PHRASE})"), _employer),
    (
        re.compile(
            rf"{_I_HAVE_SOON} (?:started|got|landed|began|took) (?:a |my )?(?:new )?job (?:at|with) (?P<org>{_PHRASE})"
        ),
        _employer,
    ),
    (
        re.compile(
            r"\bI(?: really| absolutely| just| also| do| genuinely| totally)?"
            rf" (?P<verb>{_LIKE_VERBS}) (?P<obj>{_PHRASE})"
        ),
        _preference,
    ),
    (re.compile(rf"\bI{_AM}(?P<neg> not)? (?:a )?(?:big |huge )?fan of (?P<obj>{_PHRASE})"), _fan),
    (re.compile(r"\b[Mm]y name is (?P<name>[A-Z][\w'’-]*(?: [A-Z][\w'’-]*)?)"), _name),
)
