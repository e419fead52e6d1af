"""Benchmark harness: data sets, metrics, systems, runners and reports.

Run it with ``ltm-agent bench retrieval|qa|docs`` (see docs/benchmarks.md). The
contract it implements is described in docs/benchmarks.md: every number can be
re-scored from ``results.jsonl`` by :mod:`ltm_agent.app.bench.metrics`.
"""
