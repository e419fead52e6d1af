"""The GAIA team: a plain LangGraph ``StateGraph`` in the tool-calling supervisor pattern.

```
START -> planner -> record -> {researcher | coder | file_reader} -> record -> planner ...
                            -> answerer -> record -> curator -> END
```

* **planner** (the supervisor) hands work to a worker with a ``transfer_to_<role>`` tool call,
  or to the answerer; it reads the team's workflows and case bank first.
* **workers** run their own tools (:class:`~ltm_agent.app.gaia.tools.Toolbox`); each reads its
  own role's workflow namespace.
* **answerer** writes the final answer in GAIA's format; when no tool produced evidence it
  grounds on memory with ALR² (quotes checked against stored text, abstains otherwise).
* **curator** asks the environment for the verdict, then is the only node that writes the shared
  namespaces (:meth:`~ltm_agent.app.gaia.memory.TeamMemory.curate`).
* **record** runs the LangGraph plugin's :class:`~ltm_agent.plugins.langgraph.MemoryWriteNode`
  (per-run episodic timeline + entropy-decay buffer) and
  :class:`~ltm_agent.plugins.langgraph.PagingNode` (the bounded main context a model reads).

Each role is driven either by a LangChain chat model (:mod:`~ltm_agent.app.gaia.roles`) or, with
no model, by the offline policy: run the task's scripted demonstration when it has one (the
stand-in for a strong model), else the recalled workflow whose template matches the task, else
nothing (the task stays unsolved). A step limit bounds every task.

Core types: :class:`Team`, :class:`TeamResult`, :class:`TeamState`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from ltm_agent.app.gaia import roles
from ltm_agent.app.gaia.memory import PLANNER, TeamMemory
from ltm_agent.app.gaia.tasks import GaiaTask
from ltm_agent.app.gaia.tools import ROLES, Toolbox
from ltm_agent.errors import InvalidInputError
from ltm_agent.evolution.workflows import TraceStep
from ltm_agent.llm import UsageLedger
from ltm_agent.plugins.langgraph import BufferSettings, MemoryState, MemoryWriteNode, PagingNode
from ltm_agent.store import MemoryStore

__all__ = ["DEMONSTRATOR", "Team", "TeamResult", "TeamState"]

DEMONSTRATOR = "demonstrator"
"""The solver label of a scripted demonstration (a stand-in for a user's strong model, not the team)."""
Verdict = Callable[[str, str], "bool | None"]
"""The environment: ``(task_id, answer) -> solved?``, ``None`` when there is no gold."""


class TeamState(MemoryState, total=False):
    """Graph state: ``MessagesState`` + the memory nodes' keys + the team's bookkeeping (all JSON)."""

    task: dict[str, Any]
    plan: list[dict[str, Any]]
    cursor: int
    solver: str
    workflow_id: str | None
    bindings: dict[str, str]
    trace: list[dict[str, Any]]
    next: str
    instruction: str
    steps: int
    answer: str
    verdict: bool | None
    reads: list[str]
    written: list[str]
    notes: list[str]


@dataclass(frozen=True, slots=True)
class TeamResult:
    """One task's outcome, as the runner writes it."""

    answer: str
    verdict: bool | None
    solver: str
    steps: int
    tokens: dict[str, dict[str, int]]
    memories_read: int
    memories_written: int
    wall_s: float
    workflow_id: str | None
    notes: tuple[str, ...]


class Team:
    """A planner, three workers, an answerer and a curator over one shared store.

    Args:
        store: The team's store (one Chroma server or one embedded directory).
        team: The team's label; its namespaces are ``("gaia", team, ...)``.
        toolbox: Builds the workers' tools (attachment folder set per task).
        models: A chat model for every role, a mapping role -> model, or ``None`` for the
            offline policy (demonstrations + recalled workflows).
        memory: ``False`` disables shared reads and writes (the memory-off condition).
        step_limit: Most steps (role turns + tool calls) per task.
        verdict: The environment: ``(task_id, answer) -> solved?`` (``None`` when unknown);
            the curator writes only after it.
        run_id: Label of this run's episodic namespace.

    Example:
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> team = Team(InMemoryStore(HashingEmbedder()), "t1", Toolbox(), verdict=lambda tid, a: a == "30")
        >>> task = GaiaTask("q1", "How many days are there from 2024-01-01 to 2024-01-31?", 1, "30",
        ...                 demonstration=({"role": "coder", "tool": "date_diff",
        ...                                 "args": {"start": "2024-01-01", "end": "2024-01-31"}},))
        >>> result = team.run(task)
        >>> result.answer, result.solver, result.verdict
        ('30', 'demonstrator', True)
    """

    def __init__(
        self,
        store: MemoryStore,
        team: str,
        toolbox: Toolbox,
        *,
        models: BaseChatModel | Mapping[str, BaseChatModel] | None = None,
        memory: bool = True,
        step_limit: int = 30,
        verdict: Verdict | None = None,
        run_id: str | None = None,
    ) -> None:
        if step_limit < 2:
            raise InvalidInputError(f"step_limit must be >= 2, got {step_limit!r}")
        all_roles = (PLANNER, *ROLES, "answerer")
        if isinstance(models, Mapping):
            missing = [r for r in all_roles if r not in models]
            if missing:
                raise InvalidInputError(f"models needs a chat model for every role; missing {missing}")
        self.models: dict[str, BaseChatModel] | None = (
            None if models is None else dict(models) if isinstance(models, Mapping) else dict.fromkeys(all_roles, models)
        )
        self.store = store
        self.team = team
        self.toolbox = toolbox
        self.memory = TeamMemory(store, team, (PLANNER, *ROLES), enabled=memory)
        self.step_limit = step_limit
        self.verdict: Verdict = verdict or (lambda task_id, answer: None)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.ledger = UsageLedger()
        namespace = self.memory.run_namespace()
        self.writer = MemoryWriteNode(store, namespace=namespace, roles=("user", "assistant"), buffer=BufferSettings())
        self.paging = PagingNode(store, window_tokens=6000, namespace=(*namespace, "paging"), system=roles.TEAM_SYSTEM)
        self.graph = self._build()

    # -- the graph -------------------------------------------------------------

    def _build(self) -> Any:
        graph = StateGraph(TeamState)
        graph.add_node(PLANNER, self._planner)
        for role in ROLES:
            graph.add_node(role, self._worker(role))
        graph.add_node("answerer", self._answerer)
        graph.add_node("curator", self._curator)
        graph.add_node("record", self._record)
        graph.add_edge(START, "record")  # paging's context exists before the planner's first model call
        for role in (PLANNER, *ROLES, "answerer"):
            graph.add_edge(role, "record")
        graph.add_conditional_edges("record", lambda s: s["next"], [PLANNER, *ROLES, "answerer", "curator"])
        graph.add_edge("curator", END)
        return graph.compile()

    def _record(self, state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        update = dict(self.writer.invoke(state, config))
        update.update(self.paging.invoke({**state, **update}, config))
        return update

    def _model(self, role: str) -> BaseChatModel | None:
        return None if self.models is None else self.models[role]

    def _budget_left(self, state: TeamState) -> bool:
        return state.get("steps", 0) < self.step_limit

    def _planner(self, state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        task = state["task"]
        update: dict[str, Any] = {"steps": state.get("steps", 0) + 1}
        first = state.get("cursor") is None
        if first:
            update.update(self._plan(task))
            state = {**state, **update}  # type: ignore[typeddict-item]
        if not self._budget_left(state):
            note = f"step limit {self.step_limit} reached; answering with what the team has"
            return {**update, "next": "answerer", "notes": [*state.get("notes", []), note],
                    "messages": [AIMessage(f"planner: {note}", name=PLANNER)]}
        model = self._model(PLANNER)
        if model is None:
            plan, cursor = state.get("plan", []), state.get("cursor", 0)
            target = plan[cursor]["role"] if cursor < len(plan) else "answerer"
            text = f"planner -> {target}" + (f": step {cursor + 1} {plan[cursor]['tool']}" if target != "answerer" else "")
            return {**update, "next": target, "messages": [AIMessage(text, name=PLANNER)]}
        target, instruction, message = roles.plan_with_model(
            model, self.ledger, self.paging.context_messages(state), state.get("memory_context", ""), task
        )
        return {**update, "next": target, "instruction": instruction, "messages": [message]}

    def _plan(self, task: dict[str, Any]) -> dict[str, Any]:
        """First planner turn: read the shared memory; choose the demonstration or a matching workflow."""
        given = {"file": task["file_name"]} if task["file_name"] else {}
        hits = self.memory.recall_workflows(PLANNER, task["question"], given)
        cases = self.memory.recall_cases(task["question"])
        votes = self.memory.playbook_votes([h.workflow.id for h in hits if h.bindings is not None])
        reads = [h.workflow.id for h in hits] + [getattr(c, "experience", c).id for c in cases]
        reads += [f"playbook:{w}" for w in votes]
        context = roles.memory_context(hits, cases, self.memory.playbook_text())
        base = {"cursor": 0, "plan": [], "trace": [], "reads": reads, "written": [], "notes": [],
                "memory_context": context, "bindings": {}, "workflow_id": None, "solver": "none"}
        if self.models is not None:
            return {**base, "solver": "model"}
        if task.get("demonstration"):
            plan = [dict(step) for step in task["demonstration"]]
            return {**base, "plan": plan, "solver": DEMONSTRATOR}
        # Matching workflows, the playbook's most trusted first (a workflow that misled more often than
        # it helped was pruned from the playbook and comes last).
        ranked = sorted(hits, key=lambda h: -votes.get(h.workflow.id, 0))
        for hit in ranked:
            if hit.bindings is not None:
                plan = [{"role": s.role, "tool": s.tool, "index": s.index} for s in hit.workflow.steps]
                return {**base, "plan": plan, "solver": "workflow", "workflow_id": hit.workflow.id,
                        "bindings": hit.bindings}
        return base

    def _worker(self, role: str) -> Callable[[TeamState, RunnableConfig], dict[str, Any]]:
        def run(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
            toolbox = Toolbox(self._attachments(state), self.toolbox.documents, self.toolbox.python, self.toolbox.web)
            tools = {t.name: t for t in toolbox.for_role(role)}
            model = self._model(role)
            if model is not None:
                hints = self.memory.recall_workflows(role, state["task"]["question"], {})
                budget = self.step_limit - state.get("steps", 0)
                calls, report, used = roles.work_with_model(
                    model, role, tools, self.ledger, state, hints, budget
                )
                return {"steps": state.get("steps", 0) + used, "next": PLANNER,
                        "trace": [*state.get("trace", []), *calls], "messages": [report],
                        "reads": [*state.get("reads", []), *(h.workflow.id for h in hints)]}
            return self._offline_step(role, state, tools)

        return run

    def _offline_step(self, role: str, state: TeamState, tools: Mapping[str, Any]) -> dict[str, Any]:
        cursor, plan, trace = state["cursor"], state["plan"], list(state.get("trace", []))
        reads = list(state.get("reads", []))
        outputs = {i + 1: t["output"] for i, t in enumerate(trace)}
        if state["solver"] == DEMONSTRATOR:
            step = plan[cursor]
            previous = trace[-1]["output"] if trace else ""
            args = {k: previous if v == "<previous>" else str(v) for k, v in step["args"].items()}
        else:
            # The worker reads its own role's slice of the workflow the planner chose.
            own = self.memory.workflow(role, str(state["workflow_id"]))
            reads.append(f"{role}:{state['workflow_id']}")
            index = plan[cursor]["index"]
            step_def = next((s for s in own.steps if s.index == index), None) if own else None
            if step_def is None:
                note = f"{role} has no step {index} of workflow {state['workflow_id']} in its memory"
                return {"steps": state["steps"] + 1, "next": "answerer", "reads": reads,
                        "notes": [*state.get("notes", []), note], "messages": [AIMessage(note, name=role)]}
            try:
                args = step_def.resolve(state["bindings"], outputs)
            except InvalidInputError as exc:
                return {"steps": state["steps"] + 1, "next": "answerer", "reads": reads,
                        "notes": [*state.get("notes", []), str(exc)], "messages": [AIMessage(str(exc), name=role)]}
            step = {"tool": step_def.tool}
        tool = tools.get(step["tool"])
        output = tool.invoke(args) if tool is not None else f"Error: {role} has no tool {step['tool']!r}"
        trace.append({"role": role, "tool": step["tool"], "args": args, "output": output})
        call = ", ".join(f"{k}={v!r}" for k, v in args.items())
        return {"steps": state["steps"] + 2, "cursor": cursor + 1, "next": PLANNER, "trace": trace, "reads": reads,
                "messages": [AIMessage(f"{role}: {step['tool']}({call}) -> {output}", name=role)]}

    def _attachments(self, state: TeamState) -> Path | None:
        folder = state["task"].get("folder")
        return Path(folder) if folder else None

    def _answerer(self, state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        task, trace = state["task"], state.get("trace", [])
        reads = list(state.get("reads", []))
        evidence = ""
        outputs = [str(t["output"]) for t in trace]
        if not any(not o.startswith("Error") for o in outputs):  # nothing from the tools: the evidence can only come from memory (ALR²)
            grounded = self.memory.ground(task["question"])
            if grounded is not None:
                reads += [c.memory_id for c in grounded.evidence]
                evidence = roles.render_grounded(grounded)
        model = self._model("answerer")
        if model is None:
            answer = roles.offline_answer(outputs, evidence)
        else:
            answer = roles.answer_with_model(model, self.ledger, task, state.get("messages", []), evidence)
        return {"answer": answer, "steps": state.get("steps", 0) + 1, "next": "curator", "reads": reads,
                "messages": [AIMessage(f"FINAL ANSWER: {answer}", name="answerer")]}

    def _curator(self, state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        task = state["task"]
        verdict = self.verdict(task["task_id"], state.get("answer", ""))
        if verdict is None:
            return {"verdict": None, "notes": [*state.get("notes", []), "no verdict (no gold): nothing curated"]}
        trace = [TraceStep(t["role"], t["tool"], dict(t["args"]), str(t["output"])) for t in state.get("trace", [])]
        source = {"demonstrator": DEMONSTRATOR, "workflow": "team", "model": "model"}.get(state.get("solver", ""), "team")
        curation = self.memory.curate(
            task_id=task["task_id"], question=task["question"], file_name=task["file_name"], trace=trace,
            success=bool(verdict), used_workflow=state.get("workflow_id"), source=source,
        )
        return {"verdict": verdict, "written": curation.written, "notes": [*state.get("notes", []), *curation.notes]}

    # -- running a task --------------------------------------------------------

    def run(self, task: GaiaTask) -> TeamResult:
        """Run one task through the graph; the curator learns from it after the verdict."""
        before = {role: (s.prompt_tokens, s.completion_tokens, s.calls) for role, s in self.ledger.summary().items()}
        started = time.perf_counter()
        text = task.question + (f"\nAttachment: {task.file_name}" if task.file_name else "")
        state: dict[str, Any] = {
            "messages": [HumanMessage(text, id=f"{task.task_id}-question")],
            "next": PLANNER,
            "task": {"task_id": task.task_id, "question": task.question, "file_name": task.file_name,
                     "folder": str(task.file_path.parent) if task.file_path else "",
                     "demonstration": [dict(d) for d in task.demonstration] if task.demonstration else None},
        }
        config: RunnableConfig = {
            "configurable": {"run_id": self.run_id, "thread_id": task.task_id, "user_id": self.team},
            "recursion_limit": self.step_limit * 4 + 20,
        }
        final = self.graph.invoke(state, config)
        tokens = {}
        for role, usage in self.ledger.summary().items():
            p0, c0, n0 = before.get(role, (0, 0, 0))
            if usage.calls > n0:
                tokens[role] = {"prompt": usage.prompt_tokens - p0, "completion": usage.completion_tokens - c0,
                                "calls": usage.calls - n0}
        return TeamResult(
            answer=final.get("answer", ""), verdict=final.get("verdict"), solver=final.get("solver", "none"),
            steps=final.get("steps", 0), tokens=tokens, memories_read=len(final.get("reads", [])),
            memories_written=len(final.get("written", [])), wall_s=time.perf_counter() - started,
            workflow_id=final.get("workflow_id"), notes=tuple(final.get("notes", [])),
        )
