"""The self-evolution bench, CI-sized: a real TextWorldExpress game, the real agent graph, real embeddings.

TextWorldExpress and a Java runtime are required (``.ci/run`` installs Java):
without them this module fails at import, it never skips.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import textworld_express  # noqa: F401 - a missing install must fail CI loudly, not skip

from ltm_agent.app.bench.evolution.env import TwxEnv
from ltm_agent.app.bench.evolution.report import write_docs_page
from ltm_agent.app.bench.evolution.runner import EvolutionConfig, run_evolution_bench

PARAMS = "numLocations=1,numItemsToPutAway=3,includeDoors=0,limitInventorySize=0"


def test_java_runtime_is_installed() -> None:
    assert shutil.which("java"), "TextWorldExpress needs a Java 17 runtime on PATH (.ci/run installs it with apt-get)"


def test_env_shows_only_what_a_player_sees_and_budgets_gold_plus_three() -> None:
    env = TwxEnv("twc", PARAMS)
    try:
        obs = env.reset(env.seeds("train")[0], "train")
        assert obs.valid_actions and obs.situation.startswith("You are in the")
        assert env.budget >= 4
        assert not hasattr(obs, "gold")
    finally:
        env.close()


def test_memory_learns_over_a_short_stream_and_no_memory_does_not(tmp_path: Path) -> None:
    # CI-sized: 60 episodes over 10 train games (they repeat), so learning must show within the test's time.
    cfg = EvolutionConfig(
        game="twc", params=PARAMS, episodes=60, seeds=1, heldout_episodes=10, block=20, workers=1,
        arms=("no-memory", "memory", "frozen"), consolidate_every=10, train_pool=10,
    )
    run = run_evolution_bench(cfg, tmp_path / "run", show_progress=False)
    summary = json.loads(run.summary.read_text(encoding="utf-8"))
    memory, baseline = summary["arms"]["memory"], summary["arms"]["no-memory"]
    last_memory = memory["success_by_block"][-1]["mean"]
    last_baseline = baseline["success_by_block"][-1]["mean"]
    assert last_memory >= last_baseline + 0.2, (memory["success_by_block"], baseline["success_by_block"])
    assert memory["records_growth"] and baseline["records_growth"]["60"] == 0.0
    assert memory["recall_latency_ms"]["n"] > 0 and memory["llm_calls_per_write"] == 0.0
    rows = [json.loads(line) for line in run.results.read_text(encoding="utf-8").splitlines()]
    assert {(r["arm"], r["phase"]) for r in rows} == {
        ("no-memory", "train"), ("no-memory", "heldout"), ("memory", "train"), ("frozen", "heldout")
    }
    assert run.plot.stat().st_size > 0
    page = write_docs_page([run.out_dir], tmp_path / "docs" / "evolution.md")
    assert "| memory |" in page.read_text(encoding="utf-8")


def test_locomo_feedback_bench_writes_per_conversation_deltas(tmp_path: Path) -> None:
    from ltm_agent.app.bench.evolution.locomo_feedback import run_feedback_bench

    root = Path(__file__).resolve().parents[1]
    path = run_feedback_bench(root / "data" / "mini_locomo.json", tmp_path / "fb", budget_tokens=64)
    summary = json.loads(path.read_text(encoding="utf-8"))
    assert summary["conversations"], summary
    for row in summary["conversations"]:
        assert row["feedback_questions"] >= 1 and row["measured_questions"] >= 1
        assert row["delta_points"] == pytest.approx(100 * (row["recall_with"] - row["recall_without"]), abs=0.02)
    assert (tmp_path / "fb" / "feedback_results.jsonl").read_text(encoding="utf-8").strip()
