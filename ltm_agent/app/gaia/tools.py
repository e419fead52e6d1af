"""The team's tools, as LangChain tools grouped by the role that calls them.

* file reader: ``read_file``, ``table_lookup``, ``table_aggregate``, ``table_top``, ``extract_field``,
  ``count_word`` - attachments are opened only inside the task's attachment folder.
* coder: ``calculator`` (safe, no eval), ``convert_units``, ``date_diff``, ``date_add``, ``to_number``,
  ``round_number`` and, only when the user opts in, ``python`` (:class:`~ltm_agent.app.gaia.sandbox.PythonSandbox`).
* researcher: ``search_documents`` and ``find_fact`` (BM25 keyword search over a local document
  folder) and ``web_search`` when a :class:`WebSearch` provider is given - offline there is none,
  and :meth:`Toolbox.notes` says so.

Tool errors come back as text written for the model ("Error: ... call X instead"), never as
exceptions that end the run.

Core types: :class:`Toolbox`, :class:`DocumentSearch`, :class:`WebSearch`, :class:`SearchHit`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langchain_core.tools import BaseTool, StructuredTool

from ltm_agent.app.gaia import compute, readers
from ltm_agent.app.gaia.sandbox import PythonSandbox
from ltm_agent.errors import InvalidInputError, LTMError, NotFoundError

__all__ = ["ROLES", "DocumentSearch", "SearchHit", "Toolbox", "WebSearch"]

ROLES = ("researcher", "coder", "file_reader")
"""The worker roles, each with its own tools."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: where it came from and the passage."""

    source: str
    text: str
    score: float = 0.0


@runtime_checkable
class WebSearch(Protocol):
    """A web-search provider the user plugs in (Tavily, Brave, SearxNG, ...); none ships, none runs offline."""

    name: str

    def search(self, query: str, k: int = 5) -> Sequence[SearchHit]:
        """Return up to ``k`` hits for ``query``."""
        ...


class DocumentSearch:
    """BM25 keyword search over the passages (paragraphs) of a local folder of documents.

    Every file :func:`~ltm_agent.app.gaia.readers.read_text` can read is indexed once, at
    construction; passages are blank-line separated blocks.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.txt").write_text("The director of Marlow Museum is Ana Reis.\\n\\nUnrelated text.")
        >>> DocumentSearch(folder).search("Marlow Museum director")[0].text
        'The director of Marlow Museum is Ana Reis.'
    """

    def __init__(self, folder: str | Path) -> None:
        from ltm_agent.memory_stores._keyword import KeywordIndex

        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise NotFoundError(f"document folder {str(self.folder)!r} does not exist; pass --docs DIR")
        self.passages: list[SearchHit] = []
        for path in sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in readers.TEXT_SUFFIXES):
            text = readers.read_text(path)
            for block in re.split(r"\n\s*\n", text):
                if block.strip():
                    self.passages.append(SearchHit(path.name, block.strip()))
        ids = [str(i) for i in range(len(self.passages))]
        self._index = KeywordIndex(ids, [p.text for p in self.passages], [{} for _ in ids])

    def search(self, query: str, k: int = 3) -> list[SearchHit]:
        """The ``k`` best passages for ``query`` (BM25, best first)."""
        return [
            SearchHit(self.passages[int(i)].source, self.passages[int(i)].text, score)
            for i, score in self._index.search(query, limit=k)
        ]

    def find_fact(self, subject: str, relation: str) -> str:
        """The value in a sentence "The <relation> of <subject> is <value>." found by search; raises when absent."""
        pattern = re.compile(
            rf"the {re.escape(relation.strip())} of {re.escape(subject.strip())} is ([^.\n]+(?:\.\w[^.\n]*)*)\.",
            re.IGNORECASE,
        )
        for hit in self.search(f"{relation} of {subject}", k=5):
            match = pattern.search(hit.text)
            if match:
                return match.group(1).strip()
        raise NotFoundError(
            f"no document states the {relation!r} of {subject!r}; try search_documents with other words"
        )


def _safe(function: Callable[..., Any]) -> Callable[..., str]:
    """Run a tool body; return its result as text, or the error as text the model can act on."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> str:
        try:
            result = function(*args, **kwargs)
        except (LTMError, ValueError, TypeError, KeyError) as exc:
            return f"Error: {exc}"
        return result if isinstance(result, str) else compute.format_number(result)

    return run


def _numeric(value: str) -> float:
    return float(compute.to_number(value))


@dataclass
class Toolbox:
    """Builds each role's tools for one task.

    Attributes:
        attachments: Folder the file reader may open files in (the task's folder).
        documents: Local document search for the researcher (``None``: no such tools).
        python: The python sandbox (disabled unless the user opted in).
        web: A web-search provider (``None`` offline: no ``web_search`` tool).
    """

    attachments: Path | None = None
    documents: DocumentSearch | None = None
    python: PythonSandbox = field(default_factory=PythonSandbox)
    web: WebSearch | None = None

    def notes(self) -> list[str]:
        """What is unavailable in this run, said plainly (recorded in the run summary)."""
        notes = []
        if self.web is None:
            notes.append("web_search: absent (no web-search provider configured; the run is offline)")
        if not self.python.enabled:
            notes.append("python: disabled (opt in with --allow-python)")
        if self.documents is None:
            notes.append("search_documents/find_fact: absent (no local document folder)")
        return notes

    def _path(self, name: str) -> Path:
        if self.attachments is None:
            raise NotFoundError("this task has no attachment folder; the question names no file")
        root = self.attachments.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root):
            raise InvalidInputError(f"{name!r} is outside the task's attachment folder; pass the attachment's file name")
        return path

    def for_role(self, role: str) -> list[BaseTool]:
        """The tools of ``role`` (one of :data:`ROLES`)."""
        builders = {"file_reader": self._file_tools, "coder": self._coder_tools, "researcher": self._research_tools}
        if role not in builders:
            raise InvalidInputError(f"unknown role {role!r}; roles with tools are {list(ROLES)}")
        return [StructuredTool.from_function(_safe(f)) for f in builders[role]()]

    def all_tools(self) -> dict[str, BaseTool]:
        """Every tool of every role, by name."""
        return {t.name: t for role in ROLES for t in self.for_role(role)}

    # -- the tools ----------------------------------------------------------

    def _file_tools(self) -> list[Callable[..., Any]]:
        def read_file(path: str) -> str:
            """Read an attachment (txt, csv, json, xlsx, docx, pdf) as text."""
            return readers.read_text(self._path(path))[:8000]

        def table_lookup(path: str, match_column: str, match_value: str, return_column: str) -> str:
            """In a csv/xlsx table, the return_column value of the row whose match_column equals match_value."""
            rows = readers.read_table(self._path(path))
            for row in rows:
                if row.get(match_column, "").strip().lower() == match_value.strip().lower():
                    if return_column not in row:
                        raise KeyError(f"no column {return_column!r}; columns: {list(row)}")
                    return row[return_column]
            raise NotFoundError(f"no row with {match_column} = {match_value!r}; read_file shows the table")

        def table_aggregate(path: str, column: str, op: str, where_column: str = "", where_value: str = "") -> str:
            """sum, mean, min, max or count of a numeric column, optionally over rows where where_column = where_value."""
            rows = readers.read_table(self._path(path))
            if where_column:
                rows = [r for r in rows if r.get(where_column, "").strip().lower() == where_value.strip().lower()]
            if op == "count":
                return str(len(rows))
            values = [_numeric(r[column]) for r in rows]
            ops = {"sum": sum, "mean": lambda v: sum(v) / len(v), "min": min, "max": max}
            if op not in ops:
                raise InvalidInputError(f"op must be one of sum, mean, min, max, count; got {op!r}")
            if not values:
                raise NotFoundError(f"no rows with {where_column} = {where_value!r}")
            return compute.format_number(ops[op](values), 6)

        def table_top(path: str, sort_column: str, k: int, return_column: str, descending: bool = True) -> str:
            """The return_column values of the k rows with the highest (or lowest) sort_column, comma separated."""
            rows = readers.read_table(self._path(path))
            ranked = sorted(rows, key=lambda r: _numeric(r[sort_column]), reverse=descending)
            return ", ".join(r[return_column] for r in ranked[: int(k)])

        def extract_field(path: str, label: str) -> str:
            """The value written after 'label:' in a document (pdf, docx, txt)."""
            text = readers.read_text(self._path(path))
            match = re.search(rf"^\s*{re.escape(label)}\s*:\s*(.+?)\s*$", text, re.IGNORECASE | re.MULTILINE)
            if match is None:
                raise NotFoundError(f"no line '{label}: ...' in {path}; read_file shows the text")
            return match.group(1)

        def count_word(path: str, word: str) -> str:
            """How many times a whole word occurs in an attachment (case-insensitive)."""
            text = readers.read_text(self._path(path))
            return str(len(re.findall(rf"\b{re.escape(word)}\b", text, re.IGNORECASE)))

        return [read_file, table_lookup, table_aggregate, table_top, extract_field, count_word]

    def _coder_tools(self) -> list[Callable[..., Any]]:
        def calculator(expression: str) -> str:
            """Evaluate arithmetic: numbers, + - * / // % ** and sqrt, log, round, abs, min, max."""
            return compute.format_number(compute.calculate(expression))

        def convert_units(value: str, from_unit: str, to_unit: str) -> str:
            """Convert a value between units (length, mass, volume, time, speed, temperature)."""
            return compute.format_number(compute.convert_units(_numeric(value), from_unit, to_unit), 6)

        def date_diff(start: str, end: str, unit: str = "days") -> str:
            """Whole days (or weeks) from start to end (dates as YYYY-MM-DD)."""
            return str(compute.date_diff(start, end, unit))

        def date_add(start: str, days: int) -> str:
            """The date days after start (YYYY-MM-DD)."""
            return compute.date_add(start, days)

        def to_number(text: str) -> str:
            """The first number in text, without units, currency or thousands separators."""
            return compute.to_number(text)

        def round_number(value: str, decimals: int) -> str:
            """Round a number to the given decimals."""
            return compute.format_number(_numeric(value), int(decimals))

        tools = [calculator, convert_units, date_diff, date_add, to_number, round_number]
        if self.python.enabled:

            def python(code: str) -> str:
                """Run Python code in a sandbox (time and memory limits, no network); print() the result."""
                return self.python.run_text(code)

            tools.append(python)
        return tools

    def _research_tools(self) -> list[Callable[..., Any]]:
        tools: list[Callable[..., Any]] = []
        documents = self.documents
        if documents is not None:

            def search_documents(query: str, k: int = 3) -> str:
                """Keyword search over the local document folder; returns the best passages."""
                hits = documents.search(query, int(k))
                return "\n".join(f"[{h.source}] {h.text}" for h in hits) or "No passage matches; try other words."

            def find_fact(subject: str, relation: str) -> str:
                """The value of a relation of a subject, from a sentence 'The <relation> of <subject> is <value>.'"""
                return documents.find_fact(subject, relation)

            tools += [search_documents, find_fact]
        web = self.web
        if web is not None:

            def web_search(query: str) -> str:
                """Search the web with the user's provider."""
                return "\n".join(f"[{h.source}] {h.text}" for h in web.search(query, 5)) or "No results."

            tools.append(web_search)
        return tools
