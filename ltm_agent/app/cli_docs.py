"""docs/cli.md, generated from the typer app: every command, argument and option as ``--help`` shows them.

Run ``python -m ltm_agent.app.cli_docs docs/cli.md`` (``make cli-docs``); a test
fails when the page differs from what this module generates, so the reference
never drifts from the code.

Core function: :func:`render_cli_reference`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import typer

__all__ = ["render_cli_reference"]

INTRO = """# Command-line reference

Generated from the `ltm-agent` typer app by `make cli-docs` (`python -m ltm_agent.app.cli_docs docs/cli.md`);
a test keeps it current. Conventions every command follows:

- **Errors** are one line on stderr, starting with `error:`, and exit code 2; nothing is half-written.
  Set `LTM_AGENT_DEBUG=1` to see a traceback for an unexpected error.
- **Stores**: `--store DIR` (`-s`) is an embedded Chroma directory (default `.ltm`), `--server URL` a Chroma
  server. Commands that only read never create a store: a missing store or namespace is an error that lists
  what exists.
- **Namespaces** (`-n`): labels joined by `/`, e.g. `user-42/agent-a`; each label is 1-128 characters of
  letters, digits and `_ . @ : + = -`, and `.`/`..` are refused (the same rule as the Python API).
- **Output**: data goes to stdout (a table, or JSON lines with `--json`), progress and notes to stderr.
- **Dates** (`--from`, `--to`, `--as-of`, `--reference-date`): ISO 8601 (`2024-03-01`,
  `2024-03-01T09:00:00+01:00`) or a written date (`1 March 2024`); no timezone means UTC.
- **Formats** of input and export files: [formats.md](formats.md).
"""


def _walk(command: Any, path: tuple[str, ...], parent: Any) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    ctx = command.context_class(command, info_name=path[-1], parent=parent)
    yield path, command, ctx
    for name in getattr(command, "commands", {}):
        yield from _walk(command.commands[name], (*path, name), ctx)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _section(path: tuple[str, ...], command: Any, ctx: Any) -> str:
    title = " ".join(path)
    help_text = (command.help or "").strip()
    lines = [f"## `{title}`", "", " ".join(help_text.split()) if help_text else "", ""]
    if getattr(command, "commands", None):
        lines += ["| command | what it does |", "|---|---|"]
        for name, sub in command.commands.items():
            summary = " ".join((sub.help or "").split()).split(". ")[0].rstrip(".")
            lines.append(f"| [`{title} {name}`](#{(title + ' ' + name).replace(' ', '-')}) | {_cell(summary)} |")
        return "\n".join(lines) + "\n"
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    usage = " ".join([title, "[OPTIONS]", *(p.name.upper() for p in arguments)])
    lines += ["```text", usage, "```", ""]
    rows = [(f"`{p.name.upper()}`", ("required. " if p.required else "") + (getattr(p, "help", "") or "")) for p in arguments]
    for param in command.params:
        if param.param_type_name == "argument" or getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record:
            rows.append((f"`{record[0]}`", record[1]))
    if rows:
        lines += ["| argument / option | description |", "|---|---|"]
        lines += [f"| {_cell(name)} | {_cell(text)} |" for name, text in rows]
    return "\n".join(lines) + "\n"


def render_cli_reference() -> str:
    """The Markdown of docs/cli.md for the current app."""
    from ltm_agent.app.cli import app

    root = typer.main.get_command(app)
    sections = [INTRO]
    for path, command, ctx in _walk(root, ("ltm-agent",), None):
        sections.append(_section(path, command, ctx))
    return "\n".join(sections).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m ltm_agent.app.cli_docs [FILE]``: write the page (stdout without FILE)."""
    args = sys.argv[1:] if argv is None else argv
    page = render_cli_reference()
    if args:
        Path(args[0]).write_text(page, encoding="utf-8")
        print(f"wrote {args[0]}", file=sys.stderr)
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
