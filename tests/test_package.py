"""The package's shape: one import root, a pinned public API, a wheel without generic top-level names."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import ltm_agent

ROOT = Path(__file__).resolve().parent.parent

PUBLIC_API = [
    "CallableEmbedder", "ChatLocalModel", "ChromaStore", "Conversation", "CorruptStoreError", "DataFormatError",
    "Embedder", "EmbedderMismatchError", "EmbeddingModelError", "EmptyTextError", "EntropyDecayBuffer", "Episode",
    "EpisodicTimeline", "Fact", "FactMemory", "GroundedAnswer", "HashingEmbedder", "HybridRetriever",
    "InMemoryStore", "InvalidDateError", "InvalidFilterError", "InvalidInputError", "InvalidNamespaceError",
    "InvalidTypeError", "LTMError", "LangChainEmbedder", "MemoryBlockLimitError", "MemoryItem", "MemoryStore",
    "MiniLMEmbedder", "MissingExtraError", "ModelError", "ModelFactExtractor", "ModelOutputError", "ModelStep",
    "ModelTimeoutError", "Namespace", "Note", "NotFoundError", "PagedContext", "PatternFactExtractor",
    "RecordKind", "RetrievalConfig", "RetrieveThenReason", "Retriever", "ScoredItem", "Session",
    "StoreConnectionError", "StoreError", "StoreLimits", "StoredItem", "TextTooLargeError", "Turn",
    "UnsupportedOperationError", "Usage", "UsageLedger", "count_tokens", "load_conversations", "parse_date",
    "validate_namespace",
]


def test_public_api_is_pinned() -> None:
    assert sorted(ltm_agent.__all__) == sorted(PUBLIC_API)
    for name in ltm_agent.__all__:
        assert getattr(ltm_agent, name) is not None


def test_import_is_light() -> None:
    code = "import sys, ltm_agent; print(any(m.startswith(('chromadb', 'langchain', 'llama_index')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_error_is_an_ltm_error_and_a_builtin() -> None:
    from ltm_agent import errors

    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and obj is not errors.LTMError:
            assert issubclass(obj, errors.LTMError)
            assert any(base.__module__ == "builtins" and base is not Exception for base in obj.__mro__[1:]), name


def test_wheel_has_one_import_root(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True,
    )
    (wheel,) = tmp_path.glob("ltm_agent-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    roots = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert roots == {"ltm_agent"}
    for required in (
        "ltm_agent/memory_stores/chroma/store.py",
            "ltm_agent/app/cli.py",
            "ltm_agent/paging/context.py",
        "ltm_agent/memory_stores/memory.py",
        "ltm_agent/plugins/langgraph/__init__.py",
        "ltm_agent/plugins/llamaindex/__init__.py",
        "ltm_agent/data/sample_conversation.json",
        "ltm_agent/py.typed",
    ):
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ltm-agent = ltm_agent.app.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_every_package_on_disk_is_installed() -> None:
    # A package missing from pyproject's explicit list installs from a checkout (editable) but not
    # from the wheel: catch it here, not in a user's ImportError.
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    roots = {ROOT / "ltm_agent": "ltm_agent", ROOT / "memory_stores": "ltm_agent.memory_stores",
             ROOT / "plugins": "ltm_agent.plugins"}
    on_disk = {
        ".".join([name, *init.parent.relative_to(folder).parts])
        for folder, name in roots.items()
        for init in folder.rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
