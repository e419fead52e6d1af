"""The language-model layer: named model steps, the usage ledger, the offline local chat model.

Every LLM-dependent step in the library goes through a :class:`ModelStep`; this package is the only
place that imports ``langchain_core`` at module level (the import-graph test enforces it).

Example:
    >>> from ltm_agent.llm import UsageLedger
    >>> len(UsageLedger().calls)
    0
"""

from ltm_agent.llm.local import ChatLocalModel, default_chat_model
from ltm_agent.llm.step import (
    MEMORY_DATA_INSTRUCTION,
    ModelStep,
    escape_data,
    extract_json,
    is_refusal,
    memory_ref,
    prompt_messages,
    quote_data,
    render_memory_block,
)
from ltm_agent.llm.usage import ModelCall, Outcome, StepUsage, UsageLedger

__all__ = [
    "MEMORY_DATA_INSTRUCTION",
    "ChatLocalModel",
    "ModelCall",
    "ModelStep",
    "Outcome",
    "StepUsage",
    "UsageLedger",
    "default_chat_model",
    "escape_data",
    "extract_json",
    "is_refusal",
    "memory_ref",
    "prompt_messages",
    "quote_data",
    "render_memory_block",
]
