"""Retrieval metrics (BENCHMARKS.md) on hand-made rankings, and LoCoMo's QA F1 scorer."""

from __future__ import annotations

import json
import math

import pytest

from ltm_agent.app.bench.metrics import (
    METRIC_NAMES,
    aggregate,
    longmemeval_session_of,
    ndcg_at_10,
    recall_all_at_budget,
    recall_all_at_k,
    recall_at_budget,
    recall_at_k,
    score_question,
    session_recall_all_at_k,
    within_budget,
)
from ltm_agent.app.bench.qa_metrics import (
    exact_match,
    is_abstention,
    locomo_f1,
    multi_answer_f1,
    normalize_answer,
    token_f1,
)
from ltm_agent.errors import InvalidInputError
from ltm_agent.records import MemoryItem


def item(tokens: int, *sources: str) -> dict:
    return {"id": "-".join(sources) or "none", "text": "...", "tokens": tokens, "sources": list(sources)}


# ---------------------------------------------------------------------------
# Token budgets


def test_budget_stops_at_first_item_that_does_not_fit() -> None:
    ranking = [item(100, "a"), item(200, "b"), item(50, "c")]
    # 100 fits; 100 + 200 > 256 stops the walk: "c" (50) would fit but is NOT used
    assert [i["sources"] for i in within_budget(ranking, 256)] == [["a"]]
    assert recall_at_budget(ranking, {"a", "c"}, 256) == 0.5
    assert recall_all_at_budget(ranking, {"a", "c"}, 256) == 0.0
    assert recall_at_budget(ranking, {"a", "c"}, 512) == 1.0
    assert recall_all_at_budget(ranking, {"a", "c"}, 512) == 1.0


def test_budget_is_inclusive_and_first_item_may_not_fit() -> None:
    assert recall_at_budget([item(256, "a")], ["a"], 256) == 1.0
    assert recall_at_budget([item(257, "a"), item(1, "b")], ["b"], 256) == 0.0
    assert within_budget([item(0, "a"), item(0, "b")], 0) == [item(0, "a"), item(0, "b")]


def test_item_with_sources_covering_two_evidence_turns() -> None:
    ranking = [item(40, "D1:1", "D1:2"), item(40, "D2:7")]
    evidence = ["D1:1", "D1:2", "D2:7"]
    assert recall_at_k(ranking, evidence, 1) == pytest.approx(2 / 3)
    assert recall_all_at_k(ranking, evidence, 1) == 0.0
    assert recall_all_at_k(ranking, evidence, 5) == 1.0
    assert recall_at_budget(ranking, evidence, 64) == pytest.approx(2 / 3)
    assert recall_all_at_budget(ranking, evidence, 128) == 1.0


def test_duplicate_evidence_ids_count_once() -> None:
    assert recall_at_k([item(5, "a")], ["a", "a", "b"], 1) == 0.5


def test_empty_ranking_scores_zero() -> None:
    row = score_question([], ["a"], ["s"])
    assert row is not None and set(row.values()) == {0.0}


# ---------------------------------------------------------------------------
# Questions without evidence


def test_question_without_evidence_is_excluded() -> None:
    assert score_question([item(5, "a")], []) is None
    assert score_question([item(5, "a")], ()) is None
    with pytest.raises(InvalidInputError, match="recall is undefined"):
        recall_at_k([item(5, "a")], [], 1)
    with pytest.raises(InvalidInputError, match="no evidence sessions"):
        session_recall_all_at_k([item(5, "s#1")], [], 1)


# ---------------------------------------------------------------------------
# Session recall


def test_session_recall_all_counts_each_session_once() -> None:
    ranking = [
        item(5, "s1#0"),
        item(5, "s1#3"),  # same session again: does not use up a slot
        item(5, "s2#0", "s1#5"),
        item(5, "s1#7"),
        item(5, "s3#1"),
    ]
    assert session_recall_all_at_k(ranking, ["s1", "s2"], 1) == 0.0
    assert session_recall_all_at_k(ranking, ["s1", "s2"], 2) == 1.0
    assert session_recall_all_at_k(ranking, ["s3"], 2) == 0.0
    assert session_recall_all_at_k(ranking, ["s3"], 5) == 1.0  # third distinct session
    assert session_recall_all_at_k(ranking, ["s4"], 10) == 0.0


def test_session_recall_uses_the_given_session_mapping() -> None:
    ranking = [item(5, "D3:1"), item(5, "D4:2")]
    assert session_recall_all_at_k(ranking, ["D4"], 2, session_of=lambda t: t.split(":")[0]) == 1.0


def test_longmemeval_session_of() -> None:
    assert longmemeval_session_of("answer_4be1b6b4_2#13") == "answer_4be1b6b4_2"
    assert longmemeval_session_of("sharegpt_x~2#0") == "sharegpt_x"
    assert longmemeval_session_of("plain") == "plain"


# ---------------------------------------------------------------------------
# nDCG


def test_ndcg_exact_value() -> None:
    ranking = [item(5, "x"), item(5, "a"), item(5, "b")]
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_10(ranking, ["a", "b"]) == pytest.approx(expected)


def test_ndcg_is_capped_at_one() -> None:
    # three items all holding the one evidence turn: DCG > ideal DCG (which has one item)
    ranking = [item(5, "a"), item(5, "a", "z"), item(5, "y", "a")]
    assert ndcg_at_10(ranking, ["a"]) == 1.0


def test_ndcg_ideal_uses_at_most_ten_items_and_ignores_rank_eleven() -> None:
    evidence = [f"e{i}" for i in range(12)]
    assert ndcg_at_10([item(1, e) for e in evidence], evidence) == 1.0
    assert ndcg_at_10([item(1, "x")] * 10 + [item(1, "e0")], evidence) == 0.0


# ---------------------------------------------------------------------------
# score_question


LOCOMO_KEYS = [
    "recall@256t", "recall@512t", "recall@1024t", "recall@2048t", "recall@4096t",
    "recall_all@256t", "recall_all@512t", "recall_all@1024t", "recall_all@2048t", "recall_all@4096t",
    "recall@1", "recall@5", "recall@10",
    "recall_all@1", "recall_all@5", "recall_all@10",
    "ndcg@10",
]
SESSION_KEYS = ["session_recall_all@1", "session_recall_all@5", "session_recall_all@10"]


def test_every_named_metric_is_present() -> None:
    locomo = score_question([item(10, "D1:1")], ["D1:1"])
    assert locomo is not None and sorted(locomo) == sorted(LOCOMO_KEYS)
    longmemeval = score_question([item(10, "s#1")], ["s#1"], ["s"])
    assert longmemeval is not None and sorted(longmemeval) == sorted(LOCOMO_KEYS + SESSION_KEYS)
    assert sorted(METRIC_NAMES) == sorted(LOCOMO_KEYS + SESSION_KEYS)


def test_score_question_values() -> None:
    ranking = [item(300, "s1#0"), item(3000, "s2#1", "s2#2"), item(100, "s3#0")]
    row = score_question(ranking, ["s2#1", "s3#0"], ["s2", "s3"])
    assert row is not None
    assert row["recall@256t"] == 0.0  # the first item alone overflows 256
    assert row["recall@512t"] == 0.0
    assert row["recall@4096t"] == 1.0 and row["recall_all@4096t"] == 1.0
    assert row["recall@1"] == 0.0 and row["recall@5"] == 1.0
    assert row["recall_all@5"] == 1.0
    assert row["session_recall_all@1"] == 0.0 and row["session_recall_all@5"] == 1.0


def test_rescoring_results_jsonl_matches_memory_items() -> None:
    objects = [
        MemoryItem("m1", "turn", "hello", 0.9, None, 120, ("s1#0",), ("ns",)),
        MemoryItem("m2", "fact", "Maya lives in Berlin", 0.8, None, 200, ("s3#1", "s4#0"), ("ns",)),
    ]
    line = json.dumps({"retrieved": [o.to_dict() for o in objects]})
    from_file = json.loads(line)["retrieved"]
    assert score_question(objects, ["s3#1"], ["s3"]) == score_question(from_file, ["s3#1"], ["s3"])


def test_malformed_items_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="item 2 needs 'tokens'"):
        recall_at_k([item(1, "a"), {"sources": ["b"]}], ["a"], 2)
    with pytest.raises(InvalidInputError, match="item 1 needs 'sources'"):
        recall_at_k([{"tokens": 3, "sources": "D1:1"}], ["D1:1"], 1)
    with pytest.raises(InvalidInputError, match="ranked list"):
        recall_at_k(item(1, "a"), ["a"], 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="k must be a positive int"):
        recall_at_k([item(1, "a")], ["a"], 0)


# ---------------------------------------------------------------------------
# aggregate


def test_aggregate_overall_and_per_category() -> None:
    rows = [
        {"category": "2", "recall@1": 1.0, "ndcg@10": 1.0, "question_id": "c/q0"},
        {"category": "10", "recall@1": 0.0, "ndcg@10": 0.5},
        {"category": "2", "recall@1": 0.5, "ndcg@10": 0.0},
        None,  # an unscored question
    ]
    summary = aggregate(rows)
    assert summary["overall"] == {"n": 3, "metrics": {"recall@1": 0.5, "ndcg@10": 0.5}}
    assert list(summary["by_category"]) == ["2", "10"]  # numeric order
    assert summary["by_category"]["2"] == {"n": 2, "metrics": {"recall@1": 0.75, "ndcg@10": 0.5}}
    assert aggregate([]) == {"overall": {"n": 0, "metrics": {}}, "by_category": {}}


def test_aggregate_of_scored_rows() -> None:
    a = score_question([item(5, "a")], ["a"])
    b = score_question([item(5, "x")], ["a"])
    assert a is not None and b is not None
    summary = aggregate([{**a, "category": "1"}, {**b, "category": "4"}])
    assert summary["overall"]["metrics"]["recall_all@10"] == 0.5
    assert list(summary["overall"]["metrics"]) == LOCOMO_KEYS


# ---------------------------------------------------------------------------
# LoCoMo QA F1


def test_normalize_answer() -> None:
    assert normalize_answer("The Cat, and a Dog!") == "cat dog"
    assert normalize_answer("An apple's core") == "apples core"


def test_token_f1_is_stemmed_multiset_f1() -> None:
    assert token_f1("running shoes", "run shoe") == 1.0
    assert token_f1("She went hiking in the Alps", "hiking in Alps") == pytest.approx(0.75)
    assert token_f1("", "anything") == 0.0
    assert token_f1("yes yes", "yes") == pytest.approx(2 / 3)


def test_category_one_averages_best_matches_over_gold_parts() -> None:
    assert multi_answer_f1("pottery, hiking", "hiking, painting") == 0.5
    assert locomo_f1("hiking, pottery", "pottery, hiking", 1) == 1.0


def test_category_three_uses_gold_before_semicolon() -> None:
    assert locomo_f1("Likely yes", "Likely yes; she enjoys nature", "3") == 1.0


def test_category_two_and_four_plain_f1_with_int_gold() -> None:
    assert locomo_f1("2022", 2022, 2) == 1.0  # type: ignore[arg-type]
    assert locomo_f1("in 2022", "2022", "4") == pytest.approx(2 / 3)


def test_category_five_rewards_abstention_only() -> None:
    assert locomo_f1("That is Not Mentioned in the conversation.", "border collie", 5) == 1.0
    assert locomo_f1("No information available", "", "5") == 1.0
    assert locomo_f1("border collie", "border collie", 5) == 0.0
    assert is_abstention("NO INFORMATION AVAILABLE.")


def test_exact_match_is_token_set_equality() -> None:
    assert exact_match("the Eiffel Tower", "Eiffel tower") == 1.0
    assert exact_match("tower tower Eiffel", "Eiffel Tower") == 1.0
    assert exact_match("Eiffel Towers", "Eiffel Tower") == 0.0


def test_unknown_category_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="category must be 1-5"):
        locomo_f1("x", "x", 6)


def test_an_excerpt_that_cut_the_answer_does_not_cover_its_evidence_turn() -> None:
    from ltm_agent.app.bench.datasets import Question
    from ltm_agent.app.bench.retrieval_bench import cut_evidence

    question = Question(id="q", dataset="locomo", category="4", text="Which tram did you suggest?",
                       answer="Tram 28", evidence=("D1:1",), conversation_id="c")
    turns = {"D1:1": "assistant: Lisbon is hilly. Take tram 28 early.", "D1:2": "user: thanks, tram 28 it is"}
    cut = "assistant: Lisbon is hilly. … [excerpt of a 300-token memory]"
    kept = "assistant: … Take tram 28 early. [excerpt of a 300-token memory]"
    assert cut_evidence(cut, ["D1:1"], question, turns) == ["D1:1"]
    assert cut_evidence(kept, ["D1:1"], question, turns) == []
    assert cut_evidence(turns["D1:1"], ["D1:1"], question, turns) == []  # a whole memory is never checked
    assert cut_evidence(cut, ["D1:2"], question, turns) == []  # not evidence
    reworded = question.model_copy(update={"answer": "the number 28 tram"})
    assert cut_evidence(cut, ["D1:1"], reworded, turns) == []  # cannot be checked: keeps its credit
    item = {"tokens": 20, "sources": ["D1:1"]}
    assert score_question([item], ["D1:1"])["recall@256t"] == 1.0
    assert score_question([{**item, "cut_evidence": ["D1:1"]}], ["D1:1"])["recall@256t"] == 0.0
