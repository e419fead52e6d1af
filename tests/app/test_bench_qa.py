"""``ltm-agent bench qa``: readers, the LongMemEval judge, scoring, and the mini data sets end to end."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from typer.testing import CliRunner

from ltm_agent.app.bench.datasets import Question, load_questions
from ltm_agent.app.bench.judge import JUDGE_TEMPLATES, LongMemEvalJudge, judge_prompt
from ltm_agent.app.bench.qa_bench import run_qa_bench
from ltm_agent.app.bench.qa_report import QA_METRICS, score_line, score_qa_results
from ltm_agent.app.bench.readers import (
    ChatReader,
    ExtractiveReader,
    Reader,
    ReaderAnswer,
    load_chat_model,
    make_reader,
    pack_context,
    with_turn_times,
)
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import InvalidInputError
from ltm_agent.reasoning import ABSTAIN_ANSWER
from ltm_agent.records import MemoryItem

DATA = Path(__file__).parents[1] / "data"
SYSTEMS = ("dense-turn", "bm25-turn", "ltm")
RETRIEVAL_KEYS = {"system", "dataset", "question_id", "category", "retrieved", "latency_ms"}
QA_KEYS = {"answer", "gold", "score", "f1", "exact_match", "token_recall", "judge", "abstention", "abstained", "reader",
           "budget_tokens", "context_items", "context_tokens", "reader_tokens", "reader_latency_ms",
           "judge_tokens", "error"}


def _item(id_: str, text: str, tokens: int = 10, sources: tuple[str, ...] = ()) -> MemoryItem:
    return MemoryItem(id_, "turn", text, 1.0, None, tokens, sources, ("n",))


def _question(category: str = "4", **changes: object) -> Question:
    fields: dict = {"id": "c/q0", "dataset": "locomo", "category": category, "text": "What is the dog called?",
                    "answer": "Rex", "conversation_id": "c"}
    return Question(**{**fields, **changes})


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "results.jsonl").read_text().splitlines()]


class CountingReader(Reader):
    """The extractive reader, counting its calls (same name, so runs resume)."""

    def __init__(self) -> None:
        self.inner = ExtractiveReader()
        self.name = self.inner.name
        self.calls = 0

    def answer(self, question: Question, context: list[MemoryItem]) -> ReaderAnswer:
        self.calls += 1
        return self.inner.answer(question, context)


# ---------------------------------------------------------------------------
# Readers


def test_context_packing_stops_at_the_first_item_that_does_not_fit() -> None:
    items = [_item("a", "x", 600), _item("b", "y", 500), _item("c", "z", 10)]
    assert [i.id for i in pack_context(items, 1024)] == ["a"]
    assert [i.id for i in pack_context(items, 1110)] == ["a", "b", "c"]
    assert pack_context(items, 100) == []


def test_undated_items_get_the_date_of_their_earliest_source() -> None:
    early, late = datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 5, 1, tzinfo=UTC)
    items = [_item("a", "x", sources=("D2:1", "D1:1")), _item("b", "y", sources=("D9:9",))]
    dated = with_turn_times(items, {"D1:1": early, "D2:1": late})
    assert dated[0].time == early and dated[1].time is None


def test_extractive_reader_answers_verbatim_or_abstains() -> None:
    reader = make_reader("extractive")
    assert reader.name == "extractive-fallback"
    context = [_item("m1", "I love tea. My dog is called Rex.")]
    reply = reader.answer(_question(), context)
    assert (reply.answer, reply.abstained, reply.prompt_tokens) == ("My dog is called Rex.", False, 0)
    reply = reader.answer(_question(), [_item("m2", "The weather was sunny.")])
    assert (reply.answer, reply.abstained, reply.prompt_tokens) == (ABSTAIN_ANSWER, True, 0)


def test_chat_reader_renders_dated_quoted_context_and_counts_tokens() -> None:
    model = GenericFakeChatModel(messages=iter(["Rex", "Not mentioned in memory."]))
    reader = ChatReader(model, name="fake")
    when = datetime(2023, 3, 1, tzinfo=UTC)
    item = MemoryItem("m1", "turn", "My dog is called Rex </memory>", 1.0, when, 9, (), ("n",))
    prompt = reader.messages(_question(question_time=datetime(2023, 4, 1, tzinfo=UTC)), [item])[1].text
    assert 'date="2023-03-01"' in prompt and "&lt;/memory&gt;" in prompt
    assert "Question date: 2023-04-01" in prompt
    first = reader.answer(_question(), [item])
    assert (first.answer, first.abstained, first.error) == ("Rex", False, None)
    assert first.prompt_tokens > 0 and first.completion_tokens > 0
    assert reader.answer(_question(), [item]).abstained


def test_chat_reader_failure_gives_an_empty_answer_and_an_error() -> None:
    reader = ChatReader(GenericFakeChatModel(messages=iter(["I'm sorry, but I can't help with that."])), name="fake")
    reply = reader.answer(_question(), [_item("m1", "x")])
    assert reply.answer == "" and not reply.abstained and "refused" in (reply.error or "")


def test_chat_models_load_from_module_attr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "qa_fake_models.py").write_text(
        "from langchain_core.language_models.fake_chat_models import GenericFakeChatModel\n"
        "model = GenericFakeChatModel(messages=iter(['a']))\n"
        "def factory():\n    return GenericFakeChatModel(messages=iter(['b']))\n"
        "not_a_model = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(load_chat_model("qa_fake_models:model"), GenericFakeChatModel)
    assert make_reader("qa_fake_models:factory").name == "qa_fake_models:factory"
    for bad in ("qa_fake_models", "qa_fake_models:missing", "no_such_module_x:model", "qa_fake_models:not_a_model"):
        with pytest.raises(InvalidInputError):
            load_chat_model(bad)


# ---------------------------------------------------------------------------
# Judge and scoring


def test_judge_prompts_follow_longmemeval_per_type() -> None:
    lme = {"dataset": "longmemeval", "id": "q1", "conversation_id": "q1", "answer": "18"}
    assert "off-by-one" in judge_prompt(_question("temporal-reasoning", **lme), "19 days")
    assert "updated answer" in judge_prompt(_question("knowledge-update", **lme), "x")
    assert "Rubric: 18" in judge_prompt(_question("single-session-preference", **lme), "x")
    abs_prompt = judge_prompt(_question("multi-session", **{**lme, "id": "q1_abs"}, abstention=True), "x")
    assert abs_prompt.startswith("I will give you an unanswerable question") and "Explanation: 18" in abs_prompt
    assert judge_prompt(_question("multi-session", **lme), "r").endswith("Answer yes or no only.")
    assert set(JUDGE_TEMPLATES) >= {"single-session-user", "single-session-assistant", "multi-session",
                                    "temporal-reasoning", "knowledge-update", "single-session-preference"}


def test_judge_verdict_is_yes_in_reply() -> None:
    judge = LongMemEvalJudge(GenericFakeChatModel(messages=iter(["Yes.", "no", ""])), name="fake")
    question = _question("multi-session", dataset="longmemeval")
    assert [judge.verdict(question, "r").label for _ in range(2)] == [True, False]
    failed = judge.verdict(question, "r")
    assert failed.label is None and failed.error


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"dataset": "locomo", "category": "4", "answer": "a pottery bowl", "gold": "a pottery bowl"}, (1.0, 1.0, 1.0)),
        ({"dataset": "locomo", "category": "1", "answer": "pottery", "gold": "pottery, hiking"}, (0.5, 0.5, 0.0)),
        ({"dataset": "locomo", "category": "5", "answer": ABSTAIN_ANSWER, "gold": "dog"}, (1.0, 1.0, None)),
        ({"dataset": "locomo", "category": "5", "answer": "a dog", "gold": "dog"}, (0.0, 0.0, None)),
        ({"dataset": "longmemeval", "category": "single-session-user", "answer": "Kyoto", "gold": "In Kyoto"},
         (pytest.approx(2 / 3), pytest.approx(2 / 3), 0.0)),
        ({"dataset": "longmemeval", "category": "single-session-user", "answer": "Kyoto", "gold": "In Kyoto",
          "judge": True}, (1.0, pytest.approx(2 / 3), 0.0)),
        ({"dataset": "longmemeval", "category": "multi-session", "question_id": "x_abs", "answer": ABSTAIN_ANSWER,
          "gold": "not said"}, (1.0, 1.0, None)),
    ],
)
def test_line_scores(row: dict, expected: tuple) -> None:
    scored = score_line({"question_id": "q", "judge": None, **row})
    assert (scored["score"], scored["f1"], scored["exact_match"]) == expected


# ---------------------------------------------------------------------------
# End to end on the mini data


@pytest.fixture(scope="module")
def locomo_qa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qa-locomo")
    run_qa_bench("locomo", DATA / "mini_locomo.json", out, systems=SYSTEMS, embedder=HashingEmbedder(64),
                 progress=False)
    return out


def test_qa_run_writes_the_files(locomo_qa: Path) -> None:
    for name in ("results.jsonl", "summary.json", "report.md", "qa_score_by_category.png", "qa_config.json"):
        assert (locomo_qa / name).is_file(), name
    assert (locomo_qa / "qa_score_by_category.png").read_bytes().startswith(b"\x89PNG")
    assert "extractive-fallback" in (locomo_qa / "report.md").read_text()


def test_qa_lines_extend_the_retrieval_lines(locomo_qa: Path) -> None:
    lines = _lines(locomo_qa)
    questions = {q.id: q for q in load_questions(DATA / "mini_locomo.json", "locomo")}
    assert len(lines) == len(questions) * len(SYSTEMS)
    for row in lines:
        assert set(row) == RETRIEVAL_KEYS | QA_KEYS
        question = questions[row["question_id"]]
        assert row["gold"] == question.answer and row["abstention"] == question.abstention
        assert row["reader"] == "extractive-fallback" and row["budget_tokens"] == 1024 and row["judge"] is None
        assert row["context_tokens"] <= 1024
        assert {k: row[k] for k in ("score", "f1", "exact_match", "token_recall")} == score_line(row)


def test_qa_summary_names_and_rescore(locomo_qa: Path) -> None:
    summary = json.loads((locomo_qa / "summary.json").read_text())
    assert (summary["bench"], summary["reader"], summary["budget_tokens"]) == ("qa", "extractive-fallback", 1024)
    ltm = summary["systems"]["ltm"]
    assert set(ltm["metrics"]) == {*QA_METRICS, "judged"}
    assert set(ltm["by_category"]) == {"1", "2", "3", "4", "5"}
    assert ltm["metrics"]["abstention_accuracy"] == ltm["by_category"]["5"]["score"]
    assert ltm["reader_tokens"]["total"] == 0 and "recall@1024t" in ltm["retrieval_metrics"]
    questions = load_questions(DATA / "mini_locomo.json", "locomo")
    rescored = json.loads(json.dumps(score_qa_results(locomo_qa / "results.jsonl", questions, SYSTEMS)))
    for name in SYSTEMS:
        summary["systems"][name].pop("ingest_seconds", None)
        assert rescored[name] == summary["systems"][name]


def test_qa_resume_skips_finished_lines_and_refuses_another_reader(locomo_qa: Path, tmp_path: Path) -> None:
    out = tmp_path / "qa"
    out.mkdir()
    lines = (locomo_qa / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:-3]) + "\n")
    reader = CountingReader()
    run_qa_bench("locomo", DATA / "mini_locomo.json", out, systems=SYSTEMS, reader=reader,
                 embedder=HashingEmbedder(64), progress=False)
    assert reader.calls == 3
    assert len(_lines(out)) == len(lines)
    fake = ChatReader(GenericFakeChatModel(messages=iter(["x"])), name="fake")
    with pytest.raises(InvalidInputError, match="another --out"):
        run_qa_bench("locomo", DATA / "mini_locomo.json", out, systems=SYSTEMS, reader=fake,
                     embedder=HashingEmbedder(64), progress=False)
    with pytest.raises(InvalidInputError, match="longmemeval only"):
        run_qa_bench("locomo", DATA / "mini_locomo.json", out, judge="x:y")


def test_longmemeval_with_chat_reader_and_judge(tmp_path: Path) -> None:
    reader = ChatReader(GenericFakeChatModel(messages=itertools.cycle(["In Kyoto", ABSTAIN_ANSWER])), name="fake")
    judge = LongMemEvalJudge(GenericFakeChatModel(messages=itertools.cycle(["yes"])), name="fake-judge")
    run_qa_bench("longmemeval", DATA / "mini_longmemeval.jsonl", tmp_path, systems=("bm25-turn",), reader=reader,
                 judge=judge, embedder=HashingEmbedder(64), progress=False)
    lines = _lines(tmp_path)
    assert len(lines) == 3
    for row in lines:
        assert row["judge"] is True and row["score"] == 1.0 and row["judge_reply"] == "yes"
        assert row["reader_tokens"]["prompt"] > 0 and row["judge_tokens"] > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    metrics = summary["systems"]["bm25-turn"]["metrics"]
    assert summary["judge"] == "fake-judge" and metrics["judge_accuracy"] == 1.0 and metrics["judged"] == 3
    assert "abstention" in summary["systems"]["bm25-turn"]["by_category"]


def test_cli_bench_qa_with_a_module_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ltm_agent.app.bench import retrieval_bench
    from ltm_agent.app.cli import app

    (tmp_path / "qa_cli_reader.py").write_text(
        "import itertools\n"
        "from langchain_core.language_models.fake_chat_models import GenericFakeChatModel\n"
        "def make():\n    return GenericFakeChatModel(messages=itertools.cycle(['In Kyoto']))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(retrieval_bench, "default_embedder", lambda: HashingEmbedder(64))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "bench", "qa", "--dataset", "longmemeval", "--data", str(DATA / "mini_longmemeval.jsonl"),
        "--out", str(out), "--systems", "dense-turn,bm25-turn", "--limit", "2",
        "--reader", "qa_cli_reader:make", "--budget-tokens", "256",
    ])
    assert result.exit_code == 0, result.output
    lines = _lines(out)
    assert len(lines) == 4 and {r["answer"] for r in lines} == {"In Kyoto"}
    assert all(r["context_tokens"] <= 256 and r["reader"] == "qa_cli_reader:make" for r in lines)
    assert (out / "qa_score_by_category.png").is_file()
    bad = CliRunner().invoke(app, ["bench", "qa", "--dataset", "locomo", "--data", str(DATA / "mini_locomo.json"),
                                   "--out", str(tmp_path / "bad"), "--reader", "nope"])
    assert bad.exit_code == 2
