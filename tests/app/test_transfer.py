"""Export/import of a tenant's memory as JSON lines: exact round trips, all-or-nothing refusals."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest

from ltm_agent.app.transfer import dumps, export_memory, import_memory
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import DataFormatError, EmbedderMismatchError, InvalidInputError, NotFoundError
from ltm_agent.loaders import load_sample_conversation
from ltm_agent.memory_stores import ChromaStore, InMemoryStore
from ltm_agent.records import StoredItem
from ltm_agent.timeline import EpisodicTimeline

TENANT = ("maya",)


def content(text: str) -> list[dict]:
    """The lines of an export without the times the stores own, the header's export time and the vectors."""
    rows = [json.loads(line) for line in text.splitlines()]
    rows[0].pop("exported_at")
    for row in rows[1:]:
        row.pop("created_at"), row.pop("updated_at"), row.pop("vector")
    return rows


def vectors(text: str) -> np.ndarray:
    return np.stack([np.frombuffer(base64.b64decode(json.loads(line)["vector"]), "<f4") for line in text.splitlines()[1:]])


@pytest.fixture(scope="module")
def source() -> InMemoryStore:
    """The sample conversation with context keys (summed vectors) and a sub-namespace."""
    store = InMemoryStore(embedder=HashingEmbedder(64))
    EpisodicTimeline(store, TENANT, units=["turn", "context", "round"]).ingest(load_sample_conversation())
    store.put([StoredItem((*TENANT, "notes"), "n1", "Likes tea", metadata={"score": 1.0, "n": 2, "ok": True})])
    return store


def test_round_trip_is_exact_across_in_memory_and_chroma(source: InMemoryStore, tmp_path: Path) -> None:
    first = dumps(source, TENANT)
    with ChromaStore.persistent(tmp_path / "chroma", embedder=HashingEmbedder(64)) as chroma:
        report = import_memory(chroma, io.StringIO(first))
        assert report.items == len(first.splitlines()) - 1 and (*TENANT, "notes") in report.namespaces
        second = dumps(chroma, TENANT)
    back = InMemoryStore(embedder=HashingEmbedder(64))
    import_memory(back, io.StringIO(second))
    third = dumps(back, TENANT)
    assert content(first) == content(second) == content(third)
    # Vectors agree to float32 rounding: Chroma's side index hands back unit-normalised copies.
    assert np.abs(vectors(first) - vectors(second)).max() < 1e-6
    assert np.abs(vectors(second) - vectors(third)).max() < 1e-6
    # The vectors are the stored ones (context keys: summed vectors), not re-embedded text.
    ns_items = {i.id: i for i in back.list(TENANT)}
    context = next(i for i in ns_items.values() if i.metadata.get("kind") == "context")
    hit = back.search(TENANT, "x", vector=np.eye(64, dtype=np.float32)[0], limit=1000, with_vectors=True)
    stored = {h.item.id: h.item.vector for h in hit}
    assert not np.allclose(stored[context.id], HashingEmbedder(64).embed([context.index_text])[0])


def test_import_under_another_namespace_keeps_the_tree(source: InMemoryStore) -> None:
    target = InMemoryStore(embedder=HashingEmbedder(64))
    import_memory(target, io.StringIO(dumps(source, TENANT)), namespace=("copy", "maya"))
    assert target.list_namespaces() == [("copy", "maya"), ("copy", "maya", "notes")]
    assert target.count(("copy", "maya")) == source.count(TENANT)


def test_export_of_an_unknown_tenant_lists_what_exists(source: InMemoryStore) -> None:
    with pytest.raises(NotFoundError, match="namespaces in this store: maya"):
        export_memory(source, ("mya",), io.StringIO())


def malformed(good: str) -> dict[str, str]:
    lines = good.splitlines()
    item = json.loads(lines[1])
    return {
        "empty": "",
        "not json": "{not json\n",
        "foreign header": json.dumps({"format": "other"}) + "\n" + "\n".join(lines[1:]),
        "newer version": lines[0].replace('"version":1', '"version":2') + "\n" + "\n".join(lines[1:]),
        "truncated": "\n".join(lines[:-1]),
        "extra field": "\n".join([lines[0], json.dumps({**item, "extra": 1}), *lines[2:]]),
        "nested metadata": "\n".join([lines[0], json.dumps({**item, "metadata": {"a": {"b": 1}}}), *lines[2:]]),
        "bad vector": "\n".join([lines[0], json.dumps({**item, "vector": "not base64!"}), *lines[2:]]),
        "short vector": "\n".join([lines[0], json.dumps({**item, "vector": "AAAAAA=="}), *lines[2:]]),
        "duplicate id": "\n".join([lines[0], lines[1], lines[1], *lines[3:]]),
        "outside tenant": "\n".join([lines[0], json.dumps({**item, "namespace": ["other"]}), *lines[2:]]),
        "bad label": "\n".join([lines[0], json.dumps({**item, "namespace": ["maya", ".."]}), *lines[2:]]),
        "empty text": "\n".join([lines[0], json.dumps({**item, "text": " "}), *lines[2:]]),
    }


@pytest.mark.parametrize("case", list(malformed(json.dumps({"format": 1}) + "\n{}")))
def test_malformed_files_are_refused_and_nothing_is_written(source: InMemoryStore, case: str) -> None:
    text = malformed(dumps(source, TENANT))[case]
    target = InMemoryStore(embedder=HashingEmbedder(64))
    with pytest.raises((DataFormatError, InvalidInputError)):
        import_memory(target, io.StringIO(text))
    assert target.list_namespaces() == []


def test_import_refuses_a_namespace_that_holds_memories(source: InMemoryStore) -> None:
    target = InMemoryStore(embedder=HashingEmbedder(64))
    target.put([StoredItem((*TENANT, "notes"), "x", "already here")])
    with pytest.raises(InvalidInputError, match="maya/notes already hold"):
        import_memory(target, io.StringIO(dumps(source, TENANT)))
    assert target.list_namespaces() == [(*TENANT, "notes")] and target.count((*TENANT, "notes")) == 1


def test_another_embedder_needs_reembed(source: InMemoryStore) -> None:
    text = dumps(source, TENANT)
    other = InMemoryStore(embedder=HashingEmbedder(32))
    with pytest.raises(EmbedderMismatchError, match="reembed"):
        import_memory(other, io.StringIO(text))
    assert other.list_namespaces() == []
    assert import_memory(other, io.StringIO(text), reembed=True).items == len(text.splitlines()) - 1


def test_a_failed_write_leaves_the_target_as_it_was(source: InMemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    target = InMemoryStore(embedder=HashingEmbedder(64))
    real_put = target.put
    calls = []

    def failing_put(items):  # type: ignore[no-untyped-def]
        calls.append(len(items))
        if len(calls) == 2:
            raise OSError("disk full")
        real_put(items)

    monkeypatch.setattr(target, "put", failing_put)
    with pytest.raises(Exception, match="nothing was kept"):
        import_memory(target, io.StringIO(dumps(source, TENANT)))
    assert target.list_namespaces() == []


def test_cli_export_then_import_into_a_chroma_server(tmp_path: Path, chroma_server: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from ltm_agent.app.cli import app
    from ltm_agent.app.cli_common import run
    from ltm_agent.data import example_conversations_path

    command = typer.main.get_command(app)
    store, exported, again = str(tmp_path / "store"), tmp_path / "shop.jsonl", tmp_path / "again.jsonl"
    assert run(command, ["ingest", str(example_conversations_path()), "-s", store, "-n", "shop"]) == 0
    assert run(command, ["export", "-s", store, "-n", "shop", "-o", str(exported)]) == 0
    assert run(command, ["import", str(exported), "--server", chroma_server, "-n", "moved", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {r["namespace"] for r in rows} == {"moved/alex", "moved/sam"}
    assert run(command, ["export", "--server", chroma_server, "-n", "moved", "-o", str(again)]) == 0
    before, after = content(exported.read_text()), content(again.read_text())
    assert [{**r, "namespace": r["namespace"][1:]} for r in before] == [{**r, "namespace": r["namespace"][1:]} for r in after]
    assert run(command, ["import", str(exported), "--server", chroma_server, "-n", "moved"]) == 2  # refused: not empty
    assert "already hold memories" in capsys.readouterr().err
    assert run(command, ["forget", "--server", chroma_server, "-n", "moved"]) == 0
