"""Multi-agent GAIA runs: a LangGraph team sharing long-term memory, GAIA's scorer, offline task streams.

Modules: ``tasks`` (GAIA's metadata.jsonl), ``scorer`` (GAIA's rules), ``readers`` / ``writers``
(attachments, behind the ``[gaia]`` extra), ``compute`` (calculator, units, dates), ``sandbox``
(the opt-in python tool), ``tools`` (each role's LangChain tools, local document search, the
web-search interface), ``stream`` (our generated task streams), ``memory`` (the team's
namespaces and its single writer), ``roles`` (prompts and chat-model turns), ``team`` (the
graph), ``runner`` and ``report`` (``ltm-agent gaia run`` / ``score``), ``cli``.

Example:
    >>> from ltm_agent.app.gaia.scorer import gaia_score
    >>> gaia_score("42.", "42")
    True
"""
