"""GAIA scoring rules, including the quirks the official rules imply."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ltm_agent.app.gaia.scorer import gaia_score, normalize_number, score_rule
from ltm_agent.app.gaia.tasks import GAIA_HOWTO, load_tasks
from ltm_agent.errors import DataFormatError, NotFoundError


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        # gold "1,000" does not parse as a float, so it is a two-element list
        ("1000", "1,000", False),
        ("1,000", "1,000", True),
        ("1; 000", "1,000", True),
        # the number rule strips $ % , and compares floats exactly
        ("$5", "5", True),
        ("5.0", "5", True),
        ("1e3", "1000", True),
        ("42.", "42", True),
        ("5 km", "5", False),
        ("5%", "5", True),
        ("$1,250", "1250", True),
        ("5.01", "5", False),
        ("five", "5", False),
        # the string rule: no article stripping, punctuation and whitespace removed
        ("The Beatles", "Beatles", False),
        ("beatles!", "Beatles", True),
        ("New  York", "new york", True),
        ("St Ives", "St. Ives", True),
        # the list rule: order and length matter, ; and , are the same separator
        ("a, b", "b, a", False),
        ("a; b", "a, b", True),
        ("a,b", "a, b", True),
        ("a, b, c", "a, b", False),
        ("3, apple", "3.0, Apple", True),
        ("$3, apple", "3, apple", True),
        # list elements keep punctuation
        ("st ives, b", "st. ives, b", False),
        (None, "None", True),
    ],
)
def test_gaia_rules(answer: str | None, gold: str, expected: bool) -> None:
    assert gaia_score(answer, gold) is expected


def test_rule_chosen_by_gold_only() -> None:
    assert [score_rule(g) for g in ("17", "1e3", "1,000", "a; b", "Paris")] == [
        "number", "number", "list", "list", "string"
    ]
    assert normalize_number("not a number") == float("inf")


def test_load_tasks_reads_gaia_metadata(tmp_path: Path) -> None:
    (tmp_path / "sheet.csv").write_text("a,b\n1,2\n")
    rows = [
        {"task_id": "t1", "Question": "Q1", "Level": "2", "Final answer": "x", "file_name": "sheet.csv",
         "Annotator Metadata": {"Steps": "1. read", "Tools": "csv"}},
        {"task_id": "t2", "Question": "Q2", "Level": 1, "Final answer": "?", "file_name": ""},
    ]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    first, second = load_tasks(tmp_path)
    assert (first.level, first.file_path, first.annotator["Tools"]) == (2, (tmp_path / "sheet.csv").resolve(), "csv")
    assert first.has_gold and not second.has_gold and second.file_path is None


def test_load_tasks_errors_say_the_fix(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="gated"):
        load_tasks(tmp_path)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"task_id": "t", "Question": "q"}) + "\n")
    with pytest.raises(DataFormatError, match="Final answer"):
        load_tasks(tmp_path)
    row = {"task_id": "t", "Question": "q", "Level": 1, "Final answer": "1", "file_name": "gone.pdf"}
    (tmp_path / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(NotFoundError, match="gone.pdf"):
        load_tasks(tmp_path)


def test_real_gaia_validation_loads() -> None:
    folder = os.environ.get("LTM_GAIA_DIR")
    if not folder:
        pytest.skip(f"set LTM_GAIA_DIR to the GAIA 2023/validation folder to run this. {GAIA_HOWTO}")
    tasks = load_tasks(folder)
    assert len(tasks) > 100 and {t.level for t in tasks} == {1, 2, 3}
    assert all(gaia_score(t.final_answer, t.final_answer) for t in tasks if t.has_gold and t.final_answer != "nan")
