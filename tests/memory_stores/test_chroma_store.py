"""ChromaStore specifics: opening checks, layout, other clients, threads, MiniLM end to end."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

import ltm_agent.memory_stores as memory_stores
from ltm_agent.embeddings import HashingEmbedder, MiniLMEmbedder
from ltm_agent.errors import (
    CorruptStoreError,
    EmbedderMismatchError,
    InvalidInputError,
    StoreConnectionError,
    StoreError,
)
from ltm_agent.memory_stores import ChromaStore, InMemoryStore
from ltm_agent.memory_stores.chroma.layout import REGISTRY, collection_name
from ltm_agent.records import StoredItem

NS = ("user-1",)
CHROMA_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")


def raw_client(path: Path):  # noqa: ANN201
    import chromadb

    from ltm_agent.memory_stores.chroma.connect import settings

    return chromadb.PersistentClient(path=str(path), settings=settings())


def test_public_surface() -> None:
    assert memory_stores.__all__ == ["ChromaStore", "InMemoryStore"]
    assert memory_stores.ChromaStore is ChromaStore


# -- opening -----------------------------------------------------------------------


def test_reopen_with_another_embedder_is_refused(fast_tmp: Path) -> None:
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder(64)) as store:
        store.put([StoredItem(NS, "1", "hello")])
    for other in (HashingEmbedder(32), MiniLMEmbedder()):
        with pytest.raises(EmbedderMismatchError) as caught:
            ChromaStore.persistent(fast_tmp, embedder=other)
        message = str(caught.value)
        assert "fake-hashing-64" in message and other.name in message and "HashingEmbedder(64)" in message
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder(64)) as store:  # the right one still works
        assert store.count(NS) == 1


def test_a_collection_of_another_embedder_is_refused(fast_tmp: Path) -> None:
    # Even if the registry were bypassed, each collection records its embedder.
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder(64)) as store:
        store.put([StoredItem(NS, "1", "hello")])
    client = raw_client(fast_tmp)
    client.get_collection(REGISTRY).modify(metadata={"ltm:schema": 1, "ltm:embedder": "other", "ltm:dim": 8})
    client.close()
    with ChromaStore.persistent(fast_tmp, embedder=_Named("other", 8)) as store:
        with pytest.raises(EmbedderMismatchError, match="fake-hashing-64"):
            store.search(NS, "hello")


class _Named(HashingEmbedder):
    def __init__(self, name: str, dimension: int) -> None:
        super().__init__(dimension)
        self.name = name


def test_a_file_is_not_a_store(fast_tmp: Path) -> None:
    path = fast_tmp / "file"
    path.write_text("hello")
    with pytest.raises(CorruptStoreError, match="is a file"):
        ChromaStore.persistent(path, embedder=HashingEmbedder())


def test_a_directory_of_other_files_is_not_a_store(fast_tmp: Path) -> None:
    (fast_tmp / "notes.txt").write_text("mine")
    with pytest.raises(CorruptStoreError, match="not a Chroma directory"):
        ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder())
    assert [p.name for p in fast_tmp.iterdir()] == ["notes.txt"]


def test_a_corrupt_database_is_reported_and_the_path_can_be_reused(fast_tmp: Path) -> None:
    (fast_tmp / "chroma.sqlite3").write_bytes(b"garbage" * 100)
    with pytest.raises(CorruptStoreError) as caught:
        ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder())
    assert str(fast_tmp) in str(caught.value) and "backup" in str(caught.value)
    # An SQLite file that is not Chroma's: refused before Chroma can migrate it.
    (fast_tmp / "chroma.sqlite3").unlink()
    connection = sqlite3.connect(fast_tmp / "chroma.sqlite3")
    connection.execute("create table t (x)")
    connection.commit()
    connection.close()
    with pytest.raises(CorruptStoreError, match="another program"):
        ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder())
    # A Chroma database whose pages are damaged.
    (fast_tmp / "chroma.sqlite3").unlink()
    raw_client(fast_tmp).close()
    data = bytearray((fast_tmp / "chroma.sqlite3").read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    (fast_tmp / "chroma.sqlite3").write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError):
        ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder())
    (fast_tmp / "chroma.sqlite3").unlink()
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder()) as store:  # no stale cached system
        store.put([StoredItem(NS, "1", "hello")])
        assert store.count(NS) == 1


def test_a_foreign_chroma_directory_is_left_alone(fast_tmp: Path) -> None:
    client = raw_client(fast_tmp)
    client.create_collection("their-data", embedding_function=None).add(ids=["x"], embeddings=[[1.0, 0.0]])
    client.close()
    with pytest.raises(CorruptStoreError, match="another application"):
        ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder())
    client = raw_client(fast_tmp)
    assert [c.name for c in client.list_collections()] == ["their-data"]
    client.close()


def test_unreachable_server(unused_port: int) -> None:
    port = unused_port
    with pytest.raises(StoreConnectionError, match=f"127.0.0.1:{port}"):
        ChromaStore.server(f"http://127.0.0.1:{port}", embedder=HashingEmbedder())
    with pytest.raises(InvalidInputError):
        ChromaStore.server("ftp://example", embedder=HashingEmbedder())


async def test_unreachable_server_async(unused_port: int) -> None:
    with pytest.raises(StoreConnectionError):
        await ChromaStore.aserver(host="127.0.0.1", port=unused_port, embedder=HashingEmbedder())


def test_closed_store_refuses_work_and_path_reopens(fast_tmp: Path) -> None:
    store = ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder())
    store.put([StoredItem(NS, "1", "hello")])
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.count(NS)
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder()) as again:
        assert again.count(NS) == 1


# -- layout ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "namespace",
    [("a",), ("user@example.com", "agent:1"), ("-",), ("..", "__"), ("x" * 128,) * 8, ("+=@:",), ("A.b-C_d",)],
)
def test_collection_names_are_valid_for_any_namespace(namespace: tuple[str, ...]) -> None:
    assert CHROMA_NAME.match(collection_name(namespace))


def test_colliding_slugs_stay_separate_tenants(fast_tmp: Path) -> None:
    one, two = ("a@b",), ("a:b",)  # both slug to "a-b"
    assert collection_name(one) != collection_name(two)
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder()) as store:
        store.put([StoredItem(one, "1", "first tenant"), StoredItem(two, "1", "second tenant")])
        assert store.get(one, ["1"])[0].text == "first tenant"
        assert [h.item.text for h in store.search(two, "tenant", mode="keyword")] == ["second tenant"]
        assert store.list_namespaces() == sorted([one, two])


def test_deleted_namespace_is_gone_from_disk(fast_tmp: Path) -> None:
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder()) as store:
        store.put([StoredItem(NS, str(i), f"secret number {i}") for i in range(5)])
        store.put([StoredItem(("user-2",), "0", "secret number 0")])
        assert store.delete(NS) == 5
    client = raw_client(fast_tmp)
    names = [c.name for c in client.list_collections()]
    assert collection_name(NS) not in names and collection_name(("user-2",)) in names
    for name in names:
        collection = client.get_collection(name, embedding_function=None)
        left = collection.get(include=["documents", "metadatas"])
        assert all("user-1" not in str(meta) for meta in left["metadatas"] or [])
    assert len(client.get_collection(collection_name(("user-2",))).get()["ids"]) == 1
    client.close()


def test_big_puts_are_split_at_chromas_batch_limit(fast_tmp: Path) -> None:
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder()) as store:
        store._max_batch = 7
        store.put([StoredItem(NS, f"{i:03}", f"item number {i}") for i in range(30)])
        assert store.count(NS) == 30
        assert [i.id for i in store.list(NS, limit=3, offset=27)] == ["027", "028", "029"]


# -- several clients ----------------------------------------------------------------


def test_keyword_index_sees_writes_of_another_client(server_store) -> None:  # noqa: ANN001
    writer, reader = server_store(), server_store()
    writer.put([StoredItem(NS, "1", "the violin lesson")])
    assert [h.item.id for h in reader.search(NS, "violin", mode="keyword")] == ["1"]  # builds the index
    writer.put([StoredItem(NS, "2", "another violin concert")])
    assert {h.item.id for h in reader.search(NS, "violin", mode="keyword")} == {"1", "2"}
    writer.delete(NS, ["1"])
    assert [h.item.id for h in reader.search(NS, "violin", mode="keyword")] == ["2"]
    writer.delete(NS)
    assert reader.search(NS, "violin", mode="keyword") == []


def test_cached_handles_survive_another_client_recreating_a_namespace(server_store) -> None:  # noqa: ANN001
    one, two = server_store(), server_store()
    one.put([StoredItem(NS, "old", "old data about boats")])
    assert [h.item.id for h in two.search(NS, "boats")] == ["old"]  # two caches the handle
    one.delete(NS)
    assert two.search(NS, "boats") == [] and two.count(NS) == 0
    one.put([StoredItem(NS, "new", "new data about boats")])
    assert [h.item.id for h in two.search(NS, "boats")] == ["new"]
    two.put([StoredItem(NS, "mine", "written through a stale handle")])
    assert one.count(NS) == 2


async def test_async_client_does_the_io(chroma_server: str, server_database: str) -> None:
    store = await ChromaStore.aserver(chroma_server, database=server_database, embedder=HashingEmbedder())
    try:
        assert store._async_client is not None
        await store.aput([StoredItem(NS, "1", "async hello world")])
        assert [h.item.id for h in await store.asearch(NS, "hello", mode="keyword")] == ["1"]
        assert store.count(NS) == 1  # the sync path reaches the same data
    finally:
        store.close()


# -- threads -----------------------------------------------------------------------


def test_concurrent_writers_lose_nothing(fast_tmp: Path) -> None:
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder()) as store:
        errors: list[BaseException] = []

        def write(worker: int) -> None:
            try:
                for i in range(15):
                    ns = NS if i % 2 else ("user-2",)
                    store.put([StoredItem(ns, f"w{worker}-{i}", f"worker {worker} item {i}")])
                    store.search(ns, "worker item", mode="keyword")
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.count(NS) + store.count(("user-2",)) == 90
        assert len(store.search(NS, "worker item", mode="keyword", limit=100)) == store.count(NS)


# -- performance and the real embedder --------------------------------------------------


def test_a_read_after_a_write_does_not_rebuild_the_side_index(fast_tmp: Path) -> None:
    """Own writes go into the side index in place; searching after them reads nothing back from Chroma."""
    words = [f"w{i}" for i in range(400)]
    rng = np.random.default_rng(0)
    docs = [" ".join(rng.choice(words, 12)) for _ in range(3000)]
    with ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder()) as store:
        store.put([StoredItem(NS, f"{i:04}", doc) for i, doc in enumerate(docs)])
        store.search(NS, docs[0], mode="keyword")
        entry = store._keyword.get(NS)
        assert entry is not None and len(entry) == 3000
        fetched: list[int] = []
        collection = store._handles[NS]
        original_get = collection.get

        def counting_get(**kwargs: object) -> object:
            result = original_get(**kwargs)
            fetched.append(len(result["ids"]))
            return result

        collection.get = counting_get  # type: ignore[method-assign]
        for n in range(20):
            store.put([StoredItem(NS, f"new-{n}", f"fresh zebra note {n}"), StoredItem(NS, "0001", f"replaced {n}")])
            hits = store.search(NS, "zebra", mode="keyword", limit=100)
            assert {h.item.id for h in hits} == {f"new-{k}" for k in range(n + 1)}
            assert store.search(NS, f"replaced {n}", mode="keyword", limit=1)[0].item.id == "0001"
            assert store._keyword.get(NS) is entry  # updated in place, never rebuilt
        # Each write reads back only the ids it replaces; each read only other writers' records (none).
        assert sum(fetched) <= 2 * 20


def test_minilm_end_to_end(fast_tmp: Path) -> None:
    """The offline default model, persisted EF and all (the one real-model test)."""
    with ChromaStore.persistent(fast_tmp) as store:
        assert store.embedder_name == MiniLMEmbedder.name
        store.put(
            [
                StoredItem(NS, "pet", "My cat sleeps on the sofa all afternoon"),
                StoredItem(NS, "car", "The mechanic replaced the brake pads"),
                StoredItem(NS, "food", "We cooked spaghetti for dinner"),
            ]
        )
        assert store.search(NS, "kitten napping on the couch", limit=1)[0].item.id == "pet"
        parity = InMemoryStore(store.embedder)
        parity.put(store.list(NS))
        expected = [h.item.id for h in parity.search(NS, "car repair")]
        assert [h.item.id for h in store.search(NS, "car repair")] == expected
    client = raw_client(fast_tmp)
    collection = client.get_collection(collection_name(NS))  # Chroma rebuilds the EF from its name
    assert collection.configuration_json["embedding_function"]["name"] == "ltm-minilm-int8"
    assert collection.metadata["ltm:embedder"] == MiniLMEmbedder.name and collection.metadata["ltm:dim"] == 384
    assert collection.query(query_texts=["brakes at the garage"], n_results=1)["ids"] == [["car"]]
    client.close()
    with pytest.raises(EmbedderMismatchError):
        ChromaStore.persistent(fast_tmp, embedder=HashingEmbedder())


def test_bulk_ingest_leaves_the_keyword_index_built() -> None:
    from ltm_agent.conversations import Conversation
    from ltm_agent.timeline import EpisodicTimeline

    conversation = Conversation.model_validate(
        {
            "id": "c1",
            "sessions": [
                {"id": "s1", "date": "2024-03-02T10:00:00Z", "turns": [
                    {"id": "t1", "role": "user", "speaker": "Maya", "text": "I adopted a cat called Miso."},
                    {"id": "t2", "role": "assistant", "speaker": "Ben", "text": "Lovely, a tabby?"},
                ]},
            ],
        }
    )
    store = ChromaStore.ephemeral(embedder=HashingEmbedder())
    try:
        namespace = ("u1",)
        EpisodicTimeline(store, namespace).ingest(conversation)
        entry = store._keyword.get(namespace)
        assert entry is not None and len(entry) == store.count(namespace)
        # Bookkeeping records (the session record) are kept but not keyword-indexed.
        memories = [i for i in store.list(namespace) if i.metadata.get("kind") != "session"]
        assert len(entry.index) == len(memories) == store.count(namespace) - 1
        assert entry.exact  # exact dense over the side index's vectors
        hits = store.search(namespace, "Miso", mode="keyword")
        assert hits and "Miso" in hits[0].item.text
    finally:
        store.close()
