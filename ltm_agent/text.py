"""Text clipping, in one place: for error messages, previews and bounded keys.

Core functions: :func:`clip`, :func:`preview`.
"""

from __future__ import annotations

__all__ = ["clip", "preview"]


def clip(text: str, limit: int, *, mark: str = "...", at_word: bool = False) -> str:
    """``text`` cut to at most ``limit`` characters, ending with ``mark`` when it was cut.

    With ``at_word`` the cut falls on the last space before the limit (and no mark is added
    when ``mark`` is empty), so a key never ends in half a word.

    Example:
        >>> clip("a long sentence", 10)
        'a long ...'
        >>> clip("a long sentence", 10, mark="", at_word=True)
        'a long'
    """
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(mark), 0)]
    if at_word and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut + mark


def preview(text: str, limit: int = 80) -> str:
    """``repr`` of ``text`` clipped to ``limit`` characters, for messages that quote a value.

    Example:
        >>> preview("x" * 100, 10)
        "'xxxxxxx...'"
    """
    return repr(clip(text, limit))
