"""Insights as a playbook (ExpeL, ACE): short rules with helpful/harmful counters, changed by deltas only.

A playbook lives in ``namespace + ("playbook",)``. It changes only through
small delta operations (:class:`Delta`: ADD, UPVOTE, DOWNVOTE, EDIT, REMOVE),
never by a whole rewrite (ACE measured a rewrite collapsing an 18k-token
playbook to 122 tokens). An ADD whose text is a near-duplicate of a bullet
(cosine >= ``merge_threshold``, 0.9) upvotes that bullet instead and keeps the
new text's provenance. A bullet whose harmful count exceeds its helpful count
is pruned: moved to ``namespace + ("playbook", "archive")``, restorable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field

from ltm_agent.errors import InvalidInputError, NotFoundError
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import StoredItem
from ltm_agent.store import MemoryStore

__all__ = ["Bullet", "Delta", "DeltaOp", "Playbook"]


class DeltaOp(StrEnum):
    """The only ways a playbook changes."""

    ADD = "ADD"
    UPVOTE = "UPVOTE"
    DOWNVOTE = "DOWNVOTE"
    EDIT = "EDIT"
    REMOVE = "REMOVE"


class Delta(BaseModel):
    """One small change to the playbook (what a reflector proposes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: DeltaOp
    bullet_id: str | None = Field(default=None, description="Target bullet (all ops but ADD).")
    text: str | None = Field(default=None, max_length=500, description="New rule text (ADD, EDIT).")
    pattern: str | None = Field(default=None, max_length=200, description="Machine key of a statistics rule.")
    value: float | None = Field(default=None, description="Mean credit behind a statistics rule.")
    count: int = Field(default=1, ge=1, le=1000, description="Votes (UPVOTE, DOWNVOTE).")
    source: str = Field(default="llm", max_length=40)


@dataclass(slots=True)
class Bullet:
    """One rule with its counters and provenance."""

    id: str
    text: str
    helpful: int = 1
    harmful: int = 0
    pattern: str = ""
    value: float = 0.0
    source: str = "llm"
    merged: list[str] = field(default_factory=list)

    def to_item(self, namespace: Namespace) -> StoredItem:
        meta = {
            "kind": "insight",
            "helpful": self.helpful,
            "harmful": self.harmful,
            "pattern": self.pattern,
            "value": float(self.value),
            "source": self.source,
            "merged": json.dumps(self.merged[-50:], ensure_ascii=False),
        }
        return StoredItem(namespace, self.id, self.text, meta)

    @classmethod
    def from_item(cls, item: StoredItem) -> Bullet:
        m = item.metadata
        return cls(
            item.id,
            item.text,
            int(m.get("helpful", 1)),
            int(m.get("harmful", 0)),
            str(m.get("pattern", "")),
            float(m.get("value", 0.0)),
            str(m.get("source", "llm")),
            list(json.loads(str(m.get("merged", "[]")))),
        )


class Playbook:
    """The namespace's rules, changed only by :class:`Delta` operations.

    Example:
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> book = Playbook(InMemoryStore(), ("agent-1",))
        >>> _ = book.apply([Delta(op="ADD", text="Open a container before putting things in it.")])
        >>> [b.helpful for b in book.bullets()]
        [1]
    """

    def __init__(self, store: MemoryStore, namespace: Namespace, *, merge_threshold: float = 0.9) -> None:
        self.store = store
        base = validate_namespace(tuple(namespace))
        self.namespace = base + ("playbook",)
        self.archive = base + ("playbook", "archive")
        self.merge_threshold = merge_threshold

    def bullets(self) -> list[Bullet]:
        """Every live bullet, most helpful first."""
        out = [Bullet.from_item(i) for i in self.store.list(self.namespace)]
        return sorted(out, key=lambda b: (-(b.helpful - b.harmful), b.id))

    def render(self, limit: int = 20) -> str:
        """The playbook as prompt text (one bullet a line with its counters)."""
        lines = [f"- [{b.id}] {b.text} (helpful {b.helpful}, harmful {b.harmful})" for b in self.bullets()[:limit]]
        return "\n".join(lines)

    def _near_duplicate(self, text: str, exclude: str | None = None) -> Bullet | None:
        if self.store.embedder is None:
            return None
        for hit in self.store.search(self.namespace, text, limit=3):
            if hit.score >= self.merge_threshold and hit.item.id != exclude:
                return Bullet.from_item(hit.item)
        return None

    def apply(self, deltas: Sequence[Delta]) -> list[str]:
        """Apply deltas in order, then prune; returns the ids of bullets touched.

        Raises:
            InvalidInputError: An ADD/EDIT without text, or a non-ADD without ``bullet_id``.
            NotFoundError: A delta names a bullet that does not exist.
        """
        touched: list[str] = []
        for delta in deltas:
            if delta.op in (DeltaOp.ADD, DeltaOp.EDIT) and not (delta.text or "").strip():
                raise InvalidInputError(f"{delta.op} needs non-empty text, got {delta.text!r}; write the rule")
            if delta.op is not DeltaOp.ADD and not delta.bullet_id:
                raise InvalidInputError(f"{delta.op} needs bullet_id, got {delta.bullet_id!r}; name the bullet")
        for delta in deltas:
            touched.append(self._apply_one(delta))
        self.prune()
        return list(dict.fromkeys(touched))

    def _get(self, bullet_id: str) -> Bullet:
        item = self.store.get(self.namespace, [bullet_id])[0]
        if item is None:
            raise NotFoundError(f"no bullet {bullet_id!r} in playbook {'/'.join(self.namespace)}; list bullets() first")
        return Bullet.from_item(item)

    def find(self, pattern: str) -> Bullet | None:
        """The live bullet with this machine pattern, if any."""
        items = self.store.list(self.namespace, filter={"pattern": pattern}, limit=1)
        return Bullet.from_item(items[0]) if items else None

    def _apply_one(self, delta: Delta) -> str:
        if delta.op is DeltaOp.ADD:
            text = (delta.text or "").strip()
            same = self.find(delta.pattern) if delta.pattern else self._near_duplicate(text)
            if same is not None:  # merge: one more vote, the new wording kept as provenance
                same.helpful += 1
                same.merged.append(text)
                self.store.put([same.to_item(self.namespace)])
                return same.id
            bullet_id = "ins-" + hashlib.blake2b((delta.pattern or text).encode("utf-8"), digest_size=6).hexdigest()
            bullet = Bullet(bullet_id, text, 1, 0, delta.pattern or "", delta.value or 0.0, delta.source)
            self.store.put([bullet.to_item(self.namespace)])
            return bullet_id
        bullet = self._get(str(delta.bullet_id))
        if delta.op is DeltaOp.REMOVE:
            self._archive([bullet])
            return bullet.id
        if delta.op is DeltaOp.UPVOTE:
            bullet.helpful += delta.count
        elif delta.op is DeltaOp.DOWNVOTE:
            bullet.harmful += delta.count
        elif delta.op is DeltaOp.EDIT:
            bullet.merged.append(bullet.text)
            bullet.text = (delta.text or "").strip()
            if delta.value is not None:
                bullet.value = delta.value
        self.store.put([bullet.to_item(self.namespace)])
        return bullet.id

    def prune(self) -> list[str]:
        """Archive bullets whose harmful count exceeds their helpful count; returns their ids."""
        bad = [b for b in self.bullets() if b.harmful > b.helpful]
        self._archive(bad)
        return [b.id for b in bad]

    def _archive(self, bullets: Sequence[Bullet]) -> None:
        if bullets:
            self.store.put([b.to_item(self.archive) for b in bullets])
            self.store.delete(self.namespace, [b.id for b in bullets])

    def restore(self, bullet_ids: Sequence[str]) -> int:
        """Bring archived bullets back (counters reset to 1 helpful, 0 harmful)."""
        items = [i for i in self.store.get(self.archive, list(bullet_ids)) if i is not None]
        bullets = [Bullet.from_item(i) for i in items]
        for b in bullets:
            b.helpful, b.harmful = 1, 0
        if bullets:
            self.store.put([b.to_item(self.namespace) for b in bullets])
            self.store.delete(self.archive, [b.id for b in bullets])
        return len(bullets)
