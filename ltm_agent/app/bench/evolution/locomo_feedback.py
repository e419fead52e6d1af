"""Utility feedback on real dialogue: LoCoMo dev, half the questions teach, the other half measure.

Per conversation: ingest it (turn + context units, the default ``ltm``
system), split its scored questions at random into a feedback half and a
measured half (seeded). Baseline: recall@``budget`` tokens of the default
retriever on the measured half. Then, for every feedback question, the
memories retrieved within the budget get utility feedback through
:func:`ltm_agent.evolution.feedback`: +1 for those holding evidence, -1 for
those that did not (a distractor that keeps ranking high), idempotent per
(question, memory). The measured half is then ranked again with the opt-in
usage mix (``RetrievalConfig.utility_weight``) and recall is compared. The
feedback half never sees the measured questions' evidence.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["run_feedback_bench"]


def run_feedback_bench(
    data: Path, out_dir: Path, *, budget_tokens: int = 1024, utility_weight: float = 0.02, seed: int = 0
) -> Path:
    """Run the protocol above; writes ``feedback_results.jsonl`` and ``feedback_summary.json``."""
    from tqdm import tqdm

    from ltm_agent.app.bench.cache import CachedEmbedder
    from ltm_agent.app.bench.datasets import is_scored, load_benchmark
    from ltm_agent.app.bench.metrics import recall_at_budget, within_budget
    from ltm_agent.app.bench.retrieval_bench import retrieved_payload
    from ltm_agent.app.bench.systems import DEPTH
    from ltm_agent.embeddings import default_embedder
    from ltm_agent.evolution import feedback
    from ltm_agent.memory_stores.chroma import ChromaStore
    from ltm_agent.retrieval import HybridRetriever, RetrievalConfig
    from ltm_agent.timeline import EpisodicTimeline

    out_dir.mkdir(parents=True, exist_ok=True)
    embedder = CachedEmbedder(default_embedder(), out_dir / "cache" / "embeddings.sqlite")
    conversations, questions = load_benchmark(data, "locomo")
    by_conv: dict[str, list[Any]] = defaultdict(list)
    for q in questions:
        if is_scored(q):
            by_conv[q.conversation_id].append(q)
    store = ChromaStore.ephemeral(embedder=embedder)
    base = HybridRetriever(store, RetrievalConfig())
    mixed = HybridRetriever(store, RetrievalConfig(utility_weight=utility_weight))
    rows, per_conv = [], []
    try:
        for conv in tqdm(conversations, desc="locomo feedback"):
            qs = by_conv.get(conv.id, [])
            if len(qs) < 2:
                continue
            ns = ("evolution-feedback", conv.id)
            EpisodicTimeline(store, ns).ingest(conv)
            order = list(qs)
            random.Random(f"{seed}:{conv.id}").shuffle(order)
            teach, measure = order[: len(order) // 2], order[len(order) // 2 :]

            def recall(retriever: HybridRetriever, q: Any) -> tuple[float, list[Any]]:
                items = retriever.rank(ns, q.text, reference_time=q.question_time, depth=DEPTH)
                payload = retrieved_payload(items, budget_tokens)
                return recall_at_budget(payload, q.evidence, budget_tokens), items

            without = [recall(base, q)[0] for q in measure]
            # Feedback: every stored unit of a retrieved turn (its turn and context items) learns the outcome.
            units_of = defaultdict(list)
            for item in store.list(ns):
                units_of[tuple(sorted(json.loads(str(item.metadata.get("sources", "[]")))))].append(item.id)
            fed = 0
            for q in teach:
                _, items = recall(base, q)
                within = within_budget(retrieved_payload(items, budget_tokens), budget_tokens)
                evidence = set(q.evidence)
                good, bad = [], []
                for entry, item in zip(within, items):
                    ids = (units_of.get(tuple(sorted(entry["sources"]))) if entry["sources"] else None) or [item.id]
                    (good if evidence & set(entry["sources"]) else bad).extend(ids)
                if good:
                    feedback(store, ns, good, 1.0, task_id=q.id)
                if bad:
                    feedback(store, ns, bad, -1.0, task_id=q.id)
                fed += 1
            with_fb = [recall(mixed, q)[0] for q in measure]
            for q, a, b in zip(measure, without, with_fb):
                rows.append({"conversation": conv.id, "question": q.id, "recall_without": a, "recall_with": b})
            mean_a = sum(without) / len(without)
            mean_b = sum(with_fb) / len(with_fb)
            per_conv.append(
                {
                    "conversation": conv.id,
                    "feedback_questions": fed,
                    "measured_questions": len(measure),
                    "recall_without": round(mean_a, 4),
                    "recall_with": round(mean_b, 4),
                    "delta_points": round(100 * (mean_b - mean_a), 2),
                }
            )
            store.delete(ns)
    finally:
        store.close()
    (out_dir / "feedback_results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    deltas = [c["delta_points"] for c in per_conv]
    summary = {
        "data": str(data),
        "budget_tokens": budget_tokens,
        "utility_weight": utility_weight,
        "seed": seed,
        "protocol": (
            f"Per LoCoMo dev conversation: a seeded random half of its scored questions gives utility feedback "
            f"(+1 to retrieved memories within {budget_tokens} tokens that hold evidence, -1 to the others); "
            f"recall@{budget_tokens} tokens on the other half, default ranking vs the opt-in usage mix "
            f"(utility_weight={utility_weight} times tanh(utility) added to the fused score)."
        ),
        "conversations": per_conv,
        "mean_delta_points": round(sum(deltas) / len(deltas), 3) if deltas else 0.0,
        "worst_delta_points": min(deltas) if deltas else 0.0,
    }
    path = out_dir / "feedback_summary.json"
    path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return path
