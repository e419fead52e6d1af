"""Files the package ships: the sample conversation used by the README and docs."""

from __future__ import annotations

from pathlib import Path

__all__ = ["sample_conversation_path"]


def sample_conversation_path() -> Path:
    """Path of the sample multi-session conversation (our own, in ``jsonl`` format)."""
    return Path(__file__).parent / "sample_conversation.json"
