"""``ltm-agent bench evolution``: the self-evolution bench on TextWorldExpress, and its LoCoMo feedback twin.

Modules: :mod:`.env` (the game wrapper), :mod:`.policy` (the generic offline
policy), :mod:`.graph` (the LangGraph agent), :mod:`.runner` (arms, seeds,
files), :mod:`.report` (summary, plot, docs page), :mod:`.locomo_feedback`,
:mod:`.commands` (the CLI commands).
"""
