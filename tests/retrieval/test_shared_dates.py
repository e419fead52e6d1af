"""Each day's date once: ranked items, budget packing and the prompt block agree on which item shows it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ltm_agent.dates import day_label
from ltm_agent.errors import InvalidInputError
from ltm_agent.llm import render_memory_block
from ltm_agent.records import MemoryItem
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig, pack
from ltm_agent.tokens import count_tokens

MAY8, MAY9 = datetime(2023, 5, 8, 13, 0, tzinfo=UTC), datetime(2023, 5, 9, 9, 0, tzinfo=UTC)


def _item(id_: str, text: str, when: datetime | None) -> MemoryItem:
    return MemoryItem(id_, "turn", text, 1.0, when, count_tokens(text), (id_,), ("u",))


def test_the_first_ranked_memory_of_each_day_carries_its_date_and_the_others_are_charged_less(two_session_store) -> None:
    query = "pottery bowl camping"
    shared = HybridRetriever(two_session_store).rank(("u",), query)
    own = HybridRetriever(two_session_store, RetrievalConfig(share_dates=False)).rank(("u",), query)
    assert [i.sources for i in shared] == [i.sources for i in own]  # the same ranking, rendered differently
    seen: set[str] = set()
    for mine, theirs in zip(shared, own, strict=True):
        label = day_label(mine.time)
        assert theirs.text.startswith(label + " ")
        assert mine.text.startswith(label + " ") == (label not in seen)
        assert mine.tokens == count_tokens(mine.text)
        seen.add(label)
    assert len(seen) == 2 and sum(i.tokens for i in shared) < sum(i.tokens for i in own)


def test_packing_gives_a_day_its_date_back_when_the_memory_that_carried_it_is_skipped() -> None:
    long = _item("a", "[8 May 2023] " + "word " * 60, MAY8)  # does not fit the budget
    later = _item("b", "Ann: the bowl is blue", MAY8)  # ranked after it, so rendered without the date
    kept = pack([long, later], 20, share_dates=True)
    assert [i.id for i in kept] == ["b"] and kept[0].text == "[8 May 2023] Ann: the bowl is blue"
    assert kept[0].tokens == count_tokens(kept[0].text)
    # Without share_dates, pack keeps items as they are.
    assert pack([long, later], 20)[0].text == "Ann: the bowl is blue"


def test_packing_drops_a_repeated_date_and_charges_only_what_is_rendered() -> None:
    items = [_item("a", "[8 May 2023] Ann: hi", MAY8), _item("b", "[8 May 2023] Bob: hello", MAY8),
             _item("c", "[9 May 2023] Ann: bye", MAY9), _item("d", "no date here", None)]
    kept = pack(items, None, share_dates=True)
    assert [i.text for i in kept] == ["[8 May 2023] Ann: hi", "Bob: hello", "[9 May 2023] Ann: bye", "no date here"]
    assert [i.tokens for i in kept] == [count_tokens(i.text) for i in kept]


def test_the_prompt_block_gives_every_memory_its_day() -> None:
    """What a model reads: each memory either starts with its date or follows, in its day's group,
    the memory that does."""
    ranked = pack([_item("a", "[8 May 2023] Ann: hi", MAY8), _item("c", "[9 May 2023] Ann: bye", MAY9),
                   _item("b", "[8 May 2023] Bob: hello", MAY8)], None, share_dates=True)
    block = render_memory_block(ranked, instruction="(data)").splitlines()
    assert block[2:5] == ['<memory id="m1">[8 May 2023] Ann: hi</memory>', '<memory id="m3">Bob: hello</memory>',
                          '<memory id="m2">[9 May 2023] Ann: bye</memory>']


def test_rank_with_max_tokens_is_the_full_ranking_cut_at_the_item_that_fills_the_budget(two_session_store) -> None:
    retriever = HybridRetriever(two_session_store)
    full = retriever.rank(("u",), "pottery bowl camping")
    cut = retriever.rank(("u",), "pottery bowl camping", max_tokens=full[0].tokens + 1)
    assert cut == full[:2]  # the second item brings the total past the budget: it is the last one
    assert retriever.rank(("u",), "pottery bowl camping", max_tokens=10_000) == full
    for bad in (0, -5, 1.5, "100"):
        with pytest.raises(InvalidInputError, match="max_tokens"):
            retriever.rank(("u",), "pottery bowl camping", max_tokens=bad)


def test_pack_with_a_limit_stops_consuming_a_lazy_stream() -> None:
    consumed: list[str] = []

    def stream():
        for n in range(100):
            consumed.append(f"t{n}")
            yield _item(f"t{n}", f"memory {n}", None)

    kept = pack(stream(), None, limit=3)
    assert [i.id for i in kept] == ["t0", "t1", "t2"] and consumed == ["t0", "t1", "t2"]
    assert pack(stream(), None, limit=0) == []
    with pytest.raises(InvalidInputError, match="limit"):
        pack([], None, limit=-1)
    consumed.clear()
    full = pack(stream(), count_tokens("memory 0") + count_tokens("memory 1"))  # a full budget stops it too
    assert [i.id for i in full] == ["t0", "t1"] and consumed == ["t0", "t1"]


def test_retrieve_renders_only_what_it_returns(two_session_store, monkeypatch) -> None:
    import ltm_agent.retrieval.rendering as rendering

    rendered: list[str] = []
    original = rendering.to_memory_item
    def counting(item, *args, **kwargs):
        rendered.append(item.id)
        return original(item, *args, **kwargs)

    monkeypatch.setattr(rendering, "to_memory_item", counting)
    items = HybridRetriever(two_session_store).retrieve(("u",), "pottery bowl camping", k=2)
    assert len(items) == 2 and rendered == [i.id for i in items]
