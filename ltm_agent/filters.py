"""Metadata filters: one small language every store understands.

A filter maps metadata keys to either a scalar (equality) or an operator dict::

    {"kind": "turn", "event_ts": {"$gte": 1.7e9, "$lt": 1.8e9}, "role": {"$in": ["user"]}}

Operators: ``$eq $ne $gt $gte $lt $lte $in $nin``. All conditions must hold.
Stores translate a validated :data:`Filter` to their engine's form; the
reference store and side indexes use :func:`matches`.

Core types: :data:`Filter`, :func:`validate_filter`, :func:`matches`.
"""

from __future__ import annotations

from typing import Any, Mapping

from ltm_agent.errors import InvalidFilterError, describe

__all__ = ["Filter", "OPERATORS", "matches", "validate_filter"]

Filter = Mapping[str, Any]
"""Metadata key -> scalar or ``{"$op": value}``."""

OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"})
_SCALARS = (str, int, float, bool)


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
        normal[key] = dict(ops)
    return normal


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "$eq":
        return actual == expected
    if op == "$ne":
        return actual != expected
    if op == "$in":
        return actual in expected
    if op == "$nin":
        return actual not in expected
    if actual is None or isinstance(actual, bool) != isinstance(expected, bool):
        return False
    try:
        if op == "$gt":
            return actual > expected
        if op == "$gte":
            return actual >= expected
        if op == "$lt":
            return actual < expected
        return actual <= expected  # $lte
    except TypeError:
        return False


def matches(metadata: Mapping[str, Any], normal: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when ``metadata`` satisfies a filter normalised by :func:`validate_filter`.

    A missing key fails every operator except ``$ne`` and ``$nin``.
    """
    for key, ops in normal.items():
        actual = metadata.get(key)
        for op, expected in ops.items():
            if key not in metadata and op not in ("$ne", "$nin"):
                return False
            if not _compare(actual, op, expected):
                return False
    return True
