"""The queue manager of a paged context: warning, flush, recursive summary.

A :class:`QueueManager` owns the FIFO message queue and the summary at its
head, and keeps ``system + summary + queue`` within the window:

* **Warning** - when usage reaches ``warning x window`` a memory-pressure
  notice is queued, once per crossing: it re-arms only after usage falls back
  below the threshold. A notice never goes between a tool call and its results.
* **Flush** - when usage exceeds ``flush x window`` the oldest messages are
  evicted: the oldest ``evict_fraction`` of queue tokens, keeping the last
  ``keep_recent`` messages, cutting only between groups (an assistant message
  and the tool results that answer it are one group). The evicted messages
  and the previous summary are folded into a new summary.
* **Never over the window** - if the kept messages and summary still overflow,
  more groups are evicted (the last one never is), oversized kept messages are
  cut in context (their full text is in recall storage), and the summary is
  re-summarised harder or cut to the room left.

Core types: :class:`QueueManager`, :class:`QueueSettings`, :class:`PagingEvents`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ltm_agent.errors import InvalidInputError, InvalidTypeError, describe
from ltm_agent.paging.messages import MESSAGE_OVERHEAD, PagedMessage, message_tokens
from ltm_agent.paging.summary import FALLBACK_HEADER, ExtractiveSummarizer, Summarizer
from ltm_agent.tokens import count_tokens, encoding, truncate_tokens

__all__ = ["PagingEvents", "QueueManager", "QueueSettings"]

logger = logging.getLogger("ltm_agent.paging")

_SUMMARY_FLOOR = 32  # summary tokens a flush tries to leave room for
_CUT_MARK = " [… cut to fit the context window; the full text is in recall storage (conversation_search)]"
_SUMMARY_CUT = "[… older part of the summary cut to fit the context window]\n"
_NOTICE = (
    "[Memory pressure notice] Your context is {pct}% full ({used:,} of {window:,} tokens). Older "
    "messages will soon be evicted and only a summary of them will stay in context. Save anything "
    "important now: core_memory_append or core_memory_replace for key facts about the user or "
    "yourself, archival_memory_insert for details."
)


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Window and thresholds of a queue manager (validated by :meth:`checked`)."""

    window_tokens: int
    warning: float = 0.7
    flush: float = 1.0
    keep_recent: int = 3
    evict_fraction: float = 0.75
    summary_fraction: float = 0.2

    @classmethod
    def checked(
        cls,
        window_tokens: object,
        warning: object,
        flush: object,
        keep_recent: object,
        evict_fraction: object,
        summary_fraction: object = 0.2,
    ) -> QueueSettings:
        """Settings after checking every value; raises :class:`InvalidInputError` with the rule."""
        if isinstance(window_tokens, bool) or not isinstance(window_tokens, int) or window_tokens < 128:
            raise InvalidInputError(f"window_tokens must be an int >= 128, got {describe(window_tokens)}")
        fractions = (
            ("warning", warning),
            ("flush", flush),
            ("evict_fraction", evict_fraction),
            ("summary_fraction", summary_fraction),
        )
        for name, value in fractions:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise InvalidInputError(f"{name} must be a fraction in (0, 1], got {describe(value)}")
        if not warning < flush:  # type: ignore[operator]
            raise InvalidInputError(
                f"warning ({warning}) must be below flush ({flush}): the notice has to come before eviction"
            )
        if isinstance(keep_recent, bool) or not isinstance(keep_recent, int) or keep_recent < 0:
            raise InvalidInputError(f"keep_recent must be an int >= 0, got {describe(keep_recent)}")
        return cls(
            window_tokens,
            float(warning),  # type: ignore[arg-type]
            float(flush),  # type: ignore[arg-type]
            keep_recent,
            float(evict_fraction),  # type: ignore[arg-type]
            float(summary_fraction),  # type: ignore[arg-type]
        )

    @property
    def warn_limit(self) -> float:
        return self.warning * self.window_tokens

    @property
    def flush_limit(self) -> float:
        return self.flush * self.window_tokens


@dataclass(frozen=True, slots=True)
class PagingEvents:
    """What one append (or core-memory edit) did to the main context.

    Attributes:
        message_id: Recall-storage id of the appended message (``None`` for edits).
        tokens_before: Context tokens before the message was added.
        tokens_peak: Highest context tokens during the call (before any flush).
        tokens_after: Context tokens when the call returned (always <= ``window_tokens``).
        window_tokens: The window.
        warning: A memory-pressure notice was inserted.
        flushed: Queue entries evicted (conversation messages and notices).
        evicted_ids: Recall-storage ids of the evicted conversation messages.
        summary_fallback: Why the summarizer failed, when the extractive
            fallback summarised instead; ``None`` otherwise.
        summary_cut: The summary was re-summarised harder or cut to fit.
        cut_messages: Kept messages whose in-context text was cut to fit.
    """

    message_id: str | None
    tokens_before: int
    tokens_peak: int
    tokens_after: int
    window_tokens: int
    warning: bool = False
    flushed: int = 0
    evicted_ids: tuple[str, ...] = ()
    summary_fallback: str | None = None
    summary_cut: bool = False
    cut_messages: int = 0


@dataclass(slots=True)
class _Log:
    message_id: str | None
    tokens_before: int
    tokens_peak: int = 0
    warning: bool = False
    flushed: int = 0
    evicted_ids: list[str] = field(default_factory=list)
    summary_fallback: str | None = None
    summary_cut: bool = False
    cut_messages: int = 0

    def freeze(self, tokens_after: int, window: int) -> PagingEvents:
        return PagingEvents(
            self.message_id,
            self.tokens_before,
            max(self.tokens_peak, tokens_after),
            tokens_after,
            window,
            self.warning,
            self.flushed,
            tuple(self.evicted_ids),
            self.summary_fallback,
            self.summary_cut,
            self.cut_messages,
        )


class QueueManager:
    """Holds the queue and summary of one context and keeps them within the window.

    Args:
        settings: Window and thresholds.
        summarizer: Folds evicted messages into the summary.
        system_tokens: Returns the current tokens of the system message.
    """

    def __init__(self, settings: QueueSettings, summarizer: Summarizer, *, system_tokens: Callable[[], int]) -> None:
        if not callable(getattr(summarizer, "summarize", None)):
            raise InvalidTypeError(f"summarizer needs a summarize(previous_summary, messages) method, got {describe(summarizer)}")
        self.settings = settings
        self.summarizer = summarizer
        self.fallback = ExtractiveSummarizer()
        self._takes_budget = _accepts_max_tokens(summarizer.summarize)
        self.messages: list[PagedMessage] = []
        self.sizes: list[int] = []
        self.summary = ""
        self.evicted = 0
        self.warned = False
        self._system_tokens = system_tokens
        self._head_cache: int | None = None

    def restore(self, messages: Sequence[PagedMessage], summary: str, evicted: int, warned: bool) -> None:
        """Load a saved queue (sizes are recounted)."""
        self.messages = list(messages)
        self.sizes = [message_tokens(m) for m in self.messages]
        self.summary, self.evicted, self.warned = summary, evicted, warned
        self._head_cache = None

    # -- measuring ---------------------------------------------------------

    def summary_text(self, evicted: int | None = None, summary: str | None = None) -> str | None:
        """The summary message's text, or ``None`` when nothing was ever evicted."""
        evicted = self.evicted if evicted is None else evicted
        summary = self.summary if summary is None else summary
        if evicted == 0 and not summary:
            return None
        noun = "message" if evicted == 1 else "messages"
        head = (
            f"[Summary of earlier conversation] {evicted} earlier {noun} left your context to make room; "
            f"all of them are still in recall storage (use conversation_search)."
        )
        return f"{head}\nSummary:\n{summary}" if summary else head

    def summary_message(self, now: datetime) -> PagedMessage | None:
        """The summary as a ``user`` message (MemGPT's convention), or ``None``."""
        text = self.summary_text()
        return None if text is None else PagedMessage(role="user", content=text, time=now)

    def _head_tokens(self, evicted: int | None = None, summary: str | None = None) -> int:
        text = self.summary_text(evicted, summary)
        return 0 if text is None else count_tokens(text) + MESSAGE_OVERHEAD

    def head_tokens(self) -> int:
        if self._head_cache is None:
            self._head_cache = self._head_tokens()
        return self._head_cache

    def total(self) -> int:
        """Tokens of system + summary + queue."""
        return self._system_tokens() + self.head_tokens() + sum(self.sizes)

    # -- the queue manager -------------------------------------------------

    def push(self, message: PagedMessage) -> PagingEvents:
        """Queue a message, then warn, flush and enforce the window as needed.

        A tool result whose call is no longer in the queue (it alone overflowed
        the window and was evicted) is queued as a ``user`` message that says
        so, since chat APIs reject a tool message without its call.
        """
        log = _Log(message.id, self.total())
        if message.role == "tool" and not any(
            call.id == message.tool_call_id for m in self.messages for call in m.tool_calls
        ):
            content = f"[Result of tool call {message.tool_call_id}; the call itself left your context]\n{message.content}"
            message = message.model_copy(update={"role": "user", "content": content, "tool_call_id": None})
        self._add(message)
        log.tokens_peak = self.total()
        return self._manage(log, message.time)

    def enforce_window(self) -> PagingEvents:
        """Run the queue manager without a new message (after core memory grew)."""
        return self._manage(_Log(None, self.total()), None)

    def _manage(self, log: _Log, when: datetime | None) -> PagingEvents:
        s = self.settings
        if self.total() > s.flush_limit:
            self._flush(log)
        if not self.warned and self.total() >= s.warn_limit and not self._pending_calls():
            used = self.total()
            text = _NOTICE.format(pct=round(100 * used / s.window_tokens), used=used, window=s.window_tokens)
            stamp = when or (self.messages[-1].time if self.messages else None)
            if stamp is not None:
                self._add(PagedMessage(role="user", content=text, time=stamp, notice=True))
                self.warned = log.warning = True
                log.tokens_peak = max(log.tokens_peak, self.total())
        if self.total() > s.window_tokens:
            self._flush(log)
        if self.total() < s.warn_limit:
            self.warned = False
        return log.freeze(self.total(), s.window_tokens)

    def _add(self, message: PagedMessage) -> None:
        self.messages.append(message)
        self.sizes.append(message_tokens(message))

    def _pending_calls(self) -> bool:
        """True while the last assistant message has tool calls without results."""
        answered: set[str | None] = set()
        for message in reversed(self.messages):
            if message.role == "tool":
                answered.add(message.tool_call_id)
                continue
            return message.role == "assistant" and any(c.id not in answered for c in message.tool_calls)
        return False

    def _flush(self, log: _Log) -> None:
        q, sizes, s = self.messages, self.sizes, self.settings
        system = self._system_tokens()
        prefix = [0]
        for size in sizes:
            prefix.append(prefix[-1] + size)
        # Cut only where a group starts: a tool result stays with the call it answers.
        cuts = [i for i, m in enumerate(q) if i > 0 and m.role != "tool"]
        allowed = [c for c in cuts if c <= len(q) - s.keep_recent]
        target = s.evict_fraction * prefix[-1]
        cut = next((c for c in allowed if prefix[c] >= target), allowed[-1] if allowed else 0)

        def frame(c: int) -> int:  # summary message tokens with an empty summary
            return self._head_tokens(self.evicted + sum(not m.notice for m in q[:c]), "")

        # Hard rule: the window. Evict further groups (never the last) until the rest fits.
        while system + frame(cut) + _SUMMARY_FLOOR + prefix[-1] - prefix[cut] > s.window_tokens:
            later = [c for c in cuts if c > cut]
            if not later:
                break
            cut = later[0]
        kept, kept_sizes = q[cut:], sizes[cut:]
        if system + frame(cut) + sum(kept_sizes) > s.window_tokens:
            # Messages must be cut anyway: cut them to below the warning threshold, so the
            # context is not left full (no notice, room for the next message).
            used = system + frame(cut) + sum(kept_sizes)
            shrunk = _shrink_messages(kept, kept_sizes, used - int(s.warn_limit) + 1) or _shrink_messages(
                kept, kept_sizes, used - s.window_tokens
            )
            if shrunk is None:  # not even cut messages fit: evict everything (it is all in recall storage)
                cut, kept, kept_sizes = len(q), [], []
            else:
                kept, kept_sizes, log.cut_messages = shrunk[0], shrunk[1], log.cut_messages + shrunk[2]
        evicted = q[:cut]
        conversation = [m for m in evicted if not m.notice]
        # The summary may take what is left, but at most summary_fraction of the window,
        # so a flush leaves headroom instead of flushing again on the next message.
        head_room = min(
            s.window_tokens - system - sum(kept_sizes), frame(cut) + int(s.summary_fraction * s.window_tokens)
        )
        budget = max(0, head_room - frame(cut) - 8)
        summary = self._summarize(conversation, budget, log) if conversation else self.summary
        self.messages, self.sizes = list(kept), list(kept_sizes)
        self.evicted += len(conversation)
        log.flushed += len(evicted)
        log.evicted_ids.extend(m.id for m in conversation if m.id)
        self._fit_summary(summary, head_room, log)

    def _summarize(self, messages: list[PagedMessage], budget: int, log: _Log) -> str:
        try:
            if self._takes_budget:
                text = self.summarizer.summarize(self.summary, messages, max_tokens=budget)  # type: ignore[call-arg]
            else:
                text = self.summarizer.summarize(self.summary, messages)
            if not isinstance(text, str):
                raise InvalidTypeError(f"summarize() must return str, got {describe(text)}")
        except Exception as exc:  # noqa: BLE001 - the window must hold even when the model is down
            log.summary_fallback = f"{type(exc).__name__}: {exc}"
            logger.warning("paging: summarizer failed (%s); used the extractive fallback", log.summary_fallback)
            text = self.fallback.summarize(self.summary, messages, max_tokens=budget)
        return text.strip()

    def _fit_summary(self, summary: str, room: int, log: _Log) -> None:
        """Set the summary, re-summarising harder or cutting it until the head fits ``room``."""
        self.summary, self._head_cache = summary, None
        if self.head_tokens() <= room:
            return
        log.summary_cut = True
        if summary.startswith(FALLBACK_HEADER):  # extractive: drop oldest lines, counting them
            avail = room - self._head_tokens(self.evicted, "") - 4
            self.summary, self._head_cache = self.fallback.summarize(summary, [], max_tokens=avail), None
            if self.head_tokens() <= room:
                return
        # Keep the newest part of the summary (the end), behind a marker.
        tokens = encoding().encode(summary, disallowed_special=())
        low, high = 0, len(tokens)
        while low < high:  # largest tail that fits
            mid = (low + high + 1) // 2
            if self._head_tokens(self.evicted, _tail(tokens, mid)) <= room:
                low = mid
            else:
                high = mid - 1
        text = _tail(tokens, low)
        while text and self._head_tokens(self.evicted, text) > room:
            low -= 1
            text = _tail(tokens, low)
        self.summary, self._head_cache = text, None


def _accepts_max_tokens(function: Callable[..., object]) -> bool:
    """True when a summarize method takes a ``max_tokens`` keyword (the context then passes its budget)."""
    try:
        return "max_tokens" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _tail(tokens: list[int], k: int) -> str:
    if k <= 0:
        return ""
    return _SUMMARY_CUT + encoding().decode(tokens[-k:]).lstrip()


def _shrink_messages(
    messages: list[PagedMessage], sizes: list[int], overflow: int
) -> tuple[list[PagedMessage], list[int], int] | None:
    """Cut the largest messages' in-context text until ``overflow`` tokens are freed, or ``None``."""
    messages, sizes, count = list(messages), list(sizes), 0
    for i in sorted(range(len(messages)), key=lambda j: -sizes[j]):
        if overflow <= 0:
            break
        smaller = _shrink(messages[i], sizes[i] - overflow)
        new_size = message_tokens(smaller)
        if new_size < sizes[i]:
            overflow -= sizes[i] - new_size
            messages[i], sizes[i], count = smaller, new_size, count + 1
    return (messages, sizes, count) if overflow <= 0 else None


def _shrink(message: PagedMessage, target: int) -> PagedMessage:
    """The message with its content cut (and marked) to at most ``target`` tokens, or as small as it gets."""
    base = message.content.removesuffix(_CUT_MARK) if message.cut else message.content
    fixed = message_tokens(message.model_copy(update={"content": ""})) + count_tokens(_CUT_MARK)
    if fixed > target and message.tool_calls:  # the call happened; its arguments can go from context
        calls = tuple(call.model_copy(update={"args": {"cut": "arguments removed to fit the context window"}}) for call in message.tool_calls)
        message = message.model_copy(update={"tool_calls": calls})
        fixed = message_tokens(message.model_copy(update={"content": ""})) + count_tokens(_CUT_MARK)
    room = max(0, target - fixed)
    while True:
        cut = message.model_copy(update={"content": truncate_tokens(base, room).rstrip() + _CUT_MARK, "cut": True})
        excess = message_tokens(cut) - target
        if excess <= 0 or room == 0:
            return cut
        room = max(0, room - excess)
