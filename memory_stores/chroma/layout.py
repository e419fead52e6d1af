"""How ltm-agent lays data out in Chroma: names, records, registry, filters.

Pure functions, no I/O. The layout:

* **One collection per namespace**, named ``ltm-<slug>-<digest>``: the slug
  keeps names readable, the 128-bit sha256 digest of the namespace's JSON
  form keeps tenants apart even when slugs collide. Collection metadata
  records the namespace, the embedder (``ltm:embedder``, ``ltm:dim``) and the
  layout version (``ltm:schema``); the space is cosine.
* **Records**: document = the item's index text (key or text); metadata =
  the user's metadata plus reserved keys ``_created_us`` / ``_updated_us``
  (integer microseconds since the epoch, exact), ``_writer`` (the store
  object that wrote it) and ``_text`` (the rendered text, present exactly
  when the item has a separate key).
* **Registry** (collection ``ltm-registry``): one record per namespace,
  id = sha256 of the namespace, with the namespace labels (``l0``..``l7``,
  for prefix listing), written before the namespace's first item. (Its
  ``revision`` field is no longer read: the side index follows Chroma's own
  records, see :mod:`~ltm_agent.memory_stores.chroma.sideindex`.) Its
  collection metadata records the store's embedder.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Mapping, Sequence

from ltm_agent.embeddings import Embedder
from ltm_agent.filters import validate_filter, value_kind
from ltm_agent.namespaces import Namespace, namespace_digest, namespace_key
from ltm_agent.records import StoredItem

__all__ = [
    "REGISTRY",
    "SCHEMA_VERSION",
    "MATCH_NOTHING",
    "collection_metadata",
    "collection_name",
    "decode",
    "encode_metadata",
    "from_micros",
    "registry_metadata",
    "registry_record",
    "to_micros",
    "to_where",
]

REGISTRY = "ltm-registry"
SCHEMA_VERSION = 1
MATCH_NOTHING: dict[str, Any] = {"__match_nothing__": True}
"""Returned by :func:`to_where` for a filter no item can satisfy (empty ``$in``)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def to_micros(when: datetime) -> int:
    """Exact integer microseconds since the epoch (Chroma ints are 64-bit)."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: Any) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def collection_name(namespace: Namespace) -> str:
    """``ltm-<slug>-<32 hex digits>``: valid for Chroma whatever the labels are.

    Example:
        >>> collection_name(("user@example.com", "agent:a"))[:28]
        'ltm-user-example-com.agent-a'
    """
    slug = ".".join(_UNSAFE.sub("-", label).strip("-") or "x" for label in namespace)[:48].strip(".-")
    return f"ltm-{slug or 'x'}-{namespace_digest(namespace, 32)}"


def registry_id(namespace: Namespace) -> str:
    return namespace_digest(namespace, 64)


def collection_metadata(namespace: Namespace, embedder: Embedder) -> dict[str, Any]:
    return {
        "ltm:schema": SCHEMA_VERSION,
        "ltm:namespace": namespace_key(namespace),
        "ltm:embedder": embedder.name,
        "ltm:dim": int(embedder.dimension),
    }


def registry_metadata(embedder: Embedder) -> dict[str, Any]:
    return {"ltm:schema": SCHEMA_VERSION, "ltm:embedder": embedder.name, "ltm:dim": int(embedder.dimension)}


def registry_record(namespace: Namespace) -> dict[str, Any]:
    """Upsert arguments for the namespace's registry entry with a fresh revision token."""
    meta: dict[str, Any] = {
        "namespace": namespace_key(namespace),
        "collection": collection_name(namespace),
        "depth": len(namespace),
        "revision": uuid.uuid4().hex,
    }
    meta.update({f"l{i}": label for i, label in enumerate(namespace)})
    return {
        "ids": [registry_id(namespace)],
        "embeddings": [[1.0]],
        "documents": [namespace_key(namespace)],
        "metadatas": [meta],
    }


def prefix_where(prefix: Namespace) -> dict[str, Any] | None:
    clauses = [{f"l{i}": label} for i, label in enumerate(prefix)]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def parse_registry_namespace(meta: Mapping[str, Any]) -> Namespace:
    return tuple(json.loads(str(meta["namespace"])))


def encode_metadata(item: StoredItem, created_us: int, updated_us: int) -> dict[str, Any]:
    meta: dict[str, Any] = dict(item.metadata)
    meta["_created_us"] = created_us
    meta["_updated_us"] = updated_us
    if item.key is not None:
        meta["_text"] = item.text
    return meta


def decode(namespace: Namespace, item_id: str, document: str | None, metadata: Mapping[str, Any] | None) -> StoredItem:
    """Rebuild a :class:`StoredItem` from one Chroma record."""
    raw = dict(metadata or {})
    text = raw.pop("_text", None)
    created = raw.pop("_created_us", None)
    updated = raw.pop("_updated_us", None)
    user = {k: v for k, v in raw.items() if not k.startswith("_")}
    document = document or ""
    return StoredItem(
        namespace=namespace,
        id=item_id,
        text=document if text is None else str(text),
        metadata=user,
        key=None if text is None else document,
        created_at=None if created is None else from_micros(created),
        updated_at=None if updated is None else from_micros(updated),
    )


def decode_get(namespace: Namespace, result: Mapping[str, Any]) -> dict[str, StoredItem]:
    """Decode a ``collection.get`` result (documents and metadatas included) by id."""
    docs = result.get("documents") or [None] * len(result["ids"])
    metas = result.get("metadatas") or [None] * len(result["ids"])
    return {i: decode(namespace, i, d, m) for i, d, m in zip(result["ids"], docs, metas)}


def to_where(filter: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Translate a filter to a Chroma ``where`` (``$and`` of single conditions).

    Returns ``None`` for no condition and :data:`MATCH_NOTHING` when a
    condition can never hold (an empty ``$in``).
    """
    clauses: list[dict[str, Any]] = []
    for key, ops in validate_filter(filter).items():
        for op, value in ops.items():
            if op in ("$in", "$nin"):
                values = list(value)
                if not values:
                    if op == "$in":
                        return MATCH_NOTHING
                    continue  # x not in [] always holds
                if value_kind(values[0]) == "number" and any(isinstance(v, float) for v in values):
                    values = [float(v) for v in values]  # Chroma wants one type per list
                clauses.append({key: {op: values}})
            else:
                clauses.append({key: {op: value}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def embedder_hint(name: str) -> str:
    if name == "all-MiniLM-L6-v2-onnx-int8":
        return "MiniLMEmbedder()"
    if name.startswith("fake-hashing-"):
        return f"HashingEmbedder({name.rsplit('-', 1)[-1]})"
    return f"the embedder named {name!r}"


def ids_in_order(ids: Sequence[str]) -> list[str]:
    """Ids without duplicates, first occurrence kept (Chroma rejects duplicates)."""
    return list(dict.fromkeys(ids))
