"""Plans: store work written once, run by a sync or an async driver.

A plan is a generator that yields lists of :mod:`ltm_agent.store` operations
and receives their results, so the logic of a LangGraph batch (read, rank,
fetch the owners of vector hits, write) exists once, and the sync and async
paths differ only in the line that runs a batch (docs/architecture.md: async twins differ
only in I/O).

Core functions: :func:`run_plan`, :func:`arun_plan`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

from ltm_agent.store import MemoryStore, Op

__all__ = ["Plan", "arun_plan", "run_plan"]

T = TypeVar("T")
Plan = Generator[list[Op], list[Any], T]


def run_plan(store: MemoryStore, plan: Plan[T]) -> T:
    """Run ``plan`` against ``store`` with ``batch``."""
    try:
        ops = next(plan)
        while True:
            ops = plan.send(store.batch(ops) if ops else [])
    except StopIteration as done:
        return done.value


async def arun_plan(store: MemoryStore, plan: Plan[T]) -> T:
    """Run ``plan`` against ``store`` with ``abatch``."""
    try:
        ops = next(plan)
        while True:
            ops = plan.send(await store.abatch(ops) if ops else [])
    except StopIteration as done:
        return done.value
