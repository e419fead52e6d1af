"""Build test sessions from plain text: one helper shared by the read-path tests and their fixtures."""

from __future__ import annotations

from datetime import datetime, timedelta

from ltm_agent.conversations import Session, Turn


def sessions_of(said: dict[str, list[str]], start: datetime, *, speaker: str = "Ann") -> tuple[Session, ...]:
    """One session per key, a day apart from ``start``, each turn the user's (``"<session>-<n>"`` ids)."""
    return tuple(
        Session(id=sid, date=start + timedelta(days=i),
                turns=tuple(Turn(id=f"{sid}-{j}", role="user", speaker=speaker, text=t) for j, t in enumerate(texts)))
        for i, (sid, texts) in enumerate(said.items())
    )
