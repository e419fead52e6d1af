"""Loaders and benchmark questions: format edge cases on our mini files, broken files, real data."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ltm_agent.app.bench.datasets import (
    Question,
    is_scored,
    load_benchmark,
    load_questions,
    normalize_locomo_evidence,
)
from ltm_agent.app.bench.metrics import longmemeval_session_of
from ltm_agent.conversations import Conversation
from ltm_agent.errors import DataFormatError, InvalidInputError
from ltm_agent.loaders import (
    dump_jsonl,
    load_conversations,
    load_jsonl,
    load_locomo,
    load_longmemeval,
    load_sample_conversation,
    longmemeval_conversation,
    longmemeval_evidence,
)

DATA = Path(__file__).parents[1] / "data"
MINI_LOCOMO = DATA / "mini_locomo.json"
MINI_LME = DATA / "mini_longmemeval.jsonl"
REAL = Path("/work/shared/data")


def _turn_ids(conv: Conversation) -> list[str]:
    return [t.id for s in conv.sessions for t in s.turns]


def _by_id(questions: list[Question]) -> dict[str, Question]:
    return {q.id: q for q in questions}


# ---------------------------------------------------------------------------
# LoCoMo conversations


def test_locomo_sessions_turns_and_dates() -> None:
    convs = load_conversations(MINI_LOCOMO, "locomo")
    assert [c.id for c in convs] == ["mini-1", "mini-2"]
    first = convs[0]
    # session_4_date_time exists but session_4 does not: no session for it
    assert [s.id for s in first.sessions] == ["session_1", "session_2", "session_3"]
    assert first.sessions[0].date == datetime(2023, 3, 3, 16, 10, tzinfo=UTC)
    assert first.sessions[2].date == datetime(2023, 4, 2, 19, 45, tzinfo=UTC)
    # D3:7 is an empty turn: skipped, the ids of the others are unchanged
    assert first.turn_count == 23
    assert "D3:7" not in _turn_ids(first)
    assert _turn_ids(first)[-2:] == ["D3:6", "D3:8"]


def test_locomo_roles_follow_speaker_a_not_turn_order() -> None:
    turns = load_locomo(MINI_LOCOMO)[0].sessions[0].turns
    # Ben (speaker_b) opens the session, but Ana (speaker_a) is the user
    assert (turns[0].id, turns[0].speaker, turns[0].role) == ("D1:1", "Ben", "assistant")
    assert (turns[1].speaker, turns[1].role) == ("Ana", "user")


def test_locomo_caption_is_folded_into_text() -> None:
    turns = {t.id: t for t in load_locomo(MINI_LOCOMO)[0].sessions[0].turns}
    assert turns["D1:7"].text == (
        "Mostly old folk songs. My neighbour lent me his acoustic guitar. "
        "[shared image: a photo of an acoustic guitar leaning against a sofa]"
    )
    assert "[shared image" not in turns["D1:6"].text


def _locomo_sample(**conversation: object) -> dict:
    base = {
        "speaker_a": "A",
        "speaker_b": "B",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [{"speaker": "A", "dia_id": "D1:1", "text": "hi"}],
    }
    base.update(conversation)
    return {"sample_id": "s1", "conversation": base, "qa": []}


def _write_json(tmp_path: Path, value: object, name: str = "data.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def test_locomo_session_without_date_is_reported(tmp_path: Path) -> None:
    sample = _locomo_sample(session_2=[{"speaker": "B", "dia_id": "D2:1", "text": "yo"}])
    path = _write_json(tmp_path, [sample])
    with pytest.raises(DataFormatError) as info:
        load_locomo(path)
    message = str(info.value)
    assert str(path) in message and "sample 0 (s1)" in message and "session_2_date_time" in message


def test_locomo_bad_turn_names_its_place(tmp_path: Path) -> None:
    sample = _locomo_sample(session_1=[{"speaker": "A", "dia_id": "D1:1", "text": "hi"}, {"speaker": "B"}])
    with pytest.raises(DataFormatError, match=r"sample 0 \(s1\) > session_1\[1\] > dia_id: must be"):
        load_locomo(_write_json(tmp_path, [sample]))


def test_locomo_duplicate_dia_id_is_an_error(tmp_path: Path) -> None:
    turn = {"speaker": "A", "dia_id": "D1:1", "text": "hi"}
    with pytest.raises(DataFormatError, match="occurs twice"):
        load_locomo(_write_json(tmp_path, [_locomo_sample(session_1=[turn, turn])]))


def test_locomo_bad_session_date_is_reported(tmp_path: Path) -> None:
    sample = _locomo_sample(session_1_date_time="sometime in spring")
    with pytest.raises(DataFormatError, match="session_1_date_time.*sometime in spring"):
        load_locomo(_write_json(tmp_path, [sample]))


# ---------------------------------------------------------------------------
# LongMemEval conversations


def test_longmemeval_sessions_keep_file_order_and_own_dates() -> None:
    convs = load_conversations(MINI_LME, "longmemeval")
    assert [c.id for c in convs] == ["lme-user-1", "lme-asst-2", "lme-ms-3_abs"]
    conv = convs[0]
    assert [s.id for s in conv.sessions] == ["s_a", "answer_u1", "s_b"]
    assert [s.id for s in conv.ordered_sessions()] == ["answer_u1", "s_b", "s_a"]
    assert conv.sessions[0].date == datetime(2023, 5, 20, 2, 21, tzinfo=UTC)


def test_longmemeval_empty_turn_skipped_indices_kept() -> None:
    session = load_longmemeval(MINI_LME)[0].sessions[2]
    assert [t.id for t in session.turns] == ["s_b#0", "s_b#1", "s_b#3"]
    assert [t.role for t in session.turns] == ["user", "assistant", "assistant"]


def test_longmemeval_identical_duplicate_session_is_merged_at_earliest_date() -> None:
    conv = load_longmemeval(MINI_LME)[1]
    assert [s.id for s in conv.sessions] == ["s_dup", "answer_a2", "s_c"]
    # listed first with 2023-06-12, again later with 2023-06-02: the earliest date wins
    assert conv.sessions[0].date == datetime(2023, 6, 2, 7, 30, tzinfo=UTC)
    ids = _turn_ids(conv)
    assert len(ids) == len(set(ids))
    assert ids[:2] == ["s_dup#0", "s_dup#1"]


def _lme_record(sessions: list[list[dict]], ids: list[str], **extra: object) -> dict:
    return {
        "question_id": "q",
        "haystack_session_ids": ids,
        "haystack_dates": [f"2023/05/{10 + i} (Wed) 09:00" for i in range(len(ids))],
        "haystack_sessions": sessions,
        **extra,
    }


def test_longmemeval_differing_duplicate_is_kept_as_a_copy() -> None:
    first = [{"role": "user", "content": "I like tea."}]
    second = [{"role": "user", "content": "I like coffee now.", "has_answer": True}]
    record = _lme_record([first, second], ["s1", "s1"])
    conv = longmemeval_conversation(record)
    assert [s.id for s in conv.sessions] == ["s1", "s1~2"]
    assert _turn_ids(conv) == ["s1#0", "s1~2#0"]
    assert longmemeval_evidence(record) == ("s1~2#0",)
    assert longmemeval_session_of("s1~2#0") == "s1"


def test_longmemeval_parallel_lists_must_match(tmp_path: Path) -> None:
    record = _lme_record([[{"role": "user", "content": "hi"}]], ["s1", "s2"])
    with pytest.raises(DataFormatError, match=r"record 0 \(q\): .* have 2, 2 and 1 items"):
        load_longmemeval(_write_json(tmp_path, [record]))


def test_longmemeval_reads_a_json_list_and_gzip(tmp_path: Path) -> None:
    expected = load_longmemeval(MINI_LME)
    records = [json.loads(line) for line in MINI_LME.read_text(encoding="utf-8").splitlines()]
    assert load_longmemeval(_write_json(tmp_path, records, "oracle.json")) == expected
    packed = tmp_path / "mini.jsonl.gz"
    packed.write_bytes(gzip.compress(MINI_LME.read_bytes()))
    assert load_longmemeval(packed) == expected


# ---------------------------------------------------------------------------
# Our jsonl format and the shipped sample


def test_jsonl_round_trip_plain_and_gzip(tmp_path: Path) -> None:
    convs = load_locomo(MINI_LOCOMO) + load_longmemeval(MINI_LME)
    for name in ("convs.jsonl", "convs.jsonl.gz"):
        assert dump_jsonl(convs, tmp_path / name) == 5
        assert load_conversations(tmp_path / name, "jsonl") == convs
    assert (tmp_path / "convs.jsonl").read_text(encoding="utf-8").count("\n") == 5


def test_dump_jsonl_refuses_other_objects(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="Conversation"):
        dump_jsonl([{"id": "x"}], tmp_path / "x.jsonl")  # type: ignore[list-item]


def test_sample_conversation_ships_and_reads_as_jsonl() -> None:
    conv = load_sample_conversation()
    path = Path(__file__).parents[2] / "ltm_agent" / "data" / "sample_conversation.json"
    assert load_conversations(path, "jsonl") == [conv]
    assert len(conv.sessions) == 5 and 35 <= conv.turn_count <= 45
    assert {t.speaker for s in conv.sessions for t in s.turns} == {"Maya", "Assistant"}
    assert conv.ordered_sessions() == list(conv.sessions)
    text = " ".join(t.text for s in conv.sessions for t in s.turns)
    for detail in ("vegetarian", "hiking", "Lisbon", "Berlin", "last Tuesday", "Miso", "14 March"):
        assert detail in text
    assert text.count("14 March") == 1
    ids = _turn_ids(conv)
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------
# Broken files


def test_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="format must be one of"):
        load_conversations(MINI_LOCOMO, "csv")  # type: ignore[arg-type]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[{"sample_id": "caf\xe9"}]')
    with pytest.raises(DataFormatError) as info:
        load_locomo(path)
    message = str(info.value)
    assert str(path) in message and "not UTF-8" in message and "offset 19" in message
    assert isinstance(info.value, ValueError)


def test_truncated_json_file(tmp_path: Path) -> None:
    text = MINI_LOCOMO.read_text(encoding="utf-8")
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"not valid JSON: .* at line \d+, column \d+"):
        load_locomo(path)


def test_truncated_jsonl_names_the_line(tmp_path: Path) -> None:
    text = MINI_LME.read_text(encoding="utf-8")
    path = tmp_path / "cut.jsonl"
    path.write_text(text[: len(text) - 200], encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"{path}: line 3 is not valid JSON"):
        load_longmemeval(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(MINI_LME.read_bytes())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataFormatError, match="gzip data is damaged or truncated"):
        load_longmemeval(path)


def test_wrong_shape_is_reported_per_format(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"record 0 > question_id"):
        load_longmemeval(MINI_LOCOMO)
    with pytest.raises(DataFormatError, match=r"record 0 is not a Conversation"):
        load_jsonl(MINI_LOCOMO)
    with pytest.raises(DataFormatError, match=r"sample 0: must be a LoCoMo sample object, got 42"):
        load_locomo(_write_json(tmp_path, 42))
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_locomo(MINI_LME)  # JSON lines are not one JSON document


def test_duplicate_conversation_ids(tmp_path: Path) -> None:
    sample = _locomo_sample()
    with pytest.raises(DataFormatError, match="'s1' occurs twice"):
        load_locomo(_write_json(tmp_path, [sample, sample]))


# ---------------------------------------------------------------------------
# Questions


def test_normalize_locomo_evidence() -> None:
    raw = ["D8:6; D9:17", "D1:1 D1:2", "D:11:26", "D30:05", "D", "", 7, "D8:6", "d2:3,D2:4"]
    assert normalize_locomo_evidence(raw) == (
        "D8:6", "D9:17", "D1:1", "D1:2", "D11:26", "D30:5", "D2:3", "D2:4"
    )
    assert normalize_locomo_evidence(raw, turn_ids={"D9:17", "D30:5"}) == ("D9:17", "D30:5")


def test_locomo_questions() -> None:
    convs, questions = load_benchmark(MINI_LOCOMO, "locomo")
    qs = _by_id(questions)
    assert len(questions) == 15 and list(qs)[:2] == ["mini-1/q0", "mini-1/q1"]
    assert {q.category for q in questions} == {"1", "2", "3", "4", "5"}
    assert qs["mini-1/q1"].answer == "2022"  # int in the file
    assert qs["mini-1/q3"].evidence == ("D2:7", "D3:2")  # "D2:7; D3:2"
    assert qs["mini-1/q4"].evidence == ("D3:4", "D3:5")  # "D:3:4", "D3:05", "D"
    assert qs["mini-1/q5"].evidence == ("D1:4", "D3:6")  # "D1:4 D3:6"
    assert qs["mini-1/q6"].evidence == ("D3:8",)  # D9:1 does not exist, D3:7 is empty
    assert qs["mini-1/q7"].answer == "border collie" and qs["mini-1/q7"].abstention
    assert qs["mini-1/q8"].answer == "Not mentioned"  # answer wins over adversarial_answer
    # question time: the last session, not the date key of the absent session_4
    assert qs["mini-1/q0"].question_time == convs[0].sessions[-1].date
    assert qs["mini-2/q0"].question_time == datetime(2022, 10, 30, 18, 5, tzinfo=UTC)
    assert all(q.evidence_sessions == () and q.dataset == "locomo" for q in questions)
    assert [q.id for q in questions if not is_scored(q)] == [
        "mini-1/q2", "mini-1/q7", "mini-1/q8", "mini-2/q5"
    ]


def test_longmemeval_questions() -> None:
    qs = _by_id(load_questions(MINI_LME, "longmemeval"))
    user, assistant, absent = qs["lme-user-1"], qs["lme-asst-2"], qs["lme-ms-3_abs"]
    assert user.evidence == ("answer_u1#0",) and user.evidence_sessions == ("answer_u1",)
    assert user.category == "single-session-user" and user.conversation_id == "lme-user-1"
    assert user.question_time == datetime(2023, 5, 30, 10, 0, tzinfo=UTC)
    assert assistant.evidence == ("answer_a2#1",) and assistant.answer == "3"
    assert absent.abstention and absent.evidence == ()
    assert absent.evidence_sessions == ("answer_m3_1", "answer_m3_2")
    assert [is_scored(q) for q in qs.values()] == [True, True, False]


def test_questions_accept_loaded_conversations() -> None:
    convs = load_conversations(MINI_LOCOMO, "locomo")
    assert load_questions(MINI_LOCOMO, "locomo", conversations=convs) == load_questions(
        MINI_LOCOMO, "locomo"
    )


def test_bad_question_records(tmp_path: Path) -> None:
    sample = _locomo_sample()
    sample["qa"] = [{"question": "?", "answer": "x", "evidence": [], "category": 9}]
    with pytest.raises(DataFormatError, match=r"qa\[0\] > category: must be 1-5"):
        load_questions(_write_json(tmp_path, [sample]), "locomo")
    with pytest.raises(InvalidInputError, match="dataset must be"):
        load_questions(MINI_LOCOMO, "booksort")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Real data (read-only, never copied)


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason="shared benchmark data not mounted")
def test_real_data_counts() -> None:
    convs, questions = load_benchmark(REAL / "locomo" / "locomo10_dev.json", "locomo")
    assert [c.id for c in convs] == ["conv-26", "conv-30", "conv-41", "conv-42", "conv-43"]
    assert sum(c.turn_count for c in convs) == 2760
    assert len(questions) == 999
    assert all(len(set(_turn_ids(c))) == c.turn_count for c in convs)
    qs = _by_id(questions)
    assert qs["conv-26/q37"].evidence == ("D8:6", "D9:17")
    assert "D11:26" in qs["conv-43/q18"].evidence
    assert sum(is_scored(q) for q in questions) == 760

    lme, lme_questions = load_benchmark(
        REAL / "longmemeval" / "longmemeval_s_dev.jsonl.gz", "longmemeval"
    )
    assert len(lme) == len(lme_questions) == 98
    assert sum(q.abstention for q in lme_questions) == 5
    assert all(q.evidence for q in lme_questions if not q.abstention)
    for conv in lme:
        ids = _turn_ids(conv)
        assert len(ids) == len(set(ids))
    oracle = load_questions(REAL / "longmemeval" / "longmemeval_oracle_dev.json", "longmemeval")
    assert {q.id: set(q.evidence) for q in oracle} == {q.id: set(q.evidence) for q in lme_questions}
