"""MemGPT-style paging (docs/paging.md): every check is a test.

Checks: the main context never exceeds the window; the warning fires once per
crossing; after any number of flushes every evicted message is still found by
conversation_search; the summary chain is recursive; block limits are enforced
with a clear error. Plus: exact-match replace errors, the paging header, date
ranges, state round-trip, tools invocable through LangChain.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import (
    DataFormatError,
    EmptyTextError,
    InvalidDateError,
    InvalidInputError,
    MemoryBlockLimitError,
    NotFoundError,
)
from ltm_agent.memory_stores import InMemoryStore
from ltm_agent.paging import PagedContext, PagingEvents
from ltm_agent.paging.messages import PagedMessage, ToolCallRef, message_tokens
from ltm_agent.paging.search import PAGE_SIZE, parse_date_range
from ltm_agent.paging.summary import (
    FALLBACK_HEADER,
    ExtractiveSummarizer,
    ModelSummarizer,
)
from ltm_agent.plugins.langgraph.tools import paging_tools

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
NS = ("user-1",)
HEADER = re.compile(r"^Showing (\d+) of (\d+) results \(page (\d+)/(\d+)\)$")
WORDS = ["the", "a", "river", "stone", "green", "tea", "travel", "garden", "quiet", "music", "blue", "window", "paper", "early", "late", "coffee"]


@pytest.fixture
def store(fake_embedder: HashingEmbedder) -> InMemoryStore:
    return InMemoryStore(fake_embedder)


def make_ctx(store: InMemoryStore, window: int = 1000, **kwargs: Any) -> PagedContext:
    return PagedContext(store, NS, window_tokens=window, system="You are a helpful assistant.", **kwargs)


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


class RecordingSummarizer:
    """Returns short, numbered summaries and records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[PagedMessage]]] = []

    def summarize(self, previous_summary: str, messages: Sequence[PagedMessage]) -> str:
        self.calls.append((previous_summary, list(messages)))
        return f"summary-{len(self.calls)} covering {len(messages)} messages"


class HugeSummarizer:
    """Ignores any budget: returns far more than fits, to exercise cutting."""

    def summarize(self, previous_summary: str, messages: Sequence[PagedMessage]) -> str:
        return previous_summary + "\n" + " ".join(m.content for m in messages) * 3


class FailingSummarizer:
    def summarize(self, previous_summary: str, messages: Sequence[PagedMessage]) -> str:
        raise RuntimeError("model is down")


def check_invariants(ctx: PagedContext, events: PagingEvents) -> None:
    window = ctx.window_tokens
    assert events.tokens_after <= window
    assert ctx.tokens() <= window
    # The cached count is the count of the rendered context.
    assert ctx.tokens() == sum(message_tokens(m) for m in ctx.messages())
    queue = ctx.queue
    # Never split a tool call from its result: each queued tool result's call is queued before it.
    for i, message in enumerate(queue):
        if message.role == "tool":
            assert i > 0
            calls = {c.id for m in queue[:i] for c in m.tool_calls}
            assert message.tool_call_id in calls
            assert not any(m.notice for m in queue[:i][-1:])  # no notice between call and result


# ---------------------------------------------------------------------------
# The main context never exceeds the window


@pytest.mark.parametrize("window", [300, 600, 1200, 3000])
@pytest.mark.parametrize("summarizer", [None, "huge", "failing"])
def test_main_context_never_exceeds_window(store: InMemoryStore, window: int, summarizer: str | None) -> None:
    rng = random.Random(window)
    chosen = {"huge": HugeSummarizer(), "failing": FailingSummarizer(), None: None}[summarizer]
    ctx = make_ctx(store, window, summarizer=chosen, keep_recent=rng.choice([0, 1, 3, 5]))
    flushes = 0
    for i in range(120):
        time = T0 + timedelta(minutes=i)
        roll = rng.random()
        if roll < 0.1:  # an assistant tool call followed by its results
            ids = [f"c{i}-{k}" for k in range(rng.randint(1, 2))]
            calls = [ToolCallRef(id=c, name="lookup", args={"q": words(rng, 3)}) for c in ids]
            events = [ctx.append("assistant", "", tool_calls=calls, time=time)]
            events += [ctx.append("tool", words(rng, rng.randint(5, 150)), tool_call_id=c, time=time) for c in ids]
        elif roll < 0.13:  # one message far larger than the window
            events = [ctx.append("user", words(rng, window * 2), time=time)]
        else:
            role = "user" if i % 2 == 0 else "assistant"
            events = [ctx.append(role, f"msg{i} " + words(rng, rng.randint(1, 120)), time=time)]
        for ev in events:
            check_invariants(ctx, ev)
            flushes += ev.flushed > 0
            if summarizer == "failing" and ev.evicted_ids:
                assert ev.summary_fallback is not None and "model is down" in ev.summary_fallback
    assert flushes >= 3


def test_oversized_message_is_cut_in_context_but_whole_in_recall(store: InMemoryStore) -> None:
    ctx = make_ctx(store, 400)
    big = "opening sentence. " + " ".join(f"w{i}" for i in range(3000)) + " trailingmarker"
    events = ctx.append("user", big, time=T0)
    assert events.cut_messages == 1 and ctx.tokens() <= 400
    in_context = next(m for m in ctx.queue if m.id == events.message_id)
    assert in_context.cut and in_context.content.endswith("(conversation_search)]")
    assert in_context.content.startswith("opening sentence.")
    hit = ctx.conversation_search("trailingmarker").hits[0]
    assert hit.id == events.message_id and hit.text == big


def test_tool_call_too_big_for_window_leaves_no_orphan_result(store: InMemoryStore) -> None:
    ctx = make_ctx(store, 300)
    ctx.append("user", "look this up", time=T0)
    call = ToolCallRef(id="big", name="lookup", args={"q": "stone " * 600})
    check_invariants(ctx, ctx.append("assistant", "", tool_calls=[call], time=T0))
    check_invariants(ctx, ctx.append("tool", "the answer", tool_call_id="big", time=T0))
    assert "stone stone" in ctx.conversation_search("lookup stone").hits[0].text  # whole call in recall


def test_window_too_small_for_system_and_blocks_is_refused(store: InMemoryStore) -> None:
    ctx = PagedContext(store, NS, window_tokens=150, system="word " * 200)
    with pytest.raises(InvalidInputError, match="leaves no room"):
        ctx.append("user", "hello")
    assert store.count(NS) == 0  # refused before anything was written


# ---------------------------------------------------------------------------
# The warning fires once per crossing


def test_warning_fires_once_per_crossing(store: InMemoryStore) -> None:
    ctx = make_ctx(store, 1000, warning=0.6)
    limit = 0.6 * 1000
    armed, warnings, flushes = True, 0, 0
    rng = random.Random(7)
    for i in range(200):
        ev = ctx.append("user" if i % 2 else "assistant", words(rng, rng.randint(5, 40)), time=T0)
        if ev.warning:
            assert armed, f"warning fired again at message {i} without usage dropping below the threshold"
            armed = False
            warnings += 1
        elif armed:
            assert ev.tokens_after < limit, f"usage crossed the threshold at message {i} without a warning"
        if ev.tokens_after < limit:
            armed = True
        flushes += ev.flushed > 0
    notices = [m for m in ctx.queue if m.notice]
    assert len(notices) <= 1
    # Append-only usage falls only by flushing, so each crossing after the first follows a flush.
    assert 3 <= warnings <= flushes + 1


def test_notice_text_and_position(store: InMemoryStore) -> None:
    ctx = make_ctx(store, 1000)
    while not (ev := ctx.append("user", "tell me about tea " * 10, time=T0)).warning:
        pass
    notice = ctx.queue[-1]
    assert notice.notice and notice.role == "user" and notice.id is None
    assert notice.content.startswith("[Memory pressure notice]")
    assert "archival_memory_insert" in notice.content and "core_memory_append" in notice.content
    assert ev.tokens_peak >= 0.7 * 1000


def test_warning_waits_until_tool_results_arrive(store: InMemoryStore) -> None:
    ctx = make_ctx(store, 1000)
    while ctx.tokens() + 60 < 0.7 * 1000:
        ctx.append("user", "filler text about the garden " * 3, time=T0)
    call = ToolCallRef(id="call-1", name="lookup", args={"q": "word " * 100})
    assert not ctx.append("assistant", "checking", tool_calls=[call], time=T0).warning
    assert ctx.tokens() >= 0.7 * 1000
    assert ctx.append("tool", "result text", tool_call_id="call-1", time=T0).warning
    assert [m.role for m in ctx.queue[-3:]] == ["assistant", "tool", "user"] and ctx.queue[-1].notice


# ---------------------------------------------------------------------------
# After any number of flushes every evicted message is still found


def test_every_evicted_message_is_found_by_conversation_search(store: InMemoryStore) -> None:
    ctx = make_ctx(store, 500, keep_recent=2)
    rng = random.Random(3)
    token_of: dict[str, str] = {}
    evicted: list[str] = []
    flushes = 0
    for i in range(90):
        token = f"kw{i:03d}zq"
        ev = ctx.append("user" if i % 2 == 0 else "assistant", f"{words(rng, rng.randint(3, 40))} {token}.", time=T0)
        token_of[ev.message_id] = token  # type: ignore[index]
        evicted.extend(ev.evicted_ids)
        flushes += ev.flushed > 0
    assert flushes >= 5 and len(evicted) >= 60
    assert len(set(evicted)) == len(evicted)
    assert ctx.evicted_count == len(evicted)
    for message_id in evicted:
        page = ctx.conversation_search(token_of[message_id])
        assert message_id in [h.id for h in page.hits], f"{message_id} not found"
    tool = {t.name: t for t in paging_tools(ctx)}["conversation_search"]
    assert token_of[evicted[0]] in tool.invoke({"query": token_of[evicted[0]]})


# ---------------------------------------------------------------------------
# The summary chain is recursive


def test_summary_chain_is_recursive(store: InMemoryStore) -> None:
    recorder = RecordingSummarizer()
    ctx = make_ctx(store, 600, summarizer=recorder)
    rng = random.Random(11)
    summaries_before: list[str] = []
    for i in range(80):
        before = ctx.summary
        ev = ctx.append("user", words(rng, 30), time=T0 + timedelta(hours=i))
        if ev.flushed:
            summaries_before.append(before)
    assert len(recorder.calls) >= 3
    # Each call received the summary then at the head of the queue: the one the previous call returned.
    assert recorder.calls[0][0] == ""
    for k, (previous, messages) in enumerate(recorder.calls[1:], start=1):
        assert previous == f"summary-{k} covering {len(recorder.calls[k - 1][1])} messages"
        assert messages and not any(m.notice for m in messages)
    assert [c[0] for c in recorder.calls] == summaries_before
    assert ctx.summary.startswith(f"summary-{len(recorder.calls)}")
    assert ctx.render()[1]["content"].endswith(ctx.summary)


def test_extractive_fallback_keeps_previous_summary_and_counts_drops() -> None:
    summarizer = ExtractiveSummarizer(max_tokens=120, line_tokens=20)
    first = [PagedMessage(role="user", content=f"Fact number {i} is here. More text.", time=T0) for i in range(2)]
    s1 = summarizer.summarize("", first)
    assert s1.splitlines()[0] == FALLBACK_HEADER
    assert "- 2024-05-01 09:00 user: Fact number 0 is here." in s1 and "More text" not in s1
    s2 = summarizer.summarize(s1, [PagedMessage(role="assistant", content="Second batch.", time=T0)])
    assert all(line in s2 for line in s1.splitlines())  # recursive: the previous summary is kept
    many = [PagedMessage(role="user", content=f"Line {i} says something long enough.", time=T0) for i in range(20)]
    s3 = summarizer.summarize(s2, many)
    dropped = re.search(r"\[(\d+) older summary lines dropped to stay within 120 tokens\]", s3)
    assert dropped and int(dropped.group(1)) > 0
    s4 = summarizer.summarize(s3, many)
    assert int(re.search(r"\[(\d+) older", s4).group(1)) > int(dropped.group(1))  # type: ignore[union-attr]
    assert summarizer.summarize(s2, many) == s3  # deterministic


def test_model_summarizer_gets_previous_summary_and_failure_falls_back(store: InMemoryStore) -> None:
    summarizer = ModelSummarizer(FakeListChatModel(responses=["The user talked about tea."]))
    prompt = summarizer.prompt("The user likes green tea.", [PagedMessage(role="user", content="hi", time=T0)])
    assert "The user likes green tea." in str(prompt[1].content)
    ctx = make_ctx(store, 600, summarizer=summarizer)
    rng = random.Random(5)
    flushed = [ev for ev in (ctx.append("user", words(rng, 30), time=T0) for _ in range(40)) if ev.flushed]
    assert flushed and flushed[0].summary_fallback is None
    assert ctx.summary == "The user talked about tea."
    assert summarizer.step.ledger.summary()["paging.summarize"].calls == len(flushed)

    broken = make_ctx(InMemoryStore(HashingEmbedder(64)), 600, summarizer=FailingSummarizer())
    events = [broken.append("user", words(rng, 30), time=T0) for _ in range(40)]
    assert any(ev.summary_fallback for ev in events)
    assert broken.summary.startswith(FALLBACK_HEADER)


# ---------------------------------------------------------------------------
# Core memory: block limits and exact-match replace


def test_block_limit_enforced_with_clear_error(store: InMemoryStore) -> None:
    ctx = make_ctx(store, 2000, blocks={"human": 50, "persona": 100, "tasks": 30})
    ctx.core_memory_append("human", "Name: Ana")
    with pytest.raises(MemoryBlockLimitError) as info:
        ctx.core_memory_append("human", "x" * 45)
    message = str(info.value)
    assert "'human'" in message and "50" in message and "55" in message and "9 now" in message
    assert "core_memory_replace" in message and "archival_memory_insert" in message
    assert isinstance(info.value, ValueError)
    assert ctx.blocks["human"].value == "Name: Ana"  # unchanged
    with pytest.raises(MemoryBlockLimitError):
        ctx.core_memory_replace("human", "Ana", "A" * 60)
    with pytest.raises(NotFoundError, match="'persona', 'human'|'human', 'persona'"):
        ctx.core_memory_append("humann", "x")
    tools = {t.name: t for t in paging_tools(ctx)}
    reply = tools["core_memory_append"].invoke({"label": "tasks", "content": "y" * 31})
    assert reply.startswith("Error: ") and "30 characters" in reply
    assert '<human characters="9/50">\nName: Ana\n</human>' in ctx.system_text()


def test_block_growth_keeps_window(store: InMemoryStore) -> None:
    ctx = make_ctx(store, 400, blocks={"human": 5000})
    for i in range(8):
        ctx.append("user", f"message {i} " + "about the quiet garden " * 4, time=T0)
    ctx.core_memory_append("human", "likes tea " * 20)
    assert ctx.tokens() <= 400
    with pytest.raises(MemoryBlockLimitError, match="window"):
        ctx.core_memory_append("human", "likes coffee " * 300)
    assert ctx.tokens() <= 400


def test_core_memory_replace_requires_exact_match(store: InMemoryStore) -> None:
    ctx = make_ctx(store)
    ctx.core_memory_append("human", "Name: Ana. Lives in Porto.")
    with pytest.raises(NotFoundError) as info:
        ctx.core_memory_replace("human", "lives in porto", "Lives in Lisbon")
    message = str(info.value)
    assert "exact" in message and "'Lives in Porto'" in message and "core_memory_append" in message
    with pytest.raises(InvalidInputError, match="core_memory_append"):
        ctx.core_memory_replace("human", "", "x")
    assert ctx.core_memory_replace("human", "Lives in Porto", "Lives in Lisbon") == "Name: Ana. Lives in Lisbon."
    tools = {t.name: t for t in paging_tools(ctx)}
    assert tools["core_memory_replace"].invoke({"label": "human", "old": "Porto", "new": "x"}).startswith(
        "Error: core_memory_replace changed nothing"
    )
    assert tools["core_memory_replace"].invoke({"label": "human", "old": "Lisbon", "new": ""}) == (
        "Replaced 1 occurrence in core memory block 'human' (21/2000 characters)."
    )


# ---------------------------------------------------------------------------
# Paging header, archival storage, date ranges


def test_paging_header_format(store: InMemoryStore) -> None:
    ctx = make_ctx(store)
    for i in range(12):
        ctx.archival_memory_insert(f"note {i} about tea and gardens", tags=["tea"])
    first = ctx.archival_memory_search("tea").render().splitlines()
    assert first[0] == "Showing 5 of 12 results (page 0/2)"
    assert [line.split(".")[0] for line in first[1:6]] == ["1", "2", "3", "4", "5"]
    assert re.match(r"^1\. \[\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\] note \d+ about tea and gardens \(tags: tea\)$", first[1])
    assert first[-1] == "More results: call archival_memory_search again with page=1."
    last = ctx.archival_memory_search("tea", page=2).render().splitlines()
    assert last[0] == "Showing 2 of 12 results (page 2/2)" and last[1].startswith("11. ")
    assert len(last) == 3
    past = ctx.archival_memory_search("tea", page=3).render().splitlines()
    assert past[0] == "Showing 0 of 12 results (page 3/2)"
    empty = make_ctx(InMemoryStore(HashingEmbedder(64))).conversation_search("anything").render()
    assert empty.splitlines()[0] == "Showing 0 of 0 results (page 0/0)"
    ctx.append("user", "I drink tea every morning", time=T0)
    assert HEADER.match(ctx.conversation_search("tea").render().splitlines()[0])
    assert PAGE_SIZE == 5


def test_archival_is_separate_from_recall(store: InMemoryStore) -> None:
    ctx = make_ctx(store)
    ctx.append("user", "I drink jasmine tea", time=T0)
    note_id = ctx.archival_memory_insert("User prefers jasmine tea", tags=["food", "tea"])
    archival = ctx.archival_memory_search("jasmine tea")
    recall = ctx.conversation_search("jasmine tea")
    assert [h.id for h in archival.hits] == [note_id] and archival.hits[0].tags == ("food", "tea")
    assert all(h.id != note_id for h in recall.hits) and recall.total == 1
    with pytest.raises(EmptyTextError):
        ctx.archival_memory_insert("   ")


def test_conversation_search_date_range(store: InMemoryStore) -> None:
    ctx = make_ctx(store)
    for day in range(5):
        for hour in (8, 20):
            ctx.append("user", f"day {day} hour {hour}: tea again", time=T0.replace(day=1 + day, hour=hour))
    one_day = ctx.conversation_search("tea", start_date="2024-05-02", end_date="2024-05-02")
    assert one_day.total == 2 and {h.time.day for h in one_day.hits} == {2}  # type: ignore[union-attr]
    from_day = ctx.conversation_search("tea", start_date="2024-05-04")
    assert from_day.total == 4
    until = ctx.conversation_search("tea", end_date="2024-05-01T12:00:00+00:00")
    assert [h.text for h in until.hits] == ["day 0 hour 8: tea again"]
    shifted = ctx.conversation_search("tea", start_date="2024-05-03T22:00:00+02:00", end_date="2024-05-03")
    assert {h.text for h in shifted.hits} == {"day 2 hour 20: tea again"}
    for bad in ("yesterday", "05/01/2024", "2024-13-01", "2024-05"):
        with pytest.raises(InvalidDateError):
            ctx.conversation_search("tea", start_date=bad)
    with pytest.raises(InvalidDateError, match="after"):
        parse_date_range("2024-05-03", "2024-05-01")
    tool = {t.name: t for t in paging_tools(ctx)}["conversation_search"]
    reply = tool.invoke({"query": "tea", "start_date": "last week"})
    assert reply.startswith("Error: start_date 'last week' is not an ISO 8601 date") and "YYYY-MM-DD" in reply
    ok = tool.invoke({"query": "tea", "start_date": "2024-05-05", "end_date": "2024-05-05"})
    assert ok.splitlines()[0] == "Showing 2 of 2 results (page 0/0)" and "[2024-05-05 08:00 UTC] user:" in ok


# ---------------------------------------------------------------------------
# State, rendering, tools


def test_state_round_trip(store: InMemoryStore) -> None:
    ctx = make_ctx(store, 600, keep_recent=2)
    ctx.core_memory_append("persona", "I am Sam.")
    rng = random.Random(2)
    for i in range(40):
        ctx.append("user" if i % 2 else "assistant", words(rng, 25), time=T0 + timedelta(minutes=i))
    ctx.append("assistant", "", tool_calls=[{"id": "c1", "name": "lookup", "args": {"q": "tea"}}], time=T0)
    ctx.append("tool", "found tea", tool_call_id="c1", time=T0)
    state = json.loads(json.dumps(ctx.state()))
    again = PagedContext.from_state(state, store)
    strip = lambda msgs: [{k: v for k, v in m.items()} for m in msgs]
    assert strip(again.render()) == strip(ctx.render())
    assert again.tokens() == ctx.tokens() and again.summary == ctx.summary
    assert again.evicted_count == ctx.evicted_count and again.session_id == ctx.session_id
    a = ctx.append("user", "next message about tea", time=T0)
    b = again.append("user", "next message about tea", time=T0)
    assert (a.tokens_after, a.flushed, a.warning, a.message_id) == (b.tokens_after, b.flushed, b.warning, b.message_id)
    with pytest.raises(DataFormatError, match="PagedContext.state"):
        PagedContext.from_state({"version": 1, "queue": "nope"}, store)


def test_render_and_langchain_messages(store: InMemoryStore) -> None:
    ctx = make_ctx(store)
    ctx.append_message(HumanMessage("What is in my notes?"), time=T0)
    ctx.append_message(
        AIMessage("", tool_calls=[{"name": "archival_memory_search", "args": {"query": "notes"}, "id": "t1"}]),
        time=T0,
    )
    ctx.append_message(ToolMessage("Showing 0 of 0 results (page 0/0)", tool_call_id="t1"), time=T0)
    messages = ctx.to_messages()
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage, AIMessage, ToolMessage]
    assert messages[2].tool_calls[0]["id"] == "t1" and messages[3].tool_call_id == "t1"  # type: ignore[attr-defined]
    dicts = ctx.render()
    assert dicts[2]["tool_calls"][0]["function"]["name"] == "archival_memory_search"
    assert dicts[0]["role"] == "system" and "You are a helpful assistant." in dicts[0]["content"]
    stored = store.list(NS, filter={"kind": "turn"})
    assert [i.metadata["position"] for i in stored] == [0, 1, 2]
    assert "[tool call] archival_memory_search" in stored[1].text
    with pytest.raises(InvalidInputError, match="tool_call_id"):
        ctx.append("tool", "orphan result")
    with pytest.raises(EmptyTextError):
        ctx.append("user", "  ")


def test_tools_invocable(store: InMemoryStore) -> None:
    ctx = make_ctx(store)
    tools = {t.name: t for t in paging_tools(ctx)}
    assert set(tools) == {
        "core_memory_append",
        "core_memory_replace",
        "archival_memory_insert",
        "archival_memory_search",
        "conversation_search",
    }
    assert tools["core_memory_append"].invoke({"label": "human", "content": "Name: Ana"}) == (
        "Appended to core memory block 'human' (9/2000 characters)."
    )
    saved = tools["archival_memory_insert"].invoke({"content": "Ana's cat is called Miso", "tags": ["pets"]})
    assert saved.startswith("Saved to archival memory (id archival-")
    found = tools["archival_memory_search"].invoke({"query": "cat name"})
    assert found.startswith("Showing 1 of 1 results (page 0/0)\n1. [") and "Miso (tags: pets)" in found
    ctx.append("user", "My cat Miso likes boxes", time=T0)
    assert "Miso likes boxes" in tools["conversation_search"].invoke({"query": "Miso", "page": 0})
    bad = tools["archival_memory_search"].invoke({"query": "cat", "page": -1})
    assert bad.startswith("Error: invalid arguments (page:")
    empty = tools["conversation_search"].invoke({"query": " "})
    assert empty.startswith("Error: conversation_search needs a non-empty query")
    message = tools["core_memory_replace"].invoke(
        {"name": "core_memory_replace", "args": {"label": "human", "old": "Bob", "new": "x"}, "id": "call-9", "type": "tool_call"}
    )
    assert isinstance(message, ToolMessage) and message.status == "error" and message.tool_call_id == "call-9"
    assert "Bob" in str(message.content)


def test_constructor_does_no_io() -> None:
    class NoIOStore(InMemoryStore):
        def batch(self, ops):  # type: ignore[no-untyped-def]
            raise AssertionError("constructor touched the store")

    ctx = PagedContext(NoIOStore(), NS, window_tokens=1000)
    paging_tools(ctx)
    with pytest.raises(InvalidInputError, match="warning"):
        PagedContext(InMemoryStore(embedder=HashingEmbedder()), NS, window_tokens=1000, warning=0.9, flush=0.8)
    with pytest.raises(InvalidInputError, match="window_tokens"):
        PagedContext(InMemoryStore(embedder=HashingEmbedder()), NS, window_tokens=10)
    with pytest.raises(InvalidInputError, match="label"):
        PagedContext(InMemoryStore(embedder=HashingEmbedder()), NS, window_tokens=1000, blocks={"Bad Label": 10})


def test_chroma_store_backs_paging() -> None:
    chroma = pytest.importorskip("ltm_agent.memory_stores.chroma")
    with chroma.ChromaStore.ephemeral(embedder=HashingEmbedder(64)) as store:
        ctx = PagedContext(store, NS, window_tokens=400)
        token_of: dict[str, str] = {}
        evicted: list[str] = []
        for i in range(40):
            ev = ctx.append("user", f"note kw{i:02d}zq about the garden and tea", time=T0 + timedelta(days=i))
            token_of[ev.message_id] = f"kw{i:02d}zq"  # type: ignore[index]
            evicted += ev.evicted_ids
            assert ctx.tokens() <= 400
        assert len(evicted) >= 10
        for message_id in evicted:
            assert message_id in [h.id for h in ctx.conversation_search(token_of[message_id]).hits]
        in_range = ctx.conversation_search("garden", start_date="2024-05-03", end_date="2024-05-04")
        assert in_range.total == 2
        ctx.archival_memory_insert("Ana keeps bees", tags=["hobby"])
        assert ctx.archival_memory_search("bees").hits[0].tags == ("hobby",)
