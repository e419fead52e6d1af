"""Erasure reaches Chroma's HNSW files: their unused tails are zeroed, their elements kept.

Chroma writes a new index's never-zeroed buffers whole, so stale process memory
(once a deleted memory's text) can sit past the header's element count in
another collection's ``data_level0.bin`` or ``length.bin``. These tests plant
such bytes (the leak itself depends on the heap) and check that an erase removes
them without touching a single live element.
"""

from __future__ import annotations

import struct
import tempfile
import threading
from pathlib import Path

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.memory_stores.chroma.gate import IndexGate
from ltm_agent.memory_stores.chroma.scrub import scrub_index_files
from ltm_agent.records import StoredItem

KEEP, VICTIM = ("keep",), ("victim",)
MARK = b"stale-heap-bytes:zebra-unicorn-passport"


def _open(root: Path) -> ChromaStore:
    return ChromaStore.persistent(root, embedder=HashingEmbedder(64))


def _items(ns: tuple[str, ...], count: int, text: str) -> list[StoredItem]:
    return [StoredItem(ns, f"{ns[0]}{i}", f"{text} {i}") for i in range(count)]


def _holding(root: Path, needle: bytes) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def _index_folders(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/header.bin"))


def _count_and_size(folder: Path) -> tuple[int, int]:
    fields = struct.unpack_from("<iQQQQ", (folder / "header.bin").read_bytes())
    return fields[3], fields[4]


def _plant(folder: Path, name: str = "data_level0.bin") -> None:
    """Put MARK in the unused tail of an index file, as Chroma's stale buffers do."""
    count, size = _count_and_size(folder)
    used = count * (size if name == "data_level0.bin" else 4)
    path = folder / name
    data = bytearray(path.read_bytes())
    if len(data) < used + len(MARK):
        data.extend(bytes(used + len(MARK) - len(data)))
    data[used : used + len(MARK)] = MARK
    path.write_bytes(bytes(data))


def test_an_erase_zeroes_stale_bytes_in_other_collections_index_files(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with _open(root) as store:
        store.put(_items(KEEP, 1200, "harmless note about trams"))  # past Chroma's sync threshold: a persisted index
        store.put(_items(VICTIM, 20, "my secret is zebra-unicorn-passport"))
    folders = _index_folders(root)
    assert any(_count_and_size(f)[0] > 0 for f in folders)  # live elements on disk, which must survive
    for folder in folders:
        _plant(folder)
        _plant(folder, "length.bin")
    before = {f: (f / "data_level0.bin").read_bytes()[: _count_and_size(f)[0] * _count_and_size(f)[1]] for f in folders}
    with _open(root) as store:
        assert len(_holding(root, MARK)) == 2 * len(folders)
        assert store.delete(VICTIM) == 20
        assert _holding(root, MARK) == []
        for folder, elements in before.items():
            if folder.exists():  # the victim's folder is gone
                assert (folder / "data_level0.bin").read_bytes()[: len(elements)] == elements
        assert store.count(KEEP) == 1200
        assert len(store.search(KEEP, "harmless trams", mode="dense", limit=1200)) == 1200
        assert len(store.search(KEEP, "harmless trams", mode="keyword", limit=1200)) == 1200
    with _open(root) as store:
        assert store.count(KEEP) == 1200 and store.count(VICTIM) == 0
        hit = store.search(KEEP, "harmless note about trams 7", mode="dense", limit=1)[0]
        assert hit.item.text == "harmless note about trams 7"


def test_the_last_close_scrubs_index_files_made_after_an_erase(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with _open(root) as store:
        store.put(_items(VICTIM, 5, "secret"))
        store.delete(VICTIM)
        store.put(_items(KEEP, 5, "later note"))  # a new collection: a new index written from the heap
        for folder in _index_folders(root):
            _plant(folder)
        assert _holding(root, MARK)
    assert _holding(root, MARK) == []
    with _open(root) as store:
        assert store.count(KEEP) == 5


def test_a_close_without_an_erase_leaves_index_files_alone(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with _open(root) as store:
        store.put(_items(KEEP, 5, "note"))
    for folder in _index_folders(root):
        _plant(folder)
    with _open(root) as store:
        store.search(KEEP, "note", mode="dense")
    assert _holding(root, MARK)  # nothing was erased: no cost at close


def test_an_index_of_an_unknown_layout_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with _open(root) as store:
        store.put(_items(KEEP, 5, "note"))
    folder = _index_folders(root)[0]
    _plant(folder)
    header = bytearray((folder / "header.bin").read_bytes())
    header[0:4] = struct.pack("<i", 2)  # a persistence version this code does not know
    (folder / "header.bin").write_bytes(bytes(header))
    untouched = (folder / "data_level0.bin").read_bytes()
    assert folder / "data_level0.bin" not in scrub_index_files(root)
    assert (folder / "data_level0.bin").read_bytes() == untouched and MARK in untouched


def test_writers_on_other_threads_lose_nothing_while_namespaces_are_erased(tmp_path: Path) -> None:
    root = tmp_path / "s"
    errors: list[BaseException] = []
    with _open(root) as store:

        def write(worker: int) -> None:
            try:
                for batch in range(15):
                    ns = (f"w{worker}",)
                    store.put([StoredItem(ns, f"{batch}-{i}", f"worker {worker} batch {batch} item {i}") for i in range(20)])
                    store.search(ns, "worker batch", mode="dense", limit=5)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
        for thread in threads:
            thread.start()
        erased = 0
        while any(t.is_alive() for t in threads):
            store.put(_items(VICTIM, 10, "secret"))
            erased += store.delete(VICTIM)
        for thread in threads:
            thread.join()
        assert errors == []
        assert erased >= 10
        assert [store.count((f"w{w}",)) for w in range(2)] == [300, 300]
    with _open(root) as store:
        assert [store.count((f"w{w}",)) for w in range(2)] == [300, 300] and store.count(VICTIM) == 0


def test_the_gate_lets_calls_in_again_after_an_erase_and_nests_per_thread() -> None:
    gate, order = IndexGate(), []
    with gate.shared():
        with gate.shared():  # a call inside a call of the same thread passes
            order.append("nested")
        done = threading.Event()

        def erase() -> None:
            with gate.exclusive():
                order.append("erase")
            done.set()

        eraser = threading.Thread(target=erase)
        eraser.start()
        assert not done.wait(0.2)  # waits for the call inside
        order.append("call ends")
    eraser.join(10)
    with gate.shared():
        order.append("next call")
    assert order == ["nested", "call ends", "erase", "next call"]


def test_repeated_erases_leave_the_deleted_text_in_no_file(tmp_path: Path) -> None:
    """The repro that leaked within 2 to 8 trials before the scrub (chroma-core/chroma#7688)."""
    for trial in range(4):
        root = Path(tempfile.mkdtemp(dir=tmp_path)) / "s"
        secret = f"pelican-{trial}"
        with _open(root) as store:
            store.put([StoredItem(VICTIM, f"v{i}", f"{secret} holds {i}") for i in range(40)])
            store.put(_items(KEEP, 10, "note"))
        with _open(root) as store:
            store.search(VICTIM, secret, mode="keyword")
            store.delete(VICTIM, ["v7"])
        with _open(root) as store:
            store.delete(VICTIM)
            assert _holding(root, secret.encode()) == []
        assert _holding(root, secret.encode()) == []
