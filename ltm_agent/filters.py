"""Metadata filters: one small language every store understands.

A filter maps metadata keys to either a scalar (equality) or an operator dict::

    {"kind": "turn", "event_ts": {"$gte": 1.7e9, "$lt": 1.8e9}, "role": {"$in": ["user"]}}

Operators: ``$eq $ne $gt $gte $lt $lte $in $nin``. All conditions must hold.
Stores translate a validated :data:`Filter` to their engine's form; the
reference store and side indexes use :func:`matches`.

The semantics are Chroma's, so no backend can accept a filter or a value that
Chroma would treat differently:

* ``bool`` is its own type: ``{"flag": 1}`` does not match ``True`` (Python's
  ``True == 1`` does not leak in). ``int`` and ``float`` compare as numbers
  (``1`` matches ``1.0``).
* A missing key fails every operator except ``$ne`` and ``$nin``, which it passes.
* Range operators (``$gt $gte $lt $lte``) take a number (not a bool) and never
  match str or bool values.
* ``$in``/``$nin`` lists hold one kind of value (all str, all numbers or all
  bools); an empty ``$in`` matches nothing and an empty ``$nin`` everything.

Core types: :data:`Filter`, :func:`validate_filter`, :func:`matches`, :func:`value_kind`.
"""

from __future__ import annotations

from typing import Any, Mapping

from ltm_agent.errors import InvalidFilterError, describe

__all__ = ["OPERATORS", "Filter", "matches", "validate_filter", "value_kind"]

Filter = Mapping[str, Any]
"""Metadata key -> scalar or ``{"$op": value}``."""

OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"})
_SCALARS = (str, int, float, bool)
_RANGE = ("$gt", "$gte", "$lt", "$lte")


def validate_filter(filter: Filter | None) -> dict[str, dict[str, Any]]:
    """Normalise a filter to ``{key: {op: value}}`` or raise :class:`InvalidFilterError`."""
    if filter is None:
        return {}
    if not isinstance(filter, Mapping):
        raise InvalidFilterError(f"a filter must be a dict, got {describe(filter)}")
    normal: dict[str, dict[str, Any]] = {}
    for key, condition in filter.items():
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise InvalidFilterError(f"filter key {describe(key)} must be a metadata field name")
        ops = condition if isinstance(condition, Mapping) else {"$eq": condition}
        for op, value in ops.items():
            if op not in OPERATORS:
                raise InvalidFilterError(
                    f"unknown filter operator {op!r} on {key!r}; use one of {sorted(OPERATORS)}"
                )
            values = value if op in ("$in", "$nin") else [value]
            if op in ("$in", "$nin") and not isinstance(value, (list, tuple)):
                raise InvalidFilterError(f"{op} on {key!r} needs a list, got {describe(value)}")
            for v in values:
                if not isinstance(v, _SCALARS):
                    raise InvalidFilterError(
                        f"filter value for {key!r} must be str, int, float or bool, got {describe(v)}"
                    )
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
        normal[key] = dict(ops)
    return normal


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
