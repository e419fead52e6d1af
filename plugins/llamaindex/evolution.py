"""A LlamaIndex memory block that reads learned experience and the playbook into the prompt.

:class:`ExperienceBlock` plugs into ``Memory.from_defaults(memory_blocks=[...])``.
Before each LLM call (``aget``) it recalls the cases most similar to the newest
user message (situations, the actions tried there and how they paid off) and
the namespace's playbook rules, rendered as quoted data. Chat messages are not
experience: ``aput`` records nothing; outcomes are recorded with
:meth:`ExperienceBlock.arecord_outcome` (or the core
:class:`~ltm_agent.evolution.ExperienceMemory`) once the environment or user
gives a verdict.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory.memory import BaseMemoryBlock
from pydantic import Field, InstanceOf

from ltm_agent.evolution import ExperienceMemory, Playbook
from ltm_agent.llm import quote_data
from ltm_agent.store import MemoryStore

__all__ = ["ExperienceBlock"]


class ExperienceBlock(BaseMemoryBlock[str]):
    """Recalled experience and playbook rules for the newest user message.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> block = ExperienceBlock(store=InMemoryStore(HashingEmbedder()), namespace=("agent-1",))
        >>> import asyncio
        >>> asyncio.run(block.arecord_outcome("user asks for a refund", "ask for the order id", 1.0, solved=True))
    """

    name: str = Field(default="experience", description="The name of the memory block.")
    description: Optional[str] = Field(
        default="Past situations like this one with what was tried and how it paid off, and learned rules."
    )
    store: InstanceOf[MemoryStore] = Field(exclude=True, description="Where experience lives.")
    namespace: tuple[str, ...] = Field(description="The agent's (or user's) namespace.")
    k: int = Field(default=4, ge=1, description="Cases recalled per call.")

    def _memory(self) -> ExperienceMemory:
        return ExperienceMemory(self.store, self.namespace)

    async def _aget(self, messages: Optional[list[ChatMessage]] = None, **block_kwargs: Any) -> str:
        users = [m for m in messages or [] if m.role.value == "user" and (m.content or "").strip()]
        if not users:
            return ""
        situation = str(users[-1].content)

        def read() -> str:
            hits = self._memory().recall(situation, self.k)
            rules = Playbook(self.store, self.namespace).render()
            parts = [quote_data("experience", "\n\n".join(h.experience.render() for h in hits))] if hits else []
            if rules:
                parts.append(quote_data("playbook", rules))
            return "\n".join(parts)

        return await asyncio.to_thread(read)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        return None  # chat messages are not outcomes; see arecord_outcome

    async def arecord_outcome(self, situation: str, action: str, reward: float, *, solved: bool = False) -> None:
        """Record what ``action`` earned in ``situation``."""
        await asyncio.to_thread(self._memory().record, situation, action, reward, success=solved)
