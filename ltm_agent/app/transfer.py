"""Export and import a tenant's memory as JSON lines (backups, moving between stores).

The file is one header line, then one line per stored item::

    {"format": "ltm-agent-memory", "version": 1, "namespace": ["user-42"], "embedder": "...", "dimension": 384, ...}
    {"namespace": ["user-42"], "id": "turn-…", "text": "...", "key": null, "metadata": {...}, "vector": "<base64>", ...}

An export covers the namespace and every namespace under it (``user-42`` and
``user-42/conv-1``). Each item keeps its index vector (float32, little-endian,
base64), so a context key indexed under the sum of its turns' vectors comes
back exactly as it was, not re-embedded from its text. ``created_at`` and
``updated_at`` are written for the record; the importing store stamps its own
(stores own those times; event times live in metadata, so timelines are unchanged).

Import is all-or-nothing: the whole file is read and checked first (a malformed
line raises :class:`~ltm_agent.errors.DataFormatError` naming the line), a
target namespace that already holds memories is refused, and if a write fails
half-way the namespaces written so far are deleted again.

Core functions: :func:`export_memory`, :func:`import_memory`.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ltm_agent.dates import utcnow
from ltm_agent.errors import (
    DataFormatError,
    EmbedderMismatchError,
    InvalidInputError,
    LTMError,
    NotFoundError,
    StoreError,
)
from ltm_agent.namespaces import Namespace, format_namespace, validate_namespace
from ltm_agent.records import StoredItem
from ltm_agent.store import MemoryStore, PutOp

__all__ = ["FORMAT", "TransferReport", "export_memory", "import_memory"]

FORMAT = "ltm-agent-memory"
VERSION = 1
Scalar = bool | int | float | str


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    format: Literal["ltm-agent-memory"]
    version: Literal[1]
    namespace: list[str] = Field(min_length=1)
    embedder: str
    dimension: int = Field(ge=1)
    namespaces: int = Field(ge=0)
    items: int = Field(ge=0)
    exported_at: datetime


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    namespace: list[str] = Field(min_length=1)
    id: str = Field(min_length=1)
    text: str
    key: str | None = None
    metadata: dict[str, Scalar] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    vector: str | None = None


@dataclass(frozen=True)
class TransferReport:
    """What an export or import moved: namespaces and item counts, per namespace."""

    namespaces: dict[Namespace, int]
    embedder: str

    @property
    def items(self) -> int:
        return sum(self.namespaces.values())


def _tenant_namespaces(store: MemoryStore, namespace: Namespace) -> list[Namespace]:
    found = store.list_namespaces(namespace, limit=100_000)
    if not found:
        existing = store.list_namespaces(limit=21)
        listed = ", ".join(format_namespace(ns) for ns in existing[:20]) or "none"
        raise NotFoundError(
            f"namespace {format_namespace(namespace)!r} holds no memories (nor does any namespace under it); "
            f"namespaces in this store: {listed}"
        )
    return found


def _with_vectors(store: MemoryStore, namespace: Namespace) -> list[StoredItem]:
    """Every item of one namespace with its index vector, ordered by id."""
    listed = store.list(namespace)
    probe = np.zeros(store.embedder.dimension, dtype=np.float32)
    probe[0] = 1.0  # any finite query vector: the ranking does not matter, only that every item comes back
    hits = store.search(namespace, "export", mode="dense", limit=max(len(listed), 1), vector=probe, with_vectors=True)
    vectors = {hit.item.id: hit.item.vector for hit in hits}
    if set(vectors) != {item.id for item in listed} or any(v is None for v in vectors.values()):
        raise StoreError(
            f"the store returned {len(vectors)} of the {len(listed)} vectors of {format_namespace(namespace)!r}; "
            f"export needs a store whose dense search returns vectors (with_vectors=True)"
        )
    return [StoredItem(i.namespace, i.id, i.text, dict(i.metadata), i.key, i.created_at, i.updated_at, vectors[i.id])
            for i in listed]


def _encode(vector: Any) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def export_memory(store: MemoryStore, namespace: Namespace, out: TextIO | str | Path) -> TransferReport:
    """Write ``namespace`` and every namespace under it to ``out`` as JSON lines.

    Raises:
        NotFoundError: Nothing is stored under ``namespace`` (the message lists what is).

    Example:
        >>> import io
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> store = InMemoryStore(embedder=HashingEmbedder())
        >>> store.put([StoredItem(("u1",), "m1", "I moved to Berlin")])
        >>> buffer = io.StringIO()
        >>> export_memory(store, ("u1",), buffer).items
        1
    """
    namespace = validate_namespace(tuple(namespace))
    spaces = _tenant_namespaces(store, namespace)
    batches = {ns: _with_vectors(store, ns) for ns in spaces}  # read everything before writing a byte
    header = _Header(
        format=FORMAT, version=VERSION, namespace=list(namespace), embedder=store.embedder.name,
        dimension=store.embedder.dimension, namespaces=len(spaces), items=sum(map(len, batches.values())),
        exported_at=utcnow(),
    )
    lines = [header.model_dump_json()]
    for items in batches.values():
        lines += [
            _Line(namespace=list(i.namespace), id=i.id, text=i.text, key=i.key, metadata=dict(i.metadata),
                  created_at=i.created_at, updated_at=i.updated_at, vector=_encode(i.vector)).model_dump_json()
            for i in items
        ]
    text = "\n".join(lines) + "\n"
    if isinstance(out, (str, Path)):
        Path(out).write_text(text, encoding="utf-8")
    else:
        out.write(text)
    return TransferReport({ns: len(items) for ns, items in batches.items()}, store.embedder.name)


def _problem(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(line)'}: {e['msg']}" for e in exc.errors()[:3])


def _read(source: TextIO | str | Path) -> tuple[str, list[str]]:
    name = str(source) if isinstance(source, (str, Path)) else "<stream>"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise NotFoundError(f"{path}: no such file; give a file written by `ltm-agent export`")
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"{path}: not UTF-8 (byte offset {exc.start}); give a file written by `ltm-agent export`") from None
    else:
        text = source.read()
    return name, [line for line in text.splitlines() if line.strip()]


def _parse(name: str, lines: list[str]) -> tuple[_Header, list[_Line]]:
    if not lines:
        raise DataFormatError(f"{name}: empty; an export starts with a header line (format {FORMAT!r})")
    try:
        header = _Header.model_validate_json(lines[0])
    except ValidationError as exc:
        raise DataFormatError(
            f"{name}: line 1 is not an ltm-agent export header ({_problem(exc)}); give a file written by `ltm-agent export`"
        ) from None
    prefix = tuple(header.namespace)
    records: list[_Line] = []
    seen: set[tuple[Namespace, str]] = set()
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = _Line.model_validate_json(line)
        except ValidationError as exc:
            raise DataFormatError(f"{name}: line {number} is not a stored item ({_problem(exc)})") from None
        ns = tuple(record.namespace)
        if ns[: len(prefix)] != prefix:
            raise DataFormatError(
                f"{name}: line {number} is in namespace {format_namespace(ns)!r}, outside the exported "
                f"{format_namespace(prefix)!r}; the file was edited by hand"
            )
        if (ns, record.id) in seen:
            raise DataFormatError(f"{name}: line {number} repeats id {record.id!r} in {format_namespace(ns)!r}")
        seen.add((ns, record.id))
        if record.vector is not None:
            try:
                size = len(base64.b64decode(record.vector, validate=True))
            except (binascii.Error, ValueError):
                raise DataFormatError(f"{name}: line {number}: vector is not base64") from None
            if size != 4 * header.dimension:
                raise DataFormatError(
                    f"{name}: line {number}: vector has {size // 4} floats, the header says {header.dimension}"
                )
        records.append(record)
    if len(records) != header.items:
        raise DataFormatError(
            f"{name}: the header promises {header.items} items, the file holds {len(records)}; it is truncated or edited"
        )
    return header, records


def import_memory(
    store: MemoryStore,
    source: TextIO | str | Path,
    *,
    namespace: Namespace | None = None,
    reembed: bool = False,
) -> TransferReport:
    """Write an export into ``store``, all or nothing.

    Args:
        store: The target store (empty in the target namespaces).
        source: A file path or text stream written by :func:`export_memory`.
        namespace: Import under this namespace instead of the exported one
            (sub-namespaces keep their place under it).
        reembed: Drop the file's vectors and let ``store`` embed every item's
            key (needed when ``store`` uses another embedder; context keys then
            lose their summed-vector indexing).

    Raises:
        DataFormatError: The file is malformed (nothing is written).
        EmbedderMismatchError: The file's vectors come from another embedder and ``reembed`` is false.
        InvalidInputError: A target namespace already holds memories (forget it first).

    Example:
        >>> import io
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> source = InMemoryStore(embedder=HashingEmbedder())
        >>> source.put([StoredItem(("u1",), "m1", "I moved to Berlin")])
        >>> buffer = io.StringIO()
        >>> _ = export_memory(source, ("u1",), buffer)
        >>> target = InMemoryStore(embedder=HashingEmbedder())
        >>> import_memory(target, io.StringIO(buffer.getvalue()), namespace=("u2",)).items
        1
    """
    name, lines = _read(source)
    header, records = _parse(name, lines)
    prefix = tuple(header.namespace)
    target = validate_namespace(tuple(namespace)) if namespace is not None else prefix
    if not reembed and (header.embedder != store.embedder.name or header.dimension != store.embedder.dimension):
        raise EmbedderMismatchError(
            f"{name} holds vectors of embedder {header.embedder!r} ({header.dimension} dims); this store embeds with "
            f"{store.embedder.name!r} ({store.embedder.dimension} dims); open the store with the same embedder, "
            f"or import with reembed (every item embedded again from its key)"
        )
    items = [
        StoredItem(
            validate_namespace((*target, *tuple(r.namespace)[len(prefix):])), r.id, r.text, dict(r.metadata), r.key,
            vector=None if reembed or r.vector is None
            else np.frombuffer(base64.b64decode(r.vector), dtype="<f4").astype(np.float32),
        )
        for r in records
    ]
    by_namespace: dict[Namespace, list[StoredItem]] = {}
    for item in items:
        by_namespace.setdefault(item.namespace, []).append(item)
    taken = [format_namespace(ns) for ns in by_namespace if store.count(ns)]
    if taken:
        raise InvalidInputError(
            f"namespace(s) {', '.join(taken)} already hold memories; import refuses to mix two histories: "
            f"forget them first (ltm-agent forget -n NAMESPACE) or import under another --namespace"
        )
    store.validate_ops([PutOp(item) for item in items])  # every item checked before the first write
    _write_all(store, by_namespace)
    return TransferReport({ns: len(batch) for ns, batch in by_namespace.items()}, store.embedder.name)


def _write_all(store: MemoryStore, by_namespace: dict[Namespace, list[StoredItem]]) -> None:
    """Write in store-sized batches; on any failure delete what was written (the targets were empty)."""
    step = store.limits.max_batch
    written: list[Namespace] = []
    try:
        for ns, batch in by_namespace.items():
            written.append(ns)
            for start in range(0, len(batch), step):
                store.put(batch[start:start + step])
    except (LTMError, OSError, RuntimeError) as exc:
        for ns in written:
            store.delete(ns)
        if isinstance(exc, LTMError):
            raise
        raise StoreError(f"import failed while writing ({exc}); nothing was kept, the target is as before") from exc


def dumps(store: MemoryStore, namespace: Namespace) -> str:
    """The export of ``namespace`` as one string (tests, small tenants)."""
    buffer = io.StringIO()
    export_memory(store, namespace, buffer)
    return buffer.getvalue()
