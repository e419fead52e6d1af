"""``ltm-agent bench perf`` end to end at a toy size, and the page it writes."""

from __future__ import annotations

import json
from pathlib import Path

from ltm_agent.app.bench.perf import run_perf
from ltm_agent.app.bench.perf_commands import write_performance_page


def test_perf_runs_two_layouts_into_one_report_and_page(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_perf([200], out, modes=("embedded",), langgraph_max=0, queries=4, live_writes=2, per_namespace=100)
    run_perf([200], out, modes=("embedded",), langgraph_max=0, queries=4, live_writes=2, per_namespace=200, append=True)
    rows = json.loads((out / "perf.json").read_text())
    assert [(r["per_namespace"], r.get("namespaces")) for r in rows] == [(100, 2), (200, 1)]
    for row in rows:
        assert "error" not in row, row.get("error")
        assert row["items"] >= 2 * 200 and row["search_p95_ms"] > 0 and row["load_start"] >= 0
        assert row["cold_open_ms"] > 0 and row["first_query_after_ingest_ms"] > 0
        # a serving process read every namespace once, and its close left a snapshot the cold open used
        assert row["serve_namespaces"] == row["namespaces"] and row["serve_peak_rss_mb"] > 0
        assert row["snapshot_cold_first_query_ms"] > 0
    report = (out / "report.md").read_text()
    assert "| embedded, 100 per namespace | 200 | 2 |" in report  # the layout is named when it is not 10k
    assert "| embedded, 100 per namespace | 200 | 2 | " in report.split("Serving a finished store")[1]
    page = write_performance_page(out, tmp_path / "docs" / "performance.md")
    text = page.read_text()
    assert report in text and (tmp_path / "docs" / "img" / "perf_latency.png").exists()
    # Sizes that were not run say so, with the ingest time this host's measured rate implies.
    assert "| search p95 <= 50 ms at 1M turns / 10k per namespace | not run" in text


def test_perf_docs_merges_run_folders(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ltm_agent.app.cli import app

    row = {"mode": "embedded", "items": 20, "search_p50_ms": 5.0, "search_p95_ms": 9.0, "peak_rss_mb": 100.0,
           "bulk_turns_per_s": 50.0, "load_start": 1.0, "load_end": 2.0}
    runs = []
    for name, size, per_ns, p95 in (("a", 10_000, 10_000, 9.0), ("b", 100_000, 100_000, 9.0), ("c", 10_000, 10_000, 7.5)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "perf.json").write_text(json.dumps([{**row, "size_turns": size, "per_namespace": per_ns,
                                                       "namespaces": size // per_ns, "search_p95_ms": p95}]))
        runs += ["--run", str(folder)]
    page = tmp_path / "performance.md"
    done = CliRunner().invoke(app, ["bench", "perf-docs", *runs, "--merged", str(tmp_path / "m"), "--out", str(page)])
    assert done.exit_code == 0, done.output
    text = page.read_text()
    assert "| embedded | 10,000 | 1 |" in text and "| embedded, one namespace | 100,000 | 1 |" in text
    assert "| one namespace of 100k turns ingests and answers with p95 <= 100 ms | met: 9.0 ms" in text
    assert len(json.loads((tmp_path / "m" / "perf.json").read_text())) == 2  # "c" reran "a"'s row
    assert "| embedded | 10,000 | 1 | 20 | 50 | — / — | 5.0 / 7.5 |" in text
    missing = CliRunner().invoke(app, ["bench", "perf-docs", *runs, "--out", str(page)])
    assert missing.exit_code != 0 and "--merged" in missing.output


def test_perf_serve_adds_serving_reads_to_a_record_of_a_kept_store(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ltm_agent.app.bench.perf_worker import synthetic_conversation
    from ltm_agent.app.cli import app
    from ltm_agent.embeddings import HashingEmbedder
    from ltm_agent.memory_stores import ChromaStore
    from ltm_agent.timeline import EpisodicTimeline

    store_dir = tmp_path / "store"
    with ChromaStore.persistent(store_dir, embedder=HashingEmbedder(384)) as store:  # what `bench perf` writes
        for n in range(3):
            EpisodicTimeline(store, (f"user-{n:04}",)).ingest(synthetic_conversation(f"user-{n:04}", 40, 0))
    run = tmp_path / "run"
    run.mkdir()
    (run / "perf.json").write_text(json.dumps([{"mode": "embedded", "size_turns": 120, "per_namespace": 40,
                                                "namespaces": 3, "items": 240}]))
    done = CliRunner().invoke(app, ["bench", "perf-serve", "--store", str(store_dir), "--run", str(run),
                                    "--size", "120", "--per-namespace", "40"])
    assert done.exit_code == 0, done.output
    row = json.loads((run / "perf.json").read_text())[0]
    assert row["serve_namespaces"] == 3 and row["snapshot_cold_first_query_ms"] > 0 and row["serve_search_p95_ms"] > 0
    assert (store_dir / "ltm-side").is_dir()  # the serving process's close saved snapshots
    assert "| embedded, 40 per namespace | 120 | 3 |" in (run / "report.md").read_text()
    wrong = CliRunner().invoke(app, ["bench", "perf-serve", "--store", str(store_dir), "--run", str(run), "--size", "7"])
    assert wrong.exit_code != 0 and "no embedded record of 7 turns" in wrong.output
