"""Rules every store backend shares: timestamps, ranking, paging, filter semantics.

Keeping these in one place is what makes the backends agree to the last tie:
results are sorted by score (descending) and then by id, pages are cut after
sorting, and ``created_at`` survives a replace.

Filter semantics are Chroma's, so the reference store cannot accept a filter
or a value that Chroma would treat differently:

* ``bool`` is its own type: ``{"flag": 1}`` does not match ``True``
  (Python's ``True == 1`` does not leak in). ``int`` and ``float`` compare
  as numbers (``1`` matches ``1.0``).
* A missing key fails every operator except ``$ne`` and ``$nin``, which it
  passes (as in Chroma and :func:`ltm_agent.filters.matches`).
* Range operators (``$gt $gte $lt $lte``) take a number (not a bool) and
  never match str or bool values.
* ``$in``/``$nin`` lists hold one kind of value (all str, all numbers or all
  bools); an empty ``$in`` matches nothing and an empty ``$nin`` everything.

:func:`check_ops` adds the checks that make a batch safe for every backend on
top of :meth:`ltm_agent.store.MemoryStore.validate_ops`: metadata floats must
be finite and ints must fit in 64 bits (Chroma silently drops or converts
others), keys must not start with ``chroma:`` (Chroma's reserved prefix).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any, Mapping, Sequence, TypeVar

from ltm_agent.errors import InvalidFilterError, InvalidInputError, describe
from ltm_agent.filters import validate_filter
from ltm_agent.records import ScoredItem, StoredItem, utcnow
from ltm_agent.store import ListOp, Op, PutOp, SearchOp

__all__ = ["check_ops", "copy_item", "matches", "page", "rank", "stamp", "value_kind"]

_RANGE = ("$gt", "$gte", "$lt", "$lte")
_I64 = (-(2**63), 2**63 - 1)

T = TypeVar("T")


def stamp(item: StoredItem, previous: StoredItem | None, now: datetime | None = None) -> StoredItem:
    """Return ``item`` with store-owned times set.

    ``created_at`` is kept from ``previous`` when the item replaces one,
    otherwise it is ``now``; any value the caller put on the item is ignored
    (the store, not the caller, records when it learned something; put event
    times in metadata). ``updated_at`` is always ``now``.
    """
    now = now or utcnow()
    created = previous.created_at if previous is not None and previous.created_at else now
    return replace(item, metadata=dict(item.metadata), created_at=created, updated_at=now)


def copy_item(item: StoredItem, vector: Any = None) -> StoredItem:
    """A copy with its own metadata dict, so a caller mutating a result never edits the store.

    ``vector``, when given, replaces the item's vector (searches with ``with_vectors``).
    (The constructor, not ``dataclasses.replace``: searches copy hundreds of items.)
    """
    return StoredItem(
        item.namespace, item.id, item.text, dict(item.metadata), item.key, item.created_at, item.updated_at,
        item.vector if vector is None else vector,
    )


def rank(scored: Sequence[ScoredItem]) -> list[ScoredItem]:
    """Sort by score, best first; equal scores by id."""
    return sorted(scored, key=lambda s: (-s.score, s.item.id))


def page(values: Sequence[T], limit: int | None, offset: int) -> list[T]:
    """``values[offset : offset + limit]`` (``limit=None`` means no limit)."""
    end = None if limit is None else offset + limit
    return list(values[offset:end])


def value_kind(value: Any) -> str:
    """``"bool"``, ``"number"`` or ``"str"``: the kinds that compare with each other."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "str"


def _same(actual: Any, expected: Any) -> bool:
    return value_kind(actual) == value_kind(expected) and actual == expected


def _holds(actual: Any, present: bool, op: str, expected: Any) -> bool:
    if op == "$ne":
        return not present or not _same(actual, expected)
    if op == "$nin":
        return not present or not any(_same(actual, v) for v in expected)
    if not present:
        return False
    if op == "$eq":
        return _same(actual, expected)
    if op == "$in":
        return any(_same(actual, v) for v in expected)
    if value_kind(actual) != "number":
        return False
    if op == "$gt":
        return bool(actual > expected)
    if op == "$gte":
        return bool(actual >= expected)
    if op == "$lt":
        return bool(actual < expected)
    return bool(actual <= expected)  # $lte


def matches(metadata: Mapping[str, Any], normal: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when ``metadata`` satisfies a normalised filter, with Chroma's semantics."""
    for key, ops in normal.items():
        present = key in metadata
        actual = metadata.get(key)
        for op, expected in ops.items():
            if not _holds(actual, present, op, expected):
                return False
    return True


def _check_filter(filter: Any) -> None:
    for key, ops in validate_filter(filter).items():
        for op, value in ops.items():
            if op in _RANGE and value_kind(value) != "number":
                raise InvalidFilterError(
                    f"{op} on {key!r} needs a number, got {describe(value)}; "
                    f"range filters compare numbers only (store times as timestamps)"
                )
            if op in ("$in", "$nin") and len({value_kind(v) for v in value}) > 1:
                raise InvalidFilterError(
                    f"{op} on {key!r} mixes kinds of values ({describe(list(value))}); "
                    f"use all str, all numbers or all bools"
                )


def _check_metadata(item: StoredItem) -> None:
    for key, value in item.metadata.items():
        if key.startswith("chroma:"):
            raise InvalidInputError(f"metadata key {key!r} is reserved (prefix 'chroma:'); rename it")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(
                f"metadata {key!r} is {value!r}; Chroma cannot store NaN or infinity, store a finite float or a str"
            )
        if isinstance(value, int) and not isinstance(value, bool) and not _I64[0] <= value <= _I64[1]:
            raise InvalidInputError(
                f"metadata {key!r} = {value} does not fit in 64 bits; store it as str"
            )


def check_ops(ops: Sequence[Op]) -> None:
    """Backend-neutral checks on ops already passed through ``validate_ops``."""
    for op in ops:
        if isinstance(op, PutOp):
            _check_metadata(op.item)
        elif isinstance(op, (SearchOp, ListOp)):
            _check_filter(op.filter)
