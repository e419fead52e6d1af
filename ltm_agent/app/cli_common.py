"""What every ``ltm-agent`` command shares: options, opening stores, errors, output.

The rules the commands follow live here, once:

- every failure is one line on stderr and exit code 2 (:func:`run` turns usage
  errors, :class:`~ltm_agent.errors.LTMError` and anything unexpected into that);
- a command that only reads never creates a store: a missing store directory or
  namespace is an error that lists what exists (:func:`open_store` with
  ``create=False``, :func:`require_namespace`);
- data goes to stdout (a table, or JSON with ``--json``); progress and notes go
  to stderr, so ``ltm-agent search ... --json | jq`` sees only data.

Core names: :func:`run`, :func:`open_store`, :func:`require_namespace`,
:func:`emit_json`, the shared options ``StoreOpt``, ``ServerOpt``, ``NamespaceOpt``,
``JsonOpt``, ``LimitOpt``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import typer
from rich.console import Console
from typer.core import TyperGroup

from ltm_agent.errors import InvalidInputError, LTMError, NotFoundError

__all__ = [
    "DEFAULT_STORE",
    "JsonOpt",
    "LimitOpt",
    "NamespaceOpt",
    "OneLineErrorsGroup",
    "ServerOpt",
    "StoreOpt",
    "console",
    "emit_json",
    "existing_stores",
    "fail",
    "open_store",
    "out",
    "parse_cli_date",
    "parse_cli_namespace",
    "require_namespace",
    "require_file_to_write",
    "require_new_folder_or_folder",
    "run",
]

console = Console(stderr=True)
"""Progress, notes and errors (stderr)."""
out = Console()
"""Data (stdout)."""

DEFAULT_STORE = Path(".ltm")
DEBUG_ENV = "LTM_AGENT_DEBUG"
"""Set to 1 to see the traceback of an unexpected error (never needed for LTMError)."""

StoreOpt = typer.Option(
    None, "--store", "-s", help="Embedded Chroma store directory [default: .ltm when --server is not given]."
)
ServerOpt = typer.Option(None, "--server", help="Chroma server URL instead of --store, e.g. http://127.0.0.1:8000.")
NamespaceOpt = typer.Option(
    "default", "--namespace", "-n", help="Tenant namespace: labels joined by '/', e.g. user-42/agent-a."
)
JsonOpt = typer.Option(False, "--json", help="Print JSON (one object per line) instead of a table.")
LimitOpt = typer.Option(10, "--limit", "-k", min=1, max=1000, help="Most items shown (1-1000).")


def one_line(text: str) -> str:
    """Collapse whitespace so a message is one terminal line."""
    return " ".join(str(text).split())


def fail(exc: LTMError) -> None:
    """Report an error the library raised on purpose and exit with code 2."""
    console.print(f"error: {one_line(str(exc))}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _click_errors(name: str) -> tuple[type[BaseException], ...]:
    """The click exception class ``name`` from every click the app may run on (typer >= 0.2x vendors its own)."""
    found = []
    for module in ("typer._click.exceptions", "click.exceptions", "typer.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


_NO_ARGS = _click_errors("NoArgsIsHelpError")
_USAGE = _click_errors("UsageError")
_ABORT = _click_errors("Abort")
_CLICK = _click_errors("ClickException")


def run(command: Any, argv: Sequence[str] | None = None, prog_name: str = "ltm-agent") -> int:
    """Run the CLI and return its exit code; every failure is one stderr line and code 2.

    Example:
        >>> from ltm_agent.app.cli import app
        >>> import typer
        >>> run(typer.main.get_command(app), ["stats", "--store", "/nonexistent/x"])
        2
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = command.main(args, prog_name=prog_name, standalone_mode=False)
    except _NO_ARGS as exc:  # `ltm-agent` or `ltm-agent bench` alone: help, not an error
        ctx = getattr(exc, "ctx", None)
        typer.echo(ctx.get_help() if ctx is not None else str(exc))
        return 0
    except _USAGE as exc:
        ctx = getattr(exc, "ctx", None)
        where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        _error(f"{one_line(exc.format_message())}{where}")  # type: ignore[attr-defined]
        return 2
    except _ABORT:
        _error("interrupted")
        return 130
    except _CLICK as exc:
        _error(one_line(exc.format_message()))  # type: ignore[attr-defined]
        return 2
    except LTMError as exc:
        _error(one_line(str(exc)))
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI never prints a traceback unless asked
        if os.environ.get(DEBUG_ENV):
            raise
        _error(
            f"unexpected {type(exc).__name__}: {one_line(str(exc))} "
            f"(set {DEBUG_ENV}=1 for the traceback and please report it)"
        )
        return 2
    return result if isinstance(result, int) else 0


class OneLineErrorsGroup(TyperGroup):
    """The root command group: whoever invokes it (the script, ``CliRunner``, ``app()``) gets
    :func:`run`'s rules: one error line on stderr, exit code 2, no traceback."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        sys.exit(run(_Plain(self), argv, prog_name or "ltm-agent"))


class _Plain:
    """The group seen through click's own ``main`` (so :func:`run` does not recurse into the override)."""

    def __init__(self, group: TyperGroup) -> None:
        self.group = group

    def main(self, args: Any, prog_name: str, standalone_mode: bool) -> Any:
        return TyperGroup.main(self.group, args, prog_name, standalone_mode=standalone_mode)


def _error(message: str) -> None:
    console.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)


# -- stores and namespaces -----------------------------------------------------


def existing_stores(where: Path = Path(".")) -> list[str]:
    """Store directories (holding ``chroma.sqlite3``) directly under ``where``."""
    try:
        return sorted(str(p.parent) for p in where.glob("*/chroma.sqlite3"))
    except OSError:
        return []


@contextmanager
def open_store(store: Optional[Path], server: Optional[str], *, create: bool) -> Iterator[Any]:
    """Open the store the options name; with ``create=False`` a missing directory is an error.

    Args:
        store: ``--store`` (an embedded Chroma directory); ``.ltm`` when neither option is given.
        server: ``--server`` (a Chroma server URL).
        create: Whether the command writes (and may create the store).
    """
    from ltm_agent.memory_stores.chroma import ChromaStore

    if store is not None and server is not None:
        raise InvalidInputError(
            f"give --store or --server, not both (got --store {store} and --server {server})"
        )
    if server:
        handle = ChromaStore.server(server)
    else:
        path = store or DEFAULT_STORE
        if not create and not (path / "chroma.sqlite3").is_file():
            found = existing_stores()
            hint = f"stores here: {', '.join(found)}" if found else "no store directories in the working directory"
            raise NotFoundError(
                f"no ltm-agent store at {path} ({_why_not_a_store(path)}); "
                f"{hint}; pass --store DIR, or create one with: ltm-agent ingest FILE --store {path}"
            )
        handle = ChromaStore.persistent(path)
    try:
        yield handle
    finally:
        handle.close()


def _why_not_a_store(path: Path) -> str:
    if path.is_dir():
        return "no chroma.sqlite3 in it"
    return "it is a file, not a store directory" if path.exists() else "no such directory"


def require_new_folder_or_folder(path: Path, option: str) -> Path:
    """An output folder option: a folder or a path that does not exist yet, never a file."""
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"{option} {path} is a file; give a folder (it is created if missing)")
    return path


def require_file_to_write(path: Path, option: str) -> Path:
    """An output file option: not a folder, in a folder that exists."""
    if path.is_dir():
        raise InvalidInputError(f"{option} {path} is a folder; give a file name, e.g. {path / 'memory.out'}")
    if not path.parent.is_dir():
        raise InvalidInputError(f"{option} {path}: the folder {path.parent} does not exist; create it first")
    return path


def parse_cli_namespace(text: str) -> tuple[str, ...]:
    """The ``--namespace`` text form through the one parser the API uses."""
    from ltm_agent.namespaces import parse_namespace

    return parse_namespace(text)


def require_namespace(handle: Any, namespace: tuple[str, ...]) -> None:
    """Refuse to read a namespace that holds nothing, listing the ones that exist."""
    from ltm_agent.namespaces import format_namespace

    if handle.count(namespace):
        return
    names = handle.list_namespaces(limit=21)
    listed = ", ".join(format_namespace(ns) for ns in names[:20]) + (", ..." if len(names) > 20 else "")
    hint = f"namespaces in this store: {listed}" if names else "this store holds no namespaces yet"
    raise NotFoundError(
        f"namespace {format_namespace(namespace)!r} holds no memories; {hint}; pass one of them with -n"
    )


def parse_cli_date(text: Optional[str], option: str) -> Optional[datetime]:
    """Parse a date option, naming the option in the error."""
    from ltm_agent.dates import parse_date

    if text is None:
        return None
    try:
        return parse_date(text)
    except LTMError as exc:
        raise type(exc)(f"{option} {text!r}: {one_line(str(exc))}") from None


def emit_json(records: Sequence[Any]) -> None:
    """One JSON object per line on stdout."""
    for record in records:
        typer.echo(json.dumps(record, ensure_ascii=False, default=str))
