"""Each day's date once: ranked items, budget packing and the prompt block agree on which item shows it."""

from __future__ import annotations

from datetime import UTC, datetime

from ltm_agent.dates import day_label
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
