"""AWM-style workflow memory: induction with slots, binding, per-namespace recall."""

from __future__ import annotations

import pytest

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import InvalidInputError
from ltm_agent.evolution.workflows import TraceStep, Workflow, WorkflowMemory, induce_workflow
from ltm_agent.memory_stores import InMemoryStore

HOP = [
    TraceStep("researcher", "find_fact", {"subject": "Salt Museum", "relation": "director"}, "Rui Costa"),
    TraceStep("researcher", "find_fact", {"subject": "Rui Costa", "relation": "birthplace"}, "Tavira"),
]


def test_induction_abstracts_question_values_outputs_and_files() -> None:
    wf = induce_workflow("In which town was the director of the Salt Museum born?", HOP, source="demonstrator")
    # "director" is written in the question, so it becomes a slot too (it may vary in later tasks)
    assert wf.template == "In which town was the {relation} of the {subject} born?"
    assert [dict(s.args) for s in wf.steps] == [
        {"subject": "{subject}", "relation": "{relation}"},
        {"subject": "$1", "relation": "birthplace"},
    ]
    table = induce_workflow("Total {units} of north in the attached sheet?",
                            [TraceStep("file_reader", "table_aggregate", {"path": "a.xlsx", "where_value": "north"}, "9")],
                            given={"file": "a.xlsx"})
    assert table.template == "Total {{units}} of {where_value} in the attached sheet?"
    assert table.bind("Total {units} of south in the attached sheet?", {"file": "b.xlsx"}) == {
        "where_value": "south", "file": "b.xlsx"}
    assert table.bind("Total {units} of south in the attached sheet?") is None  # no attachment given


def test_binding_and_resolution_run_with_new_arguments() -> None:
    wf = induce_workflow("In which town was the director of the Salt Museum born?", HOP)
    bindings = wf.bind("In which town was the director of the Beacon Theatre born?")
    assert bindings == {"relation": "director", "subject": "Beacon Theatre"}
    assert wf.steps[0].resolve(bindings, {}) == {"subject": "Beacon Theatre", "relation": "director"}
    assert wf.steps[1].resolve(bindings, {1: "Ana Reis"}) == {"subject": "Ana Reis", "relation": "birthplace"}
    with pytest.raises(InvalidInputError, match="output of step 1"):
        wf.steps[1].resolve(bindings, {})
    assert wf.bind("Where was the curator of the Beacon Theatre born?") is None


def test_repeated_value_binds_one_slot() -> None:
    wf = induce_workflow("Is 7 plus 7 equal to 14?", [TraceStep("coder", "calculator", {"expression": "7"}, "7x")])
    assert wf.template == "Is {expression} plus {expression} equal to 14?"
    assert wf.bind("Is 3 plus 3 equal to 14?") == {"expression": "3"}
    assert wf.bind("Is 3 plus 4 equal to 14?") is None


def test_memory_per_namespace_and_round_trip() -> None:
    store = InMemoryStore(HashingEmbedder(64))
    wf = induce_workflow("In which town was the director of the Salt Museum born?", HOP)
    coder = WorkflowMemory(store, ("team", "role", "coder"))
    researcher = WorkflowMemory(store, ("team", "role", "researcher"))
    researcher.add(wf.for_role("researcher"))
    assert coder.count() == 0 and researcher.count() == 1
    assert Workflow.from_json(wf.to_json()) == wf
    hit = researcher.recall("In which town was the director of the Quarry Archive born?")[0]
    assert hit.workflow.id == wf.id and hit.bindings == {"relation": "director", "subject": "Quarry Archive"}
    frozen = WorkflowMemory(store, ("team", "frozen"), writes=False)
    frozen.add(wf)
    assert frozen.count() == 0
