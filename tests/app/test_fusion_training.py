"""``ltm-agent bench train-fusion`` end to end on the two-conversation toy files (hashing embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ltm_agent.app.bench.fusion_training import assign_folds, train_fusion
from ltm_agent.app.cli import app
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.retrieval.learned import FEATURES, FusionModel

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train-fusion")
    train_fusion(
        out, locomo=DATA / "mini_locomo.json", longmemeval=DATA / "mini_longmemeval.jsonl", folds=2,
        write_weights=out / "shipped.json", embedder=HashingEmbedder(64), progress=False, command="ltm-agent test",
    )
    return out


def test_writes_report_cv_and_weights(run: Path) -> None:
    report = (run / "report.md").read_text()
    assert "Higher on every target" in report and "| locomo recall@1024t |" in report
    cv = json.loads((run / "cv.json").read_text())
    assert set(cv["datasets"]) == {"locomo", "longmemeval"}
    for result in cv["datasets"].values():
        assert result["rrf"]["overall"]["n"] == result["learned"]["overall"]["n"] > 0
        assert "recall@1024t" in result["learned"]["overall"]["metrics"]
    assert "session_recall_all@5" in cv["datasets"]["longmemeval"]["rrf"]["overall"]["metrics"]
    assert {record["fold"] for record in cv["per_fold"]} == {0, 1}
    model = FusionModel.load(run / "shipped.json")
    assert model.features == FEATURES
    assert model.about["command"] == "ltm-agent test"
    assert [d["file"] for d in model.about["data"]] == ["mini_locomo.json", "mini_longmemeval.jsonl"]
    assert model.about["data"][0]["conversations"] == 2
    assert json.loads((run / "weights.json").read_text()) == json.loads((run / "shipped.json").read_text())


def test_folds_group_by_conversation(run: Path) -> None:
    import pickle

    candidates = pickle.loads((run / "locomo" / "candidates.pkl").read_bytes())["candidates"]
    fold_of = assign_folds(candidates, 2, 0)
    assert set(fold_of) == {c.group for c in candidates} and len(set(fold_of.values())) == 2
    assert assign_folds(candidates, 2, 0) == fold_of  # fixed by the seed
    # every question of one conversation is in one fold; labels come from the evidence
    assert all(c.labels.any() for c in candidates)


def test_reuse_skips_collection_and_gives_the_same_report(run: Path, tmp_path: Path) -> None:
    before = json.loads((run / "cv.json").read_text())
    # another embedder would give other candidates: equal results show the saved ones were used
    train_fusion(run, locomo=DATA / "mini_locomo.json", longmemeval=DATA / "mini_longmemeval.jsonl", folds=2,
                 reuse=True, embedder=HashingEmbedder(16), progress=False, command="ltm-agent test")
    after = json.loads((run / "cv.json").read_text())
    assert after["datasets"] == before["datasets"]


def test_the_command_needs_a_data_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "train-fusion", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "--locomo" in str(result.exception) + result.output


@pytest.mark.parametrize("objective", ["pairwise", "pointwise"])
def test_fit_learns_the_feature_that_marks_evidence(objective: str) -> None:
    import numpy as np

    from ltm_agent.app.bench.fusion_training import QuestionCandidates, fit, learned_order

    rng = np.random.default_rng(1)
    column = FEATURES.index("speaker_match")
    questions = []
    for i in range(20):
        x = rng.normal(size=(30, len(FEATURES))).astype(np.float32)
        labels = np.zeros(30, dtype=bool)
        labels[rng.choice(30, 2, replace=False)] = True
        x[:, column] = 3 * labels + rng.normal(scale=0.3, size=30)  # evidence is (noisily) said by the named speaker
        questions.append(QuestionCandidates(
            "locomo" if i % 2 else "longmemeval", f"q{i}", "1", f"c{i}", x, labels, [10] * 30,
            [(f"t{j}",) for j in range(30)], list(range(30)), ("t0",), (),
        ))
    model = fit(questions, 1.0, objective=objective, top=0)
    assert int(np.argmax(np.abs(model.weights))) == column and model.weights[column] > 0
    top2 = learned_order(questions[0], model)[:2]
    assert questions[0].labels[top2].all()


def test_changed_counts_questions_that_moved() -> None:
    from ltm_agent.app.bench.fusion_training import changed

    rrf = [{"category": "1", "recall@1024t": 0.5}, {"category": "2", "recall@1024t": 1.0}, {"category": "2", "recall@1024t": 0.0}]
    learned = [{"category": "1", "recall@1024t": 1.0}, {"category": "2", "recall@1024t": 0.0}, {"category": "2", "recall@1024t": 0.0}]
    counts = changed(rrf, learned)
    assert counts["all recall@1024t"] == {"up": 1, "down": 1}
    assert counts["1 recall@1024t"] == {"up": 1, "down": 0} and counts["2 recall@1024t"] == {"up": 0, "down": 1}


def test_an_excerpt_that_cut_the_answer_is_not_credited() -> None:
    import numpy as np

    from ltm_agent.app.bench.fusion_training import QuestionCandidates

    def question(cut: dict[int, list[str]]) -> QuestionCandidates:
        return QuestionCandidates("locomo", "q", "4", "c", np.zeros((2, len(FEATURES)), dtype=np.float32),
                                  np.array([True, False]), [10, 10], [("t0",), ("t1",)], [0, 1], ("t0",), (), cut)

    assert question({}).score([0, 1])["recall@1024t"] == 1.0
    assert question({0: ["t0"]}).score([0, 1])["recall@1024t"] == 0.0  # as `bench retrieval` scores it


def test_candidates_are_charged_with_each_days_date_once_in_the_order_scored() -> None:
    import numpy as np

    from ltm_agent.app.bench.fusion_training import QuestionCandidates

    same_day = QuestionCandidates(
        "locomo", "q", "4", "c", np.zeros((3, len(FEATURES)), dtype=np.float32), np.array([True, False, False]),
        [12, 15, 9], [("t0",), ("t1",), ("t2",)], [0, 1, 2], ("t0",), (),
        days=["[8 May 2023]", "[8 May 2023]", None], undated_tokens=[6, 9, 9],
    )
    assert [i["tokens"] for i in same_day.ranked([0, 1, 2])] == [12, 9, 9]  # the second of the day: no date
    assert [i["tokens"] for i in same_day.ranked([1, 0, 2])] == [15, 6, 9]  # whichever comes first shows it
