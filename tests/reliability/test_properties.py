"""Property-based tests (hypothesis) over the public API and the CLI.

Whatever a caller passes — random unicode (lone surrogates, NULs, RTL marks,
emoji), huge or empty texts, wrong types, naive/aware/invalid datetimes,
hostile namespace labels, malformed LoCoMo/LongMemEval/jsonl files — each
case either round-trips exactly or raises an :class:`~ltm_agent.errors.LTMError`
subclass, and after an error the store is unchanged.

CI runs a modest number of examples per property; ``LTM_HEAVY=1`` runs 500.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import record

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import LTMError
from ltm_agent.memory_stores import ChromaStore, InMemoryStore
from ltm_agent.records import StoredItem
from ltm_agent.store import MemoryStore

HEAVY = os.environ.get("LTM_HEAVY") == "1"
EXAMPLES = 500 if HEAVY else 40
PROFILE = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=not HEAVY)
NS = ("prop",)

# Every code point, surrogates included (hypothesis leaves category Cs out by default).
any_char = st.characters(codec=None, exclude_categories=())
hostile_text = st.one_of(
    st.text(any_char, max_size=60),
    st.sampled_from(["", "   ", "\x00", "a\x00b", "\ud800", "x\udfff", "\u202eevil\u202c", "👋🏽" * 3, "x" * 100_001]),
    st.integers(),
    st.none(),
    st.binary(max_size=8),
)
hostile_label = st.one_of(
    st.text(any_char, min_size=0, max_size=12),
    st.sampled_from(["a b", "a.20b", "../etc", "ltm-registry", "a" * 200, ""]),
    st.integers(),
)
scalar = st.one_of(st.text(any_char, max_size=12), st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2))


class Tally:
    def __init__(self, name: str) -> None:
        self.name, self.ops, self.failures = name, 0, 0

    def __enter__(self) -> Tally:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is not None:
            self.failures += 1


_tallies: dict[str, Tally] = {}


def _tally(name: str) -> Tally:
    return _tallies.setdefault(name, Tally(name))


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    for tally in _tallies.values():
        record(f"property: {tally.name}", trials=1, ops=tally.ops, failures=tally.failures)


@pytest.fixture(scope="module", params=["memory", "chroma"])
def store(request: pytest.FixtureRequest) -> Iterator[MemoryStore]:
    opened: MemoryStore
    if request.param == "memory":
        opened = InMemoryStore(embedder=HashingEmbedder(32))
    else:
        opened = ChromaStore.ephemeral(embedder=HashingEmbedder(32))
    opened.put([StoredItem(NS, "anchor", "a memory that must survive every bad call")])
    yield opened
    opened.close()


def _snapshot(store: MemoryStore) -> list[tuple[str, str, dict[str, Any]]]:
    return [(i.id, i.text, dict(i.metadata)) for i in store.list(NS)]


@PROFILE
@given(
    text=hostile_text,
    item_id=st.one_of(st.text(any_char, min_size=0, max_size=20), st.integers()),
    metadata=st.dictionaries(st.text(any_char, max_size=8), scalar, max_size=3),
    label=hostile_label,
)
def test_put_round_trips_or_refuses_and_changes_nothing(
    store: MemoryStore, text: Any, item_id: Any, metadata: dict[str, Any], label: Any
) -> None:
    tally = _tally("store.put / get")
    with tally:
        tally.ops += 1
        namespace = (label,) if label != "prop" else NS
        before = _snapshot(store)
        item = StoredItem(namespace, item_id, text, metadata=metadata)
        try:
            store.put([StoredItem(NS, "side-effect", "written before the bad item?"), item])
        except LTMError:
            assert _snapshot(store) == before, "a refused batch changed the store"
            return
        got = store.get(namespace, [item_id])[0]
        assert got is not None and got.text == text and got.metadata == metadata
        store.delete(namespace, [item_id])
        store.delete(NS, ["side-effect"])


@PROFILE
@given(query=hostile_text, mode=st.sampled_from(["dense", "keyword", "hybrid", None]), limit=st.one_of(st.integers(-2, 5), st.none()))
def test_search_answers_or_raises_an_ltm_error(store: MemoryStore, query: Any, mode: Any, limit: Any) -> None:
    tally = _tally("store.search")
    with tally:
        tally.ops += 1
        before = _snapshot(store)
        try:
            hits = store.search(NS, query, mode=mode, limit=limit)
        except LTMError:
            pass
        else:
            assert all(h.item.namespace == NS for h in hits)
        assert _snapshot(store) == before


when = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),  # naive
    st.datetimes(timezones=st.just(timezone(timedelta(hours=-11)))),
    st.sampled_from(["2024-01-01", "yesterday", 0, None]),
)


@PROFILE
@given(text=hostile_text, session=st.one_of(st.text(any_char, max_size=10), st.integers(), st.none()), at=when)
def test_add_turn_stores_exactly_or_refuses(text: Any, session: Any, at: Any) -> None:
    from ltm_agent.timeline import EpisodicTimeline

    tally = _tally("EpisodicTimeline.add_turn")
    with tally:
        tally.ops += 1
        store = InMemoryStore(embedder=HashingEmbedder(32))
        timeline = EpisodicTimeline(store, NS)
        try:
            timeline.add_turn(text, session_id=session, time=at)
        except LTMError:
            assert store.count(NS) == 0, "a refused turn left items behind"
            return
        turns = store.list(NS, filter={"kind": "turn"})
        assert len(turns) == 1 and turns[0].text.endswith(text.strip() if False else text)


def _records() -> st.SearchStrategy[Any]:
    leaf = st.one_of(st.text(any_char, max_size=10), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none())
    return st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["id", "sessions", "turns", "date", "text", "role", "speaker", "conversation", "session_1", "session_1_date_time",
         "speaker_a", "speaker_b", "qa", "question_id", "haystack_sessions", "haystack_dates", "haystack_session_ids",
         "content", "dia_id", "question", "answer"]), inner, max_size=5)), max_leaves=15)


@PROFILE
@given(payload=st.one_of(_records(), st.lists(_records(), max_size=3)), fmt=st.sampled_from(["jsonl", "locomo", "longmemeval"]),
       raw=st.one_of(st.none(), st.binary(max_size=40)))
def test_malformed_files_raise_ltm_errors(payload: Any, fmt: str, raw: bytes | None) -> None:
    from ltm_agent.loaders import load_conversations

    tally = _tally("load_conversations (LoCoMo, LongMemEval, jsonl)")
    with tally:
        tally.ops += 1
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "input.json"
            if raw is not None:
                path.write_bytes(raw)
            else:
                path.write_text(json.dumps(payload, ensure_ascii=False) if fmt != "jsonl" else
                                "\n".join(json.dumps(p) for p in (payload if isinstance(payload, list) else [payload])),
                                encoding="utf-8", errors="surrogatepass")
            try:
                load_conversations(path, fmt)  # type: ignore[arg-type]
            except LTMError:
                pass


@settings(max_examples=max(10, EXAMPLES // 4), deadline=None, suppress_health_check=list(HealthCheck), derandomize=not HEAVY)
@given(text=st.text(any_char, max_size=40), label=st.text(any_char, min_size=1, max_size=10))
def test_cli_exits_with_one_line_or_round_trips(text: str, label: str) -> None:
    from typer.testing import CliRunner

    from ltm_agent.app.cli import app

    tally = _tally("ltm-agent ingest + search (CLI)")
    with tally:
        tally.ops += 1
        with tempfile.TemporaryDirectory() as folder:
            conv = {"id": "c1", "sessions": [{"id": "s1", "date": "2024-03-01T10:00:00Z",
                                               "turns": [{"id": "t1", "role": "user", "speaker": "A", "text": text}]}]}
            path = Path(folder) / "in.jsonl"
            path.write_text(json.dumps(conv) + "\n", encoding="utf-8")
            store_dir = str(Path(folder) / "store")
            result = CliRunner().invoke(app, ["ingest", str(path), "--store", store_dir, "-n", label])
            assert result.exit_code in (0, 2), result.output
            assert "Traceback" not in result.output
            if result.exit_code == 2:
                return
            search = CliRunner().invoke(app, ["search", text.strip() or "x", "--store", store_dir, "-n", label, "--json"])
            assert search.exit_code in (0, 2) and "Traceback" not in search.output


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"session_id": "\ud800"}, id="surrogate-session-id"),
        pytest.param({"session_id": "s1", "role": None}, id="role-None"),
        pytest.param({"session_id": "s1", "speaker": 5}, id="speaker-int"),
    ],
)
def test_add_turn_known_hostile_arguments_raise_ltm_errors(kwargs: dict[str, Any]) -> None:
    from ltm_agent.timeline import EpisodicTimeline

    timeline = EpisodicTimeline(InMemoryStore(embedder=HashingEmbedder(32)), NS)
    with pytest.raises(LTMError):
        timeline.add_turn("hello", time=datetime(2024, 1, 1, tzinfo=UTC), **kwargs)
    assert timeline.store.count(NS) == 0  # the store is as it was
