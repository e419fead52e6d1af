"""What every memory node shares: a LangChain ``Runnable`` that LangGraph runs sync or async.

``invoke`` does the work; ``ainvoke`` does the same work in a worker thread
(``asyncio.to_thread`` copies the context, so ``get_store()`` and
``get_runtime()`` still see the run), so the event loop stays free.

Core types: :class:`MemoryNode`, :data:`DEFAULT_NAMESPACE`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, ensure_config

__all__ = ["DEFAULT_NAMESPACE", "MemoryNode"]

DEFAULT_NAMESPACE: tuple[str, ...] = ("memories", "{user_id}")
"""Default namespace template: one namespace per ``config['configurable']['user_id']``."""


class MemoryNode(Runnable[dict[str, Any], dict[str, Any]]):
    """A node: ``invoke`` runs the work, ``ainvoke`` runs it in a worker thread."""

    name: str | None = None

    def invoke(self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        return self._run(input, ensure_config(config))

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # to_thread copies the context, so get_store()/get_runtime() still see this run.
        return await asyncio.to_thread(self._run, input, ensure_config(config))

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        return self.invoke(state, config)

    def _run(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        raise NotImplementedError
