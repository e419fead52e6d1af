"""How LangGraph items map onto ltm-agent store items, and LangGraph's filter rules.

Pure functions, no I/O. The mapping:

* **Namespaces.** Every LangGraph namespace lives under the root label
  :data:`ROOT` (``("users", "ana")`` is stored as ``("langgraph-store",
  "users", "ana")``), so no namespace the core API writes (``("memories",
  "ana")`` from the memory nodes, a CLI ingest) is ever one a LangGraph reader
  sees, or the other way round: the two encodings never meet (issue: a label
  ``"a b"`` escaped to ``"a.20b"`` used to alias the core namespace
  ``("memories", "a.20b")``). The root label is reserved for :class:`LTMStore`.
  LangGraph labels are any non-empty string without ``.``;
  ltm-agent labels are 1-128 characters of ``A-Z a-z 0-9 _ . @ : + = -``.
  A label made only of those characters (except ``.``) is kept as it is; any
  other character becomes ``.XX`` per UTF-8 byte (``"a b"`` -> ``"a.20b"``),
  which is unambiguous because LangGraph labels never contain ``.``. A label
  whose encoding is longer than 128 characters becomes ``..`` plus a sha256
  digest; such namespaces are decoded from the ``lg.ns`` metadata of their
  items. Labels are encoded one by one, so the encoding of a prefix is a
  prefix of the encoding: prefix search and listing push down to the store.
* **Items.** One LangGraph item is one *document* record (id ``k:<key>``,
  text = the value as JSON, index key = the first text to embed) plus one
  *vector* record per further text to embed (id ``v<i>:<doc id>``). Every
  record carries the metadata used to find it: ``lg.role`` (``doc``/``vec``),
  ``lg.owner`` (the document id), ``lg.rev`` (a token shared by a document and
  its vectors, so a stale vector is never counted), ``lg.vec`` (searchable by
  query) and ``v.<field>`` for short top-level string fields (filter pushdown).
* **Filters.** :func:`matches` is LangGraph's filter semantics (``InMemoryStore``):
  equality (nested dicts and lists compared structurally) and ``$eq $ne $gt
  $gte $lt $lte``. Only string equality is pushed down to the store, because
  it is the only condition whose metadata form matches exactly the same items.

Core types: :class:`DocRecord`; functions :func:`encode_namespace`,
:func:`decode_namespace`, :func:`doc_id`, :func:`build_records`,
:func:`compile_filter`, :func:`matches`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import get_text_at_path, tokenize_path

from ltm_agent.errors import InvalidFilterError, InvalidInputError, InvalidTypeError, TextTooLargeError, describe
from ltm_agent.namespaces import MAX_DEPTH, Namespace
from ltm_agent.records import Scalar, StoredItem

__all__ = [
    "LG_OPERATORS",
    "MAX_LG_DEPTH",
    "ROOT",
    "NOT_INDEXED_KEY",
    "DocRecord",
    "build_records",
    "compile_filter",
    "decode_namespace",
    "doc_id",
    "encode_namespace",
    "is_hashed",
    "matches",
    "tokenize_fields",
    "value_of",
]

LG_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
ROOT = "langgraph-store"
"""First label of every namespace LTMStore writes (reserved for it)."""
MAX_LG_DEPTH = MAX_DEPTH - 1
"""Most labels of a LangGraph namespace (the root takes one)."""
NOT_INDEXED_KEY = "(not indexed)"
"""Index key of a document that is not searchable by query: short, so embedding it costs nothing."""

_PLAIN = re.compile(r"^[A-Za-z0-9_@:+=\-]{1,128}$")
_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@:+=-")
_ESCAPE = re.compile(r"\.([0-9A-F]{2})")
_HASHED = ".."
_FIELD = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MAX_PUSHED = 512  # longest string value kept as metadata (and so pushed down as a filter)
_MAX_KEY_CHARS = 200


# ---------------------------------------------------------------------------
# Namespaces and ids


def _encode_label(label: str) -> str:
    if _PLAIN.match(label):
        return label
    encoded = "".join(c if c in _SAFE_CHARS else "".join(f".{b:02X}" for b in c.encode()) for c in label)
    if len(encoded) <= 128:
        return encoded
    return _HASHED + hashlib.sha256(label.encode()).hexdigest()


def encode_namespace(namespace: Sequence[str]) -> Namespace:
    """A LangGraph namespace as an ltm-agent namespace: the root label, then label by label.

    Raises:
        InvalidInputError: More labels than LTMStore namespaces hold.

    Example:
        >>> encode_namespace(("users", "Ana María"))
        ('langgraph-store', 'users', 'Ana.20Mar.C3.ADa')
    """
    if len(namespace) > MAX_LG_DEPTH:
        raise InvalidInputError(
            f"namespace {tuple(namespace)!r} has {len(namespace)} labels; LTMStore namespaces hold at most "
            f"{MAX_LG_DEPTH}: join some labels (e.g. 'org-team' instead of 'org', 'team')"
        )
    return (ROOT, *(_encode_label(label) for label in namespace))


def is_hashed(namespace: Namespace) -> bool:
    """True when a label of ``namespace`` was too long to encode reversibly."""
    return any(label.startswith(_HASHED) for label in namespace[1:])


def decode_namespace(namespace: Namespace) -> tuple[str, ...] | None:
    """The LangGraph namespace of an encoded one; ``None`` when it is hashed or not ours."""
    if not namespace or namespace[0] != ROOT:
        return None
    out: list[str] = []
    for label in namespace[1:]:
        if label.startswith(_HASHED) or "." in _ESCAPE.sub("", label):
            return None  # hashed, or a '.' that is no escape (a namespace something else wrote)
        decoded = _unescape(label) if "." in label else label
        if decoded is None:
            return None
        out.append(decoded)
    return tuple(out)


def _unescape(label: str) -> str | None:
    raw = bytearray()
    i = 0
    while i < len(label):
        if label[i] == ".":
            raw.append(int(label[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(label[i].encode())
            i += 1
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def doc_id(key: str) -> str:
    """The store id of the document record of a LangGraph key."""
    if not isinstance(key, str):
        raise InvalidTypeError(f"item keys must be str, got {describe(key)}")
    if 0 < len(key) <= _MAX_KEY_CHARS:
        return "k:" + key
    return "h:" + hashlib.sha256(key.encode()).hexdigest()


def vector_id(doc: str, slot: int) -> str:
    return f"v{slot}:{doc}"


# ---------------------------------------------------------------------------
# Values to records


def tokenize_fields(fields: Sequence[str]) -> list[tuple[str, str | list[str]]]:
    """Index paths in the form :func:`langgraph.store.base.get_text_at_path` takes."""
    return [(path, path if path == "$" else tokenize_path(path)) for path in fields]


@dataclass(frozen=True, slots=True)
class DocRecord:
    """The records one LangGraph put writes: the document, then its extra vectors."""

    doc: StoredItem
    vectors: tuple[StoredItem, ...]


def _texts(value: Mapping[str, Any], paths: Sequence[tuple[str, str | list[str]]], limit: int) -> list[str]:
    texts: list[str] = []
    for _, tokens in paths:
        for text in get_text_at_path(value, tokens):
            # Embedding models read a few hundred tokens; a longer text is cut, not refused.
            if text.strip():
                texts.append(text[:limit])
    return texts


def _pushdown_metadata(value: Mapping[str, Any]) -> dict[str, Scalar]:
    return {
        f"v.{field}": item
        for field, item in value.items()
        if isinstance(field, str) and _FIELD.match(field) and isinstance(item, str) and len(item) <= _MAX_PUSHED
    }


def build_records(
    encoded: Namespace,
    namespace: tuple[str, ...],
    key: str,
    value: Mapping[str, Any],
    paths: Sequence[tuple[str, str | list[str]]] | None,
    *,
    max_text_chars: int,
) -> DocRecord:
    """The document and vector records of one put (``paths=None``: not indexed).

    Raises:
        InvalidTypeError: ``value`` is not a JSON-serialisable dict.
        TextTooLargeError: The value's JSON is longer than the store accepts.
    """
    if not isinstance(value, Mapping):
        raise InvalidTypeError(f"item values must be dicts, got {describe(value)}")
    try:
        text = json.dumps(dict(value), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(
            f"the value of item {key!r} is not JSON-serialisable ({exc}); store str, numbers, bools, "
            f"None, lists and dicts only (convert datetimes with .isoformat())"
        ) from None
    if len(text) > max_text_chars:
        raise TextTooLargeError(
            f"the value of item {key!r} is {len(text):,} characters as JSON, over the store's limit of "
            f"{max_text_chars:,}; split it into several items or raise StoreLimits.max_text_chars"
        )
    texts = _texts(value, paths, max_text_chars) if paths is not None else []
    owner = doc_id(key)
    rev = uuid.uuid4().hex[:16]
    shared = _pushdown_metadata(value)
    meta: dict[str, Scalar] = {
        **shared,
        "lg.role": "doc",
        "lg.owner": owner,
        "lg.rev": rev,
        "lg.key": key,
        "lg.ns": json.dumps(list(namespace), ensure_ascii=False),
        "lg.vec": bool(texts),
        "lg.nvec": max(len(texts) - 1, 0),
    }
    doc = StoredItem(encoded, owner, text, meta, key=texts[0] if texts else NOT_INDEXED_KEY)
    vectors = tuple(
        StoredItem(
            encoded,
            vector_id(owner, slot),
            extra,
            {**shared, "lg.role": "vec", "lg.owner": owner, "lg.rev": rev, "lg.vec": True},
        )
        for slot, extra in enumerate(texts[1:], start=1)
    )
    return DocRecord(doc, vectors)


def stale_vector_ids(previous: StoredItem | None, keep: int) -> tuple[str, ...]:
    """Ids of the previous version's vector records beyond the ``keep`` the new version writes."""
    if previous is None:
        return ()
    count = int(previous.metadata.get("lg.nvec", 0))
    return tuple(vector_id(previous.id, slot) for slot in range(keep + 1, count + 1))


# ---------------------------------------------------------------------------
# Filters (LangGraph's semantics)


def value_of(value: Mapping[str, Any], key: str) -> Any:
    """``value[key]``, or the value at a dotted path when there is no such top-level key."""
    if key in value or "." not in key:
        return value.get(key)
    current: Any = value
    for part in key.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _check(filter: Mapping[str, Any], where: str = "filter") -> None:
    for key, condition in filter.items():
        if not isinstance(key, str):
            raise InvalidFilterError(f"{where} keys must be str, got {describe(key)}")
        if isinstance(condition, Mapping):
            for op, expected in condition.items():
                if isinstance(op, str) and op.startswith("$"):
                    if op not in LG_OPERATORS:
                        raise InvalidFilterError(
                            f"unsupported filter operator {op!r} on {key!r}; LangGraph stores support "
                            f"{', '.join(LG_OPERATORS)}"
                        )
                    if op in ("$gt", "$gte", "$lt", "$lte") and not _is_number(expected):
                        raise InvalidFilterError(f"{op} on {key!r} needs a number, got {describe(expected)}")


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def compile_filter(filter: Mapping[str, Any] | None) -> dict[str, Scalar]:
    """Validate a LangGraph filter; return the part that can run as a store metadata filter.

    Raises:
        InvalidFilterError: An unknown operator, or a range operator without a number.
    """
    if filter is None:
        return {}
    if not isinstance(filter, Mapping):
        raise InvalidFilterError(f"a filter must be a dict, got {describe(filter)}")
    _check(filter)
    pushed: dict[str, Scalar] = {}
    for key, condition in filter.items():
        if isinstance(condition, Mapping) and set(condition) == {"$eq"}:
            condition = condition["$eq"]
        if isinstance(condition, str) and _FIELD.match(key) and len(condition) <= _MAX_PUSHED:
            pushed[f"v.{key}"] = condition
    return pushed


def _apply(actual: Any, op: str, expected: Any) -> bool:
    if op == "$eq":
        return actual == expected
    if op == "$ne":
        return actual != expected
    try:
        left, right = float(actual), float(expected)
    except (TypeError, ValueError):
        return False  # LangGraph's InMemoryStore raises here; a missing or non-numeric field simply fails
    if op == "$gt":
        return left > right
    if op == "$gte":
        return left >= right
    if op == "$lt":
        return left < right
    return left <= right  # $lte


def _compare(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in expected):
            return all(_apply(actual, op, v) for op, v in expected.items())
        if not isinstance(actual, Mapping):
            return False
        return all(_compare(actual.get(k), v) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(expected)
            and all(_compare(a, e) for a, e in zip(actual, expected))
        )
    return actual == expected


def matches(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """True when an item value satisfies a LangGraph filter (checked by :func:`compile_filter`)."""
    return not filter or all(_compare(value_of(value, key), expected) for key, expected in filter.items())
