"""Framework adapters, installed as ``ltm_agent.plugins``.

* :mod:`ltm_agent.plugins.langgraph` - memory nodes, the ``LTMStore`` BaseStore, paging tools.
* :mod:`ltm_agent.plugins.llamaindex` - memory blocks and a ``BaseMemory``.

Each imports its framework only when used.
"""
