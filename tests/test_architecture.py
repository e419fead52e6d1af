"""The layering rule, read from the source (no imports run, no network).

* Outside the application layer (``ltm_agent/app/``) and ``plugins/``, no module imports
  ``ltm_agent.plugins``, ``ltm_agent.memory_stores``, ``langgraph``, ``llama_index`` or
  ``chromadb`` — not even lazily inside a function (the top-level facade may name the two
  stores for type checkers; its public API loads them lazily).
* ``langchain_core`` is imported at module level only inside ``ltm_agent/llm/``; elsewhere in
  the core only lazily (inside a function or under ``TYPE_CHECKING``), where a type is needed.
* Store backends (``memory_stores/``) import no framework and no plugin.
* There are no import cycles between modules at module level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> the package name it installs as (pyproject's package-dir).
SOURCES = {
    ROOT / "ltm_agent": "ltm_agent",
    ROOT / "memory_stores": "ltm_agent.memory_stores",
    ROOT / "plugins": "ltm_agent.plugins",
}
FORBIDDEN_IN_CORE = ("ltm_agent.plugins", "ltm_agent.memory_stores", "langgraph", "llama_index", "chromadb")
FORBIDDEN_IN_STORES = ("ltm_agent.plugins", "langgraph", "llama_index", "langchain_core", "ltm_agent.app")


def _module_name(path: Path) -> str:
    for folder, package in SOURCES.items():
        if path.is_relative_to(folder):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            return ".".join([package, *parts])
    raise AssertionError(path)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for folder in SOURCES for p in sorted(folder.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str) -> list[tuple[str, bool]]:
    """Every import in ``path`` as (absolute module name, at module level and run at import time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, eager: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), eager)
            elif isinstance(child, ast.Import):
                found.extend((alias.name, eager) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    name = ".".join([*base, child.module] if child.module else base)
                else:
                    name = child.module or ""
                found.append((name, eager))
                # "from pkg import submodule" imports the submodule too.
                found.extend((f"{name}.{alias.name}", eager) for alias in child.names)
            else:
                visit(child, eager)

    visit(tree, True)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer(module: str) -> str:
    if _within(module, "ltm_agent.app"):
        return "app"
    if _within(module, "ltm_agent.plugins"):
        return "plugins"
    if _within(module, "ltm_agent.memory_stores"):
        return "stores"
    return "core"


MODULES = _modules()


def test_the_tree_is_what_this_test_reads() -> None:
    # A moved folder must not silently empty the rule.
    for package in ("ltm_agent.retrieval", "ltm_agent.paging", "ltm_agent.facts", "ltm_agent.llm",
                    "ltm_agent.buffer", "ltm_agent.reasoning", "ltm_agent.app.cli",
                    "ltm_agent.memory_stores.chroma", "ltm_agent.plugins.langgraph.read"):
        assert package in MODULES, package


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) == "core"))
def test_core_imports_no_framework_store_or_plugin(module: str) -> None:
    # The top-level facade names the two stores in its lazy public API (for type checkers only);
    # it is the one place a user imports everything from, not a mechanism.
    allowed = ("ltm_agent.memory_stores",) if module == "ltm_agent" else ()
    bad = [
        name for name, _ in _imports(MODULES[module], module)
        if any(_within(name, forbidden) for forbidden in FORBIDDEN_IN_CORE)
        and not any(_within(name, ok) for ok in allowed)
    ]
    assert not bad, f"{module} imports {sorted(set(bad))}; only ltm_agent.app and plugins may"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) == "core"))
def test_langchain_core_only_in_llm_or_lazily(module: str) -> None:
    if _within(module, "ltm_agent.llm"):
        return
    eager = [name for name, at_import in _imports(MODULES[module], module) if at_import and _within(name, "langchain_core")]
    assert not eager, f"{module} imports {sorted(set(eager))} at module level; import it lazily or move it to ltm_agent.llm"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) == "stores"))
def test_stores_import_no_framework_or_application(module: str) -> None:
    bad = [
        name for name, _ in _imports(MODULES[module], module)
        if any(_within(name, forbidden) for forbidden in FORBIDDEN_IN_STORES)
    ]
    assert not bad, f"{module} imports {sorted(set(bad))}"


def test_nothing_below_the_application_layer_imports_it() -> None:
    bad = {
        module: sorted({n for n, _ in _imports(path, module) if _within(n, "ltm_agent.app")})
        for module, path in MODULES.items()
        if _layer(module) != "app"
    }
    assert not {m: names for m, names in bad.items() if names}


def test_no_import_cycles_at_module_level() -> None:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        graph[module] = {
            name for name, eager in _imports(path, module) if eager and name in MODULES and name != module
        }
    # A package's __init__ importing its own submodules is how re-exports work, not a cycle.
    for module in graph:
        graph[module] = {n for n in graph[module] if not (_within(n, module) and MODULES[module].name == "__init__.py")}
    # Importing a submodule runs its parents' __init__ first: parents are edges too.
    for module in list(graph):
        for dep in list(graph[module]):
            parts = dep.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in MODULES and not _within(module, parent):
                    graph[module].add(parent)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles[:10])


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    # The checker itself must see lazy imports, TYPE_CHECKING blocks and from-imports.
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from langchain_core.messages import BaseMessage\n"
        "def f():\n    import chromadb\n"
        "from langgraph.graph import StateGraph\n",
        encoding="utf-8",
    )
    found = dict(_imports(source, "ltm_agent.probe"))
    assert found["langchain_core.messages"] is False
    assert found["chromadb"] is False
    assert found["langgraph.graph"] is True


def test_the_architecture_page_names_every_package() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = {
        module for module, path in MODULES.items() if path.name == "__init__.py" and module != "ltm_agent"
    }
    # Named the way the page's tables name them: the folder inside the repository's three roots
    # (memory_stores/ and plugins/ are top-level folders that install under ltm_agent).
    folders = {"/".join(package.split(".")[1:]) + "/" for package in packages}
    missing = sorted(folder for folder in folders if f"`{folder}`" not in page)
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_test_files_have_unique_names() -> None:
    # pytest's default import mode keys test modules by file name: two test_cli.py collide.
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
