"""The error tree of ltm-agent.

Every error the library raises on purpose is an :class:`LTMError`; each
subclass also inherits the builtin a caller would naturally catch, so
``except ValueError`` keeps working for input mistakes. Messages say the rule,
the offending value and its type, and the fix.

```
LTMError
├── InvalidInputError (ValueError)
│   ├── EmptyTextError
│   ├── TextTooLargeError
│   ├── InvalidNamespaceError
│   ├── InvalidDateError
│   ├── InvalidFilterError
│   └── MemoryBlockLimitError
├── InvalidTypeError (TypeError)
├── NotFoundError (LookupError)
├── DataFormatError (ValueError)          broken input files, non-UTF-8, bad JSON
├── StoreError (RuntimeError)
│   ├── CorruptStoreError                 unreadable or foreign Chroma directory
│   ├── EmbedderMismatchError             reopening a store with another embedder
│   ├── StoreInUseError                   an embedded store directory open in another process
│   └── StoreConnectionError (ConnectionError)
├── EmbeddingModelError (RuntimeError)     offline model missing or tampered
├── ModelError (RuntimeError)              an LLM-dependent step failed
│   ├── ModelOutputError                  unusable output after one repair retry
│   └── ModelTimeoutError (TimeoutError)
├── MissingExtraError (ImportError)        optional dependency not installed
└── UnsupportedOperationError (NotImplementedError)
```
"""

from __future__ import annotations

from ltm_agent.text import clip

__all__ = [
    "DataFormatError",
    "EmbedderMismatchError",
    "EmbeddingModelError",
    "EmptyTextError",
    "CorruptStoreError",
    "InvalidDateError",
    "InvalidFilterError",
    "InvalidInputError",
    "InvalidNamespaceError",
    "InvalidTypeError",
    "LTMError",
    "MemoryBlockLimitError",
    "MissingExtraError",
    "ModelError",
    "ModelOutputError",
    "ModelTimeoutError",
    "NotFoundError",
    "StoreConnectionError",
    "StoreError",
    "StoreInUseError",
    "TextTooLargeError",
    "UnsupportedOperationError",
    "describe",
]


def describe(value: object, limit: int = 80) -> str:
    """Render a value and its type for an error message, cut to ``limit`` chars."""
    return f"{clip(repr(value), limit)} (type {type(value).__name__})"


class LTMError(Exception):
    """Root of every error ltm-agent raises on purpose."""


class InvalidInputError(LTMError, ValueError):
    """A value given to the library breaks one of its rules."""


class EmptyTextError(InvalidInputError):
    """Text to store or search is empty or only whitespace."""


class TextTooLargeError(InvalidInputError):
    """Text is longer than the configured size limit."""


class InvalidNamespaceError(InvalidInputError):
    """A tenant namespace is not a non-empty tuple of valid labels."""


class InvalidDateError(InvalidInputError):
    """A date could not be parsed or is naive (has no timezone)."""


class InvalidFilterError(InvalidInputError):
    """A metadata filter uses an unknown operator or a non-scalar value."""


class MemoryBlockLimitError(InvalidInputError):
    """An edit would push a core memory block over its character limit."""


class InvalidTypeError(LTMError, TypeError):
    """A value has the wrong type (for example bytes where str is needed)."""


class NotFoundError(LTMError, LookupError):
    """An id, namespace or block that was asked for does not exist."""


class DataFormatError(LTMError, ValueError):
    """An input file is broken: not UTF-8, not JSON, or not the declared format."""


class StoreError(LTMError, RuntimeError):
    """The storage backend failed or is in a state the library cannot use."""


class CorruptStoreError(StoreError):
    """The store directory is unreadable or was written by something else."""


class EmbedderMismatchError(StoreError):
    """A persisted collection was written with another embedder than the one given."""


class StoreInUseError(StoreError):
    """An embedded store directory is open in another process; share it through a server."""


class StoreConnectionError(StoreError, ConnectionError):
    """The Chroma server could not be reached or did not answer in time (retryable)."""


class EmbeddingModelError(LTMError, RuntimeError):
    """The offline embedding model is missing, tampered with, or failed to run."""


class ModelError(LTMError, RuntimeError):
    """An LLM-dependent step failed; the message names the step."""


class ModelOutputError(ModelError):
    """The model's output stayed unusable after one repair retry."""


class ModelTimeoutError(ModelError, TimeoutError):
    """The model did not answer within the configured time."""


class MissingExtraError(LTMError, ImportError):
    """An optional dependency is not installed; the message has the pip line."""


class UnsupportedOperationError(LTMError, NotImplementedError):
    """The operation is not available on this object; the message says what to use."""
