"""Tenant namespaces: validation and rendering.

A namespace is a tuple of labels such as ``("user-42", "agent-a")``. Every read
and write in ltm-agent is scoped to exactly one namespace (or, for listing, to a
prefix of one); stores enforce this, never callers.

Core types: :data:`Namespace`, :func:`validate_namespace`,
:func:`namespace_key`, :func:`parse_namespace`, :func:`format_namespace`.
"""

from __future__ import annotations

import hashlib
import json
import re

from ltm_agent.errors import InvalidNamespaceError, describe

__all__ = [
    "MAX_DEPTH",
    "Namespace",
    "format_namespace",
    "namespace_digest",
    "namespace_key",
    "parse_namespace",
    "validate_namespace",
]

Namespace = tuple[str, ...]
"""A tenant namespace: one to :data:`MAX_DEPTH` labels."""

MAX_DEPTH = 8
_LABEL = re.compile(r"^[A-Za-z0-9_.@:+=\-]{1,128}$")


def validate_namespace(namespace: object, *, allow_empty: bool = False) -> Namespace:
    """Check a namespace and return it as a tuple of str.

    Args:
        namespace: A tuple (or list) of labels, each 1-128 characters of
            ``A-Z a-z 0-9 _ . @ : + = -``.
        allow_empty: Accept ``()`` (only list-namespace prefixes need this).

    Raises:
        InvalidNamespaceError: With the offending label and the rule.

    Example:
        >>> validate_namespace(["user-42", "agent-a"])
        ('user-42', 'agent-a')
    """
    if isinstance(namespace, str) or not isinstance(namespace, (tuple, list)):
        raise InvalidNamespaceError(
            f"a namespace must be a tuple of labels, got {describe(namespace)}; "
            f"write it as (\"user-42\",) or (\"user-42\", \"agent-a\")"
        )
    labels = tuple(namespace)
    if not labels and not allow_empty:
        raise InvalidNamespaceError(
            "a namespace needs at least one label, got (); pass e.g. (\"user-42\",)"
        )
    if len(labels) > MAX_DEPTH:
        raise InvalidNamespaceError(
            f"a namespace has at most {MAX_DEPTH} labels, got {len(labels)}: {labels!r}"
        )
    for label in labels:
        if isinstance(label, str) and "/" in label and _LABEL.match(label.replace("/", "-")):
            # The one place '/' means anything is the CLI's text form; say so instead of a bare refusal.
            raise InvalidNamespaceError(
                f"namespace label {describe(label)} contains '/': labels cannot hold slashes; pass the labels "
                f"separately, e.g. {tuple(label.split('/'))!r}, or parse the text form with parse_namespace({label!r})"
            )
        if not isinstance(label, str) or not _LABEL.match(label):
            raise InvalidNamespaceError(
                f"namespace label {describe(label)} is invalid: labels are 1-128 characters "
                f"of letters, digits and _ . @ : + = - (no spaces or slashes)"
            )
        if not label.strip("."):
            # '.' and '..' read as paths in the CLI form and in file names made from namespaces.
            raise InvalidNamespaceError(
                f"namespace label {describe(label)} is invalid: a label cannot be made only of dots "
                f"('.' and '..' look like paths); use a name such as 'user-42'"
            )
    return labels


def namespace_key(namespace: Namespace) -> str:
    """A canonical, reversible string for a namespace (JSON array)."""
    return json.dumps(list(namespace), separators=(",", ":"))


def parse_namespace(text: str) -> Namespace:
    """Parse a namespace from its text form ``a/b/c`` or its JSON form ``["a", "b"]``.

    This is the one text parser: the CLI, the inspector and export/import use it, and
    the result goes through :func:`validate_namespace`, the same rule the API applies
    to tuples. ``/`` separates labels; an empty label (``a//b``, ``/a``, ``a/``) and a
    label made only of dots (``..``) are refused.

    Raises:
        InvalidNamespaceError: With the offending text and the rule.

    Example:
        >>> parse_namespace("user-42/agent-a")
        ('user-42', 'agent-a')
    """
    if not isinstance(text, str):
        raise InvalidNamespaceError(
            f"parse_namespace() takes the text form 'user-42/agent-a', got {describe(text)}; "
            f"pass a tuple to the API directly"
        )
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidNamespaceError(
                f"namespace {stripped!r} looks like JSON but does not parse: {exc.msg}"
            ) from exc
        return validate_namespace(value)
    parts = tuple(stripped.split("/"))
    if any(not part for part in parts):
        raise InvalidNamespaceError(
            f"namespace {text!r} has an empty label: write labels joined by single '/', "
            f"e.g. 'user-42' or 'user-42/agent-a'"
        )
    return validate_namespace(parts)


def format_namespace(namespace: Namespace) -> str:
    """The text form of a namespace, the inverse of :func:`parse_namespace`.

    Example:
        >>> format_namespace(("user-42", "agent-a"))
        'user-42/agent-a'
    """
    return "/".join(namespace)


def namespace_digest(namespace: Namespace, length: int = 16) -> str:
    """A stable hex digest of a namespace; distinct namespaces never share one in practice."""
    return hashlib.sha256(namespace_key(namespace).encode("utf-8")).hexdigest()[:length]
