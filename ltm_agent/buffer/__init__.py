"""SirLLM entropy-decay buffer: the buffer, its token scorers, and the local model the llama.cpp scorer loads.

Example:
    >>> from ltm_agent.buffer import EntropyDecayBuffer, StatisticalScorer
    >>> buffer = EntropyDecayBuffer(budget_tokens=64, scorer=StatisticalScorer())
"""

from ltm_agent.buffer.buffer import ELISION, BufferedUnit, BufferStats, EntropyDecayBuffer, group_phrases
from ltm_agent.buffer.scorers import (
    ChatLogprobScorer,
    LlamaCppScorer,
    ScoredUnit,
    StatisticalScorer,
    TokenScorer,
    default_scorer,
)

__all__ = [
    "ELISION",
    "BufferStats",
    "BufferedUnit",
    "ChatLogprobScorer",
    "EntropyDecayBuffer",
    "LlamaCppScorer",
    "ScoredUnit",
    "StatisticalScorer",
    "TokenScorer",
    "default_scorer",
    "group_phrases",
]
