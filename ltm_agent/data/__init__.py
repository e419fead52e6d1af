"""Files the package ships: the sample conversation used by the README and docs, and the
example file of docs/formats.md."""

from __future__ import annotations

from pathlib import Path

__all__ = ["example_conversations_path", "sample_conversation_path"]


def sample_conversation_path() -> Path:
    """Path of the sample multi-session conversation (our own, in ``jsonl`` format)."""
    return Path(__file__).parent / "sample_conversation.json"


def example_conversations_path() -> Path:
    """Path of the complete ``jsonl`` example of docs/formats.md (two conversations, one per line)."""
    return Path(__file__).parent / "example_conversations.jsonl"
