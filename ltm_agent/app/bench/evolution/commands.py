"""The evolution commands of the ``ltm-agent`` CLI (registered by :mod:`ltm_agent.app.cli`).

* ``ltm-agent bench evolution --env twx:<game> ...`` — the learning-curve bench.
* ``ltm-agent bench evolution-feedback --data locomo10_dev.json --out DIR`` — utility feedback on LoCoMo.
* ``ltm-agent bench evolution-docs --run DIR ... --feedback-run DIR`` — regenerate docs/evolution.md.
* ``ltm-agent consolidate --store DIR | --server URL --namespace NS`` — one sleep-time pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the evolution commands to the CLI's apps."""
    from ltm_agent.app import cli_common as cli

    @bench_app.command("evolution")
    def bench_evolution(
        env: str = typer.Option("twx:twc", "--env", help="twx:<game>, a TextWorldExpress game."),
        params: str = typer.Option("", "--params", help="The game's parameter string, e.g. numLocations=1,includeDoors=0."),
        episodes: int = typer.Option(300, "--episodes", min=1, help="Training episodes per seed."),
        seeds: int = typer.Option(5, "--seeds", min=1, help="Seeds (each: its own episode order, shared by all arms)."),
        heldout_fold: str = typer.Option("dev", "--heldout-fold", help="Fold of the frozen evaluation (never test)."),
        heldout_episodes: int = typer.Option(50, "--heldout-episodes", min=0, help="Held-out episodes per seed and arm."),
        arms: Optional[str] = typer.Option(None, "--arms", help="Comma-separated arms (default: all)."),
        k: int = typer.Option(64, "--k", min=1, help="Cases recalled per step."),
        workers: int = typer.Option(2, "--workers", min=1, help="Worker processes."),
        block: int = typer.Option(50, "--block", min=1, help="Episodes per block of the learning curve."),
        out_dir: Path = typer.Option(..., "--out", help="Output folder (resumed if it has results)."),
        summarize_only: bool = typer.Option(
            False, "--summarize-only", help="Only rewrite summary.json and the plot from the episodes in --out."
        ),
    ) -> None:
        """Learning curve on TextWorldExpress: every arm, same seeds and episode order (see docs/evolution.md)."""
        from ltm_agent.app.bench.evolution.env import parse_env
        from ltm_agent.app.bench.evolution.runner import EvolutionConfig, iter_arms, run_evolution_bench, summarize_run
        from ltm_agent.errors import InvalidInputError

        if summarize_only:
            run = summarize_run(out_dir)
            cli.console.print(f"wrote {run.summary}, {run.plot}")
            return

        if heldout_fold not in ("train", "dev"):
            raise InvalidInputError(f"--heldout-fold {heldout_fold!r}: use dev (the test fold is reserved for verification)")
        cli.require_new_folder_or_folder(out_dir, "--out")
        cfg = EvolutionConfig(
            game=parse_env(env), params=params, episodes=episodes, seeds=seeds, heldout_fold=heldout_fold,
            heldout_episodes=heldout_episodes, arms=tuple(iter_arms(arms)), k=k, block=block, workers=workers,
        )
        run = run_evolution_bench(cfg, out_dir)
        summary = json.loads(run.summary.read_text(encoding="utf-8"))
        for arm, data in summary["arms"].items():
            blocks = [b["mean"] for b in data["success_by_block"]]
            cli.out.print(f"{arm:17s} success by block {blocks}  held-out {data['heldout_success']['mean']}")
        cli.console.print(f"wrote {run.results}, {run.summary}, {run.plot}")

    @bench_app.command("evolution-feedback")
    def bench_evolution_feedback(
        data: Path = typer.Option(Path("/work/shared/data/locomo/locomo10_dev.json"), "--data", help="LoCoMo file."),
        out_dir: Path = typer.Option(..., "--out", help="Output folder."),
        budget_tokens: int = typer.Option(1024, "--budget-tokens", help="Token budget of recall."),
        utility_weight: float = typer.Option(0.02, "--utility-weight", help="Weight of tanh(utility) in the ranking mix."),
        seed: int = typer.Option(0, "--seed", help="Seed of the random half split."),
    ) -> None:
        """Utility feedback from half of each LoCoMo conversation's questions; recall on the other half."""
        from ltm_agent.app.bench.evolution.locomo_feedback import run_feedback_bench

        path = run_feedback_bench(data, out_dir, budget_tokens=budget_tokens, utility_weight=utility_weight, seed=seed)
        summary = json.loads(path.read_text(encoding="utf-8"))
        for row in summary["conversations"]:
            cli.out.print(f"{row['conversation']}: {row['recall_without']:.3f} -> {row['recall_with']:.3f} ({row['delta_points']:+.1f})")
        cli.out.print(f"mean delta {summary['mean_delta_points']:+.2f} points, worst {summary['worst_delta_points']:+.2f}")
        cli.console.print(f"wrote {path}")

    @bench_app.command("evolution-docs")
    def bench_evolution_docs(
        runs: list[Path] = typer.Option([], "--run", help="A bench evolution output folder (repeat for several)."),
        feedback_runs: list[Path] = typer.Option([], "--feedback-run", help="A bench evolution-feedback folder."),
        out_file: Path = typer.Option(Path("docs/evolution.md"), "--out", help="The page to write."),
    ) -> None:
        """Regenerate docs/evolution.md from bench evolution output folders."""
        from ltm_agent.app.bench.evolution.report import write_docs_page

        cli.console.print(f"wrote {write_docs_page(runs, out_file, feedback_runs)}")

    @app.command()
    def consolidate(
        store: Optional[Path] = cli.StoreOpt,
        server: Optional[str] = cli.ServerOpt,
        namespace: str = cli.NamespaceOpt,
        merge_threshold: float = typer.Option(0.97, "--merge-threshold", help="Cosine at which cases merge."),
        archive_floor: float = typer.Option(-2.0, "--archive-floor", help="Heat + utility below which cold cases are archived."),
    ) -> None:
        """One sleep-time pass over a namespace's experience: merge, archive (restorable), re-derive insights."""
        from ltm_agent.evolution import ExperienceMemory, Playbook
        from ltm_agent.evolution import consolidate as run_consolidation

        ns = cli.parse_cli_namespace(namespace)
        with cli.open_store(store, server, create=False) as handle:
            memory = ExperienceMemory(handle, ns)
            report = run_consolidation(
                memory, playbook=Playbook(handle, ns), merge_threshold=merge_threshold, archive_floor=archive_floor
            )
        cli.out.print(
            f"{namespace}: {report.cases_before} cases -> {report.cases_after} "
            f"(merged {report.merged}, archived {report.archived}); {report.deltas} playbook deltas; 0 LLM calls"
        )
