"""Workflow memory (AWM-style): reusable workflows with slots, induced from successful runs.

Agent Workflow Memory (Wang et al., 2024) stores, from each solved task, the *workflow* that
solved it with the task-specific values abstracted into variables, and gives the agent the
workflows of similar tasks later. Here a :class:`Workflow` is:

* a **template** - the task text with its variable parts replaced by ``{slot}`` names;
* **steps** - tool calls, each run by a role, whose arguments are literals, ``{slot}``
  references, or ``$n`` (the output of step ``n``, 1-based).

:func:`induce_workflow` abstracts a concrete trajectory deterministically (no model): an
argument equal to an earlier step's output becomes ``$n``; one equal to a given value (the
attachment's name) becomes that slot; one that occurs verbatim in the task text becomes a slot
named after the argument, and its occurrence in the text becomes ``{slot}`` in the template;
anything else stays literal. :meth:`Workflow.bind` matches a new task against the template and
returns the slot values - a workflow is *reused* only when its template matches (the honest,
model-free test of applicability; with a chat model, the rendered workflow is a hint instead).

:class:`WorkflowMemory` keeps workflows in one namespace of any
:class:`~ltm_agent.store.MemoryStore` (one namespace per role, in the GAIA team) and recalls
them by similarity of the task to the template. No framework is imported here.

Core types: :class:`WorkflowStep`, :class:`Workflow`, :class:`WorkflowHit`,
:class:`WorkflowMemory`; function :func:`induce_workflow`.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ltm_agent.errors import DataFormatError, InvalidInputError, describe
from ltm_agent.namespaces import Namespace, validate_namespace
from ltm_agent.records import RecordKind, StoredItem
from ltm_agent.store import MemoryStore

__all__ = ["TraceStep", "Workflow", "WorkflowHit", "WorkflowMemory", "WorkflowStep", "induce_workflow"]

_OUTPUT = re.compile(r"^\$(\d+)$")
_FORMATTER = string.Formatter()  # parses templates: "{slot}" fields, "{{" / "}}" literal braces


@dataclass(frozen=True, slots=True)
class WorkflowStep:
    """One step: ``role`` calls ``tool`` with ``args`` (literals, ``{slot}`` or ``$n``).

    ``index`` is the step's 1-based position in the whole workflow, kept in role slices so
    ``$n`` references stay valid.
    """

    index: int
    role: str
    tool: str
    args: Mapping[str, str]

    def resolve(self, bindings: Mapping[str, str], outputs: Mapping[int, str]) -> dict[str, str]:
        """Concrete arguments: slots filled from ``bindings``, ``$n`` from earlier ``outputs``.

        Raises:
            InvalidInputError: A slot has no binding or ``$n`` has no output yet.
        """
        concrete: dict[str, str] = {}
        for name, value in self.args.items():
            ref = _OUTPUT.match(value)
            if ref:
                step = int(ref.group(1))
                if step not in outputs:
                    raise InvalidInputError(f"step {self.index} needs the output of step {step}, which has not run")
                concrete[name] = outputs[step]
                continue
            parts = list(_FORMATTER.parse(value))
            missing = [slot for _, slot, _, _ in parts if slot and slot not in bindings]
            if missing:
                raise InvalidInputError(f"step {self.index} needs slots {missing}; bind the workflow first")
            concrete[name] = "".join(text + (bindings[slot] if slot else "") for text, slot, _, _ in parts)
        return concrete


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a concrete, successful run (what :func:`induce_workflow` abstracts)."""

    role: str
    tool: str
    args: Mapping[str, str]
    output: str


@dataclass(frozen=True, slots=True)
class Workflow:
    """A reusable workflow: a task template with slots and the steps that solve it.

    Attributes:
        template: The task text with ``{slot}`` in place of its variable values.
        steps: The steps in order (all of them, or one role's slice).
        given: Slots filled from outside the text (e.g. ``file`` from the attachment name).
        source: Who solved the task it was induced from (``"demonstrator"``, ``"team"``, a model name).
    """

    template: str
    steps: tuple[WorkflowStep, ...]
    given: tuple[str, ...] = ()
    source: str = ""
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            body = json.dumps([self.template, [[s.role, s.tool, dict(s.args)] for s in self.steps]], sort_keys=True)
            object.__setattr__(self, "id", "wf-" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:16])

    @property
    def slots(self) -> tuple[str, ...]:
        """Slot names in the template (then the given ones), each once."""
        names = [name for _, name, _, _ in _FORMATTER.parse(self.template) if name]
        return tuple(dict.fromkeys([*names, *self.given]))

    def for_role(self, role: str) -> Workflow:
        """The slice of steps ``role`` runs (same id, template and step indices)."""
        return Workflow(self.template, tuple(s for s in self.steps if s.role == role), self.given, self.source, self.id)

    def bind(self, text: str, given: Mapping[str, str] | None = None) -> dict[str, str] | None:
        """Slot values when ``text`` matches the template, else ``None``.

        Example:
            >>> wf = induce_workflow("How many days from 2024-01-01 to 2024-03-01?",
            ...     [TraceStep("coder", "date_diff", {"start": "2024-01-01", "end": "2024-03-01"}, "60")])
            >>> wf.bind("How many days from 2023-05-02 to 2023-06-01?")
            {'start': '2023-05-02', 'end': '2023-06-01'}
            >>> wf.bind("How many weeks from 2023-05-02 to 2023-06-01?") is None
            True
        """
        given = dict(given or {})
        if any(name not in given for name in self.given):
            return None
        pattern, seen = ["^"], set()
        for literal, name, _, _ in _FORMATTER.parse(self.template):
            pattern.append(_literal(literal))
            if name:
                pattern.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
                seen.add(name)
        pattern.append("$")
        found = re.match("".join(pattern), text.strip(), re.DOTALL)
        if found is None:
            return None
        return {**{k: v.strip() for k, v in found.groupdict().items()}, **{k: given[k] for k in self.given}}

    def render(self) -> str:
        """The workflow as text for a prompt (and as the stored item's text)."""
        lines = [f"Workflow for tasks like: {self.template}"]
        for step in self.steps:
            args = ", ".join(f"{k}={v}" for k, v in step.args.items())
            lines.append(f"{step.index}. {step.role}: {step.tool}({args})")
        lines.append("($n is the output of step n; {slot} comes from the task.)")
        return "\n".join(lines)

    def to_json(self) -> str:
        steps = [[s.index, s.role, s.tool, dict(s.args)] for s in self.steps]
        return json.dumps({"template": self.template, "steps": steps, "given": list(self.given),
                           "source": self.source, "id": self.id}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Workflow:
        try:
            data = json.loads(text)
            steps = tuple(WorkflowStep(int(i), str(r), str(t), dict(a)) for i, r, t, a in data["steps"])
            return cls(str(data["template"]), steps, tuple(data["given"]), str(data["source"]), str(data["id"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(f"a stored workflow does not parse ({type(exc).__name__}: {exc})") from None


def _literal(text: str) -> str:
    """Literal template text as a regex: escaped, any run of whitespace matching any whitespace."""
    return r"\s+".join(re.escape(part) for part in re.split(r"\s+", text))


def _occurs(value: str, text: str) -> re.Match[str] | None:
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text)


def induce_workflow(
    task: str,
    trace: Sequence[TraceStep],
    *,
    given: Mapping[str, str] | None = None,
    source: str = "",
) -> Workflow:
    """Abstract a successful trajectory into a reusable workflow (see the module docstring).

    Args:
        task: The task text.
        trace: The steps that solved it, in order, with their outputs.
        given: Values from outside the text, by slot name (e.g. ``{"file": "sales-17.xlsx"}``).
        source: Who solved the task.

    Example:
        >>> wf = induce_workflow("What is the price of pear in the attached table?",
        ...     [TraceStep("file_reader", "table_lookup",
        ...                {"path": "t1.csv", "match_value": "pear", "return_column": "price"}, "2")],
        ...     given={"file": "t1.csv"})
        >>> wf.template, dict(wf.steps[0].args)
        ('What is the {return_column} of {match_value} in the attached table?', {'path': '{file}', 'match_value': '{match_value}', 'return_column': '{return_column}'})
    """
    if not trace:
        raise InvalidInputError("a workflow needs at least one step; nothing was run")
    given = {k: str(v) for k, v in (given or {}).items() if str(v)}
    slots: dict[str, str] = {}  # value -> slot name
    outputs: dict[str, int] = {}
    steps: list[WorkflowStep] = []
    for index, step in enumerate(trace, 1):
        args: dict[str, str] = {}
        for name, raw in step.args.items():
            value = str(raw)
            if value.strip() and value.strip() in outputs:
                args[name] = f"${outputs[value.strip()]}"
            elif value in given.values():
                args[name] = "{" + next(k for k, v in given.items() if v == value) + "}"
            elif value.strip() and _occurs(value, task) and "{" not in value and "}" not in value:
                if value not in slots:
                    taken = set(slots.values()) | set(given)
                    slot, n = name, 2
                    while slot in taken:
                        slot, n = f"{name}_{n}", n + 1
                    slots[value] = slot
                args[name] = "{" + slots[value] + "}"
            else:
                args[name] = value.replace("{", "{{").replace("}", "}}")
        steps.append(WorkflowStep(index, step.role, step.tool, args))
        if step.output.strip():
            outputs[step.output.strip()] = index
    template = task.replace("{", "{{").replace("}", "}}")
    # Longest values first, so "New York City" is not cut by a slot for "York".
    for value in sorted(slots, key=len, reverse=True):
        # Every occurrence: a value written twice binds the same slot twice (a backreference in bind()).
        template = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "{" + slots[value] + "}", template)
    return Workflow(template, tuple(steps), tuple(given), source)


@dataclass(frozen=True, slots=True)
class WorkflowHit:
    """A recalled workflow, its similarity to the task and its slot values (``None``: template does not match)."""

    workflow: Workflow
    score: float
    bindings: dict[str, str] | None


class WorkflowMemory:
    """Workflows in one namespace of a store, recalled by similarity of a task to their templates.

    Args:
        store: Any store with an embedder (dense recall).
        namespace: The namespace (e.g. ``("team-a", "role", "coder", "workflows")``).
        writes: ``False`` makes :meth:`add` a no-op (recall only).

    Example:
        >>> from ltm_agent.embeddings import HashingEmbedder
        >>> from ltm_agent.memory_stores import InMemoryStore
        >>> memory = WorkflowMemory(InMemoryStore(HashingEmbedder()), ("team", "workflows"))
        >>> wf = induce_workflow("Convert 3 miles to km",
        ...     [TraceStep("coder", "convert_units", {"value": "3", "from_unit": "miles", "to_unit": "km"}, "4.83")])
        >>> memory.add(wf) == wf.id
        True
        >>> memory.recall("Convert 10 miles to km")[0].bindings
        {'value': '10', 'from_unit': 'miles', 'to_unit': 'km'}
    """

    def __init__(self, store: MemoryStore, namespace: Namespace, *, writes: bool = True) -> None:
        self.store = store
        self.namespace = validate_namespace(tuple(namespace))
        self.writes = writes

    def add(self, workflow: Workflow) -> str:
        """Store ``workflow`` (the same workflow again replaces itself); return its id."""
        if not isinstance(workflow, Workflow):
            raise InvalidInputError(f"add() takes a Workflow, got {describe(workflow)}")
        if self.writes:
            key = "".join(f"{text}{(name or '').replace('_', ' ')}" for text, name, _, _ in _FORMATTER.parse(workflow.template))
            meta = {"kind": RecordKind.PROCEDURE.value, "workflow": workflow.to_json(), "source": workflow.source,
                    "roles": ",".join(dict.fromkeys(s.role for s in workflow.steps))}
            existing = self.store.get(self.namespace, [workflow.id])[0]
            if existing is not None:  # keep what others recorded on it (utility, access counts)
                meta = {**existing.metadata, **meta}
            self.store.put([StoredItem(self.namespace, workflow.id, workflow.render(), meta, key=key)])
        return workflow.id

    def get(self, workflow_id: str) -> Workflow | None:
        """The workflow with this id, or ``None``."""
        item = self.store.get(self.namespace, [workflow_id])[0]
        return None if item is None else Workflow.from_json(str(item.metadata["workflow"]))

    def recall(self, task: str, k: int = 3, *, given: Mapping[str, str] | None = None) -> list[WorkflowHit]:
        """The ``k`` most similar workflows; those whose template matches ``task`` first, then by score."""
        found = self.store.search(self.namespace, task, limit=k) if k > 0 else []
        hits = []
        for scored in found:
            workflow = Workflow.from_json(str(scored.item.metadata["workflow"]))
            hits.append(WorkflowHit(workflow, scored.score, workflow.bind(task, given)))
        hits.sort(key=lambda h: (h.bindings is None, -h.score, h.workflow.id))
        return hits

    def count(self) -> int:
        """Workflows stored."""
        return self.store.count(self.namespace)
