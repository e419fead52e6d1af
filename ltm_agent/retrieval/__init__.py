"""The read path: time windows, hybrid search, fusion (RRF, or the opt-in learned model) and budget packing.

Core types: :class:`HybridRetriever`, :class:`RetrievalConfig`, :class:`Retriever`.
"""

from ltm_agent.retrieval.base import Retriever
from ltm_agent.retrieval.config import RetrievalConfig
from ltm_agent.retrieval.fusion import reciprocal_rank_fusion
from ltm_agent.retrieval.hybrid import HybridRetriever
from ltm_agent.retrieval.learned import FusionModel, use_fusion_model
from ltm_agent.retrieval.packing import day_order, own_dates, pack, render_context
from ltm_agent.retrieval.query_types import asks_for_a_set
from ltm_agent.retrieval.rendering import render_items, to_memory_item
from ltm_agent.retrieval.time_window import TimeWindow, query_time_window, stable_partition

__all__ = [
    "FusionModel",
    "HybridRetriever",
    "RetrievalConfig",
    "Retriever",
    "TimeWindow",
    "asks_for_a_set",
    "day_order",
    "own_dates",
    "pack",
    "query_time_window",
    "reciprocal_rank_fusion",
    "render_context",
    "render_items",
    "stable_partition",
    "to_memory_item",
    "use_fusion_model",
]
