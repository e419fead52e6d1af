"""Token scorers for the entropy-decay buffer (SirLLM; docs/buffer.md).

A scorer splits a text into units that cover it exactly and gives each a
score: how surprising the unit is. Three implementations, in the order
:func:`default_scorer` prefers them:

* :class:`LlamaCppScorer` - self-information ``-log P(x_i | x_<i)`` from a
  small local causal LM (SmolLM2-135M on llama.cpp, the ``[local]`` extra).
* :class:`ChatLogprobScorer` - surprisal from a LangChain chat model's
  ``logprobs`` (providers that return them, e.g. OpenAI).
* :class:`StatisticalScorer` - the deterministic **statistical fallback, not
  entropy from an LM**: unigram self-information of words from running counts.

Core types: :class:`ScoredUnit`, :class:`TokenScorer`.
"""

from __future__ import annotations

import math
import re
import threading
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Sequence, runtime_checkable

import numpy as np

from ltm_agent.buffer.local_model import LOCAL_MODEL_NAME, load_local_llama, local_model_available
from ltm_agent.errors import InvalidInputError, InvalidTypeError, ModelError, ModelOutputError, describe

if TYPE_CHECKING:
    import llama_cpp
    from langchain_core.language_models import BaseChatModel

__all__ = [
    "ChatLogprobScorer",
    "LlamaCppScorer",
    "ScoredUnit",
    "StatisticalScorer",
    "TokenScorer",
    "default_scorer",
]


class ScoredUnit(NamedTuple):
    """One piece of a scored text."""

    text: str
    """The piece, verbatim; a text's units concatenate back to the text."""
    score: float
    """Surprise in nats (higher = more informative, kept longer)."""


@runtime_checkable
class TokenScorer(Protocol):
    """Anything that scores the units of a text.

    ``score(text, context)`` returns units whose texts concatenate to
    ``text`` exactly; ``context`` is what preceded ``text`` (a scorer may
    condition on it or ignore it).
    """

    name: str

    def score(self, text: str, context: str = "") -> list[ScoredUnit]: ...


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidTypeError(f"{what} needs str, got {describe(text)}; pass the turn's text")
    return text


def merge_byte_pieces(pieces: Sequence[tuple[bytes, float]]) -> list[tuple[str, float]]:
    """Join byte tokens into str pieces; a character split over tokens scores their sum.

    Byte-level tokenizers may cut a multi-byte UTF-8 character between
    tokens. Such tokens are merged into one piece whose score is the joint
    self-information (the sum).

    Example:
        >>> merge_byte_pieces([(b"caf", 1.0), (b"\\xc3", 2.0), (b"\\xa9", 0.5)])
        [('caf', 1.0), ('é', 2.5)]
    """
    out: list[tuple[str, float]] = []
    buffer, total = b"", 0.0
    for raw, score in pieces:
        buffer, total = buffer + raw, total + score
        try:
            text = buffer.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append((text, total))
        buffer, total = b"", 0.0
    if buffer:
        out.append((buffer.decode("utf-8", errors="replace"), total))
    return out


def align_to_text(text: str, pieces: Sequence[tuple[str, float]], *, min_ratio: float = 0.0) -> list[ScoredUnit]:
    """Units covering ``text`` exactly, scored from ``pieces`` that spell (nearly) the same text.

    When the pieces concatenate to ``text`` they are the units. Otherwise
    characters are aligned (``difflib``); an aligned character belongs to its
    piece, and each unaligned stretch becomes a unit scored with the largest
    piece score (unknown is treated as surprising).

    Raises:
        ModelOutputError: The pieces match less than ``min_ratio`` of the text.

    Example:
        >>> align_to_text("a b", [("a", 1.0), (" b", 2.0)])
        [ScoredUnit(text='a', score=1.0), ScoredUnit(text=' b', score=2.0)]
    """
    joined = "".join(piece for piece, _ in pieces)
    if joined == text:
        return [ScoredUnit(piece, float(score)) for piece, score in pieces if piece]
    matcher = SequenceMatcher(None, joined, text, autojunk=False)
    if min_ratio and matcher.ratio() < min_ratio:
        raise ModelOutputError(
            f"the scored tokens spell {joined[:60]!r}, which matches only {matcher.ratio():.0%} of the "
            f"text {text[:60]!r} (need {min_ratio:.0%})"
        )
    owner = [index for index, (piece, _) in enumerate(pieces) for _ in piece]
    target: list[int | None] = [None] * len(text)
    for a, b, size in matcher.get_matching_blocks():
        target[b : b + size] = owner[a : a + size]
    unknown = max((float(score) for _, score in pieces), default=0.0)
    units: list[ScoredUnit] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or target[i] != target[start]:
            key = target[start]
            units.append(ScoredUnit(text[start:i], unknown if key is None else float(pieces[key][1])))
            start = i
    return units


# Scorers share cached Llama instances (load_local_llama); reset/eval must not interleave.
_EVAL_LOCK = threading.Lock()


class LlamaCppScorer:
    """Self-information of each token under a local causal LM on llama.cpp.

    Token ``i`` scores ``-log softmax(logits[i-1])[x_i]`` (the correct shift:
    the logits after position ``i-1`` predict token ``i``). A token with
    nothing before it - the first token of a text scored without context -
    gets the maximum of its chunk. Texts longer than the window are scored in
    chunks of ``n_ctx`` tokens; each chunk after the first is conditioned on
    the last ``max_context_tokens`` tokens before it, as the first is on the
    tail of ``context``. Units are the model's tokens, detokenised.

    The model loads on the first :meth:`score`, not in the constructor.

    Args:
        llama: A ``llama_cpp.Llama`` built with ``logits_all=True``; defaults
            to the shipped SmolLM2-135M (``load_local_llama(logits_all=True)``).
        n_ctx: Window for the default model.
        max_context_tokens: Most tokens of preceding text the model sees.

    Example:
        >>> scorer = LlamaCppScorer()  # doctest: +SKIP
        >>> [u.text for u in scorer.score("Hello there")]  # doctest: +SKIP
        ['Hello', ' there']
    """

    def __init__(
        self, llama: llama_cpp.Llama | None = None, *, n_ctx: int = 1024, max_context_tokens: int = 256
    ) -> None:
        if not isinstance(n_ctx, int) or n_ctx < 2:
            raise InvalidInputError(f"n_ctx must be an int >= 2, got {describe(n_ctx)}")
        if not isinstance(max_context_tokens, int) or not 0 <= max_context_tokens < n_ctx:
            raise InvalidInputError(
                f"max_context_tokens must be an int in [0, n_ctx={n_ctx}), got {describe(max_context_tokens)}"
            )
        self._llama = llama
        self.n_ctx = n_ctx
        self.max_context_tokens = max_context_tokens
        self.name = f"llama.cpp:{LOCAL_MODEL_NAME}" if llama is None else f"llama.cpp:{type(llama).__name__}"

    @property
    def llama(self) -> llama_cpp.Llama:
        """The model, loaded on first access."""
        if self._llama is None:
            self._llama = load_local_llama(logits_all=True, n_ctx=self.n_ctx)
        if getattr(self._llama, "_logits_all", True) is False:
            raise InvalidInputError(
                "LlamaCppScorer needs a Llama built with logits_all=True; use load_local_llama(logits_all=True)"
            )
        return self._llama

    def _tokenize(self, text: str) -> list[int]:
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else []

    def _window(self, tokens: list[int], prefix: list[int]) -> np.ndarray:
        """Self-information of ``tokens`` evaluated after ``prefix`` in one model window."""
        llama = self.llama
        llama.reset()
        llama.eval(prefix + tokens)
        start = len(prefix)
        # Row r of llama.scores holds the logits after position r, i.e. the prediction for r+1.
        first_row = start - 1 if start else 0
        logits = np.asarray(llama.scores[first_row : start + len(tokens) - 1], dtype=np.float64)
        targets = np.asarray(tokens if start else tokens[1:], dtype=np.int64)
        peak = logits.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
        info = log_norm - logits[np.arange(len(targets)), targets]
        if start == 0:  # no predecessor: the chunk's max (log |V| for a lone token)
            head = info.max() if len(info) else math.log(llama.n_vocab())
            info = np.concatenate([[head], info])
        return info

    def score_tokens(self, text: str, context: str = "") -> list[tuple[int, float]]:
        """``(token id, self-information)`` for each model token of ``text``.

        Example:
            >>> LlamaCppScorer().score_tokens("a b")  # doctest: +SKIP
            [(64, 9.93), (291, 7.41)]
        """
        text = _check_text(text, "LlamaCppScorer.score_tokens")
        context = _check_text(context, "LlamaCppScorer.score_tokens context")
        with _EVAL_LOCK:
            tokens = self._tokenize(text)
            if not tokens:
                return []
            llama = self.llama
            # llama.cpp rounds its context up (to 256s) but the Python-side arrays keep the asked size.
            window = min(llama.n_ctx(), len(llama.scores), len(llama.input_ids))
            carry = self.max_context_tokens
            prefix = self._tokenize(context)[-carry:] if context and carry else []
            scores: list[float] = []
            pos = 0
            while pos < len(tokens):
                segment = tokens[pos : pos + window - len(prefix)]
                scores.extend(self._window(segment, prefix).tolist())
                pos += len(segment)
                prefix = tokens[max(0, pos - carry) : pos] if carry else []
            return list(zip(tokens, scores))

    def score(self, text: str, context: str = "") -> list[ScoredUnit]:
        """Units (detokenised model tokens) of ``text`` with their self-information."""
        scored = self.score_tokens(text, context)
        llama = self.llama
        pieces = merge_byte_pieces([(llama.detokenize([tok]), s) for tok, s in scored])
        return align_to_text(text, pieces)


_ECHO_INSTRUCTION = (
    "Repeat the user's message exactly, character for character, with nothing added or removed. "
    "Do not answer it."
)


class ChatLogprobScorer:
    """Surprisal from a LangChain chat model's ``logprobs`` (e.g. ``ChatOpenAI``).

    Chat APIs return log-probabilities only for tokens they generate, so the
    model is asked to restate the turn verbatim (with the conversation so far
    as context) and each restated token scores ``-logprob``. Copying is easy,
    so these scores are compressed compared with :class:`LlamaCppScorer`'s;
    they still rank what the model finds hard to reproduce. The call passes
    ``logprobs=True``; the scores are read from
    ``response_metadata["logprobs"]["content"]``.

    Args:
        chat_model: Any LangChain chat model whose provider returns logprobs.
        max_context_chars: Tail of the context shown to the model.

    Raises:
        ModelError: (from :meth:`score`) the call failed or returned no logprobs.

    Example:
        >>> from langchain_openai import ChatOpenAI  # doctest: +SKIP
        >>> ChatLogprobScorer(ChatOpenAI(model="gpt-4o-mini")).score("hi there")  # doctest: +SKIP
        [ScoredUnit(text='hi', score=0.01), ScoredUnit(text=' there', score=0.0)]
    """

    def __init__(self, chat_model: BaseChatModel, *, max_context_chars: int = 4000) -> None:
        if not hasattr(chat_model, "invoke"):
            raise InvalidTypeError(f"ChatLogprobScorer needs a LangChain chat model, got {describe(chat_model)}")
        self.chat_model = chat_model
        self.max_context_chars = max_context_chars
        model = getattr(chat_model, "model_name", None) or getattr(chat_model, "model", None)
        self.name = f"chat-logprobs:{type(chat_model).__name__}" + (f":{model}" if model else "")

    def score(self, text: str, context: str = "") -> list[ScoredUnit]:
        """Units of ``text`` scored by the chat model's logprobs for restating it."""
        from langchain_core.messages import HumanMessage, SystemMessage

        text = _check_text(text, "ChatLogprobScorer.score")
        context = _check_text(context, "ChatLogprobScorer.score context")
        if not text:
            return []
        system = _ECHO_INSTRUCTION
        if context:
            system += f"\n\nThe conversation so far (for context only):\n{context[-self.max_context_chars :]}"
        step = "ChatLogprobScorer.score (restate the turn with logprobs=True)"
        try:
            response = self.chat_model.invoke([SystemMessage(system), HumanMessage(text)], logprobs=True)
        except Exception as exc:  # provider errors vary; name the step for the caller
            raise ModelError(f"{step} failed: {type(exc).__name__}: {exc}") from exc
        content = _logprob_content(response)
        if not content:
            raise ModelError(
                f"{step}: {self.name} returned no logprobs in response_metadata['logprobs']; use a provider "
                "that returns them (e.g. ChatOpenAI), LlamaCppScorer (pip install 'ltm-agent[local]') "
                "or StatisticalScorer"
            )
        try:
            raw = [
                (bytes(item["bytes"]) if item.get("bytes") is not None else str(item["token"]).encode("utf-8"),
                 -float(item["logprob"]))
                for item in content
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelOutputError(f"{step}: malformed logprob entry ({exc}); expected token and logprob") from exc
        try:
            return align_to_text(text, merge_byte_pieces(raw), min_ratio=0.6)
        except ModelOutputError as exc:
            raise ModelOutputError(f"{step}: the model did not restate the turn: {exc}") from exc


def _logprob_content(response: Any) -> list[dict[str, Any]]:
    metadata = getattr(response, "response_metadata", None) or {}
    logprobs = metadata.get("logprobs") if isinstance(metadata, dict) else None
    if isinstance(logprobs, dict):
        logprobs = logprobs.get("content")
    return [item for item in logprobs or [] if isinstance(item, dict)]


_WORD = re.compile(r"\s*(?:\w+(?:['’]\w+)*|[^\w\s])|\s+")


class StatisticalScorer:
    """The statistical fallback, not entropy from an LM: unigram self-information of words.

    Each word (or punctuation mark), with its leading whitespace, scores
    ``-log((c(w) + 1) / (N + V))``: ``c(w)`` is how often the lowercased word
    was seen before (running counts over everything this scorer has scored,
    including earlier in the same text), ``N`` the words seen so far and
    ``V`` a nominal vocabulary size (add-one smoothing). A word that repeats
    scores lower than a rare one. Whitespace-only pieces score 0. The scorer
    is deterministic and stateful; ``context`` is ignored (the counts are its
    context).

    Args:
        vocabulary_size: The nominal ``V`` of the smoothing.

    Example:
        >>> units = StatisticalScorer().score("the cat saw the dog")
        >>> [u.text for u in units]
        ['the', ' cat', ' saw', ' the', ' dog']
        >>> units[3].score < units[4].score
        True
    """

    name = "statistical-unigram-fallback"

    def __init__(self, vocabulary_size: int = 10_000) -> None:
        if not isinstance(vocabulary_size, int) or vocabulary_size < 1:
            raise InvalidInputError(f"vocabulary_size must be a positive int, got {describe(vocabulary_size)}")
        self.vocabulary_size = vocabulary_size
        self._counts: dict[str, int] = {}
        self._total = 0
        self._lock = threading.Lock()

    def score(self, text: str, context: str = "") -> list[ScoredUnit]:
        """Units (words with their leading whitespace) with unigram self-information."""
        text = _check_text(text, "StatisticalScorer.score")
        units: list[ScoredUnit] = []
        with self._lock:
            for match in _WORD.finditer(text):
                piece = match.group()
                key = piece.strip().lower()
                if not key:
                    units.append(ScoredUnit(piece, 0.0))
                    continue
                count = self._counts.get(key, 0)
                units.append(ScoredUnit(piece, -math.log((count + 1) / (self._total + self.vocabulary_size))))
                self._counts[key] = count + 1
                self._total += 1
        return units

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable counts, for :meth:`from_dict`."""
        with self._lock:
            return {"vocabulary_size": self.vocabulary_size, "counts": dict(self._counts), "total": self._total}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StatisticalScorer:
        """Rebuild a scorer saved with :meth:`to_dict`."""
        scorer = cls(int(data.get("vocabulary_size", 10_000)))
        scorer._counts = {str(k): int(v) for k, v in dict(data.get("counts", {})).items()}
        scorer._total = int(data.get("total", sum(scorer._counts.values())))
        return scorer


def default_scorer() -> TokenScorer:
    """:class:`LlamaCppScorer` when the ``[local]`` extra is installed, else :class:`StatisticalScorer`.

    Example:
        >>> default_scorer().name in {"statistical-unigram-fallback", "llama.cpp:SmolLM2-135M-Instruct-Q4_1"}
        True
    """
    return LlamaCppScorer() if local_model_available() else StatisticalScorer()
