"""Multi-agent GAIA runs: a LangGraph team sharing long-term memory, GAIA's scorer, offline task streams.

Modules: ``tasks`` (metadata.jsonl), ``scorer`` (GAIA's rules), ``readers`` and ``tools`` (offline
tools), ``stream`` (our generated task streams), ``team`` (the graph), ``runner`` and ``report``.

Example:
    >>> from ltm_agent.app.gaia.scorer import gaia_score
    >>> gaia_score("42.", "42")
    True
"""
