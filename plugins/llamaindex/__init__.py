"""LlamaIndex adapters: memory blocks and a ``BaseMemory`` over ltm-agent's long-term memory.

Installed as ``ltm_agent.plugins.llamaindex``.

* :class:`EpisodicTimelineBlock` - a ``Memory`` block: flushed messages become
  dated episodes; each call recalls the session's relevant ones as quoted data.
* :class:`EntropyBufferBlock` - a ``Memory`` block: the session's SirLLM
  entropy-decay buffer.
* :class:`FactsBlock` - a ``Memory`` block: the session's current bi-temporal
  facts (optionally extracted from flushed messages).
* :class:`LTMChatMemory` - a ``BaseMemory``: chat history plus long-term recall,
  for code that takes a memory module directly.
* :class:`SessionRecall` - the write/read core the three share.

Every read and write is scoped to ``(*tenant namespace, session)`` built per call
from the session id (:func:`session_namespace`); nothing is shared between sessions.
"""

from __future__ import annotations

from ltm_agent.plugins.llamaindex.blocks import EntropyBufferBlock, EpisodicTimelineBlock, FactsBlock
from ltm_agent.plugins.llamaindex.memory import LTMChatMemory
from ltm_agent.plugins.llamaindex.recall import SessionRecall, session_namespace

__all__ = [
    "EntropyBufferBlock",
    "EpisodicTimelineBlock",
    "FactsBlock",
    "LTMChatMemory",
    "SessionRecall",
    "session_namespace",
]
