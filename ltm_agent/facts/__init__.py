"""Bi-temporal facts: extraction (model, or the deterministic pattern fallback), update rules that
invalidate and never overwrite, the fact memory of a namespace, and the fact-aware view a reader uses.

Modules: ``extraction`` (what an extractor sees and returns; no model layer), ``model_extractor``,
``patterns`` (the pattern fallback), ``updates`` (contradiction rules), ``memory``
(:class:`FactMemory`), ``view`` (:class:`MemoryView`).

Example:
    >>> from ltm_agent.facts import PatternFactExtractor
    >>> PatternFactExtractor().name
    'pattern-fallback'
"""

from ltm_agent.facts.extraction import (
    ExtractedFact,
    Extraction,
    FactExtractor,
    SourceTurn,
    normalize_fact_text,
    normalize_subject,
)
from ltm_agent.facts.memory import FactMemory
from ltm_agent.facts.model_extractor import EXTRACT_STEP, ModelFactExtractor
from ltm_agent.facts.patterns import PatternFactExtractor
from ltm_agent.facts.updates import SINGLE_VALUED_SUBJECTS, FactUpdate, fact_id
from ltm_agent.facts.view import MemoryView

__all__ = [
    "EXTRACT_STEP",
    "SINGLE_VALUED_SUBJECTS",
    "ExtractedFact",
    "Extraction",
    "FactExtractor",
    "FactMemory",
    "FactUpdate",
    "MemoryView",
    "ModelFactExtractor",
    "PatternFactExtractor",
    "SourceTurn",
    "fact_id",
    "normalize_fact_text",
    "normalize_subject",
]
