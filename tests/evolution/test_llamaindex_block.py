"""The LlamaIndex experience block inside a real llama_index Memory."""

from __future__ import annotations

import asyncio

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.evolution import Delta, DeltaOp, Playbook
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.plugins.llamaindex.evolution import ExperienceBlock


def test_block_reads_recalled_experience_and_rules_into_the_prompt() -> None:
    store = InMemoryStore(HashingEmbedder(64))
    block = ExperienceBlock(store=store, namespace=("agent-1",))
    asyncio.run(block.arecord_outcome("the user asks for a refund", "ask for the order id", 1.0, solved=True))
    Playbook(store, ("agent-1",)).apply([Delta(op=DeltaOp.ADD, text="Ask for the order id first.")])
    memory = Memory.from_defaults(session_id="s1", memory_blocks=[block], token_limit=4000)
    text = asyncio.run(block.aget([ChatMessage(role="user", content="the user asks for a refund")]))
    assert "ask for the order id" in text and "Ask for the order id first." in text
    assert asyncio.run(block.aget([])) == ""
    assert memory is not None
    assert store.count(("agent-2",)) == 0
