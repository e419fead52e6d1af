"""A LlamaIndex FunctionAgent with ltm-agent long-term memory on Chroma, offline.

What it shows:

1. ``Memory.from_defaults`` with three ltm-agent blocks (episodic timeline,
   entropy-decay buffer, bi-temporal facts) over a persistent Chroma store.
   Old turns flush from LlamaIndex's short-term queue into the blocks.
2. The agent is asked about something that has left the short-term queue.
   The script prints the system prompt the LLM was shown: the recalled memory,
   dated and quoted as data.
3. A second user goes through the *same* block instance and sees none of the
   first user's memories (each user is a namespace: ``tenant_for`` maps the
   session id ``"bob:chat-1"`` to the user ``bob``).
4. ``LTMChatMemory`` on a reopened store: long-term memory survives the
   process, and a new chat of the same user recalls it.

The LLM is LlamaIndex's ``MockFunctionCallingLLM``: it echoes and calls no
model, so the script runs offline. Swap in any function-calling LLM. Embeddings
come from the offline MiniLM model that ships with ltm-agent.

Run:
    python examples/llamaindex_agent.py [--path DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.llms.mock import MockFunctionCallingLLMWithChatMemoryOfLastCall
from llama_index.core.memory import Memory
from llama_index.core.storage.chat_store.sql import MessageStatus

from ltm_agent.buffer import StatisticalScorer
from ltm_agent.facts.patterns import PatternFactExtractor
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.plugins.llamaindex import (
    EntropyBufferBlock,
    EpisodicTimelineBlock,
    FactsBlock,
    LTMChatMemory,
)

TENANT = ("acme-support",)


def user_of(session_id: str) -> tuple[str]:
    """Session ids here read "<user>:<chat>"; long-term memory belongs to the user."""
    return (session_id.split(":")[0],)

ALICE = [
    ("user", "Hi! I live in Lisbon and I work as a nurse."),
    ("assistant", "Nice to meet you! How can I help?"),
    ("user", "My cat is called Miso. She hates the vet."),
    ("assistant", "Poor Miso. Many cats do."),
    ("user", "Can you remind me to buy cat food on Friday?"),
    ("assistant", "I will keep it in mind."),
]
BOB = [
    ("user", "Hello, I have a parrot called Kiwi."),
    ("assistant", "Parrots are clever birds."),
    ("user", "He can say about forty words."),
    ("assistant", "Impressive!"),
]


def system_prompt_of(llm: MockFunctionCallingLLMWithChatMemoryOfLastCall) -> str:
    """What the LLM saw in its system messages on its last call."""
    return "\n".join(m.content or "" for m in llm.last_chat_messages or [] if m.role.value == "system")


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def memory_for(session_id: str, blocks: list) -> Memory:
    # A small short-term queue (60 * 0.5 = 30 tokens) so turns flush into the blocks within this demo.
    return Memory.from_defaults(
        session_id=session_id, memory_blocks=blocks, token_limit=60, chat_history_token_ratio=0.5, token_flush_size=10
    )


async def replay(memory: Memory, script: list[tuple[str, str]]) -> None:
    """Put an earlier, scripted conversation into memory, as an agent's runs would have."""
    await memory.aput_messages([ChatMessage(role=role, content=text) for role, text in script])


async def main(path: Path) -> None:
    started = time.perf_counter()
    print(f"1. Opening a persistent Chroma store at {path} (offline MiniLM embeddings)")
    store = ChromaStore.persistent(path)
    blocks = [
        EpisodicTimelineBlock(store=store, namespace=TENANT, tenant_for=user_of, budget_tokens=300),
        EntropyBufferBlock(budget_tokens=80, scorer_factory=StatisticalScorer),
        FactsBlock(store=store, namespace=TENANT, tenant_for=user_of, extractor=PatternFactExtractor()),
    ]
    llm = MockFunctionCallingLLMWithChatMemoryOfLastCall()
    agent = FunctionAgent(llm=llm, tools=[], system_prompt="You are a friendly support assistant.")

    alice = memory_for("alice:chat-1", blocks)
    await replay(alice, ALICE)
    flushed = len(await alice.aget_all(status=MessageStatus.ARCHIVED))
    print(f"   Alice's {len(ALICE)} turns are in; {flushed} flushed out of LlamaIndex's short-term queue into")
    print(f"   the blocks, stored under Alice's namespace {blocks[0].recall.tenant('alice:chat-1')}.")

    print("\n2. Alice asks about her cat; the LLM was shown this system prompt:")
    await agent.run("What is my cat called?", memory=alice)
    alice_prompt = system_prompt_of(llm)
    print(indent(alice_prompt))
    assert "Miso" in alice_prompt

    print("\n3. Bob uses the same block instances in his own session:")
    bob = memory_for("bob:chat-1", blocks)
    await replay(bob, BOB)
    await agent.run("What is my pet called, and where do I live?", memory=bob)
    bob_prompt = system_prompt_of(llm)
    leaked = [word for word in ("Miso", "Lisbon", "nurse") if word in bob_prompt]
    print(f"   Kiwi recalled for Bob: {'Kiwi' in bob_prompt}; Alice's details in Bob's prompt: {leaked or 'none'}")
    assert "Kiwi" in bob_prompt and not leaked
    store.close()

    print("\n4. A new process: reopen the store; Alice starts a new chat with LTMChatMemory")
    with ChromaStore.persistent(path) as reopened:
        memory = LTMChatMemory.from_defaults(
            store=reopened, namespace=(*TENANT, "alice"), session_id="chat-2", token_limit=200, insert_method="system"
        )
        # Only flushed turns reached long-term memory: Memory's queue lives in its own chat store
        # (in-process SQLite unless Memory.from_defaults(async_database_uri=...) names a database).
        await agent.run("Remind me, what does my cat hate?", memory=memory)
        prompt = system_prompt_of(llm)
        recalled = [line for line in prompt.splitlines() if line.startswith("<memory id=")]
        print("   recalled from long-term memory:")
        print(indent("\n".join(recalled[:4])))
        assert any("hates the vet" in line for line in recalled)
        turns = len(memory.recall.timeline("chat-2").episodes())
        print(f"   Alice's timeline now has {turns} turns over two chats (the new question and reply were recorded too)")

    print(f"\nDone in {time.perf_counter() - started:.1f} s.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, help="Chroma directory (default: a temporary one)")
    args = parser.parse_args()
    if args.path is not None:
        asyncio.run(main(args.path))
    else:
        with tempfile.TemporaryDirectory(prefix="ltm-llamaindex-") as tmp:
            asyncio.run(main(Path(tmp) / "store"))
