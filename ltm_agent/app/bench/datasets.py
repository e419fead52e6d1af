"""Benchmark questions, typed, with evidence normalised to the turn ids loaders produce.

LoCoMo questions come from each sample's ``qa`` list, LongMemEval questions
from each record; both are read from the same file as the conversations, so
:func:`load_benchmark` returns the two together.

Core type: :class:`Question`. Core functions: :func:`load_questions`,
:func:`load_benchmark`, :func:`is_scored`, :func:`normalize_locomo_evidence`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ltm_agent.conversations import Conversation
from ltm_agent.dates import parse_date
from ltm_agent.errors import (
    DataFormatError,
    InvalidDateError,
    InvalidInputError,
    InvalidTypeError,
    describe,
)
from ltm_agent.loaders import (
    locomo_conversation,
    longmemeval_conversation,
    longmemeval_evidence,
    read_records,
)

__all__ = [
    "Dataset",
    "Question",
    "is_scored",
    "load_benchmark",
    "load_questions",
    "normalize_locomo_evidence",
]

Dataset = Literal["locomo", "longmemeval"]
"""The benchmark data sets questions are read from."""

_SCORED_LOCOMO_CATEGORIES = frozenset({"1", "2", "3", "4"})
# One LoCoMo evidence id once the string is split: "D8:6", "D:11:26", "D30:05".
_LOCOMO_ID = re.compile(r"D:?(\d+):(\d+)", re.IGNORECASE)
_LOCOMO_SPLIT = re.compile(r"[;,\s]+")


class Question(BaseModel):
    """One benchmark question with its gold evidence.

    Attributes:
        id: LoCoMo ``"<sample_id>/q<0-based index in qa>"``; LongMemEval ``question_id``.
        dataset: ``"locomo"`` or ``"longmemeval"``.
        category: LoCoMo ``"1"``..``"5"``; LongMemEval ``question_type``.
        text: The question.
        answer: Gold answer as text (LoCoMo category 5: ``adversarial_answer``
            when there is no ``answer``).
        evidence: Evidence turn ids that exist in the conversation, normalised.
        evidence_sessions: LongMemEval ``answer_session_ids``; empty for LoCoMo,
            which defines no session-level evidence.
        question_time: When the question is asked: LongMemEval ``question_date``;
            LoCoMo has none, so the date of its last session (by date) is used —
            questions are asked after the conversation ended.
        conversation_id: The conversation (store namespace) to search.
        abstention: The answer is not in the history (LoCoMo category 5,
            LongMemEval ``_abs``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    dataset: Dataset
    category: str
    text: str
    answer: str
    evidence: tuple[str, ...] = ()
    evidence_sessions: tuple[str, ...] = ()
    question_time: datetime | None = None
    conversation_id: str = Field(min_length=1)
    abstention: bool = False


def is_scored(question: Question) -> bool:
    """Whether retrieval metrics score this question (BENCHMARKS.md).

    LoCoMo: categories 1-4 with non-empty evidence. LongMemEval: every question
    but the ``_abs`` ones (each of those has evidence turns; a question whose
    evidence is empty after normalisation is skipped too, as recall is undefined).

    Example:
        >>> q = Question(id="c/q0", dataset="locomo", category="3", text="?", answer="",
        ...              conversation_id="c")
        >>> is_scored(q)
        False
    """
    if not question.evidence or question.abstention:
        return False
    if question.dataset == "locomo":
        return question.category in _SCORED_LOCOMO_CATEGORIES
    return True


def normalize_locomo_evidence(
    raw: Iterable[object], turn_ids: Collection[str] | None = None
) -> tuple[str, ...]:
    """Clean a LoCoMo ``evidence`` list into canonical, existing turn ids.

    Splits ids joined by ``;``, ``,`` or spaces, repairs ``D:11:26`` →
    ``D11:26`` and ``D30:05`` → ``D30:5``, drops anything else (a bare ``"D"``,
    non-strings) and, when ``turn_ids`` is given, ids of turns that do not
    exist. Order is kept, duplicates removed.

    Example:
        >>> normalize_locomo_evidence(["D8:6; D9:17", "D:11:26", "D30:05", "D"])
        ('D8:6', 'D9:17', 'D11:26', 'D30:5')
        >>> normalize_locomo_evidence(["D1:1 D1:2", "D7:7"], turn_ids={"D1:1", "D1:2"})
        ('D1:1', 'D1:2')
    """
    out: dict[str, None] = {}
    for entry in raw:
        if not isinstance(entry, str):
            continue
        for token in _LOCOMO_SPLIT.split(entry.strip()):
            match = _LOCOMO_ID.fullmatch(token)
            if match is None:
                continue
            turn_id = f"D{int(match[1])}:{int(match[2])}"
            if turn_ids is None or turn_id in turn_ids:
                out[turn_id] = None
    return tuple(out)


def load_questions(
    path: str | Path, dataset: Dataset, *, conversations: Iterable[Conversation] | None = None
) -> list[Question]:
    """Load the benchmark questions of a LoCoMo or LongMemEval file.

    Args:
        path: The benchmark file (the same file the conversations come from).
        dataset: ``"locomo"`` or ``"longmemeval"``.
        conversations: The file's conversations, when already loaded with
            :func:`ltm_agent.loaders.load_conversations`; saves converting them
            again (evidence is checked against their turn ids).

    Example:
        >>> qs = load_questions("tests/data/mini_locomo.json", "locomo")
        >>> qs[0].id, qs[0].category, qs[0].evidence
        ('mini-1/q0', '1', ('D1:4', 'D2:1'))
    """
    return _load(path, dataset, conversations)[1]


def load_benchmark(path: str | Path, dataset: Dataset) -> tuple[list[Conversation], list[Question]]:
    """Load the conversations and the questions of a benchmark file in one read.

    Raises:
        DataFormatError: The file or a question record is broken.
        InvalidInputError: ``dataset`` is not ``"locomo"`` or ``"longmemeval"``.

    Example:
        >>> convs, qs = load_benchmark("tests/data/mini_longmemeval.jsonl", "longmemeval")
        >>> len(convs) == len(qs)
        True
    """
    return _load(path, dataset, None)


def _load(
    path: str | Path, dataset: Dataset, given: Iterable[Conversation] | None
) -> tuple[list[Conversation], list[Question]]:
    known = {conv.id: conv for conv in given or ()}
    if dataset == "locomo":
        records = read_records(path, lines=False)
        build = _locomo_questions
    elif dataset == "longmemeval":
        records = read_records(path, lines=True)
        build = _longmemeval_question
    else:
        raise InvalidInputError(
            f"dataset must be 'locomo' or 'longmemeval', got {describe(dataset)}; "
            f"Book-SORT has its own loader"
        )
    conversations: list[Conversation] = []
    questions: list[Question] = []
    for i, record in enumerate(records):
        source = f"{path}: {'sample' if dataset == 'locomo' else 'record'} {i}"
        conv, qs = build(record, source, known)
        conversations.append(conv)
        questions.extend(qs)
    return conversations, questions


def _given(record: Any, key: str, known: Mapping[str, Conversation]) -> Conversation | None:
    conv_id = record.get(key) if isinstance(record, dict) else None
    return known.get(conv_id) if isinstance(conv_id, str) else None


def _locomo_questions(
    sample: Any, source: str, known: Mapping[str, Conversation]
) -> tuple[Conversation, list[Question]]:
    conv = _given(sample, "sample_id", known) or locomo_conversation(sample, source=source)
    qa = sample.get("qa", [])
    if not isinstance(qa, list):
        raise DataFormatError(f"{source} ({conv.id}) > qa: must be a list, got {describe(qa)}; "
                              f"give the sample a 'qa' list of question objects")
    turn_ids = {t.id for s in conv.sessions for t in s.turns}
    asked_at = max(s.date for s in conv.sessions)
    questions = []
    for i, item in enumerate(qa):
        where = f"{source} ({conv.id}) > qa[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise DataFormatError(f"{where}: must be an object with a 'question' string, got "
                                  f"{describe(item)}; fix the record")
        category = str(item.get("category", "")).strip()
        if category not in {"1", "2", "3", "4", "5"}:
            raise DataFormatError(f"{where} > category: must be 1-5, got "
                                  f"{describe(item.get('category'))}; fix the record")
        answer = item.get("answer")
        if answer is None and category == "5":
            answer = item.get("adversarial_answer")
        evidence = item.get("evidence", [])
        questions.append(Question(
            id=f"{conv.id}/q{i}",
            dataset="locomo",
            category=category,
            text=item["question"],
            answer="" if answer is None else str(answer),
            evidence=normalize_locomo_evidence(evidence if isinstance(evidence, list) else [],
                                               turn_ids),
            question_time=asked_at,
            conversation_id=conv.id,
            abstention=category == "5",
        ))
    return conv, questions


def _longmemeval_question(
    record: Any, source: str, known: Mapping[str, Conversation]
) -> tuple[Conversation, list[Question]]:
    conv = _given(record, "question_id", known) or longmemeval_conversation(record, source=source)
    where = f"{source} ({conv.id})"
    for key in ("question", "question_type"):
        if not isinstance(record.get(key), str):
            raise DataFormatError(f"{where} > {key}: must be a string, got "
                                  f"{describe(record.get(key))}; fix the record")
    sessions = record.get("answer_session_ids", [])
    if not isinstance(sessions, list) or not all(isinstance(s, str) for s in sessions):
        raise DataFormatError(f"{where} > answer_session_ids: must be a list of session ids, "
                              f"got {describe(sessions)}; fix the record")
    try:
        asked_at = parse_date(record["question_date"]) if record.get("question_date") else None
    except (InvalidDateError, InvalidTypeError) as exc:
        raise DataFormatError(f"{where} > question_date: {exc}") from None
    answer = record.get("answer")
    turn_ids = {t.id for session in conv.sessions for t in session.turns}
    question = Question(
        id=conv.id,
        dataset="longmemeval",
        category=record["question_type"],
        text=record["question"],
        answer="" if answer is None else str(answer),
        evidence=tuple(e for e in longmemeval_evidence(record, source=source) if e in turn_ids),
        evidence_sessions=tuple(dict.fromkeys(sessions)),
        question_time=asked_at,
        conversation_id=conv.id,
        abstention=conv.id.endswith("_abs"),
    )
    return conv, [question]
