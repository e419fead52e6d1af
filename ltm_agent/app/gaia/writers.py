"""Attachment writers for the offline streams: csv, json, txt, xlsx (openpyxl), docx (python-docx), pdf (fpdf2).

Attachments are generated from seeds when a stream is written (at run or test time); nothing
binary is committed and nothing is downloaded.

Core function: :func:`write_attachment`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from ltm_agent.app.gaia.readers import require_extra
from ltm_agent.errors import UnsupportedOperationError

__all__ = ["write_attachment"]


def write_attachment(path: Path, *, rows: Sequence[Sequence[str]] | None = None, lines: Sequence[str] = ()) -> Path:
    """Write a table (``rows``, header first) or a document (``lines``) in the format of ``path``'s suffix.

    Example:
        >>> import pathlib, tempfile
        >>> p = write_attachment(pathlib.Path(tempfile.mkdtemp()) / "t.csv", rows=[["a", "b"], ["1", "2"]])
        >>> p.read_text()
        'a,b\\n1,2\\n'
    """
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if rows is not None:
        if suffix == ".csv":
            with path.open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle, lineterminator="\n").writerows(rows)
        elif suffix == ".xlsx":
            openpyxl = require_extra("openpyxl", "openpyxl")
            book = openpyxl.Workbook()
            sheet = book.active
            sheet.title = "Data"
            for row in rows:
                sheet.append([_typed(c) for c in row])
            book.save(path)
        elif suffix == ".json":
            header, *body = rows
            path.write_text(json.dumps([dict(zip(header, r)) for r in body], indent=1), encoding="utf-8")
        else:
            raise UnsupportedOperationError(f"tables are written as .csv, .xlsx or .json, not {suffix!r}")
        return path
    if suffix in (".txt", ".md"):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif suffix == ".docx":
        docx = require_extra("docx", "python-docx")
        document = docx.Document()
        for line in lines:
            document.add_paragraph(line)
        document.save(str(path))
    elif suffix == ".pdf":
        fpdf = require_extra("fpdf", "fpdf2")
        pdf = fpdf.FPDF()
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for line in lines:
            pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
        pdf.output(str(path))
    else:
        raise UnsupportedOperationError(f"documents are written as .txt, .md, .docx or .pdf, not {suffix!r}")
    return path


def _typed(cell: str) -> str | int | float:
    """Numbers go into xlsx cells as numbers, as a spreadsheet author would type them."""
    try:
        return int(cell)
    except ValueError:
        try:
            return float(cell)
        except ValueError:
            return cell
