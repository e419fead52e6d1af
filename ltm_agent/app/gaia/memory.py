"""The team's long-term memory: which namespaces exist, who reads them, and the single writer.

One store (one Chroma server or one embedded Chroma directory) holds, for team ``T``:

* ``("gaia", T, "cases")`` - the case bank (:class:`~ltm_agent.evolution.experience.ExperienceMemory`
  from the self-evolution work: the task, the plan tried, its outcome);
* ``("gaia", T, "playbook")`` - the playbook (:class:`~ltm_agent.evolution.playbook.Playbook`): one
  bullet per workflow that solved a task, upvoted when it solves again, downvoted when it misleads;
* ``("gaia", T, "facts")`` - observations verified by a solved task (tool results), as episodes,
  read by the answerer through ALR² (:class:`~ltm_agent.reasoning.RetrieveThenReason`);
* ``("gaia", T, "role", R, "workflows")`` - the reusable workflows of role ``R``
  (:class:`~ltm_agent.evolution.workflows.WorkflowMemory`): the planner keeps whole workflows,
  each worker the slice of steps it runs;
* ``("gaia", T, "run", RUN)`` - the per-run episodic timeline (every message of the run, with
  the entropy-decay buffer) and ``(..., "paging")`` the MemGPT paging node's recall storage.

Every agent reads the shared namespaces; only :meth:`TeamMemory.curate` writes them (a single
writer), after the task was scored. With ``enabled=False`` (the memory-off condition) nothing
shared is read or written.

Core type: :class:`TeamMemory`, :class:`Curation`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltm_agent.evolution.workflows import TraceStep, Workflow, WorkflowHit, WorkflowMemory, induce_workflow
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.reasoning import GroundedAnswer, RetrieveThenReason
from ltm_agent.retrieval import HybridRetriever
from ltm_agent.store import MemoryStore
from ltm_agent.timeline import EpisodicTimeline

__all__ = ["PLANNER", "Curation", "TeamMemory"]

PLANNER = "planner"


def _evolution(name: str) -> Any:
    """A self-evolution module (case bank, playbook), when it exists in this checkout."""
    try:
        return importlib.import_module(f"ltm_agent.evolution.{name}")
    except ImportError:  # pragma: no cover - the modules ship with the evolution package
        return None


@dataclass
class Curation:
    """What the curator wrote for one task."""

    written: list[str] = field(default_factory=list)
    workflow_id: str | None = None
    notes: list[str] = field(default_factory=list)


class TeamMemory:
    """The namespaces of one team in one store, with reads for every agent and one writer.

    Args:
        store: The shared store (one Chroma server or directory for the whole team).
        team: The team's label (namespaces are ``("gaia", team, ...)``).
        roles: The roles that keep workflows.
        enabled: ``False`` for the memory-off condition: no shared reads, no shared writes.

    Example:
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> memory = TeamMemory(InMemoryStore(HashingEmbedder()), "team-a", ("planner", "coder"))
        >>> memory.workflow_namespace("coder")
        ('gaia', 'team-a', 'role', 'coder', 'workflows')
    """

    def __init__(self, store: MemoryStore, team: str, roles: Sequence[str], *, enabled: bool = True) -> None:
        validate_namespace(("gaia", team))
        self.store = store
        self.team = team
        self.enabled = enabled
        self.workflows = {role: WorkflowMemory(store, self.workflow_namespace(role)) for role in roles}
        experience, playbook = _evolution("experience"), _evolution("playbook")
        self.cases = experience.ExperienceMemory(store, self.namespace("cases")) if experience and store.embedder else None
        self.playbook = playbook.Playbook(store, ("gaia", team)) if playbook else None

    # -- namespaces ----------------------------------------------------------

    def namespace(self, name: str) -> Namespace:
        """A team namespace (``cases``, ``facts``)."""
        return ("gaia", self.team, name)

    def workflow_namespace(self, role: str) -> Namespace:
        return ("gaia", self.team, "role", role, "workflows")

    def run_namespace(self) -> tuple[str, ...]:
        """The per-run timeline's namespace template (filled from the run config)."""
        return ("gaia", self.team, "run", "{run_id}")

    # -- reads (every agent) -------------------------------------------------

    def recall_workflows(self, role: str, task: str, given: Mapping[str, str], k: int = 3) -> list[WorkflowHit]:
        if not self.enabled:
            return []
        return self.workflows[role].recall(task, k, given=given)

    def workflow(self, role: str, workflow_id: str) -> Workflow | None:
        return self.workflows[role].get(workflow_id) if self.enabled else None

    def recall_cases(self, task: str, k: int = 4) -> list[Any]:
        """Similar past tasks with their outcomes (Memento: K = 4)."""
        if not self.enabled or self.cases is None:
            return []
        return list(self.cases.recall(task, k))

    def playbook_votes(self, workflow_ids: Sequence[str]) -> dict[str, int]:
        """Net votes (helpful - harmful) of the playbook bullet of each workflow (absent: not listed)."""
        if not self.enabled or self.playbook is None:
            return {}
        votes = {}
        for workflow_id in dict.fromkeys(workflow_ids):
            bullet = self.playbook.find(f"workflow:{workflow_id}")
            if bullet is not None:
                votes[workflow_id] = bullet.helpful - bullet.harmful
        return votes

    def playbook_text(self) -> str:
        """The playbook as prompt text (``""`` when empty or off)."""
        return self.playbook.render() if self.enabled and self.playbook is not None else ""

    def ground(self, question: str) -> GroundedAnswer | None:
        """ALR² over the facts namespace: quote stored evidence, keep only grounded quotes, answer or abstain."""
        if not self.enabled:
            return None
        reasoner = RetrieveThenReason(HybridRetriever(self.store), None, budget_tokens=512, k=8)
        return reasoner.answer(self.namespace("facts"), question)

    # -- the single writer -----------------------------------------------------

    def curate(
        self,
        *,
        task_id: str,
        question: str,
        file_name: str,
        trace: Sequence[TraceStep],
        success: bool,
        used_workflow: str | None,
        source: str,
    ) -> Curation:
        """After the task was scored: store its workflow, case, utility feedback and verified facts."""
        out = Curation()
        if not self.enabled:
            out.notes.append("memory off: nothing written")
            return out
        given = {"file": file_name} if file_name else {}
        if success and trace:
            workflow = induce_workflow(question, trace, given=given, source=source)
            out.workflow_id = workflow.id
            for role, memory in self.workflows.items():
                part = workflow if role == PLANNER else workflow.for_role(role)
                if part.steps or role == PLANNER:
                    memory.add(part)
                    out.written.append(f"{'/'.join(memory.namespace)}#{workflow.id}")
            timeline = EpisodicTimeline(self.store, self.namespace("facts"))
            for n, step in enumerate(trace):
                args = ", ".join(f"{k}={v}" for k, v in step.args.items())
                # The task is part of the fact, so a later, similar task retrieves (and ALR² can quote) it.
                episode = timeline.add_turn(
                    f'While solving "{question}": {step.tool}({args}) returned {step.output}',
                    role="assistant", session_id=task_id,
                    turn_id=f"{task_id}#fact{n}",
                )
                out.written.append(episode.id)
        out.written.extend(self._playbook_delta(workflow if success and trace else None, used_workflow, success))
        if self.playbook is None:
            out.notes.append("playbook: ltm_agent.evolution.playbook unavailable; no bullet written")
        if self.cases is not None:
            module = _evolution("experience")
            action = f"workflow {used_workflow}" if used_workflow else f"{source} plan"
            ids = self.cases.record_episode(
                [module.Step(question, action, 1.0 if success else 0.0)], success=success, task_id=task_id
            )
            out.written.extend(ids)
        else:
            out.notes.append("case bank: ltm_agent.evolution.experience unavailable; no case written")
        utility = _evolution("utility")
        if used_workflow and utility is not None:
            report = utility.feedback(self.store, self.workflow_namespace(PLANNER), [used_workflow],
                                      1.0 if success else -1.0, task_id=task_id)
            out.written.extend(report.updated)
        return out

    def _playbook_delta(self, learnt: Workflow | None, used: str | None, success: bool) -> list[str]:
        """ADD (or, via its pattern, upvote) the bullet of a workflow that solved; downvote one that misled."""
        if self.playbook is None:
            return []
        module = _evolution("playbook")
        if learnt is not None:
            chain = " -> ".join(f"{s.role}.{s.tool}" for s in learnt.steps)
            text = f'Tasks like "{learnt.template[:300]}": {chain}'
            delta = module.Delta(op="ADD", text=text, pattern=f"workflow:{learnt.id}", source="curator")
            return self.playbook.apply([delta])
        bullet = self.playbook.find(f"workflow:{used}") if used and not success else None
        if bullet is None:
            return []
        return self.playbook.apply([module.Delta(op="DOWNVOTE", bullet_id=bullet.id, source="curator")])
