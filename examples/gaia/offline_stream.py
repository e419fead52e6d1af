"""A GAIA-style team with shared long-term memory, offline: our generated task stream, memory on vs off.

What it shows, said plainly: there is no chat model here. The first task of each family is solved by a
scripted demonstrator (standing in for your strong model); the curator stores the workflow it used, with
its task-specific values turned into slots. Later tasks of the family - other files, other numbers - are
solved by the team alone: the planner recalls the workflow from memory, binds the slots from the new
question, and each worker runs its own steps from its role's namespace. Held-out families never had a
demonstration and stay unsolved. The memory-off team runs the same stream in the same store.

Run:  python examples/gaia/offline_stream.py [--per-family 2] [--families csv_lookup,multi_hop,count_word]
With your own model:  ltm-agent gaia run --tasks DIR --model openai:gpt-4o-mini --out RUN (see docs/gaia.md)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from ltm_agent.app.gaia.runner import RunOptions, run_gaia  # noqa: E402
from ltm_agent.app.gaia.stream import FAMILIES, write_stream  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=2, help="tasks per family (blocks)")
    parser.add_argument("--families", default="csv_lookup,pdf_invoice,multi_hop,number_traps,count_word",
                        help=f"comma-separated, from {', '.join(FAMILIES)}")
    parser.add_argument("--held-out", default="count_word", help="families with no demonstration")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="gaia-example-"))
    families = tuple(f for f in args.families.split(",") if f)
    held_out = tuple(f for f in args.held_out.split(",") if f in families)
    stream = write_stream(out / "stream", seed=0, per_family=args.per_family, held_out=held_out, families=families)
    print(f"stream: {stream} ({len(stream.read_text().splitlines())} tasks; held out: {', '.join(held_out) or 'none'})")

    def progress(condition: str, task: object, row: dict) -> None:
        mark = {1: "solved", 0: "failed", None: "unscored"}[row["score"]]
        print(f"  [{condition:9}] block {row['block']} {row['task_id']:26} {mark:6} by {row['solver']}")

    # One embedded Chroma directory (out/run/chroma) shared by both teams, each in its own namespaces.
    result = run_gaia(stream, out / "run", RunOptions(), progress=progress)
    summary = json.loads(result.summary.read_text())["conditions"]
    for condition, cell in summary.items():
        blocks = ", ".join(f"block {b}: {c['solved']}/{c['scored']}" for b, c in cell["by_block"].items())
        print(f"{condition:9}: {blocks}; held-out solved {cell['held_out']['solved']}/{cell['held_out']['scored']}")
    print(f"wrote {result.results}, {result.summary}, {result.report}")
    assert summary["memory"]["held_out"]["solved"] == 0, "a held-out family was solved: memory leaked"


if __name__ == "__main__":
    main()
