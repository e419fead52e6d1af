"""The application layer: the ``ltm-agent`` command, the demo and the benchmark harness.

This is the only part of ``ltm_agent`` that opens concrete stores and frameworks (Chroma, the
LangGraph and LlamaIndex plugins); the mechanisms below it import none of them (enforced by
``tests/test_architecture.py``).
"""
