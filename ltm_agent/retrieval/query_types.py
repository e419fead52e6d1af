"""Question types read from a question's form, by rules a user can read.

A question that asks for a *set* ("What books has Melanie read?", "How many
tournaments has Nate won?", "What are Joanna's hobbies?") usually has its
evidence spread over several sessions, one turn in each, while a question about
one event has it in one place. :func:`set_question_form` names the clause of the
rule a question matches (or ``None``); :func:`asks_for_a_set` is the yes/no.
:attr:`~ltm_agent.retrieval.RetrievalConfig.for_sets` applies other read settings
(e.g. diversification over sessions) to those questions only.

The clauses come from English grammar, not from the benchmark's questions one
by one:

* ``plural`` - "what/which [kind(s)/type(s) of] [up to two words] <plural noun> <auxiliary>":
  the answer is several things ("What LGBTQ+ events has ...", "Which cities did ...");
  the auxiliary (or "of") tells the noun from a verb ("What motivates Joanna ..." is no set);
  "what kinds / types / sorts of ..." and the irregular plurals people, children, men, women count too.
* ``count`` - "how many <noun>" when the noun is not a unit of time or measure
  ("how many times / books", not "how many days / miles": those are one amount).
* ``perfect`` - "what/where/which/who has/have ...", the present perfect
  ("What has Melanie painted?", "Where has Maria made friends?"): everything so far.
* ``plural-copula`` - "what are / what were ...": the copula agrees with a plural answer.
* ``collective`` - "both", "in common", "all the / all of", "list", "in what ways".

Core functions: :func:`asks_for_a_set`, :func:`set_question_form`.
"""

from __future__ import annotations

import re

__all__ = ["SET_FORMS", "asks_for_a_set", "asks_what_was_said", "set_question_form"]

SET_FORMS = ("plural", "count", "perfect", "plural-copula", "collective")
"""The clauses of :func:`set_question_form`, in the order they are tried."""

_AUX = r"(?:has|have|had|does|do|did|is|are|was|were|can|could|will|would|should|might|may|must)"
# A word ending in -s that is a plural noun, not "is/was/does/has/this/status/class/bus".
_PLURAL = (
    r"(?:people|children|men|women|"
    r"(?!(?:is|was|has|does|this|its|his|hers|yours|ours|theirs|always|perhaps)\b)[a-z][a-z+'/-]*[^su'\s]s)"
)
_UNITS = (
    "seconds|minutes|hours|days|weeks|months|years|decades|nights|miles|kilometers|km|meters|feet|inches|"
    "pounds|lbs|kilograms|kg|grams|dollars|euros|percent|calories|steps|pages"
)

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "plural",
        re.compile(
            rf"\b(?:what|which)\s+(?:(?:kinds?|types?|sorts?)\s+of\s+)?(?:(?!{_AUX}\b)[\w+/-]+\s+){{0,2}}?{_PLURAL}\s+(?:{_AUX}|of)\b"
            r"|\b(?:what|which)\s+(?:kinds|types|sorts)\s+of\b",
            re.IGNORECASE,
        ),
    ),
    ("count", re.compile(rf"\bhow\s+many\s+(?!(?:more\s+|fewer\s+|of\s+)?(?:{_UNITS})\b)\w+", re.IGNORECASE)),
    ("perfect", re.compile(r"\b(?:what|where|which|who)\s+(?:has|have)\b", re.IGNORECASE)),
    ("plural-copula", re.compile(r"\bwhat\s+(?:are|were)\s+(?!you\b)", re.IGNORECASE)),
    ("collective", re.compile(r"\bboth\b|\bin common\b|\ball (?:the|of)\b|\blist\b|\bin what ways\b", re.IGNORECASE)),
)


def set_question_form(query: str) -> str | None:
    """The clause of the set rule ``query`` matches (one of :data:`SET_FORMS`), or ``None``.

    Example:
        >>> set_question_form("What books has Melanie read?"), set_question_form("How many times did Nate win?")
        ('plural', 'count')
        >>> set_question_form("How many days did the trip take?") is None
        True
    """
    for form, pattern in _RULES:
        if pattern.search(query):
            return form
    return None


def asks_for_a_set(query: str) -> bool:
    """Whether a question asks for several things, whose evidence is likely spread over sessions.

    Example:
        >>> asks_for_a_set("What activities does Melanie partake in?")
        True
        >>> asks_for_a_set("When did Melanie go camping?")
        False
    """
    return set_question_form(query) is not None


_WHAT_WAS_SAID = re.compile(
    r"\byou (?:mentioned|said|told|recommended|suggested|provided|created|gave|wrote|listed|explained|shared)\b"
    r"|\b(?:our|the) (?:previous|last|earlier) (?:conversation|chat|discussion)\b|\bremind me\b",
    re.IGNORECASE,
)


def asks_what_was_said(query: str) -> bool:
    """Whether a question asks about what the assistant said before (a rule a user can read).

    Example:
        >>> asks_what_was_said("You recommended five bottles. What was the fifth?")
        True
        >>> asks_what_was_said("What did I buy last week?")
        False
    """
    return _WHAT_WAS_SAID.search(query) is not None
