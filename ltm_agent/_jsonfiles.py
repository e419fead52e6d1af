"""Reading JSON data files robustly: gzip, UTF-8, JSON or JSON lines, located errors.

Private helpers of :mod:`ltm_agent.loaders` (the public ``read_records`` is
re-exported there). Every failure is a :class:`~ltm_agent.errors.DataFormatError`
that names the file and the place in it: byte offset, line and column, or the
record path (``file: sample 3 (conv-26) > session_2[4] > dia_id``).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ltm_agent.errors import DataFormatError, NotFoundError, describe

__all__ = ["Where", "expect", "expect_text", "read_records"]

T = TypeVar("T")
_GZIP_MAGIC = b"\x1f\x8b"


def read_records(path: str | Path, *, lines: bool) -> list[Any]:
    """Read a JSON file into a list of records.

    A file whose content is one JSON list gives its items; one JSON object
    gives ``[object]``. When ``lines`` is true and the whole file is not one
    JSON value, each non-blank line is parsed as one record (JSON lines).

    Raises:
        DataFormatError: Not gzip/UTF-8/JSON; the message names the byte,
            line and column.

    Example:
        >>> len(read_records("tests/data/mini_longmemeval.jsonl", lines=True))
        3
    """
    text = _read_text(Path(path))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as whole_error:
        # "Extra data" after a complete first value is what JSON lines look like;
        # any other error means the first value itself is broken.
        if not lines or whole_error.msg != "Extra data":
            raise _json_error(path, whole_error, "the file") from None
        return _parse_lines(path, text)
    return value if isinstance(value, list) else [value]


def _parse_lines(path: str | Path, text: str) -> list[Any]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise _json_error(path, exc, f"line {number}") from None
    return records


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(
            f"{path}: no such file (working directory {Path.cwd()}); check the path"
        ) from None
    except OSError as exc:  # a directory, no permission: say which, never a bare OSError
        raise DataFormatError(f"{path}: cannot be read as a file ({exc.strerror or exc}); give a readable file") from None
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(
                f"{path}: gzip data is damaged or truncated ({exc}); "
                f"re-download or re-compress the file"
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(
            f"{path}: not UTF-8: byte {data[exc.start:exc.start + 1]!r} at offset {exc.start} "
            f"(line {line}): {exc.reason}; re-save the file as UTF-8, e.g. "
            f"iconv -f latin1 -t utf-8 in > out"
        ) from None


def _json_error(path: str | Path, exc: json.JSONDecodeError, part: str) -> DataFormatError:
    return DataFormatError(
        f"{path}: {part} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
        f"(character {exc.pos}); the file may be truncated or hand-edited — fix or re-export it"
    )


@dataclass(frozen=True, slots=True)
class Where:
    """A place in an input file, for error messages (``file: sample 3 (conv-26) > session_2[4]``)."""

    label: str

    def at(self, child: str) -> Where:
        return Where(f"{self.label} > {child}")

    def named(self, name: str) -> Where:
        return Where(f"{self.label} ({name})")

    def error(self, problem: str, fix: str) -> DataFormatError:
        return DataFormatError(f"{self.label}: {problem}; {fix}")


def expect(value: object, kind: type[T], where: Where, what: str) -> T:
    """Return ``value`` if it is a ``kind``, else raise a located DataFormatError."""
    if not isinstance(value, kind):
        raise where.error(
            f"must be {what}, got {describe(value)}",
            "this does not look like the declared format; check the format argument or the record",
        )
    return value


def expect_text(value: object, where: Where, what: str) -> str:
    """Return ``value`` stripped if it is a non-empty string, else raise a located error."""
    text = expect(value, str, where, f"{what} (a non-empty string)")
    if not text.strip():
        raise where.error(f"must be {what}, got an empty string", "fill it in")
    return text.strip()
