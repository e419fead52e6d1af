"""LangGraph ``index`` config to an ltm-agent embedder.

LangGraph's ``IndexConfig["embed"]`` may be a LangChain ``Embeddings``, a
function ``list[str] -> list[list[float]]`` or a ``"provider:model"`` string;
ltm-agent stores embed with an :class:`~ltm_agent.embeddings.Embedder`. This
module maps the one to the other (an ltm-agent ``Embedder`` passes through).

Core function: :func:`embedder_from_index`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ltm_agent.embeddings import CallableEmbedder, Embedder, LangChainEmbedder, MiniLMEmbedder
from ltm_agent.errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError, describe

__all__ = ["check_dims", "embedder_from_index"]


def embedder_from_index(index: Mapping[str, Any] | None) -> Embedder:
    """The ltm-agent embedder for a LangGraph ``index`` config (MiniLM when it names none).

    Raises:
        InvalidInputError: A callable without ``dims``, or ``dims`` that do not match.
        UnsupportedOperationError: An async embedding function.
    """
    index = index or {}
    embed = index.get("embed")
    dims = index.get("dims")
    if embed is None:
        embedder: Embedder = MiniLMEmbedder()
    elif isinstance(embed, Embedder):
        embedder = embed
    elif isinstance(embed, str):
        from langgraph.store.base import ensure_embeddings

        embedder = LangChainEmbedder(ensure_embeddings(embed), name=embed, dimension=dims)
    elif _is_langchain_embeddings(embed):
        embedder = LangChainEmbedder(embed, dimension=dims)
    elif callable(embed):
        if inspect.iscoroutinefunction(embed if inspect.isroutine(embed) else type(embed).__call__):
            raise UnsupportedOperationError(
                "index['embed'] is an async function; ltm-agent stores embed synchronously: pass a sync "
                "function, a LangChain Embeddings object or an ltm_agent.embeddings.Embedder"
            )
        if dims is None:
            raise InvalidInputError(
                "index['embed'] is a function, so index['dims'] is needed (the vector length it returns), "
                "e.g. index={'dims': 384, 'embed': my_function}"
            )
        name = getattr(embed, "__qualname__", type(embed).__name__)
        embedder = CallableEmbedder(embed, name=f"callable:{name}", dimension=int(dims))
    else:
        raise InvalidTypeError(
            f"index['embed'] must be a LangChain Embeddings, a function, an Embedder or a "
            f"'provider:model' string, got {describe(embed)}"
        )
    check_dims(embedder, dims)
    return embedder


def _is_langchain_embeddings(value: object) -> bool:
    from langchain_core.embeddings import Embeddings

    return isinstance(value, Embeddings)


def check_dims(embedder: Embedder, dims: object) -> None:
    if dims is not None and not isinstance(embedder, LangChainEmbedder) and int(dims) != embedder.dimension:  # type: ignore[call-overload]
        raise InvalidInputError(
            f"index['dims'] is {dims!r} but the embedder {embedder.name!r} returns {embedder.dimension} "
            f"dimensions; drop 'dims' or set it to {embedder.dimension}"
        )
