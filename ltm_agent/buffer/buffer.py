"""The SirLLM entropy-decay buffer (Yao et al., ACL 2024; docs/buffer.md), at text level.

The buffer keeps, within a token budget, the dialogue units (tokens or short
phrases) that were most surprising when they were said, and decays every
stored score each turn so old key units eventually give way to new ones. It
renders what it kept in source order with elision marks, for a prompt.

Each :meth:`EntropyDecayBuffer.update`:

1. multiplies every stored score by ``decay``;
2. scores the new turn (conditioned on the current rendering followed by the
   turn's ``role:`` prefix, as it will be rendered) and appends its units
   undecayed;
3. if the rendering is over budget, keeps the sinks (the first ``sink_units``
   units ever seen), then the top-scoring units, then fills the space left
   with the most recent units;
4. keeps the kept units in their original order.

Core types: :class:`EntropyDecayBuffer`, :class:`BufferedUnit`, :class:`BufferStats`.
"""

from __future__ import annotations

import math
from itertools import groupby
from numbers import Integral, Real
from typing import Any, Literal, NamedTuple, Sequence

from ltm_agent.buffer.scorers import ScoredUnit, StatisticalScorer, TokenScorer, default_scorer
from ltm_agent.errors import (
    DataFormatError,
    EmptyTextError,
    InvalidInputError,
    InvalidTypeError,
    ModelOutputError,
    describe,
)
from ltm_agent.tokens import count_tokens

__all__ = ["ELISION", "BufferStats", "BufferedUnit", "EntropyDecayBuffer", "group_phrases"]

ELISION = "…"
"""Marks text left out between (or around) kept units."""
_STATE_FORMAT = "ltm_agent.EntropyDecayBuffer/1"
_FILL_ATTEMPTS = 32  # exact re-renders tried while filling leftover space with recent units
_MARK_TOKENS = 4  # a unit that closes a gap also removes its elision mark


class BufferedUnit(NamedTuple):
    """A unit held by the buffer."""

    text: str
    """The unit's text, verbatim."""
    score: float
    """Its score after the decays applied so far."""
    seq: int
    """Position among all units ever seen (0 = the first sink)."""
    turn: int
    """Index of the turn it came from."""
    index: int
    """Position inside that turn."""


class BufferStats(NamedTuple):
    """Counters of an :class:`EntropyDecayBuffer`."""

    turns_seen: int
    units_seen: int
    units_kept: int
    units_dropped: int
    rendered_tokens: int
    """cl100k tokens of :meth:`EntropyDecayBuffer.render` after the last update."""


def group_phrases(units: Sequence[ScoredUnit], max_words: int = 4) -> list[ScoredUnit]:
    """Group consecutive units into short phrases; a phrase scores the max of its units.

    A phrase ends at a line break, after clause punctuation followed by
    whitespace, or before the word that would make it longer than
    ``max_words`` words. Phrases only break where a new word starts, so
    sub-word tokens stay with their word.

    Example:
        >>> units = StatisticalScorer().score("one two three four five. six")
        >>> [p.text for p in group_phrases(units)]
        ['one two three four', ' five.', ' six']
    """
    phrases: list[ScoredUnit] = []
    text, score, words = "", -math.inf, 0
    for unit in units:
        starts_word = bool(unit.text.strip()) and (unit.text[:1].isspace() or not text.strip())
        if text and (
            text.endswith("\n")
            or (unit.text[:1].isspace() and text.rstrip(" \t")[-1:] in {".", ",", ";", ":", "!", "?", ELISION})
            or (starts_word and words >= max_words)
        ):
            phrases.append(ScoredUnit(text, score))
            text, score, words = "", -math.inf, 0
        words += starts_word
        text, score = text + unit.text, max(score, unit.score)
    if text:
        phrases.append(ScoredUnit(text, score))
    return phrases


class EntropyDecayBuffer:
    """Bounded dialogue memory that keeps the most surprising units, with decay (SirLLM).

    Args:
        budget_tokens: Most cl100k tokens :meth:`render` may return.
        decay: Factor applied to every stored score each turn, in ``(0, 1]``
            (SirLLM: 0.7 DailyDialog, 1.0 Grocery, 0.9 Rock-Paper-Scissors).
        sink_units: The first units ever seen, always kept (SirLLM: 4),
            budget permitting.
        unit: ``"token"`` (the scorer's tokens) or ``"phrase"`` (groups of
            up to ~4 words scoring their max token).
        scorer: A :class:`TokenScorer`; default :func:`default_scorer`,
            chosen on the first update (the constructor does no I/O).

    Raises:
        InvalidInputError: A budget <= 0, decay outside ``(0, 1]``, negative
            ``sink_units`` or an unknown ``unit``.
        InvalidTypeError: An argument of the wrong type.

    Example:
        >>> buf = EntropyDecayBuffer(40, decay=0.9, scorer=StatisticalScorer())
        >>> for turn in ["I keep my spare key under the blue flowerpot.", "ok", "ok", "ok"]:
        ...     _ = buf.update(turn)
        >>> count_tokens(buf.render()) <= 40
        True
        >>> buf.stats.turns_seen
        4
    """

    def __init__(
        self,
        budget_tokens: int,
        decay: float = 0.9,
        sink_units: int = 4,
        unit: Literal["token", "phrase"] = "token",
        scorer: TokenScorer | None = None,
    ) -> None:
        for name, value in (("budget_tokens", budget_tokens), ("sink_units", sink_units)):
            if not isinstance(value, Integral) or isinstance(value, bool):
                raise InvalidTypeError(f"{name} must be an int, got {describe(value)}")
        if budget_tokens <= 0:
            raise InvalidInputError(f"budget_tokens must be > 0, got {describe(budget_tokens)}; pass e.g. 512")
        if sink_units < 0:
            raise InvalidInputError(f"sink_units must be >= 0, got {describe(sink_units)}; SirLLM uses 4")
        if not isinstance(decay, Real) or isinstance(decay, bool):
            raise InvalidTypeError(f"decay must be a number in (0, 1], got {describe(decay)}")
        if not (0.0 < decay <= 1.0):
            raise InvalidInputError(f"decay must be in (0, 1], got {describe(decay)}; 1.0 disables decay")
        if unit not in ("token", "phrase"):
            raise InvalidInputError(f"unit must be 'token' or 'phrase', got {describe(unit)}")
        if scorer is not None and not callable(getattr(scorer, "score", None)):
            raise InvalidTypeError(f"scorer must have a score(text, context) method, got {describe(scorer)}")
        self.budget_tokens = int(budget_tokens)
        self.decay = float(decay)
        self.sink_units = int(sink_units)
        self.unit: Literal["token", "phrase"] = unit
        self._scorer = scorer
        self._units: list[BufferedUnit] = []
        self._turns: list[tuple[str, int]] = []  # (role, number of units) per turn seen
        self._units_seen = 0
        self._dropped = 0
        self._rendered_tokens = 0

    @property
    def scorer(self) -> TokenScorer:
        """The scorer in use (the default is chosen on first access)."""
        if self._scorer is None:
            self._scorer = default_scorer()
        return self._scorer

    @property
    def units(self) -> tuple[BufferedUnit, ...]:
        """The kept units, in source order, with their current (decayed) scores."""
        return tuple(self._units)

    @property
    def stats(self) -> BufferStats:
        """Turns and units seen, kept and dropped, and the rendered size."""
        return BufferStats(len(self._turns), self._units_seen, len(self._units), self._dropped, self._rendered_tokens)

    def update(self, turn: str, role: str = "user") -> BufferStats:
        """Add one dialogue turn: decay, score and append it, then evict down to the budget.

        Raises:
            InvalidTypeError: ``turn`` or ``role`` is not a str.
            EmptyTextError: ``turn`` is empty or only whitespace.
            InvalidInputError: ``role`` is empty or contains a line break.
            ModelOutputError: The scorer's units do not spell the turn.
        """
        if not isinstance(turn, str):
            raise InvalidTypeError(f"update needs the turn as str, got {describe(turn)}")
        if not turn.strip():
            raise EmptyTextError(f"update needs a non-empty turn, got {describe(turn)}")
        if not isinstance(role, str):
            raise InvalidTypeError(f"role must be a str such as 'user', got {describe(role)}")
        if not role.strip() or "\n" in role:
            raise InvalidInputError(f"role must be a non-empty single-line str such as 'user', got {describe(role)}")
        scored = self._score(turn, role)  # before any mutation: a failing scorer leaves the buffer as it was
        if self.decay != 1.0:
            self._units = [u._replace(score=u.score * self.decay) for u in self._units]
        turn_index = len(self._turns)
        self._turns.append((role, len(scored)))
        start = self._units_seen
        candidates = self._units + [
            BufferedUnit(u.text, u.score, start + i, turn_index, i) for i, u in enumerate(scored)
        ]
        self._units_seen += len(scored)
        tokens = count_tokens(self._render(candidates))
        if tokens > self.budget_tokens:
            kept = self._select(candidates)
            self._dropped += len(candidates) - len(kept)
            candidates, tokens = kept, count_tokens(self._render(kept))
        self._units, self._rendered_tokens = candidates, tokens
        return self.stats

    def _score(self, turn: str, role: str) -> list[ScoredUnit]:
        scorer = self.scorer
        # Condition on what precedes the turn in the rendering (SirLLM: the kept cache). The space
        # after "role:" travels with the turn, as BPE tokenizers attach it to the next word; a
        # context ending in a bare space makes the turn's first token look spuriously surprising.
        rendered = self.render()
        context = f"{rendered}\n{role}:" if rendered else f"{role}:"
        units = [ScoredUnit(u.text, float(u.score)) for u in scorer.score(" " + turn, context)]
        if units and units[0].text.startswith(" "):
            units[0] = units[0]._replace(text=units[0].text[1:])
            units = [u for u in units[:1] if u.text] + units[1:]
        if "".join(u.text for u in units) != turn:
            raise ModelOutputError(
                f"scorer {scorer.name!r} returned units that do not spell the turn {turn[:60]!r}; "
                "a TokenScorer's units must concatenate to the input exactly"
            )
        if not all(math.isfinite(u.score) for u in units):
            raise ModelOutputError(f"scorer {scorer.name!r} returned a non-finite score for {turn[:60]!r}")
        return group_phrases(units) if self.unit == "phrase" else units

    def _fits(self, units: list[BufferedUnit]) -> tuple[bool, int]:
        tokens = count_tokens(self._render(sorted(units, key=lambda u: u.seq)))
        return tokens <= self.budget_tokens, tokens

    def _select(self, candidates: list[BufferedUnit]) -> list[BufferedUnit]:
        """Sinks, then top scores, then the newest, checked against the exact rendered size."""
        sinks = [u for u in candidates if u.seq < self.sink_units]
        ranked = sorted((u for u in candidates if u.seq >= self.sink_units), key=lambda u: (-u.score, -u.seq))
        priority = sinks + ranked
        # Longest prefix of the priority order that fits: lo always fits, hi never does.
        lo, hi = 0, len(priority)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._fits(priority[:mid])[0]:
                lo = mid
            else:
                hi = mid
        kept = priority[:lo]
        slack = self.budget_tokens - self._fits(kept)[1]
        attempts = 0
        for unit in sorted(priority[lo:], key=lambda u: -u.seq):
            if slack <= 0 or attempts >= _FILL_ATTEMPTS:
                break
            if count_tokens(unit.text) > slack + _MARK_TOKENS:
                continue
            attempts += 1
            fits, tokens = self._fits(kept + [unit])
            if fits:
                kept.append(unit)
                slack = self.budget_tokens - tokens
        return sorted(kept, key=lambda u: u.seq)

    def render(self) -> str:
        """The kept units in source order, one ``role: text`` line per turn, gaps marked ``…``.

        Inside a turn, non-adjacent kept runs are joined by `` … ``; a turn
        cut at its start or end shows ``…`` there; whole turns left out show
        as a line ``…``. Never longer than ``budget_tokens`` cl100k tokens.
        """
        return self._render(self._units)

    def _render(self, units: list[BufferedUnit]) -> str:
        lines: list[str] = []
        previous = -1
        for turn, group_iter in groupby(units, key=lambda u: u.turn):
            group = list(group_iter)
            if turn > previous + 1:
                lines.append(ELISION)
            role, size = self._turns[turn]
            runs: list[str] = []
            run = group[0].text
            for before, unit in zip(group, group[1:]):
                if unit.index == before.index + 1:
                    run += unit.text
                else:
                    runs.append(run)
                    run = unit.text
            runs.append(run)
            body = f" {ELISION} ".join(r.strip() for r in runs if r.strip()) or ELISION
            if group[0].index > 0 and not body.startswith(ELISION):
                body = f"{ELISION} {body}"
            if group[-1].index < size - 1 and not body.endswith(ELISION):
                body = f"{body} {ELISION}"
            lines.append(f"{role}: {body}")
            previous = turn
        if previous < len(self._turns) - 1:
            lines.append(ELISION)
        return "\n".join(lines)

    def state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (for LangGraph state or a store); see :meth:`from_state`.

        A :class:`StatisticalScorer`'s running counts are included so a
        restored buffer scores the next turn as the original would.
        """
        scorer_state = None
        if self._scorer is not None:
            saved = self._scorer.to_dict() if isinstance(self._scorer, StatisticalScorer) else None
            scorer_state = {"name": self._scorer.name, "state": saved}
        return {
            "format": _STATE_FORMAT,
            "budget_tokens": self.budget_tokens,
            "decay": self.decay,
            "sink_units": self.sink_units,
            "unit": self.unit,
            "turns": [[role, size] for role, size in self._turns],
            "units": [[u.text, u.score, u.seq, u.turn, u.index] for u in self._units],
            "units_seen": self._units_seen,
            "units_dropped": self._dropped,
            "rendered_tokens": self._rendered_tokens,
            "scorer": scorer_state,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], scorer: TokenScorer | None = None) -> EntropyDecayBuffer:
        """Rebuild a buffer from :meth:`state`.

        Args:
            state: The snapshot (a dict, e.g. after a JSON round trip).
            scorer: Scorer for later turns. When omitted, a saved
                :class:`StatisticalScorer` is restored with its counts;
                otherwise :func:`default_scorer` is used. A passed scorer is
                never modified.

        Raises:
            DataFormatError: ``state`` is not a snapshot of this format.

        Example:
            >>> buf = EntropyDecayBuffer(30, scorer=StatisticalScorer())
            >>> _ = buf.update("hello there")
            >>> EntropyDecayBuffer.from_state(buf.state()).render() == buf.render()
            True
        """
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise DataFormatError(
                f"not an EntropyDecayBuffer state (format {_STATE_FORMAT!r}): {describe(state)}; "
                "pass the dict returned by EntropyDecayBuffer.state()"
            )
        try:
            saved = state.get("scorer") or {}
            if scorer is None and saved.get("name") == StatisticalScorer.name and saved.get("state") is not None:
                scorer = StatisticalScorer.from_dict(saved["state"])
            buffer = cls(
                int(state["budget_tokens"]), float(state["decay"]), int(state["sink_units"]), state["unit"], scorer
            )
            buffer._turns = [(str(role), int(size)) for role, size in state["turns"]]
            buffer._units = [
                BufferedUnit(str(text), float(score), int(seq), int(turn), int(index))
                for text, score, seq, turn, index in state["units"]
            ]
            buffer._units_seen = int(state["units_seen"])
            buffer._dropped = int(state["units_dropped"])
            buffer._rendered_tokens = int(state["rendered_tokens"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataFormatError(f"broken EntropyDecayBuffer state: {type(exc).__name__}: {exc}") from exc
        if any(u.turn >= len(buffer._turns) for u in buffer._units):
            raise DataFormatError("broken EntropyDecayBuffer state: a unit refers to a turn that is not recorded")
        return buffer
