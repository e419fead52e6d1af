"""docs/benchmarks.md as a reader sees it: defined metrics, named categories, explained counts,
an honest reader note, and plots where no two systems look alike and ``ltm`` is on top."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltm_agent.app.bench import retrieval_bench
from ltm_agent.app.bench.docs_page import INTRO, write_benchmarks_page
from ltm_agent.app.bench.qa_bench import run_qa_bench
from ltm_agent.app.bench.report import PALETTE, system_style
from ltm_agent.embeddings import HashingEmbedder

DATA = Path(__file__).parents[1] / "data"
SYSTEMS = ("dense-turn", "bm25-turn", "ltm", "langgraph-inmemory", "ltm-no-time")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("bench-docs")
    patch = pytest.MonkeyPatch()
    patch.setattr(retrieval_bench, "default_embedder", lambda: HashingEmbedder(64))
    try:
        retrieval_bench.run_retrieval_bench("locomo", DATA / "mini_locomo.json", root / "locomo", systems=SYSTEMS)
        run_qa_bench("locomo", DATA / "mini_locomo.json", root / "qa-locomo", systems=("bm25-turn", "ltm"),
                     embedder=HashingEmbedder(64), progress=False)
    finally:
        patch.undo()
    out = write_benchmarks_page([root / "locomo", root / "qa-locomo"], root / "docs" / "benchmarks.md")
    return out, out.read_text(encoding="utf-8")


def test_every_headline_metric_is_defined_and_categories_are_named(page: tuple[Path, str]) -> None:
    _, text = page
    for term in ("**recall@Bt**", "**recall_all@Bt**", "**recall@5**", "**ndcg@10**", "**session_recall_all@5**"):
        assert term in text
    assert "| 1 multi-hop | 2 temporal | 3 open-domain | 4 single-hop |" in text
    assert "5 adversarial" in text


def test_question_counts_are_explained(page: tuple[Path, str]) -> None:
    _, text = page
    summary = json.loads((page[0].parent.parent / "locomo" / "summary.json").read_text())
    assert summary["questions_total"] > summary["questions_scored"]
    assert f"{summary['questions_total']} questions in the file, {summary['questions_scored']} scored" in text
    assert "category 5 (adversarial)" in text


def test_the_page_is_self_contained_and_honest_about_the_reader(page: tuple[Path, str]) -> None:
    _, text = page
    assert "../shared" not in text and "../shared" not in INTRO
    assert "not ALR²" in text and "cannot abstain" in text
    for image in ("img/locomo-recall_vs_budget.png", "img/qa-locomo-qa_score_by_category.png"):
        assert f"({image})" in text and (page[0].parent / image).stat().st_size > 10_000


def test_plot_styles_tell_systems_apart_and_ltm_is_on_top() -> None:
    others = [system_style(i, f"s{i}") for i in range(len(PALETTE))]
    looks = {(s["color"], s["linestyle"], s["marker"]) for s in others}
    assert len(looks) == len(others) and len({s["color"] for s in others}) == len(others)
    for a, b in zip(others, others[1:]):  # neighbours differ in line style too (readable in grey print)
        assert a["linestyle"] != b["linestyle"]
    ltm = system_style(3, "ltm")
    assert ltm["zorder"] > max(s["zorder"] for s in others) and ltm["linewidth"] > max(s["linewidth"] for s in others)
