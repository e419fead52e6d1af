"""CI slice of ``ltm-agent bench retrieval``: the mini data sets end to end with the hashing embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ltm_agent.app.bench.datasets import load_questions
from ltm_agent.app.bench.report import score_results
from ltm_agent.app.bench.retrieval_bench import run_retrieval_bench
from ltm_agent.embeddings import HashingEmbedder

DATA = Path(__file__).parents[1] / "data"
SYSTEMS = ("dense-turn", "bm25-turn", "ltm")
LINE_KEYS = {"system", "dataset", "question_id", "category", "retrieved", "latency_ms"}
ITEM_KEYS = {"id", "text", "tokens", "sources", "score"}


@pytest.fixture(scope="module")
def locomo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("retrieval-locomo")
    run_retrieval_bench(
        "locomo", DATA / "mini_locomo.json", out, systems=SYSTEMS, embedder=HashingEmbedder(64), progress=False
    )
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "results.jsonl").read_text().splitlines()]


def test_writes_the_contract_files(locomo_run: Path) -> None:
    for name in ("results.jsonl", "summary.json", "report.md", "recall_vs_budget.png", "ingest.json", "speed.json"):
        assert (locomo_run / name).is_file(), name
    assert (locomo_run / "recall_vs_budget.png").read_bytes().startswith(b"\x89PNG")


def test_lines_follow_the_contract(locomo_run: Path) -> None:
    lines = _lines(locomo_run)
    questions = load_questions(DATA / "mini_locomo.json", "locomo")
    assert len(lines) == len(questions) * len(SYSTEMS)
    assert {(r["system"], r["question_id"]) for r in lines} == {(s, q.id) for s in SYSTEMS for q in questions}
    for row in lines:
        assert set(row) == LINE_KEYS
        assert row["dataset"] == "locomo"
        for item in row["retrieved"]:
            assert set(item) == ITEM_KEYS
            assert isinstance(item["tokens"], int) and item["sources"]


def test_summary_names_the_contract_metrics(locomo_run: Path) -> None:
    summary = json.loads((locomo_run / "summary.json").read_text())
    assert set(summary["systems"]) == set(SYSTEMS)
    metrics = summary["systems"]["ltm"]["metrics"]
    for name in ("recall@256t", "recall@1024t", "recall@4096t", "recall_all@1024t", "recall@5", "recall_all@10",
                 "ndcg@10"):
        assert name in metrics
    assert set(summary["systems"]["ltm"]["by_category"]) <= {"1", "2", "3", "4"}


def test_rescoring_results_equals_summary(locomo_run: Path) -> None:
    summary = json.loads((locomo_run / "summary.json").read_text())
    questions = load_questions(DATA / "mini_locomo.json", "locomo")
    rescored = json.loads(json.dumps(score_results(locomo_run / "results.jsonl", questions, SYSTEMS)))
    for name in SYSTEMS:
        for key in ("questions", "metrics", "by_category", "mean_context_tokens"):
            assert rescored[name][key] == summary["systems"][name][key]


def test_resume_redoes_only_missing_and_cut_lines(tmp_path: Path) -> None:
    data = DATA / "mini_longmemeval.jsonl"
    run_retrieval_bench("longmemeval", data, tmp_path, systems=("bm25-turn",), embedder=HashingEmbedder(64),
                        progress=False)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    kept, cut = lines[:-2], lines[-2][:25]  # the last line lost, the one before cut by a "crash"
    (tmp_path / "results.jsonl").write_text("\n".join(kept) + "\n" + cut)
    run_retrieval_bench("longmemeval", data, tmp_path, systems=("bm25-turn",), embedder=HashingEmbedder(64),
                        progress=False)
    after = (tmp_path / "results.jsonl").read_text().splitlines()
    assert after[: len(kept)] == kept and after[len(kept)] == cut
    redone = [json.loads(line) for line in after[len(kept) + 1 :]]
    assert sorted(r["question_id"] for r in redone) == sorted(json.loads(line)["question_id"] for line in lines[-2:])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["systems"]["bm25-turn"]["questions"] == 2  # the _abs question is not scored
    assert "session_recall_all@5" in summary["systems"]["bm25-turn"]["metrics"]


def test_cli_bench_retrieval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ltm_agent.app.bench import retrieval_bench
    from ltm_agent.app.cli import app

    monkeypatch.setattr(retrieval_bench, "default_embedder", lambda: HashingEmbedder(64))
    result = CliRunner().invoke(app, [
        "bench", "retrieval", "--dataset", "locomo", "--data", str(DATA / "mini_locomo.json"),
        "--out", str(tmp_path), "--systems", "dense-turn,bm25-turn", "--limit", "4",
    ])
    assert result.exit_code == 0, result.output
    assert len(_lines(tmp_path)) == 8
    assert "# Retrieval benchmark: locomo" in result.output


def test_bench_docs_page_is_built_from_run_folders(tmp_path: Path) -> None:
    from ltm_agent.app.bench.docs_page import write_benchmarks_page

    run = tmp_path / "locomo"
    run.mkdir()
    (run / "report.md").write_text("# Retrieval benchmark: locomo\n\n| a |\n|---|\n| 1 |\n\n![plot](plot.png)\n")
    (run / "plot.png").write_bytes(b"\x89PNG fake")
    (run / "summary.json").write_text('{"generated_at": "2026-01-01T00:00:00+00:00"}')
    page = write_benchmarks_page([run], tmp_path / "docs" / "benchmarks.md").read_text()
    assert "## Retrieval benchmark: locomo" in page and "(img/locomo-plot.png)" in page
    assert (tmp_path / "docs" / "img" / "locomo-plot.png").exists()
    assert "generated 2026-01-01" in page
    assert "## The runs on this page" not in page  # no note given: no section
    noted = write_benchmarks_page([run], tmp_path / "docs" / "b2.md", note="At commit abc1234, `--stride 2`.")
    section = noted.read_text().split("## The runs on this page\n\n")[1]
    assert section.startswith("At commit abc1234, `--stride 2`.") and section.index("abc1234") < section.index("## Retrieval")


@pytest.mark.parametrize("path", ["live", "langgraph", "llamaindex"])
def test_product_paths_retrieve_what_bulk_retrieves(locomo_run: Path, tmp_path: Path, path: str) -> None:
    """ltm fed turn by turn through add_turn, our LangGraph nodes or LlamaIndex Memory finds what bulk finds."""
    out = tmp_path / path
    run_retrieval_bench(
        "locomo", DATA / "mini_locomo.json", out, systems=("ltm",), embedder=HashingEmbedder(64), progress=False,
        path=path,
    )
    name = f"ltm@{path}"
    bulk = {r["question_id"]: r for r in _lines(locomo_run) if r["system"] == "ltm"}
    rows = {r["question_id"]: r for r in _lines(out)}
    assert set(rows) == set(bulk) and {r["system"] for r in rows.values()} == {name}
    for qid, row in rows.items():
        # Same stored items, same ranking: the first items agree (ids differ: they name the namespace).
        ours = [(i["text"], i["sources"]) for i in row["retrieved"]][:5]
        assert ours == [(i["text"], i["sources"]) for i in bulk[qid]["retrieved"]][: len(ours)] and ours, (path, qid)
    summary = json.loads((out / "summary.json").read_text())["systems"][name]["metrics"]
    reference = json.loads((locomo_run / "summary.json").read_text())["systems"]["ltm"]["metrics"]
    assert summary["recall@1024t"] == pytest.approx(reference["recall@1024t"], abs=0.01)
    latency = json.loads((out / "write_latency.json").read_text())[name]
    assert latency["0-99"]["writes"] > 0 and latency["0-99"]["p95_ms"] >= latency["0-99"]["p50_ms"] > 0


def test_facts_on_the_langgraph_path_run_in_the_background(tmp_path: Path) -> None:
    run_retrieval_bench(
        "locomo", DATA / "mini_locomo.json", tmp_path, systems=("ltm-facts",), embedder=HashingEmbedder(64),
        progress=False, path="langgraph",
    )
    latency = json.loads((tmp_path / "write_latency.json").read_text())["ltm-facts@langgraph"]
    assert latency["facts_wait_seconds"] >= 0 and latency["0-99"]["writes"] > 0
    assert {r["system"] for r in _lines(tmp_path)} == {"ltm-facts@langgraph"}
    with pytest.raises(Exception, match="langgraph"):
        run_retrieval_bench("locomo", DATA / "mini_locomo.json", tmp_path / "x", systems=("ltm-facts",),
                            embedder=HashingEmbedder(64), progress=False, path="live")


def test_paths_page_sets_product_paths_beside_bulk(locomo_run: Path, tmp_path: Path) -> None:
    from ltm_agent.app.bench.paths_page import write_paths_page

    live = tmp_path / "live"
    run_retrieval_bench("locomo", DATA / "mini_locomo.json", live, systems=("ltm",), embedder=HashingEmbedder(64),
                        progress=False, path="live")
    page = write_paths_page([locomo_run, live], tmp_path / "page.md", command="ltm-agent bench retrieval ...")
    text = page.read_text()
    summary = json.loads((live / "summary.json").read_text())["systems"]["ltm@live"]["metrics"]
    assert f"| locomo | `ltm@live` | live | 11 | {summary['recall@512t']:.3f} |" in text
    assert "| locomo | `ltm@live` | 0-99 |" in text and "Δ r@1024t vs bulk" in text


def test_the_langgraph_path_scores_the_excerpts_the_node_gave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Long memories reach the agent as excerpts; the path benchmark scores those, not whole turns."""
    from ltm_agent.app.bench import systems

    monkeypatch.setitem(systems.SYSTEMS, "ltm", systems._ltm("ltm", excerpt_tokens=20))  # most turns are "long"
    rows = {}
    for path in ("bulk", "langgraph"):
        out = tmp_path / path
        run_retrieval_bench("longmemeval", DATA / "mini_longmemeval.jsonl", out, systems=("ltm",),
                            embedder=HashingEmbedder(64), progress=False, path=path, speed_systems=())
        rows[path] = {r["question_id"]: r for r in _lines(out)}
    assert any("[excerpt of a" in i["text"] for r in rows["bulk"].values() for i in r["retrieved"])
    for qid, row in rows["langgraph"].items():
        ours = [(i["text"], i["sources"]) for i in row["retrieved"]][:5]
        assert ours and ours == [(i["text"], i["sources"]) for i in rows["bulk"][qid]["retrieved"]][: len(ours)], qid
