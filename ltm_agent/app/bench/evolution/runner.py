"""``ltm-agent bench evolution``: the learning curve, every arm in one run, same seeds and episode order.

Arms (:data:`ARMS`): ``no-memory``; ``memory``; ``random-memory`` (the same
number of recalled cases, drawn at random, and no playbook: content, not
prompt length); ``frozen`` (the ``memory`` arm's store after its training
stream, no writes, on the held-out fold's unseen objects); and one ablation
per mechanism: ``no-utility`` (no feedback, relevance-only ranking),
``no-consolidation`` (no sleep-time pass, hence no playbook) and
``exact-match`` (recall only the identical situation and action).

Every training arm plays the same seeded stream of train-fold games; after
it, its memory is frozen and it plays ``heldout_episodes`` dev-fold games
(the test fold is never used). One process per seed runs all arms, so the
embedding cache is shared by the arms of a seed.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

__all__ = ["ARMS", "ArmSpec", "EvolutionConfig", "EvolutionRun", "run_evolution_bench", "summarize_run"]


@dataclass(frozen=True, slots=True)
class ArmSpec:
    """What one arm turns on."""

    name: str
    memory: bool = True
    random_recall: bool = False
    mode: str = "similar"
    feedback: bool = True
    utility_weight: float = 0.05
    consolidation: bool = True
    playbook: bool = True


ARM_SPECS: dict[str, ArmSpec] = {
    "no-memory": ArmSpec("no-memory", memory=False, feedback=False, consolidation=False, playbook=False),
    "memory": ArmSpec("memory"),
    "random-memory": ArmSpec("random-memory", random_recall=True, playbook=False),
    "no-utility": ArmSpec("no-utility", feedback=False, utility_weight=0.0),
    "no-consolidation": ArmSpec("no-consolidation", consolidation=False, playbook=False),
    "exact-match": ArmSpec("exact-match", mode="exact"),
}
ARMS: tuple[str, ...] = ("no-memory", "memory", "random-memory", "frozen", "no-utility", "no-consolidation", "exact-match")


@dataclass
class EvolutionConfig:
    """One bench run's settings (written to ``config.json``)."""

    game: str
    params: str
    episodes: int = 300
    seeds: int = 5
    heldout_fold: str = "dev"
    heldout_episodes: int = 50
    arms: tuple[str, ...] = ARMS
    k: int = 64
    consolidate_every: int = 10
    block: int = 50
    workers: int = 2
    extra_steps: int = 3
    train_pool: int | None = None
    step_cost: float = 0.02
    gamma: float = 0.6
    situation_temperature: float = 0.2
    action_temperature: float = 0.03
    min_action_similarity: float = 0.5
    policy: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EvolutionRun:
    """Where a run wrote its files."""

    out_dir: Path
    results: Path
    summary: Path
    plot: Path


def _play_arm(cfg: EvolutionConfig, spec: ArmSpec, seed: int, embed_memo: Any, progress: Any) -> list[dict[str, Any]]:
    """Train one arm on the seed's stream, then evaluate it frozen on the held-out fold."""
    import numpy as np

    from ltm_agent.app.bench.evolution.env import TwxEnv
    from ltm_agent.app.bench.evolution.graph import build_agent_graph
    from ltm_agent.app.bench.evolution.policy import MemoryGuidedPolicy, PolicyConfig
    from ltm_agent.evolution import ExperienceMemory, UsageMix
    from ltm_agent.memory_stores import InMemoryStore
    from ltm_agent.plugins.langgraph.evolution import (
        ConsolidateNode,
        PlaybookNode,
        RecallExperienceNode,
        RecordOutcomeNode,
    )

    env = TwxEnv(cfg.game, cfg.params, extra_steps=cfg.extra_steps)
    store = InMemoryStore(embed_memo.embedder)
    namespace = ("bench", spec.name, str(seed))
    rng = np.random.default_rng(seed)
    memories: list[ExperienceMemory] = []

    def factory(s: Any, ns: Any) -> ExperienceMemory:
        memory = ExperienceMemory(
            s,
            ns,
            mode=spec.mode,  # type: ignore[arg-type]
            usage_mix=UsageMix(utility_weight=spec.utility_weight),
            gamma=cfg.gamma,
            step_cost=cfg.step_cost,
            situation_temperature=cfg.situation_temperature,
            action_temperature=cfg.action_temperature,
            min_action_similarity=cfg.min_action_similarity,
        )
        memory._cache = embed_memo.cache  # the seed's shared embedding cache
        memories.append(memory)
        return memory

    def random_recall(memory: ExperienceMemory, situation: str, k: int) -> list[Any]:
        return memory.random_cases(min(k, memory.count()), rng)

    recall = RecallExperienceNode(store, namespace=namespace, k=cfg.k, factory=factory, recall=random_recall if spec.random_recall else None) if spec.memory else None
    record = RecordOutcomeNode(store, namespace=namespace, factory=factory, feedback=spec.feedback) if spec.memory else None
    playbook = PlaybookNode(store, namespace=namespace) if spec.playbook else None
    consolidate = ConsolidateNode(store, namespace=namespace, factory=factory, every=cfg.consolidate_every) if spec.consolidation else None
    policy = MemoryGuidedPolicy(PolicyConfig(**cfg.policy), seed=seed)
    graph = build_agent_graph(env, recall, playbook, record, consolidate, policy)
    rows: list[dict[str, Any]] = []
    phases = [("train", "train", env.stream("train", cfg.episodes, seed, cfg.train_pool))]
    phases.append(("heldout", cfg.heldout_fold, env.stream(cfg.heldout_fold, cfg.heldout_episodes, 10_000 + seed)))
    version = 0
    for phase, fold, stream in phases:
        if phase == "heldout":
            for memory in memories:
                memory.writes = False
            consolidate = None
            graph = build_agent_graph(env, recall, playbook, None, None, policy)
        for episode, game_seed in enumerate(stream):
            policy.new_episode()
            obs = env.reset(game_seed, fold)
            start = time.perf_counter()
            out = graph.invoke(
                {"obs": obs, "task_id": f"{phase}-{seed}-{episode}", "playbook_version": version, "latencies": []},
                {"recursion_limit": 10 * (env.budget + 5)},
            )
            if out.get("consolidation") is not None:
                version += 1
            final = out["obs"]
            lat = out.get("latencies") or []
            rows.append(
                {
                    "arm": "frozen" if (phase == "heldout" and spec.name == "memory") else spec.name,
                    "phase": phase,
                    "seed": seed,
                    "episode": episode,
                    "game_seed": game_seed,
                    "won": bool(final.won),
                    "steps": env.steps,
                    "budget": env.budget,
                    "score": final.score,
                    "records": store.count(namespace) if spec.memory else 0,
                    "recall_ms": [round(1000 * x, 3) for x in lat],
                    "episode_s": round(time.perf_counter() - start, 4),
                }
            )
            progress.put(1)
    env.close()
    return rows


class _EmbedMemo:
    """One embedder and one embedding cache per worker process (shared by the arms of a seed)."""

    def __init__(self) -> None:
        from collections import OrderedDict

        from ltm_agent.embeddings import default_embedder

        self.embedder = default_embedder()
        self.cache: OrderedDict[str, Any] = OrderedDict()


def _seed_job(args: tuple[EvolutionConfig, str, int, Any]) -> list[dict[str, Any]]:
    cfg, arm, seed, progress = args
    global _MEMO
    try:
        memo = _MEMO
    except NameError:
        memo = _MEMO = _EmbedMemo()
    return _play_arm(cfg, ARM_SPECS[arm], seed, memo, progress)


def _jobs(cfg: EvolutionConfig, done: set[tuple[str, int]]) -> list[tuple[str, int]]:
    trained = [a for a in cfg.arms if a != "frozen"]
    if "frozen" in cfg.arms and "memory" not in trained:
        trained.append("memory")  # frozen is the memory arm's store after training
    return [(arm, seed) for seed in range(cfg.seeds) for arm in trained if (arm, seed) not in done]


def _load(results: Path) -> list[dict[str, Any]]:
    if not results.exists():
        return []
    return [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_evolution_bench(cfg: EvolutionConfig, out_dir: Path, *, show_progress: bool = True) -> EvolutionRun:
    """Run (or resume) every arm and seed, then write summary.json and the learning-curve PNG."""
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2), encoding="utf-8")
    results = out_dir / "results.jsonl"
    rows = _load(results)
    done = {(("memory" if r["arm"] == "frozen" else r["arm"]), r["seed"]) for r in rows if r["phase"] == "train"}
    jobs = _jobs(cfg, done)
    total = len(jobs) * (cfg.episodes + cfg.heldout_episodes)
    if cfg.workers <= 1:  # inline: no process start-up (tests, small runs)
        import queue

        local: queue.Queue[int] = queue.Queue()
        with tqdm(total=total, disable=not show_progress, desc=f"evolution {cfg.game}") as bar, results.open(
            "a", encoding="utf-8"
        ) as sink:
            for arm, seed in jobs:
                batch = _seed_job((cfg, arm, seed, local))
                sink.writelines(json.dumps(r) + "\n" for r in batch)
                bar.update(cfg.episodes + cfg.heldout_episodes)
        return _finish(cfg, out_dir, results)
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        progress = manager.Queue()
        with ctx.Pool(max(1, min(cfg.workers, len(jobs) or 1)), maxtasksperchild=None) as pool, tqdm(
            total=total, disable=not show_progress, desc=f"evolution {cfg.game}"
        ) as bar:
            pending = pool.imap_unordered(_seed_job, [(cfg, arm, seed, progress) for arm, seed in jobs])
            finished = 0
            with results.open("a", encoding="utf-8") as sink:
                while finished < len(jobs):
                    while not progress.empty():
                        bar.update(progress.get())
                    try:
                        batch = pending.next(timeout=0.5)
                    except mp.TimeoutError:
                        continue
                    finished += 1
                    sink.writelines(json.dumps(r) + "\n" for r in batch)
                    sink.flush()
            while not progress.empty():
                bar.update(progress.get())
    return _finish(cfg, out_dir, results)


def summarize_run(out_dir: Path) -> EvolutionRun:
    """Rewrite summary.json and the plot from the episodes already in ``out_dir`` (a stopped run)."""
    raw = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    raw["arms"] = tuple(raw["arms"])
    return _finish(EvolutionConfig(**raw), out_dir, out_dir / "results.jsonl")


def _finish(cfg: EvolutionConfig, out_dir: Path, results: Path) -> EvolutionRun:
    from ltm_agent.app.bench.evolution.report import write_plot, write_summary

    summary = write_summary(cfg, _load(results), out_dir / "summary.json")
    plot = write_plot(cfg, summary, out_dir / "learning_curve.png")
    return EvolutionRun(out_dir, results, out_dir / "summary.json", plot)


def iter_arms(value: str | None) -> Iterable[str]:
    """Parse ``--arms`` (comma-separated, default every arm)."""
    if not value:
        return ARMS
    names = tuple(a.strip() for a in value.split(",") if a.strip())
    unknown = [a for a in names if a not in ARMS]
    if unknown:
        from ltm_agent.errors import InvalidInputError

        raise InvalidInputError(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    return names
