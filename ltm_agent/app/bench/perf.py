"""``ltm-agent bench perf``: how the store scales, from 1,000 to a million turns.

For each total size the harness starts a fresh process
(:mod:`ltm_agent.app.bench.perf_worker`) that ingests seeded synthetic
conversations, 10,000 turns per namespace, through the agent's bulk path,
asks questions of the newest namespace through :class:`HybridRetriever`
(1,024-token budget), appends live turns with ``add_turn``, and reports
throughput, latency percentiles, peak RSS, disk size and a cold open in a
new process. Embedded runs write to a directory; server runs go to a
``chroma run`` the harness starts. LangGraph's ``InMemoryStore`` (same
vectors) is measured at the sizes it can hold. Results land in
``DIR/perf.json`` (one record per size and mode, appended as each finishes),
``DIR/report.md`` and ``DIR/latency.png``.

Core functions: :func:`run_perf`, :func:`write_report`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["layout", "per_namespace", "run_perf", "write_report"]


def run_perf(
    sizes: Sequence[int],
    out: Path,
    *,
    modes: Sequence[str] = ("embedded", "server"),
    server_max: int = 100_000,
    langgraph_max: int = 10_000,
    per_namespace: int = 10_000,
    queries: int = 40,
    live_writes: int = 50,
    seed: int = 0,
    append: bool = False,
) -> list[dict[str, Any]]:
    """Run every size in every mode (server and LangGraph only up to their maxima); write the report.

    ``append`` keeps the records already in ``out/perf.json`` (another layout, e.g. one
    namespace of 100k turns beside 10k per namespace), so one report holds both.
    """
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "perf.json"
    results: list[dict[str, Any]] = []
    if append and results_path.exists():
        results = json.loads(results_path.read_text())
    for size in sorted(sizes):
        for mode in modes:
            if mode == "server" and size > server_max:
                continue
            spec = {"size": size, "per_namespace": per_namespace, "mode": mode, "queries": queries,
                    "live_writes": live_writes, "seed": seed, "dir": str(out / f"store-{size}-{per_namespace}")}
            results.append(_run_one(spec, out))
            results_path.write_text(json.dumps(results, indent=1))
            write_report(results, out)
        if size <= langgraph_max:
            results.append(_langgraph(size, queries, seed, per_namespace))
            results_path.write_text(json.dumps(results, indent=1))
            write_report(results, out)
    return results


def _run_one(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    server = None
    try:
        if spec["mode"] == "server":
            server, spec["url"] = _start_server(out / f"server-{spec['size']}")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ltm_agent.app.bench.perf_worker", json.dumps(spec)],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            return {"size_turns": spec["size"], "mode": spec["mode"], "per_namespace": spec["per_namespace"],
                    "error": done.stderr[-1500:]}
        record = json.loads(done.stdout.strip().splitlines()[-1])
        record["per_namespace"] = spec["per_namespace"]
        record["wall_s"] = time.perf_counter() - started
        if server is not None:
            record["disk_mb"] = sum(p.stat().st_size for p in (out / f"server-{spec['size']}").rglob("*")
                                    if p.is_file()) / 2**20
        return record
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        shutil.rmtree(spec["dir"], ignore_errors=True)
        shutil.rmtree(out / f"server-{spec['size']}", ignore_errors=True)


def _start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    import httpx

    data.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    proc = subprocess.Popen([exe, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("chroma run did not start")


def _langgraph(size: int, queries: int, seed: int, per_ns: int = 10_000) -> dict[str, Any]:
    """LangGraph's InMemoryStore over the same conversations and vectors (its own cosine search)."""
    import numpy as np
    from langgraph.store.memory import InMemoryStore as LangGraphStore

    from ltm_agent.app.bench.perf_worker import _pct, _queries, synthetic_conversation
    from ltm_agent.embeddings import HashingEmbedder

    embedder = HashingEmbedder(384)
    store = LangGraphStore(index={"dims": 384, "embed": lambda texts: embedder.embed(list(texts)).tolist()})
    started = time.perf_counter()
    last = None
    for n in range((size + per_ns - 1) // per_ns):
        conversation = synthetic_conversation(f"user-{n:04}", min(per_ns, size - n * per_ns), seed)
        for session in conversation.sessions:
            for turn in session.turns:
                store.put(("memories", conversation.id), turn.id, {"text": turn.text})
        last = conversation
    ingest = time.perf_counter() - started
    load_start = os.getloadavg()[0]
    assert last is not None
    latencies = []
    for query in _queries(last, queries, seed):
        t0 = time.perf_counter()
        store.search(("memories", last.id), query=query, limit=10)
        latencies.append(time.perf_counter() - t0)
    return {"size_turns": size, "mode": "langgraph-inmemory", "items": size, "bulk_ingest_s": ingest,
            "bulk_turns_per_s": size / ingest, "search_p50_ms": _pct(latencies, 50),
            "search_p95_ms": _pct(latencies, 95), "note": "dense only (LangGraph's store has no keyword search)",
            "peak_rss_mb": float(np.nan), "per_namespace": per_ns, "load_start": load_start,
            "load_end": os.getloadavg()[0]}


def per_namespace(row: dict[str, Any]) -> int:
    """Turns per namespace of a record (records from before the option said 10,000)."""
    return int(row.get("per_namespace", 10_000))


def layout(row: dict[str, Any]) -> str:
    """``mode`` plus the namespace layout when it is not the standard 10,000 turns per namespace."""
    size = int(row["size_turns"])
    count = -(-size // per_namespace(row))
    if count == -(-size // 10_000):  # the same namespaces as the standard layout
        return str(row["mode"])
    if count == 1:
        return f"{row['mode']}, one namespace"
    return f"{row['mode']}, {per_namespace(row):,} per namespace"


def _exponent(rows: list[dict[str, Any]], key: str) -> float | None:
    """Slope of log(latency) against log(size) between the smallest size >= 10k and the largest."""
    points = sorted((r["size_turns"], r[key]) for r in rows
                    if r.get(key) and r["size_turns"] >= 10_000 and per_namespace(r) == 10_000)
    if len(points) < 2 or points[0][0] == points[-1][0]:
        return None
    (x0, y0), (x1, y1) = points[0], points[-1]
    return math.log(y1 / y0) / math.log(x1 / x0)


def write_report(results: list[dict[str, Any]], out: Path, *, load_note: bool = True) -> None:
    """``report.md`` (a table per mode) and ``latency.png`` (search p50/p95 against size).

    ``load_note`` adds the load average at the time of writing (a live run's end); a report
    merged later from finished runs leaves it out (each row carries its own load).
    """
    lines = [
        "| mode | turns | namespaces | items | bulk turns/s | live write p50/p95 ms | search p50/p95 ms "
        "| search CPU p50/p95 ms | plain Chroma p50/p95 ms | peak RSS MB | disk MB | cold open ms "
        "| cold first query ms | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(value: Any, digits: int = 1) -> str:
        return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"

    for r in results:
        if "error" in r:
            lines.append(f"| {layout(r)} | {r['size_turns']:,} | failed: {r['error'][-200:]!r} |")
            continue
        lines.append(
            f"| {layout(r)} | {r['size_turns']:,} | {r.get('namespaces', '—')} | {r.get('items', '—'):,} "
            f"| {f(r.get('bulk_turns_per_s'), 0)} | {f(r.get('live_write_p50_ms'))} / {f(r.get('live_write_p95_ms'))} "
            f"| {f(r.get('search_p50_ms'))} / {f(r.get('search_p95_ms'))} "
            f"| {f(r.get('search_cpu_p50_ms'))} / {f(r.get('search_cpu_p95_ms'))} "
            f"| {f(r.get('plain_chroma_p50_ms'))} / {f(r.get('plain_chroma_p95_ms'))} | {f(r.get('peak_rss_mb'), 0)} "
            f"| {f(r.get('disk_mb'), 0)} | {f(r.get('cold_open_ms'), 0)} | {f(r.get('cold_first_query_ms'), 0)} "
            f"| {f(r.get('load_start'))} / {f(r.get('load_end'))} |"
        )
    served = [r for r in results if "error" not in r and r.get("serve_namespaces")]
    if served:
        lines += [
            "",
            "Serving a finished store (a fresh process reads one question in each of up to 20 namespaces spread "
            "over the store, each its first question there, then the run's number of questions (`--queries`, 40) in the last of them, then closes; then a "
            "new process opens the store and asks that last namespace again, from the snapshot the close saved):",
            "",
            "| mode | turns | namespaces read | first question p50/p95 ms | later questions p50/p95 ms "
            "| their CPU p95 ms | load | serving peak RSS MB | cold open ms | cold first question with a snapshot ms |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {layout(r)} | {r['size_turns']:,} | {r['serve_namespaces']} "
            f"| {f(r.get('serve_first_query_p50_ms'), 0)} / {f(r.get('serve_first_query_p95_ms'), 0)} "
            f"| {f(r.get('serve_search_p50_ms'))} / {f(r.get('serve_search_p95_ms'))} "
            f"| {f(r.get('serve_search_cpu_p95_ms'))} "
            f"| {' / '.join(f(x) for x in r.get('serve_load', [None, None]))} "
            f"| {f(r.get('serve_peak_rss_mb'), 0)} | {f(r.get('snapshot_cold_open_ms'), 0)} "
            f"| {f(r.get('snapshot_cold_first_query_ms'), 0)} |"
            for r in served
        ]
    embedded = [r for r in results if r.get("mode") == "embedded" and "error" not in r]
    exponent = _exponent(embedded, "search_p95_ms")
    p50 = _exponent(embedded, "search_p50_ms")
    cpu = _exponent(embedded, "search_cpu_p95_ms")
    sizes_run = ", ".join(f"{size:,}" for size in sorted({r["size_turns"] for r in results}))
    lines += ["", f"Sizes run: {sizes_run} turns.",
              "Growth exponent of embedded search p95 (log-log slope, 10k turns to the largest size run, "
              "10,000 turns per namespace): "
              + ("not measurable (fewer than two sizes at or above 10k)" if exponent is None else f"{exponent:.2f}")
              + ("" if p50 is None else f" (p50: {p50:.2f})")
              + ("" if cpu is None else f"; of the search CPU time p95: {cpu:.2f}"),
              "Load: the host's 1-minute load average when each row's measurement started / ended. Search CPU: "
              "the CPU time the process spent per question (all its threads, Chroma's included), which the "
              "wait for a core on a shared host does not inflate.",
              f"Host: {os.cpu_count()} CPUs as seen by the process"
              + (f"; load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}." if load_note else ".")]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    _plot(results, out / "latency.png")


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mode in sorted({layout(r) for r in results if "error" not in r}):
        rows = sorted((r for r in results if "error" not in r and layout(r) == mode and r.get("search_p95_ms")),
                      key=lambda r: r["size_turns"])
        if not rows:
            continue
        xs = [r["size_turns"] for r in rows]
        ax.plot(xs, [r["search_p95_ms"] for r in rows], marker="o", label=f"{mode} p95")
        ax.plot(xs, [r["search_p50_ms"] for r in rows], marker=".", linestyle="--", label=f"{mode} p50")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("turns in the store (10,000 per namespace unless the label says otherwise)")
    ax.set_ylabel("search latency, ms (HybridRetriever, 1,024 tokens)")
    if ax.lines:
        ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
