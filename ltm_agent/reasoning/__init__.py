"""ALR² retrieve-then-reason: quote evidence from memory, reject quotes memory does not hold,
answer from accepted evidence only, abstain when nothing grounds.

Modules: ``evidence`` (the grounding check and the deterministic selector), ``alr2`` (the two stages).

Example:
    >>> from ltm_agent.reasoning import ground_quotes
"""

from ltm_agent.reasoning.alr2 import (
    ABSTAIN_ANSWER,
    EvidenceQuotes,
    GroundedAnswer,
    ReasonedAnswer,
    RetrieveThenReason,
)
from ltm_agent.reasoning.evidence import (
    Citation,
    ExtractiveSelector,
    GroundingResult,
    QuotedEvidence,
    RejectedQuote,
    ground_quotes,
    normalize_for_match,
)

__all__ = [
    "ABSTAIN_ANSWER",
    "Citation",
    "EvidenceQuotes",
    "ExtractiveSelector",
    "GroundedAnswer",
    "GroundingResult",
    "QuotedEvidence",
    "ReasonedAnswer",
    "RejectedQuote",
    "RetrieveThenReason",
    "ground_quotes",
    "normalize_for_match",
]
