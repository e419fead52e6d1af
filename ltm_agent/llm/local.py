"""A LangChain chat model over the offline local model (SmolLM2-135M-Instruct).

:class:`ChatLocalModel` wraps :func:`ltm_agent.buffer.local_model.load_local_llama`
with llama.cpp's ``create_chat_completion`` (temperature 0 by default) and
returns ``AIMessage`` s carrying ``usage_metadata``. ``with_structured_output``
constrains decoding with llama.cpp's JSON-schema grammar, so even a 135M model
returns parseable JSON. :func:`default_chat_model` gives the local model when
the ``[local]`` extra is installed, else ``None``.

The model is loaded on the first call, never in the constructor.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import (
    Runnable,
    RunnableLambda,
    RunnableMap,
    RunnablePassthrough,
)
from pydantic import BaseModel, Field

__all__ = ["ChatLocalModel", "default_chat_model"]

# Loaded llama instances are cached and shared by load_local_llama; llama.cpp
# contexts are not re-entrant, so completions are serialised process-wide.
_GENERATE_LOCK = threading.Lock()

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}


def _to_chat_dict(message: BaseMessage) -> dict[str, str]:
    return {"role": _ROLES.get(message.type, "user"), "content": message.text}


class ChatLocalModel(BaseChatModel):
    """SmolLM2-135M-Instruct as a LangChain chat model (offline, CPU).

    Attributes:
        max_tokens: Completion tokens per call.
        temperature: Sampling temperature (0 is greedy and reproducible).
        n_ctx: Context window passed to :func:`~ltm_agent.buffer.local_model.load_local_llama`.
        repeat_penalty: llama.cpp's repetition penalty; 1.0 (off) by default because
            quoting evidence *is* repetition of the prompt.
        json_grammar: Constrain ``with_structured_output`` with a JSON-schema
            grammar; ``False`` makes it raise ``NotImplementedError`` so callers
            fall back to plain prompting.

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> model = ChatLocalModel(max_tokens=8)  # no I/O yet
        >>> model.invoke([HumanMessage("Say hi")]).usage_metadata  # doctest: +SKIP
        {'input_tokens': 31, 'output_tokens': 3, 'total_tokens': 34}
    """

    max_tokens: int = Field(default=256, gt=0)
    temperature: float = Field(default=0.0, ge=0.0)
    n_ctx: int = Field(default=2048, gt=0)
    repeat_penalty: float = Field(default=1.0, ge=1.0)
    json_grammar: bool = True

    @property
    def _llm_type(self) -> str:
        return "ltm-agent-local-llama"

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        return {
            "model": "SmolLM2-135M-Instruct",
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "n_ctx": self.n_ctx,
            "repeat_penalty": self.repeat_penalty,
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from ltm_agent.buffer.local_model import load_local_llama

        llama = load_local_llama(n_ctx=self.n_ctx)
        options: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "repeat_penalty": self.repeat_penalty,
            **kwargs,
        }
        with _GENERATE_LOCK:
            payload: list[Any] = [_to_chat_dict(m) for m in messages]
            # Not streaming, so the reply is one completion dict.
            response: dict[str, Any] = llama.create_chat_completion(messages=payload, stop=stop, **options)  # type: ignore[assignment]
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        completion_tokens = int(usage.get("completion_tokens", 0))
        message = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata=UsageMetadata(
                input_tokens=prompt_tokens,
                output_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            ),
            response_metadata={"finish_reason": choice.get("finish_reason"), "model_name": response.get("model")},
        )
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"token_usage": usage})

    def with_structured_output(
        self, schema: Mapping[str, Any] | type, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Grammar-constrained JSON output validated by a pydantic ``schema``.

        Raises:
            NotImplementedError: ``schema`` is not a pydantic model class, or
                ``json_grammar`` is off.
        """
        if not self.json_grammar or not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise NotImplementedError("ChatLocalModel structured output needs json_grammar=True and a pydantic class")
        bound = self.bind(response_format={"type": "json_object", "schema": schema.model_json_schema()})

        def parse_strict(message: BaseMessage) -> BaseModel:
            # Strict: langchain's JSON parsers accept truncated (partial) JSON, which
            # would pass a reply cut off at max_tokens as if it were complete.
            return schema.model_validate_json(message.text)

        parser = RunnableLambda(parse_strict)
        if not include_raw:
            return bound | parser
        with_parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        keep_raw = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=bound) | with_parsed.with_fallbacks([keep_raw], exception_key="parsing_error")


def default_chat_model(*, max_tokens: int = 256) -> BaseChatModel | None:
    """The local chat model when the ``[local]`` extra is installed, else ``None``.

    Checks that the packages and the GGUF file are present; loads nothing.

    Example:
        >>> model = default_chat_model()
        >>> model is None or isinstance(model, ChatLocalModel)
        True
    """
    from ltm_agent.buffer.local_model import local_model_available

    return ChatLocalModel(max_tokens=max_tokens) if local_model_available() else None
