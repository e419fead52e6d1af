"""Attachment readers for the file types GAIA uses: txt, md, py, csv, json, xlsx, docx, pdf.

Plain formats use the standard library; xlsx, docx and pdf use openpyxl, python-docx and pypdf
from the ``[gaia]`` extra, imported when a file of that type is read (a missing one raises
:class:`~ltm_agent.errors.MissingExtraError` with the pip line).

Core functions: :func:`read_text` (any attachment as text), :func:`read_table` (csv, xlsx and
JSON lists of objects as rows), :func:`require_extra`.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from ltm_agent.errors import DataFormatError, MissingExtraError, NotFoundError, UnsupportedOperationError

__all__ = ["TABLE_SUFFIXES", "TEXT_SUFFIXES", "read_table", "read_text", "require_extra"]

TEXT_SUFFIXES = (".txt", ".md", ".py", ".csv", ".json", ".jsonl", ".xlsx", ".docx", ".pdf")
TABLE_SUFFIXES = (".csv", ".xlsx", ".json")
_EXTRA = "pip install 'ltm-agent[gaia]'"


def require_extra(module: str, package: str) -> ModuleType:
    """Import ``module`` from the ``[gaia]`` extra, or raise :class:`MissingExtraError` naming the pip line."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"reading this attachment needs {package}, which is not installed; run {_EXTRA} (or pip install {package})"
        ) from None


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"attachment {str(path)!r} does not exist; check the file name in the task")
    return path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_rows(path: Path) -> dict[str, list[list[str]]]:
    openpyxl = require_extra("openpyxl", "openpyxl")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException on broken files
        raise DataFormatError(f"{path.name} is not a readable xlsx workbook: {type(exc).__name__}: {exc}") from None
    try:
        return {
            sheet.title: [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            for sheet in book.worksheets
        }
    finally:
        book.close()


def _docx_text(path: Path) -> str:
    docx = require_extra("docx", "python-docx")
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises PackageNotFoundError/KeyError on broken files
        raise DataFormatError(f"{path.name} is not a readable docx document: {type(exc).__name__}: {exc}") from None
    lines = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        lines.extend(" | ".join(cell.text for cell in row.cells) for row in table.rows)
    return "\n".join(lines)


def _pdf_text(path: Path) -> str:
    pypdf = require_extra("pypdf", "pypdf")
    try:
        reader = pypdf.PdfReader(str(path))
        return "\n".join((page.extract_text() or "") for page in reader.pages)
    except Exception as exc:  # pypdf raises PdfReadError and friends on broken files
        raise DataFormatError(f"{path.name} is not a readable pdf: {type(exc).__name__}: {exc}") from None


def _plain(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataFormatError(f"{path.name} is not UTF-8 text; convert it first") from None


def read_text(path: str | Path) -> str:
    """The attachment as text: tables as comma-separated rows (one block per sheet), documents as lines.

    Raises:
        NotFoundError: The file does not exist.
        UnsupportedOperationError: The suffix is not one of :data:`TEXT_SUFFIXES`.
        MissingExtraError: An xlsx/docx/pdf reader is not installed.
        DataFormatError: The file is broken.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
        >>> _ = p.write_text("name,age\\nAna,31\\n")
        >>> read_text(p)
        'name,age\\nAna,31'
    """
    path = _existing(path)
    suffix = path.suffix.lower()
    if suffix in (".txt", ".md", ".py", ".csv", ".jsonl"):
        return _plain(path).strip()
    if suffix == ".json":
        try:
            return json.dumps(json.loads(_plain(path)), indent=1, ensure_ascii=False)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path.name} is not JSON: {exc.msg}") from None
    if suffix == ".xlsx":
        blocks = []
        for title, rows in _xlsx_rows(path).items():
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(rows)
            blocks.append(f"# sheet {title}\n{buffer.getvalue().strip()}")
        return "\n\n".join(blocks)
    if suffix == ".docx":
        return _docx_text(path)
    if suffix == ".pdf":
        return _pdf_text(path)
    raise UnsupportedOperationError(
        f"cannot read {path.name!r}: supported attachment types are {', '.join(TEXT_SUFFIXES)}"
    )


def _records(header: list[str], rows: list[list[str]], name: str) -> list[dict[str, str]]:
    if not header or not any(h.strip() for h in header):
        raise DataFormatError(f"{name} has no header row; tables need column names in the first row")
    names = [h.strip() for h in header]
    return [dict(zip(names, (c.strip() for c in row))) for row in rows if any(c.strip() for c in row)]


def read_table(path: str | Path, sheet: str | None = None) -> list[dict[str, str]]:
    """Rows of a csv, xlsx (first sheet, or ``sheet``) or JSON list of objects, keyed by the header.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
        >>> _ = p.write_text("name,age\\nAna,31\\n")
        >>> read_table(p)
        [{'name': 'Ana', 'age': '31'}]
    """
    path = _existing(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(_plain(path))))
        return _records(rows[0] if rows else [], rows[1:], path.name)
    if suffix == ".xlsx":
        sheets = _xlsx_rows(path)
        if sheet is not None and sheet not in sheets:
            raise NotFoundError(f"{path.name} has no sheet {sheet!r}; sheets: {sorted(sheets)}")
        rows = sheets[sheet] if sheet is not None else next(iter(sheets.values()), [])
        return _records(rows[0] if rows else [], rows[1:], path.name)
    if suffix == ".json":
        try:
            data = json.loads(_plain(path))
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path.name} is not JSON: {exc.msg}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataFormatError(f"{path.name}: a JSON table is a list of objects")
        return [{str(k): _cell(v) for k, v in r.items()} for r in data]
    raise UnsupportedOperationError(f"{path.name!r} is not a table; tables are {', '.join(TABLE_SUFFIXES)}")
