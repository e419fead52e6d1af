"""The ``ltm-agent export``, ``import`` and ``inspect`` commands (registered by :mod:`ltm_agent.app.cli`).

They follow the rules of :mod:`ltm_agent.app.cli_common`: export and inspect
only read (a missing store or namespace is an error listing what exists), import
writes (and may create the store).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ltm_agent.app.cli_common import (
    JsonOpt,
    LimitOpt,
    NamespaceOpt,
    ServerOpt,
    StoreOpt,
    console,
    emit_json,
    open_store,
    out,
    parse_cli_date,
    parse_cli_namespace,
    require_file_to_write,
)
from ltm_agent.errors import InvalidInputError

__all__ = ["export_command", "import_command", "inspect_command"]


def _summary(report, verb: str, where: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from ltm_agent.namespaces import format_namespace

    if as_json:
        emit_json([{"namespace": format_namespace(ns), "items": n, verb: where} for ns, n in report.namespaces.items()])
        return
    console.print(
        f"{verb} {report.items} item(s) in {len(report.namespaces)} namespace(s) ({where}; embedder {report.embedder})",
        highlight=False,
    )
    for ns, count in report.namespaces.items():
        console.print(f"  {format_namespace(ns)}: {count}", highlight=False)


def export_command(
    namespace: str = typer.Option(..., "--namespace", "-n", help="Tenant namespace to export (with every namespace under it).",
                                  show_default=False),
    output: Path = typer.Option(Path("-"), "--output", "-o", help="File to write; '-' writes to stdout."),
    store: Optional[Path] = StoreOpt,
    server: Optional[str] = ServerOpt,
) -> None:
    """Export a tenant's memory as JSON lines (format: docs/formats.md), for backups and moving between stores."""
    from ltm_agent.app.transfer import export_memory

    ns = parse_cli_namespace(namespace)
    if str(output) != "-":
        require_file_to_write(output, "--output")
    with open_store(store, server, create=False) as handle:
        if str(output) == "-":
            report = export_memory(handle, ns, sys.stdout)
        else:
            report = export_memory(handle, ns, output)
    _summary(report, "exported", "stdout" if str(output) == "-" else str(output), as_json=False)


def import_command(
    path: Path = typer.Argument(..., help="A file written by `ltm-agent export`.", show_default=False),
    namespace: Optional[str] = typer.Option(
        None, "--namespace", "-n", help="Import under this namespace instead of the exported one."
    ),
    reembed: bool = typer.Option(
        False, "--reembed", help="Embed every item again (the target store uses another embedder)."
    ),
    store: Optional[Path] = StoreOpt,
    server: Optional[str] = ServerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Import an export into a store, all or nothing; namespaces that already hold memories are refused."""
    from ltm_agent.app.transfer import import_memory

    target = parse_cli_namespace(namespace) if namespace is not None else None
    with open_store(store, server, create=True) as handle:
        report = import_memory(handle, path, namespace=target, reembed=reembed)
    _summary(report, "imported", str(store or server or ".ltm"), as_json)


def inspect_command(
    store: Optional[Path] = StoreOpt,
    server: Optional[str] = ServerOpt,
    namespace: str = NamespaceOpt,
    query: Optional[str] = typer.Option(
        None, "--query", "-q", help="Also show what this query retrieves and why (scores per signal)."
    ),
    reference_date: Optional[str] = typer.Option(
        None, "--reference-date", help="'Now' for relative dates in --query [default: the current time]."
    ),
    limit: int = LimitOpt,
    as_of: Optional[str] = typer.Option(
        None, "--as-of", help="Also mark which facts held in the world at this date (bi-temporal view)."
    ),
    html: Optional[Path] = typer.Option(
        None, "--html", help="Also write a self-contained HTML report to this file (open it in a browser)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """A tenant's memory: sessions, facts with their validity, and what a query retrieves and why."""
    from ltm_agent.app.inspect import build_report, print_report, write_html

    ns = parse_cli_namespace(namespace)
    ref = parse_cli_date(reference_date, "--reference-date")
    when = parse_cli_date(as_of, "--as-of")
    if query is not None and not query.strip():
        raise InvalidInputError("--query is empty; give the question to explain, e.g. --query 'Where does Maya live?'")
    if html is not None:
        require_file_to_write(html, "--html")
    with open_store(store, server, create=False) as handle:
        report = build_report(handle, ns, query=query, reference_time=ref, k=limit, as_of=when)
    if html is not None:
        written = write_html(report, html)
        console.print(f"wrote {written}", highlight=False)
    if as_json:
        emit_json([report.to_dict()])
        return
    print_report(report, out)
