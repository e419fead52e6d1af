"""Token counting with tiktoken's cl100k_base, offline.

tiktoken downloads its BPE files on first use unless ``TIKTOKEN_CACHE_DIR``
points at a folder that has them. llama-index-core (a dependency) ships the
cl100k and o200k files, so we point there when the user has not set the
variable. Nothing is loaded at import time.

Core functions: :func:`count_tokens`, :func:`chunk_text`, :func:`truncate_tokens`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from ltm_agent.errors import InvalidInputError, InvalidTypeError, describe

if TYPE_CHECKING:
    import tiktoken

__all__ = ["ENCODING_NAME", "chunk_text", "count_tokens", "encoding", "truncate_tokens"]

ENCODING_NAME = "cl100k_base"


def _shipped_cache_dir() -> Path | None:
    spec = find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    return folder if folder.is_dir() else None


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The cl100k_base encoding, loaded once from the offline files."""
    import tiktoken

    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        folder = _shipped_cache_dir()
        if folder is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    """cl100k_base tokens in ``text``.

    Example:
        >>> count_tokens("hello world")
        2
    """
    if not isinstance(text, str):
        raise InvalidTypeError(f"count_tokens needs str, got {describe(text)}")
    try:
        return _count(text)
    except (TypeError, UnicodeEncodeError):
        # tiktoken cannot encode lone surrogates ("\ud800"): say so as an input error.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"text is not valid Unicode: a lone surrogate {text[exc.start]!r} at position {exc.start} "
                f"(in {describe(text)}); decode the bytes it came from with errors='replace'"
            ) from None
        raise


@lru_cache(maxsize=65_536)
def _count(text: str) -> int:
    # Retrieval renders the same memories for many queries; counting is the hot part.
    return len(encoding().encode(text, disallowed_special=()))


def truncate_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` with at most ``max_tokens`` tokens."""
    tokens = encoding().encode(text, disallowed_special=())
    return text if len(tokens) <= max_tokens else encoding().decode(tokens[:max_tokens])


def chunk_text(text: str, max_tokens: int, overlap: int = 0) -> list[str]:
    """Split ``text`` into pieces of at most ``max_tokens`` tokens; nothing is dropped.

    Pieces break at token boundaries; ``overlap`` tokens repeat between pieces.

    Example:
        >>> chunk_text("a b c d", 2)
        ['a b', ' c d']
    """
    if max_tokens <= 0 or overlap < 0 or overlap >= max_tokens:
        raise InvalidInputError(
            f"chunk_text needs max_tokens > overlap >= 0, got max_tokens={max_tokens}, overlap={overlap}"
        )
    enc = encoding()
    tokens = enc.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return [text]
    step = max_tokens - overlap
    return [enc.decode(tokens[i : i + max_tokens]) for i in range(0, len(tokens), step) if tokens[i : i + max_tokens]]
