"""Reading conversations from benchmark and project files.

Three formats, one result type (:class:`~ltm_agent.conversations.Conversation`):

* ``"locomo"`` — a JSON list of LoCoMo samples; one conversation per sample.
* ``"longmemeval"`` — LongMemEval records, as JSON lines or one JSON list;
  one conversation per question record (its haystack).
* ``"jsonl"`` — ours: one ``Conversation.model_dump_json()`` per line
  (:func:`dump_jsonl` writes it). A file holding a single JSON object or list
  of conversations is read too.

Files may be gzip-compressed (detected from the content, ``.gz`` or not).
Broken input raises :class:`~ltm_agent.errors.DataFormatError` naming the
file, the line or record, what is wrong and how to fix it.

Core functions: :func:`load_conversations`, :func:`load_locomo`,
:func:`load_longmemeval`, :func:`load_jsonl`, :func:`dump_jsonl`,
:func:`load_sample_conversation`.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ltm_agent._jsonfiles import Where, expect, expect_text, read_records
from ltm_agent.conversations import Conversation, Session, Turn
from ltm_agent.dates import parse_date
from ltm_agent.errors import (
    DataFormatError,
    InvalidDateError,
    InvalidInputError,
    NotFoundError,
    describe,
)
from ltm_agent.store import StoreLimits, validate_text

__all__ = [
    "Format",
    "dump_jsonl",
    "load_conversations",
    "load_jsonl",
    "load_locomo",
    "load_longmemeval",
    "load_sample_conversation",
    "locomo_conversation",
    "longmemeval_conversation",
    "longmemeval_evidence",
    "read_records",
]

Format = Literal["locomo", "longmemeval", "jsonl"]
"""The file formats :func:`load_conversations` reads."""



def load_conversations(path: str | Path, format: Format) -> list[Conversation]:
    """Load every conversation in ``path``.

    Args:
        path: The file to read (gzip-compressed or not).
        format: ``"locomo"``, ``"longmemeval"`` or ``"jsonl"`` (see the module docs).

    Returns:
        The conversations in file order.

    Raises:
        DataFormatError: The file is not UTF-8, not JSON, or not the declared format.
        InvalidInputError: ``format`` is not one of the three names.

    Example:
        >>> from ltm_agent.loaders import load_conversations
        >>> convs = load_conversations("tests/data/mini_locomo.json", "locomo")
        >>> [c.id for c in convs]
        ['mini-1', 'mini-2']
    """
    loaders = {"locomo": load_locomo, "longmemeval": load_longmemeval, "jsonl": load_jsonl}
    if format not in loaders:
        raise InvalidInputError(
            f"format must be one of {sorted(loaders)}, got {describe(format)}; "
            f"use 'jsonl' for files written by dump_jsonl()"
        )
    return loaders[format](path)


def load_locomo(path: str | Path) -> list[Conversation]:
    """Load a LoCoMo file (a JSON list of samples, or one sample object).

    See :func:`locomo_conversation` for how a sample becomes a conversation.

    Example:
        >>> convs = load_locomo("tests/data/mini_locomo.json")
        >>> convs[0].sessions[0].turns[0].id
        'D1:1'
    """
    records = read_records(path, lines=False)
    convs = [_locomo(rec, Where(f"{path}: sample {i}")) for i, rec in enumerate(records)]
    return _unique(convs, path)


def load_longmemeval(path: str | Path) -> list[Conversation]:
    """Load LongMemEval records (JSON lines or a JSON list): one conversation per question.

    See :func:`longmemeval_conversation` for turn ids and duplicated sessions.

    Example:
        >>> convs = load_longmemeval("tests/data/mini_longmemeval.jsonl")
        >>> convs[0].id
        'lme-user-1'
    """
    records = read_records(path, lines=True)
    convs = [
        longmemeval_conversation(rec, source=f"{path}: record {i}") for i, rec in enumerate(records)
    ]
    return _unique(convs, path)


def load_jsonl(path: str | Path) -> list[Conversation]:
    """Load conversations written by :func:`dump_jsonl` (or one JSON object / list of them).

    Example:
        >>> conv = load_jsonl("ltm_agent/data/sample_conversation.json")[0]
        >>> conv.id
        'maya-sample'
    """
    convs: list[Conversation] = []
    for i, rec in enumerate(read_records(path, lines=True)):
        try:
            convs.append(Conversation.model_validate(_naive_dates_as_utc(rec)))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(record)'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            raise DataFormatError(
                f"{path}: record {i} is not a Conversation ({problems}); write records with "
                f"ltm_agent.loaders.dump_jsonl() or Conversation.model_dump_json()"
            ) from None
    return _unique(convs, path)


def dump_jsonl(conversations: Iterable[Conversation], path: str | Path) -> int:
    """Write conversations as JSON lines (gzip-compressed when ``path`` ends in ``.gz``).

    Returns:
        How many conversations were written.

    Example:
        >>> import tempfile, os
        >>> convs = load_locomo("tests/data/mini_locomo.json")
        >>> out = os.path.join(tempfile.mkdtemp(), "convs.jsonl")
        >>> dump_jsonl(convs, out)
        2
        >>> load_jsonl(out) == convs
        True
    """
    lines = []
    for conv in conversations:
        if not isinstance(conv, Conversation):
            raise InvalidInputError(
                f"dump_jsonl() writes Conversation objects, got {describe(conv)}; "
                f"build them with Conversation(...) or a loader"
            )
        lines.append(conv.model_dump_json() + "\n")
    data = "".join(lines).encode("utf-8")
    target = Path(path)
    if not target.parent.is_dir():
        raise NotFoundError(f"{target}: the folder {target.parent} does not exist; create it first")
    target.write_bytes(gzip.compress(data) if target.name.endswith(".gz") else data)
    return len(lines)


def load_sample_conversation() -> Conversation:
    """The small sample conversation (user "Maya") that ships for demos and docs.

    Example:
        >>> conv = load_sample_conversation()
        >>> len(conv.sessions), conv.sessions[0].turns[0].speaker
        (5, 'Maya')
    """
    text = resources.files("ltm_agent").joinpath("data/sample_conversation.json").read_text("utf-8")
    return Conversation.model_validate_json(text)


def _unique(convs: list[Conversation], path: str | Path) -> list[Conversation]:
    """Check the whole file before anything is written, so an ingest of it is all-or-nothing.

    Conversation ids and, inside each conversation, turn ids must be unique (a
    repeated turn id would silently overwrite a stored turn), and every turn's
    text must be one the store accepts (size, NUL, valid Unicode): a file
    whose last turn is too large fails here, not after its first
    conversations were stored.
    """
    seen: set[str] = set()
    for conv in convs:
        if conv.id in seen:
            raise DataFormatError(
                f"{path}: conversation id {conv.id!r} occurs twice; each conversation "
                f"needs its own id (it becomes the store namespace)"
            )
        seen.add(conv.id)
        turn_ids: set[str] = set()
        for session in conv.sessions:
            for turn in session.turns:
                if turn.id in turn_ids:
                    raise DataFormatError(
                        f"{path}: conversation {conv.id!r} has turn id {turn.id!r} twice (again in session "
                        f"{session.id!r}); each turn needs its own id, or the second would overwrite the first"
                    )
                turn_ids.add(turn.id)
                try:
                    validate_text(turn.text, limits=StoreLimits(), what=f"turn {turn.id!r} text")
                except InvalidInputError as exc:
                    raise DataFormatError(f"{path}: conversation {conv.id!r}: {exc}; nothing was read") from None
    return convs


_DATE_FIELDS = ("date", "time")


def _naive_dates_as_utc(record: Any) -> Any:
    """The files' one rule for dates: a date without a timezone is UTC (as in LoCoMo and LongMemEval).

    (The API is stricter: a naive ``datetime`` passed in code is refused, since
    only the caller knows its zone; a file has no caller to ask.)
    """
    if not isinstance(record, dict) or not isinstance(record.get("sessions"), list):
        return record
    record = dict(record)
    sessions = []
    for session in record["sessions"]:
        if isinstance(session, dict):
            session = {k: _utc(v) if k in _DATE_FIELDS else v for k, v in session.items()}
            if isinstance(session.get("turns"), list):
                session["turns"] = [
                    {k: _utc(v) if k in _DATE_FIELDS else v for k, v in t.items()} if isinstance(t, dict) else t
                    for t in session["turns"]
                ]
        sessions.append(session)
    record["sessions"] = sessions
    return record


def _utc(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value  # the model reports it with its field name
    return parsed.replace(tzinfo=UTC).isoformat() if parsed.tzinfo is None else value


# ---------------------------------------------------------------------------
# LoCoMo


def locomo_conversation(sample: object, *, source: str = "<sample>") -> Conversation:
    """Convert one LoCoMo sample to a :class:`Conversation`.

    * conversation id = ``sample_id``; session ids ``session_N`` in N order,
      dated by ``session_N_date_time`` (date keys whose session is absent are
      ignored; a present session without its date is an error);
    * turn id = ``dia_id``; role ``"user"`` for ``speaker_a`` and
      ``"assistant"`` for the other speaker; the speaker's name is kept;
    * a ``blip_caption`` is appended as ``[shared image: <caption>]``, since
      the picture is part of what was said; turns left empty are skipped.

    Example:
        >>> sample = {"sample_id": "s", "conversation": {"speaker_a": "A", "speaker_b": "B",
        ...     "session_1_date_time": "1:56 pm on 8 May, 2023",
        ...     "session_1": [{"speaker": "B", "dia_id": "D1:1", "text": "Hi!"}]}}
        >>> locomo_conversation(sample).sessions[0].turns[0].role
        'assistant'
    """
    return _locomo(sample, Where(source))


def _locomo(sample: object, where: Where) -> Conversation:
    sample = expect(sample, dict, where, "a LoCoMo sample object")
    sample_id = expect_text(sample.get("sample_id"), where.at("sample_id"), "the sample id")
    where = where.named(sample_id)
    conv = expect(sample.get("conversation"), dict, where.at("conversation"), "an object")
    speaker_a = expect_text(conv.get("speaker_a"), where.at("speaker_a"), "the first speaker's name")
    keys = sorted(
        (k for k in conv if k.startswith("session_") and k.removeprefix("session_").isdigit()),
        key=lambda k: int(k.removeprefix("session_")),
    )
    sessions = []
    seen: set[str] = set()
    for key in keys:
        raw_turns = expect(conv[key], list, where.at(key), "a list of turns")
        raw_date = expect(
            conv.get(f"{key}_date_time"), str, where.at(f"{key}_date_time"),
            "the session's date string (every present session needs one)",
        )
        turns = []
        for i, raw in enumerate(raw_turns):
            turn = _locomo_turn(raw, speaker_a, where.at(f"{key}[{i}]"))
            if turn is None:
                continue
            if turn.id in seen:
                raise where.at(f"{key}[{i}]").error(
                    f"dia_id {turn.id!r} occurs twice", "give every turn its own dia_id"
                )
            seen.add(turn.id)
            turns.append(turn)
        sessions.append(Session(id=key, date=_date(raw_date, where.at(f"{key}_date_time")),
                                turns=tuple(turns)))
    if not sessions:
        raise where.at("conversation").error(
            "has no session_N lists", "add at least one session_1 with its session_1_date_time"
        )
    return Conversation(id=sample_id, sessions=tuple(sessions))


def _locomo_turn(raw: object, speaker_a: str, where: Where) -> Turn | None:
    raw = expect(raw, dict, where, "a turn object")
    dia_id = expect(raw.get("dia_id"), str, where.at("dia_id"), "a dia_id like 'D1:3'")
    speaker = expect(raw.get("speaker"), str, where.at("speaker"), "a speaker name")
    text = expect(raw.get("text", ""), str, where.at("text"), "a string").strip()
    caption = raw.get("blip_caption")
    if isinstance(caption, str) and caption.strip():
        text = f"{text} [shared image: {caption.strip()}]".strip()
    if not text or not dia_id.strip():
        return None
    role = "user" if speaker == speaker_a else "assistant"
    return Turn(id=dia_id.strip(), role=role, speaker=speaker, text=text)


def _date(raw: str, where: Where) -> datetime:
    try:
        return parse_date(raw)
    except InvalidDateError as exc:
        raise where.error(str(exc), "write a full date, e.g. '1:56 pm on 8 May, 2023'") from None


# ---------------------------------------------------------------------------
# LongMemEval


def longmemeval_conversation(record: object, *, source: str = "<record>") -> Conversation:
    """Convert one LongMemEval record's haystack to a :class:`Conversation`.

    * conversation id = ``question_id``; one session per haystack entry, in
      file order, dated by ``haystack_dates`` (haystacks are often not in date
      order: use :meth:`Conversation.ordered_sessions`);
    * turn id = ``"<session_id>#<i>"``, ``i`` the 0-based index of the turn in
      its session; empty turns are skipped and the others keep their index, so
      ids still match the benchmark's evidence;
    * **duplicated session ids.** A few haystacks hold the same session twice
      (same content, another date). Turn ids must be unique inside a
      conversation (they are store ids) and must stay ``"<session_id>#<i>"``
      for evidence matching, so the copies cannot both be kept. Identical
      copies are merged into one session at the first copy's place, dated by
      the *earliest* of their dates (when the content was first said). A copy
      whose content differs is kept as session ``"<session_id>~2"`` (``~3``,
      ...) with turn ids ``"<session_id>~2#<i>"``;
      :func:`ltm_agent.app.bench.metrics.longmemeval_session_of` maps them back.

    Example:
        >>> rec = {"question_id": "q1", "haystack_session_ids": ["s1"],
        ...     "haystack_dates": ["2023/05/20 (Sat) 02:21"],
        ...     "haystack_sessions": [[{"role": "user", "content": ""},
        ...                            {"role": "assistant", "content": "Hello"}]]}
        >>> [t.id for t in longmemeval_conversation(rec).sessions[0].turns]
        ['s1#1']
    """
    where = Where(source)
    qid, sessions = _longmemeval(record, where)
    conv_sessions = tuple(Session(id=s.id, date=s.date, turns=s.turns) for s in sessions)
    return Conversation(id=qid, sessions=conv_sessions)


def longmemeval_evidence(record: object, *, source: str = "<record>") -> tuple[str, ...]:
    """Ids of the record's turns marked ``has_answer: true``, as in its conversation.

    Ids follow :func:`longmemeval_conversation` (merged duplicates count once,
    empty turns are not evidence); file order.

    Example:
        >>> rec = {"question_id": "q1", "haystack_session_ids": ["s1"],
        ...     "haystack_dates": ["2023/05/20 (Sat) 02:21"],
        ...     "haystack_sessions": [[{"role": "user", "content": "Hi", "has_answer": True}]]}
        >>> longmemeval_evidence(rec)
        ('s1#0',)
    """
    _, sessions = _longmemeval(record, Where(source))
    return tuple(turn_id for s in sessions for turn_id in s.evidence)


@dataclass(slots=True)
class _HaystackSession:
    id: str
    date: datetime
    raw: list[Any]
    turns: tuple[Turn, ...]
    evidence: tuple[str, ...]


def _longmemeval(record: object, where: Where) -> tuple[str, list[_HaystackSession]]:
    record = expect(record, dict, where, "a LongMemEval record object")
    qid = expect_text(record.get("question_id"), where.at("question_id"), "the question id")
    where = where.named(qid)
    ids = expect(record.get("haystack_session_ids"), list, where.at("haystack_session_ids"),
                  "a list of session ids")
    dates = expect(record.get("haystack_dates"), list, where.at("haystack_dates"),
                    "a list of date strings")
    raw_sessions = expect(record.get("haystack_sessions"), list, where.at("haystack_sessions"),
                           "a list of sessions (lists of turns)")
    if not len(ids) == len(dates) == len(raw_sessions):
        raise where.error(
            f"haystack_session_ids, haystack_dates and haystack_sessions have "
            f"{len(ids)}, {len(dates)} and {len(raw_sessions)} items",
            "the three lists must be parallel (one entry per session)",
        )
    kept: list[_HaystackSession] = []
    copies: dict[str, list[_HaystackSession]] = {}
    for j, (raw_id, raw_date, raw_turns) in enumerate(zip(ids, dates, raw_sessions)):
        here = where.at(f"haystack_sessions[{j}]")
        sid = expect_text(raw_id, where.at(f"haystack_session_ids[{j}]"), "a session id")
        date = _date(expect(raw_date, str, where.at(f"haystack_dates[{j}]"), "a date string"),
                     where.at(f"haystack_dates[{j}]"))
        raw_turns = expect(raw_turns, list, here, "a list of turns")
        same = next((s for s in copies.get(sid, []) if s.raw == raw_turns), None)
        if same is not None:
            same.date = min(same.date, date)
            continue
        name = sid if sid not in copies else f"{sid}~{len(copies[sid]) + 1}"
        session = _haystack_session(name, date, raw_turns, here)
        copies.setdefault(sid, []).append(session)
        kept.append(session)
    return qid, kept


def _haystack_session(name: str, date: datetime, raw_turns: list[Any],
                      where: Where) -> _HaystackSession:
    turns, evidence = [], []
    for i, raw in enumerate(raw_turns):
        raw = expect(raw, dict, where.at(f"[{i}]"), "a turn object {role, content}")
        role = expect_text(raw.get("role"), where.at(f"[{i}].role"), "'user' or 'assistant'")
        content = expect(raw.get("content"), str, where.at(f"[{i}].content"), "a string")
        if not content.strip():
            continue
        turn_id = f"{name}#{i}"
        turns.append(Turn(id=turn_id, role=role, text=content))
        if raw.get("has_answer") is True:
            evidence.append(turn_id)
    return _HaystackSession(name, date, raw_turns, tuple(turns), tuple(evidence))
