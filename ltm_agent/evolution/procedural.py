"""Procedural memory: the agent's instructions as versioned, revertible records.

Versions live in ``namespace + ("procedure",)`` as ``v000001``, ``v000002``...
Each version records the insight (bullet) ids that caused it. ``revert(v)``
writes a *new* version with version ``v``'s text, so history is never lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from ltm_agent.errors import InvalidInputError, NotFoundError, describe
from ltm_agent.evolution.playbook import Playbook
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import StoredItem
from ltm_agent.store import MemoryStore

__all__ = ["ProceduralMemory", "ProcedureVersion"]


@dataclass(frozen=True, slots=True)
class ProcedureVersion:
    """One version of the instructions."""

    version: int
    text: str
    insights: tuple[str, ...]
    reverted_from: int | None = None


def _vid(version: int) -> str:
    return f"v{version:06d}"


class ProceduralMemory:
    """Versioned instructions with provenance.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> proc = ProceduralMemory(InMemoryStore(), ("agent-1",))
        >>> proc.update("Be brief.", insights=[]).version
        1
        >>> proc.update("Be brief. Open containers first.", insights=["ins-1"]).version
        2
        >>> proc.revert(1).text
        'Be brief.'
    """

    def __init__(self, store: MemoryStore, namespace: Namespace) -> None:
        self.store = store
        self.namespace = validate_namespace(tuple(namespace)) + ("procedure",)

    def versions(self) -> list[ProcedureVersion]:
        """Every version, oldest first."""
        return [self._from_item(i) for i in self.store.list(self.namespace)]

    def current(self) -> ProcedureVersion | None:
        """The latest version (``None`` before the first update)."""
        n = self.store.count(self.namespace)
        if n == 0:
            return None
        return self._from_item(self.store.list(self.namespace, offset=n - 1, limit=1)[0])

    def update(self, text: str, *, insights: Sequence[str], reverted_from: int | None = None) -> ProcedureVersion:
        """Write a new version (unchanged text writes nothing and returns the current one)."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"instructions must be non-empty text, got {describe(text)}")
        latest = self.current()
        if latest is not None and latest.text == text and reverted_from is None:
            return latest
        version = ProcedureVersion((latest.version if latest else 0) + 1, text, tuple(insights), reverted_from)
        meta = {"kind": "procedure", "version": version.version, "insights": json.dumps(list(version.insights))}
        if reverted_from is not None:
            meta["reverted_from"] = reverted_from
        self.store.put([StoredItem(self.namespace, _vid(version.version), text, meta)])
        return version

    def revert(self, version: int) -> ProcedureVersion:
        """Make ``version``'s text current again (as a new version)."""
        item = self.store.get(self.namespace, [_vid(version)])[0]
        if item is None:
            raise NotFoundError(f"no procedure version {version!r}; see versions() for the existing ones")
        old = self._from_item(item)
        return self.update(old.text, insights=old.insights, reverted_from=version)

    def evolve(self, base: str, playbook: Playbook, *, limit: int = 12) -> ProcedureVersion:
        """Instructions = ``base`` plus the playbook's best rules; records which rules caused it."""
        bullets = [b for b in playbook.bullets() if b.helpful > b.harmful][:limit]
        text = base.strip()
        if bullets:
            text += "\nLessons from experience:\n" + "\n".join(f"- {b.text}" for b in bullets)
        return self.update(text, insights=[b.id for b in bullets])

    @staticmethod
    def _from_item(item: StoredItem) -> ProcedureVersion:
        m = item.metadata
        rev = m.get("reverted_from")
        return ProcedureVersion(
            int(m["version"]), item.text, tuple(json.loads(str(m.get("insights", "[]")))), int(rev) if rev is not None else None
        )
