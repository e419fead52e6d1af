"""One size of ``ltm-agent bench perf``, run in a process of its own so its peak RSS is its own.

``python -m ltm_agent.app.bench.perf_worker SPEC_JSON`` ingests seeded
synthetic conversations into a fresh store through the agent's paths
(:meth:`EpisodicTimeline.ingest` for bulk, :meth:`EpisodicTimeline.add_turn`
for live writes), queries it through :class:`HybridRetriever` (what the read
node calls), and prints one JSON object of measurements.

The embedder is :class:`~ltm_agent.embeddings.HashingEmbedder` (384
dimensions, a deterministic hash of words): it stands in for precomputed
vectors, so the run measures the store and the read path, not a model.

Core functions: :func:`synthetic_conversation`, :func:`run_size`.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ltm_agent.conversations import Conversation, Session, Turn

__all__ = ["measure_serving", "run_size", "serve_reads", "synthetic_conversation"]

_DIM = 384
_SESSION_TURNS = 20


def _vocabulary(seed: int) -> list[str]:
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "to", "sa", "vel", "dor", "an", "qui", "ber", "zu", "pol", "ne", "ta"]
    words = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))) for _ in range(6000)}
    return sorted(words)


def synthetic_conversation(cid: str, turns: int, seed: int) -> Conversation:
    """A seeded conversation of ``turns`` turns in sessions of 20, one day apart, Zipf-distributed words."""
    rng = random.Random(f"{seed}-{cid}")
    vocab = _vocabulary(seed)
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    sessions = []
    start = datetime(2023, 1, 1, 9, tzinfo=UTC)
    for s in range(0, turns, _SESSION_TURNS):
        count = min(_SESSION_TURNS, turns - s)
        items = []
        for t in range(count):
            words = rng.choices(vocab, weights, k=rng.randint(8, 20))
            role = "user" if t % 2 == 0 else "assistant"
            items.append(Turn(id=f"{s + t}", role=role, speaker="Ana" if role == "user" else "Bot", text=" ".join(words)))
        sessions.append(Session(id=f"s{s // _SESSION_TURNS}", date=start + timedelta(days=s // _SESSION_TURNS), turns=items))
    return Conversation(id=cid, sessions=sessions)


def _queries(conversation: Conversation, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    turns = [t for s in conversation.sessions for t in s.turns]
    return [" ".join(rng.sample(t.text.split(), min(4, len(t.text.split())))) for t in rng.sample(turns, n)]


def _rss_mb() -> float:
    """This process's peak RSS. Linux keeps ``ru_maxrss`` across fork and exec (a child of a 5 GB
    process reports 5 GB), so the high-water mark of this program's own memory (``VmHWM``) is read."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def _open(spec: dict[str, Any]) -> Any:
    from ltm_agent.embeddings import HashingEmbedder
    from ltm_agent.memory_stores import ChromaStore

    embedder = HashingEmbedder(_DIM)
    if spec["mode"] == "server":
        return ChromaStore.server(spec["url"], embedder=embedder, timeout=120)
    return ChromaStore.persistent(spec["dir"], embedder=embedder)


def run_size(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one total size (``spec``: size, per_namespace, mode, dir/url, queries, live_writes, seed)."""
    from ltm_agent.retrieval import HybridRetriever
    from ltm_agent.timeline import EpisodicTimeline

    size, per_ns, seed = spec["size"], spec["per_namespace"], spec["seed"]
    namespaces = [(f"user-{n:04}",) for n in range((size + per_ns - 1) // per_ns)]
    out: dict[str, Any] = {"size_turns": size, "namespaces": len(namespaces), "mode": spec["mode"],
                           "load_start": os.getloadavg()[0]}
    store = _open(spec)
    conversations = {}
    ingest_s = 0.0
    items = 0
    for n, namespace in enumerate(namespaces):
        turns = min(per_ns, size - n * per_ns)
        conversation = synthetic_conversation(namespace[0], turns, seed)
        conversations[namespace] = conversation
        started = time.perf_counter()
        report = EpisodicTimeline(store, namespace).ingest(conversation, batch_size=2048)
        ingest_s += time.perf_counter() - started
        items += int(getattr(report, "items", 0) or store.count(namespace))
        if n + 1 < len(namespaces):
            conversations.pop(namespace)  # keep only the queried (last) namespace's conversation
    out.update(items=items, bulk_ingest_s=ingest_s, bulk_turns_per_s=size / ingest_s if ingest_s else None)
    active = namespaces[-1]
    queries = _queries(conversations[active], spec["queries"], seed)
    retriever = HybridRetriever(store)
    reference = datetime(2024, 1, 1, tzinfo=UTC)
    first = time.perf_counter()
    retriever.retrieve(active, queries[0], budget_tokens=1024, reference_time=reference)
    out["first_query_after_ingest_ms"] = (time.perf_counter() - first) * 1000
    latencies, cpu = [], []
    for query in queries:
        started, cpu_started = time.perf_counter(), time.process_time()
        retriever.retrieve(active, query, budget_tokens=1024, reference_time=reference)
        latencies.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    # CPU time (every thread of this process, Chroma's included) is what the read path costs; wall time
    # adds the wait for a core, which on a shared host can be most of it.
    out.update(search_p50_ms=_pct(latencies, 50), search_p95_ms=_pct(latencies, 95),
               search_cpu_p50_ms=_pct(cpu, 50), search_cpu_p95_ms=_pct(cpu, 95))
    # A plain Chroma dense query over the same vectors, same run: the floor under our read path.
    collection = store._handles.get(active) or store._client.get_collection(_collection_name(active))
    vectors = store.embedder.embed(queries)
    plain, plain_cpu = [], []
    for vector in vectors:
        started, cpu_started = time.perf_counter(), time.process_time()
        collection.query(query_embeddings=[vector], n_results=10)
        plain.append(time.perf_counter() - started)
        plain_cpu.append(time.process_time() - cpu_started)
    out.update(plain_chroma_p50_ms=_pct(plain, 50), plain_chroma_p95_ms=_pct(plain, 95),
               plain_chroma_cpu_p50_ms=_pct(plain_cpu, 50))
    # Live writes: the agent's path (add_turn), appended to the active namespace's newest session.
    timeline = EpisodicTimeline(store, active)
    live = []
    session = conversations[active].sessions[-1].id
    for t in range(spec["live_writes"]):
        started = time.perf_counter()
        timeline.add_turn(f"live note {t} about {queries[t % len(queries)]}", session_id=f"{session}-live",
                          time=reference + timedelta(minutes=t))
        live.append(time.perf_counter() - started)
    out.update(live_write_p50_ms=_pct(live, 50), live_write_p95_ms=_pct(live, 95),
               live_writes_per_s=len(live) / sum(live) if live else None)
    store.close()
    out["load_end"] = os.getloadavg()[0]
    out["peak_rss_mb"] = _rss_mb()
    if spec["mode"] == "embedded":
        out["disk_mb"] = _disk_mb(Path(spec["dir"]))
        out.update(_cold_open(spec, active, queries[1]))
        out.update(measure_serving(spec))
    return out


def _collection_name(namespace: tuple[str, ...]) -> str:
    from ltm_agent.memory_stores.chroma.layout import collection_name

    return collection_name(namespace)


_COLD = """
import json, sys, time
t0 = time.perf_counter()
from ltm_agent.app.bench.perf_worker import _rss_mb
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.retrieval import HybridRetriever
t1 = time.perf_counter()
store = ChromaStore.persistent(sys.argv[1], embedder=HashingEmbedder(384))
t2 = time.perf_counter()
HybridRetriever(store).retrieve(tuple(json.loads(sys.argv[2])), sys.argv[3], budget_tokens=1024)
t3 = time.perf_counter()
print(json.dumps({"cold_open_ms": (t2 - t1) * 1000, "cold_first_query_ms": (t3 - t2) * 1000,
                  "cold_peak_rss_mb": _rss_mb()}))
"""


def _cold_open(spec: dict[str, Any], namespace: tuple[str, ...], query: str) -> dict[str, Any]:
    """Open the store in a fresh process and ask one question: nothing may scan every memory.

    ``cold_had_snapshot`` says whether the namespace had a side-index snapshot to load
    (the ingesting process saves those of the namespaces its side cache still held).
    """
    from ltm_agent.memory_stores.chroma.snapshot import SnapshotDir

    had = SnapshotDir(spec["dir"]).exists(namespace) if spec.get("mode") == "embedded" else False
    done = subprocess.run(
        [sys.executable, "-c", _COLD, spec["dir"], json.dumps(list(namespace)), query],
        capture_output=True, text=True, check=True,
    )
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "cold_had_snapshot": had}


SERVE_NAMESPACES = 20
"""Namespaces a serving process reads, one question each (enough to pass the side-index bound)."""

_SERVE = """
import json, sys, time
from ltm_agent.app.bench.perf_worker import serve_reads
print(json.dumps(serve_reads(sys.argv[1], json.loads(sys.argv[2]))))
"""


def serve_reads(directory: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A serving process on a finished store: one question in each of up to :data:`SERVE_NAMESPACES`
    namespaces (each its first in this process), then ``spec["queries"]`` questions in the last of
    them, then close (which saves side-index snapshots).

    Returns the first-question latencies (p50/p95 ms), how many namespaces were read, the later
    questions' latency and CPU time with the load around them, and the process's peak RSS: the
    memory of an agent process that reads a large store, beside the ingesting process's peak in
    ``peak_rss_mb``.
    """
    from ltm_agent.embeddings import HashingEmbedder
    from ltm_agent.memory_stores import ChromaStore
    from ltm_agent.retrieval import HybridRetriever

    per_ns, size, seed = spec["per_namespace"], spec["size"], spec["seed"]
    count = (size + per_ns - 1) // per_ns
    reads = min(count, SERVE_NAMESPACES)  # spread evenly over the store, first and last included
    chosen = sorted({round(i * (count - 1) / max(1, reads - 1)) for i in range(reads)})
    store = ChromaStore.persistent(directory, embedder=HashingEmbedder(_DIM))
    retriever = HybridRetriever(store)
    first = []
    for n in chosen:
        namespace = (f"user-{n:04}",)
        query = _queries(synthetic_conversation(namespace[0], min(per_ns, size - n * per_ns), seed), 1, seed)[0]
        started = time.perf_counter()
        retriever.retrieve(namespace, query, budget_tokens=1024)
        first.append(time.perf_counter() - started)
    # Then the questions of a conversation going on: spec["queries"] more in the last namespace read.
    last = (f"user-{chosen[-1]:04}",)
    questions = _queries(synthetic_conversation(last[0], min(per_ns, size - chosen[-1] * per_ns), seed),
                         spec.get("queries", 40), seed + 1)
    load_start = os.getloadavg()[0]
    warm, cpu = [], []
    for query in questions:
        started, cpu_started = time.perf_counter(), time.process_time()
        retriever.retrieve(last, query, budget_tokens=1024)
        warm.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    load_end = os.getloadavg()[0]
    started = time.perf_counter()
    store.close()
    return {"serve_namespaces": len(chosen), "serve_first_query_p50_ms": _pct(first, 50),
            "serve_first_query_p95_ms": _pct(first, 95), "serve_search_p50_ms": _pct(warm, 50),
            "serve_search_p95_ms": _pct(warm, 95), "serve_search_cpu_p95_ms": _pct(cpu, 95),
            "serve_load": [load_start, load_end], "serve_peak_rss_mb": _rss_mb(),
            "serve_close_ms": (time.perf_counter() - started) * 1000, "serve_last_namespace": list(last)}


def measure_serving(spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`serve_reads` in a fresh process, then a cold open of the last namespace it read
    (which now has a side-index snapshot): the fields ``serve_*`` and ``snapshot_cold_*``."""
    done = subprocess.run([sys.executable, "-c", _SERVE, spec["dir"], json.dumps(spec)],
                          capture_output=True, text=True, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    last = out.pop("serve_last_namespace")
    cold = _cold_open(spec, tuple(last), "question about the snapshot")
    out.update({f"snapshot_{key}": value for key, value in cold.items()})
    return out


def main() -> None:
    if sys.argv[1] == "--serve":  # perf-serve: the reads of a store a run kept
        print(json.dumps(measure_serving(json.loads(sys.argv[2]))))
        return
    spec = json.loads(sys.argv[1])
    if spec["mode"] == "embedded":
        shutil.rmtree(spec["dir"], ignore_errors=True)
        os.makedirs(spec["dir"], exist_ok=True)
    print(json.dumps(run_size(spec)))


if __name__ == "__main__":
    main()
