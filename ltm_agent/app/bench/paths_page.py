"""``ltm-agent bench paths-docs``: the page that sets the product write paths beside bulk ingest.

Reads the folders ``ltm-agent bench retrieval --path ...`` wrote (``summary.json``,
``write_latency.json``) and writes one markdown page: recall of every ``ltm``
system per path with its difference to bulk ``ltm`` on r@1024t, and the write
latency of each product path by history length. Nothing is typed by hand.

Core function: :func:`write_paths_page`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Sequence

from ltm_agent.errors import InvalidInputError

__all__ = ["write_paths_page"]

METRICS = ("recall@512t", "recall@1024t", "recall@2048t", "recall_all@1024t", "ndcg@10")
TARGET = 0.01
"""Most a product path may lose against bulk on r@1024t (the issue's target)."""


def _load(run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    summary_file = run / "summary.json"
    if not summary_file.is_file():
        raise InvalidInputError(f"{run} has no summary.json; pass a folder `ltm-agent bench retrieval` wrote")
    latency_file = run / "write_latency.json"
    latency = json.loads(latency_file.read_text(encoding="utf-8")) if latency_file.is_file() else {}
    return json.loads(summary_file.read_text(encoding="utf-8")), latency


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def write_paths_page(runs: Sequence[Path], out_file: Path, *, command: str = "") -> Path:
    """Write the write-paths page from bench run folders (one per path; same data set for a fair comparison).

    Args:
        runs: Folders of ``ltm-agent bench retrieval`` runs (any ``--path``).
        out_file: The markdown page to write.
        command: The command lines that produced the runs, quoted on the page.
    """
    recall_rows: list[list[str]] = []
    latency_rows: list[list[str]] = []
    bulk: dict[tuple[str, int], float] = {}  # (data set, questions scored) -> bulk ltm r@1024t
    loaded = [(run, *_load(run)) for run in runs]
    for _, summary, _ in loaded:
        for name, data in summary["systems"].items():
            if name == "ltm":
                bulk[(summary["dataset"], data["questions"])] = data["metrics"]["recall@1024t"]
    for run, summary, latency in loaded:
        dataset = summary["dataset"]
        for name, data in summary["systems"].items():
            if not name.startswith("ltm"):
                continue
            metrics = data["metrics"]
            # Compared only with a bulk run over the same questions (a --limit run has fewer).
            base = bulk.get((dataset, data["questions"]))
            delta = "" if base is None or name == "ltm" else f"{metrics['recall@1024t'] - base:+.3f}"
            verdict = "" if not delta else ("within target" if metrics["recall@1024t"] >= base - TARGET else "below")
            path = name.split("@")[1] if "@" in name else "bulk"
            recall_rows.append([
                dataset, f"`{name}`", path, str(data["questions"]),
                *(f"{metrics[m]:.3f}" for m in METRICS), delta, verdict, f"{data['latency_ms_p50']:.0f}",
            ])
        for name, windows in latency.items():
            first = windows.get("0-99", {}).get("p95_ms")
            for window, values in windows.items():
                if not isinstance(values, dict):
                    continue
                ratio = f"{values['p95_ms'] / first:.2f}" if first else ""
                latency_rows.append([
                    dataset, f"`{name}`", window, str(values["writes"]), f"{values['p50_ms']:.1f}",
                    f"{values['p95_ms']:.1f}", ratio,
                ])
            if "facts_wait_seconds" in windows:
                latency_rows.append([dataset, f"`{name}`", "facts (queued, waited for after the last write)", "",
                                     "", f"{windows['facts_wait_seconds']:.1f} s total", ""])
    lines = [
        "# Write paths: what an agent gets",
        "",
        "Generated " + datetime.now(UTC).isoformat(timespec="seconds") + " by `ltm-agent bench paths-docs` from "
        "the folders of `ltm-agent bench retrieval` runs (" + ", ".join(f"`{r.name}`" for r in runs) + "); "
        "nothing on this page is typed by hand.",
        "",
        "`bulk` ingests each conversation with `EpisodicTimeline.ingest`. The product paths feed the same "
        "conversation one turn at a time, as an agent does: `live` calls `EpisodicTimeline.add_turn`; "
        "`langgraph` invokes a compiled graph holding our `MemoryWriteNode` once per turn (one thread per "
        "session, the session date as `reference_time`) and asks each question through `MemoryReadNode`, "
        "scoring the items it cites; `llamaindex` puts each turn into `Memory.from_defaults(memory_blocks="
        "[EpisodicTimelineBlock(...)])` and records it with the block's `arecord`, and scores the `<memory>` "
        "items `Memory.aget` renders. Same contract lines, same scorer (see [benchmarks](benchmarks.md) for the "
        "metrics). The read node and the block pack their items into 4,096 tokens with their markup, so "
        "their r@4096t can sit a little under bulk's. `ltm-facts@langgraph` gives the write node the pattern "
        "fact extractor in `facts_mode=\"background\"` (facts off the hot path). A path is compared with the bulk "
        "`ltm` run over the same questions (a `--limit` run needs a bulk run with the same limit).",
        "",
    ]
    if command:
        lines += ["```", command.strip(), "```", ""]
    lines += ["## Recall by write path", ""]
    lines += _table(
        ["data set", "system", "path", "questions", *METRICS, "Δ r@1024t vs bulk", f"target (≥ bulk − {TARGET})",
         "query p50 ms"],
        recall_rows,
    )
    lines += [
        "",
        "## Write latency by history length",
        "",
        "One row per window of *turns already stored in the conversation's namespace* when the write "
        "started (a LoCoMo conversation holds 400-700 turns). Embeddings come from the run's on-disk cache, "
        "so these times are the write path itself (store calls, unit building), not the embedder. "
        "`p95 / p95(0-99)` near 1 means the cost does not grow with history. Measured on a shared 2-core "
        "machine that other jobs were loading: compare rows of one run, not across runs.",
        "",
    ]
    lines += _table(["data set", "system", "turns stored", "writes", "p50 ms", "p95 ms", "p95 / p95(0-99)"],
                    latency_rows)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out_file


def register(bench_app: Any) -> None:
    """Add ``bench paths-docs`` to the CLI."""
    import typer

    @bench_app.command("paths-docs")
    def bench_paths_docs(
        runs: list[Path] = typer.Option(..., "--run", help="A bench retrieval output folder (repeat: one per --path)."),
        out_file: Path = typer.Option(Path("docs/write-paths.md"), "--out", help="The page to write."),
        command: str = typer.Option("", "--command", help="The command lines that produced the runs, quoted."),
    ) -> None:
        """Write the page that sets ltm's product write paths (live, langgraph, llamaindex) beside bulk ingest."""
        written = write_paths_page(runs, out_file, command=command)
        typer.echo(f"wrote {written}", err=True)
